import Foundation
import Kernels
import LayerCollapse

/// Every command's usage, options and examples.
enum Specs {
  static let train = CommandSpec(
    name: "train", synopsis: "train CONFIG.yaml [key=value ...] [--resume | --overwrite] [--stop-after N]",
    summary: "Train a model as the config says, with the LayerCollapse regularizer on the selected blocks.",
    positionals: ["CONFIG.yaml"],
    valueOptions: ["--stop-after": "stop (as Ctrl-C would) after this many steps in total, saving last.h5"],
    flags: [
      "--resume":
        "continue the stopped run in output.dir from its last.h5 (a sweep: also start the points not yet run)",
      "--overwrite": "replace an existing run in output.dir (its checkpoints and the records made from them go)",
    ],
    takesOverrides: true,
    examples: [
      "layercollapse train configs/cifar10-vit-lc.yaml",
      "layercollapse train configs/cifar10-vit-lc.yaml lc.lambda=0.5 output.dir=runs/lambda-0.5",
      "layercollapse train configs/cifar10-vit-lc.yaml --resume    # after Ctrl-C",
    ],
    details: """
      Writes config.yaml, metrics.jsonl, summary.csv, last.h5, best.h5 and eval.json into output.dir.
      Ctrl-C stops after the current step and saves last.h5 (exit 130); a config with a sweep: section
      trains one run per point in output.dir/<point>, and --resume then finishes it: finished points
      stand, stopped ones go on, points not yet started (or values added to the sweep) start.
      """)

  static let collapse = CommandSpec(
    name: "collapse",
    synopsis: "collapse CHECKPOINT.h5 [--threshold T] [--force BLOCKS [--fit N]] [--probe N] [-o OUT.h5] [--overwrite]",
    summary: "Merge each PReLU unit (MLP) with |α − 1| < threshold into one linear layer (W = W2·W1, b = W2·b1 + b2).",
    positionals: ["CHECKPOINT.h5"],
    valueOptions: [
      "--threshold": "collapse where |α − 1| is below this, 0 < T < 1 (default: lc.threshold of the run, else 0.05)",
      "--force":
        "comma-separated units (a transformer's blocks; a mixer has two a block) to merge whatever their α (approximate; for sensitivity studies)",
      "-o": "output checkpoint (default: collapsed.h5 beside the input)",
      "--probe": "evaluation examples to measure the deviation on (default 64; 0 = none)",
      "--fit":
        "replace the --force units by their least-squares linear fit on the first N training examples instead of W2·W1 (ReplaceMe's training-free baseline)",
    ],
    flags: [
      "--overwrite":
        "replace OUT.h5 even when it is a run's training checkpoint, another checkpoint's collapse, or not a checkpoint (an earlier collapse of the same checkpoint is replaced without it)"
    ],
    examples: [
      "layercollapse collapse runs/cifar10-vit-lc/best.h5",
      "layercollapse collapse best.h5 --threshold 0.1 -o small.h5",
      "layercollapse collapse runs/cifar10-vit/best.h5 --force 2,3 --fit 512 -o fitted.h5",
    ],
    details: "Prints a per-unit table and writes it as JSON beside the output (OUT.json).")

  static let eval = CommandSpec(
    name: "eval", synopsis: "eval CHECKPOINT.h5 [key=value ...] [--split eval|train] [-o EVAL.json]",
    summary: "Evaluate a checkpoint on its evaluation split: accuracy (or loss and perplexity), parameters, MACs.",
    positionals: ["CHECKPOINT.h5"],
    valueOptions: [
      "-o":
        "where to write the results (default: CHECKPOINT.eval.json beside the checkpoint; CHECKPOINT.train.eval.json for --split train, CHECKPOINT.limit<N>.eval.json with another data.eval_limit, CHECKPOINT.train.trainlimit<N>.eval.json for --split train with another data.train_limit, CHECKPOINT.data-<NAME>.eval.json with another data.path); its directory is made, and it replaces only an earlier evaluation record",
      "--split": "eval (default) or train",
    ],
    takesOverrides: true,
    examples: [
      "layercollapse eval runs/cifar10-vit-lc/collapsed.h5",
      "layercollapse eval best.h5 data.root=/data/full data.path=cifar10",
    ],
    details: """
      key=value overrides may change only where the data is read and how much of it: \(Commands.evalOverridable
        .joined(separator: ", ")). Every other key is part of the checkpoint's architecture or training and is refused.
      """)

  static let inspect = CommandSpec(
    name: "inspect", synopsis: "inspect CHECKPOINT.h5 [--config]",
    summary: "Show a checkpoint's architecture, parameters by name, α per block and training state.",
    positionals: ["CHECKPOINT.h5"], flags: ["--config": "also print the config the model was trained with"],
    examples: ["layercollapse inspect runs/cifar10-vit-lc/last.h5"])

  static let validate = CommandSpec(
    name: "validate", synopsis: "validate CONFIG.yaml [key=value ...]",
    summary: "Check a config and the files it names; print it resolved (every default filled in), or every problem.",
    positionals: ["CONFIG.yaml"], takesOverrides: true,
    examples: ["layercollapse validate configs/sst2-encoder.yaml train.lr=3e-4"])

  static let generate = CommandSpec(
    name: "generate",
    synopsis: "generate CHECKPOINT.h5 --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S]",
    summary: "Continue a prompt with a gpt checkpoint.", positionals: ["CHECKPOINT.h5"],
    valueOptions: [
      "--prompt": "text to continue (required)", "--tokens": "how many tokens to generate (default 200)",
      "--temperature": "sampling temperature ≥ 0.001 (default 0.8)",
      "--top-k": "sample among the k likeliest (default 40; 0 = all)",
      "--seed": "sampling seed (default 1)",
    ],
    examples: ["layercollapse generate runs/austen-gpt/best.h5 --prompt \"It is a truth\" --tokens 300"])

  static let report = CommandSpec(
    name: "report", synopsis: "report RUNS... [-o DIR] [--check BANDS.yaml] [--elapsed S] [--overwrite]",
    summary: "Tables (results.md, results.csv) and SVG plots from run directories.",
    positionals: ["RUNS"],
    valueOptions: [
      "-o": "output directory (default: results)",
      "--check": "fail (exit 1) when a result falls outside its band in this file",
      "--elapsed": "seconds the runs took, for the footer",
    ],
    flags: [
      "--overwrite":
        "replace a DIR/results.md that no report wrote (without it such a file is refused, exit 73; an earlier report's is replaced)"
    ],
    examples: [
      "layercollapse report runs/reproduce -o results --check configs/expected.yaml",
      "layercollapse report runs/my-sweep runs/baseline -o my-results",
    ],
    details: """
      A runs root scripts/reproduce.sh wrote (its reproduce.txt marks it) gets one section per
      experiment. Any other run directories (or folders holding them) get a table of runs (score,
      α, what collapse merged, the collapsed model's eval) with loss, accuracy and α curves, the
      same figures in results.csv, and results run.<name>.<metric> for --check (<name>: the run's
      path below the directories all given runs share, so it depends on the paths given), e.g.
        run:
          my-sweep_lc_lambda_10:
            collapse_cost: [-0.01, 0.01]
            parameter_ratio: [0.0, 0.9]
      """,
    variadic: true)

  static let export = CommandSpec(
    name: "export", synopsis: "export CHECKPOINT.h5 -o DIR [--format layercollapse|hf] [--overwrite]",
    summary: "Write a checkpoint's model as DIR/model.safetensors and DIR/config.json, for PyTorch and other tools.",
    positionals: ["CHECKPOINT.h5"],
    valueOptions: [
      "-o": "the output directory (created if needed)",
      "--format": "layercollapse (default: any model, collapsed or not) or hf (Hugging Face transformers' layout)",
    ],
    flags: [
      "--overwrite":
        "replace model and tokenizer files in DIR that no export wrote (without it such a DIR is refused, exit 73; an earlier export's are replaced)"
    ],
    examples: [
      "layercollapse export runs/cifar10-vit-lc/collapsed.h5 -o exported/vit-small",
      "python scripts/load_exported.py exported/vit-small   # the same model as a torch.nn.Module",
      "layercollapse export runs/sst2-minilm/best.h5 -o exported/minilm-sst2 --format hf",
    ],
    details: """
      Every parameter in float32 under its PyTorch-style name (blocks.3.mlp.fc1.weight), and the
      architecture (family, sizes, which units are collapsed). scripts/load_exported.py rebuilds
      any exported model, collapsed or not, as an nn.Module with the same logits.
      --format hf writes a bert, gpt or vit model whose MLPs are its own (not PReLU, not
      collapsed) as BertForSequenceClassification, GPT2LMHeadModel or ViTForImageClassification
      would save it, with its tokenizer files: transformers' from_pretrained loads the directory.
      """)

  static let importModel = CommandSpec(
    name: "import", synopsis: "import HF_MODEL_DIR -o MODEL.h5 [--task TASK] [--classes N] [--overwrite]",
    summary: "Read a Hugging Face model directory (config.json, model.safetensors) into a checkpoint.",
    positionals: ["HF_MODEL_DIR"],
    valueOptions: [
      "-o": "the checkpoint to write",
      "--task": "the data the model will read (default: sst2 for BERT, cifar10 for ViT, text for GPT-2)",
      "--classes":
        "outputs of a new classifier head: for a model without one (BertModel, ViTModel), or in place of one of another number",
    ],
    flags: [
      "--overwrite":
        "replace MODEL.h5 even when it is a run's training checkpoint or not a checkpoint (an earlier import is replaced without it)"
    ],
    examples: [
      "layercollapse import ~/models/gpt2 -o gpt2.h5", "layercollapse import ~/models/minilm -o minilm.h5 --classes 2",
      "layercollapse eval minilm.h5 data.eval_limit=200",
    ],
    details: """
      Supported: GPT-2 (GPT2LMHeadModel, GPT2Model) as a gpt model, with its byte-level BPE
      (vocab.json, merges.txt); BERT (BertForSequenceClassification, or BertModel or a
      pre-training checkpoint with --classes; a new pooler where it has none) as a bert model, with its WordPiece vocab.txt; ViT (ViTForImageClassification, or ViTModel
      with --classes) as a vit model, its images resized and normalized as preprocessor_config.json
      says. Every tensor is mapped to our names and shapes (Conv1D weights transposed); missing or
      unexpected tensors are listed. The checkpoint stores a run config for --task (see it with
      inspect --config), so eval, collapse and generate work on it directly; a fine-tuning config
      starts from it with train.init_from and the same model.* keys.
      """)

  static let compress = CommandSpec(
    name: "compress",
    synopsis:
      "compress CHECKPOINT.h5 --max-drop D [--metric accuracy|perplexity] [--round-steps N] [--order output-first|greedy] [--holdout N] [--lambda-cap L] [-o DIR] [--resume | --overwrite] [key=value ...]",
    summary: "Collapse one unit after another, fine-tuning each first, until the next would cost more than D.",
    positionals: ["CHECKPOINT.h5"],
    valueOptions: [
      "--max-drop":
        "largest admissible drop from the start on the held-out slice: accuracy points, or perplexity's rise in % (required)",
      "--metric": "accuracy (classifiers, the default) or perplexity (language models, the default for gpt)",
      "--round-steps": "fine-tune steps per stage (default 200)",
      "--order": "output-first (default: the last unit not yet collapsed) or greedy (the cheapest zero-shot collapse)",
      "--holdout":
        "training examples (a corpus: windows) held out from the fine-tunes for every decision (default: a tenth, at most 1000)",
      "--lambda-cap":
        "the largest λ the automatic raise reaches (default: 0.9/(lr·alpha_lr_scale) for the decoupled pull)",
      "-o": "the search directory (default: compress/ beside the checkpoint)",
    ],
    flags: [
      "--resume": "continue the stopped search in the directory",
      "--overwrite": "start the search in the directory again",
    ],
    takesOverrides: true,
    examples: [
      "layercollapse compress runs/cifar10-vit/best.h5 --max-drop 1",
      "layercollapse compress runs/cifar10-vit/best.h5 --max-drop 2 --order greedy train.lr=3e-4 -o runs/vit-greedy",
      "layercollapse compress runs/austen-gpt/best.h5 --max-drop 5 --metric perplexity",
      "layercollapse compress runs/cifar10-vit/best.h5 --max-drop 1 --resume    # after Ctrl-C",
    ],
    details: """
      Each round picks a unit, swaps its activation for a PReLU, fine-tunes it with the LayerCollapse pull
      (the checkpoint's own config: lc.mode decoupled, --round-steps steps, λ raised ×4 per stage while α
      misses lc.threshold, up to the cap), collapses it, and measures the model on the held-out training
      examples (the decisions) and on the evaluation split (for reading). It stops before the first round
      that drops more than --max-drop, or when α stalls with λ at the cap, or when no unit is left.
      DIR holds round-K/ (fine-tune runs and collapsed.h5), compress.json (the state; --resume reads it),
      compress.md and compress.csv (the table: metric ± SE, parameters, MACs, batch-1 latency) and
      compress.svg; compressed.h5 is the last admissible round's model. key=value overrides change the
      fine-tunes (train.lr, lc.mode, lc.lambda as the starting λ, lc.alpha_lr_scale, data.root, ...).
      """)

  static let all = [train, collapse, eval, inspect, validate, generate, report, export, importModel, compress]
}

enum Commands {
  // MARK: train

  static func train(_ a: Arguments) throws {
    let configPath = a.positionals[0]
    var tree = try ConfigTree.load(path: configPath, pipes: true)
    let applied = try tree.apply(try ConfigOverride.parse(a.overrides))
    for o in applied { Out.err("override \(o)") }
    guard !(a.flags.contains("--resume") && a.flags.contains("--overwrite")) else {
      throw LCError.usage(
        ErrorDetail(
          what: "--resume and --overwrite contradict each other", location: "layercollapse train",
          hint: "--resume continues the run in output.dir; --overwrite starts it again from scratch"))
    }
    let stopAfter = try a.option("--stop-after").map { try int($0, "--stop-after", atLeast: 1) }
    let points = try tree.expandSweep(settingKeys: RunSettings.settingKeys(of: tree))
    try ConfigTree.checkNotSwept(applied, points: points)
    // Under mpirun: this process is one rank of a data-parallel run (README, "Training on
    // several processes or machines"). Only rank 0 prints.
    let group = try ProcessGroup.fromEnvironment()
    Session.shared.group = group
    let flag = InterruptFlag.shared
    let printer = ProgressPrinter()
    let events: (TrainingEvent) -> Void = group.isRoot ? printer.handle : { _ in }
    flag.install()
    // A sweep's directory (each point runs below it), for the points --overwrite has yet
    // to replace (`SweepOverwrite`).
    let sweepRoot: String? =
      try points.first.flatMap { $0.name.isEmpty ? nil : try RunSettings.decode(try $0.runTree()).settings.outputDir }
      .map(Paths.parent)
    if let root = sweepRoot, a.flags.contains("--overwrite"), group.isRoot {
      try SweepOverwrite.begin(root: root, points: points.map(\.name))
    }
    let toReplace = sweepRoot.map { SweepOverwrite.pending(root: $0) } ?? []
    // Runs of values the sweep no longer lists (a value removed from it) stay where they
    // are, and `report` on the sweep's directory shows them: said once, not removed.
    if let root = sweepRoot, group.isRoot, let first = points.first {
      let keys = Set(first.settings.map(\.key))
      let listed = Set(points.map(\.name))
      let others = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted().filter { name in
        !listed.contains(name) && TrainingRun.holdsRun(root + "/" + name)
          && name.split(separator: ",").allSatisfy { part in keys.contains { part.hasPrefix($0 + "=") } }
      }
      if !others.isEmpty {
        Out.err(
          "note: \(root) also holds \(others.joined(separator: ", ")), not in this sweep's values: left as they are "
            + "(`report \(root)` shows them; remove them to leave them out)")
      }
    }
    for point in points {
      let (settings, resolved) = try RunSettings.decode(try point.runTree())
      if !point.name.isEmpty && group.isRoot { Out.err("sweep point \(point.name) → \(settings.outputDir)") }
      // A sweep resumed after a stop (or given more values) has points it never started:
      // those start now, as the finished ones stand and the stopped ones go on.
      // One stopped before its first checkpoint has nothing to go on from, and nothing
      // to lose: it starts again (its partial logs replaced) rather than block the rest.
      var resume = a.flags.contains("--resume")
      var overwrite = a.flags.contains("--overwrite")
      // Said once the run directory is this process's (its lock taken), not before a refusal.
      var starting: String? = nil
      if resume && toReplace.contains(point.name) {
        // Still the earlier sweep's run: the stopped --overwrite had not reached it.
        starting = "sweep point \(point.name): the stopped --overwrite had not replaced it: starting it"
        resume = false
        overwrite = true
      } else if resume && !point.name.isEmpty && !TrainingRun.holdsRun(settings.outputDir) {
        starting = "sweep point \(point.name) was not started: starting it"
        resume = false
      } else if resume && !point.name.isEmpty && !TrainingRun.hasCheckpoint(settings.outputDir) {
        starting = "sweep point \(point.name) stopped before its first checkpoint: starting it again"
        resume = false
        overwrite = true
      }
      let run = try TrainingRun(
        settings: settings, resolved: resolved, resume: resume, overwrite: overwrite, group: group)
      if let s = starting, group.isRoot { Out.err(s) }
      if let root = sweepRoot, overwrite, group.isRoot { try SweepOverwrite.started(root: root, point: point.name) }
      // `--stop-after 30`, then the same command with --resume: the run is already there.
      if let n = stopAfter, let at = run.resumedFrom, at >= n, at < run.totalSteps {
        throw LCError.usage(
          ErrorDetail(
            what: "--stop-after \(n) is not beyond the step the run resumes at",
            location: "layercollapse train --stop-after",
            expected: "a step after \(at)", got: "\(n)",
            hint: "Leave out --stop-after to finish the run (\(run.totalSteps) steps), or give a later step"))
      }
      // A finished run (a resumed sweep's finished point) stands as it is: its final
      // evaluation is not run and written again.
      if let at = run.resumedFrom, at >= run.totalSteps,
        FileManager.default.fileExists(atPath: settings.outputDir + "/" + CheckpointFiles.runEvaluation)
      {
        if group.isRoot { Out.err("\(settings.outputDir): finished (step \(at) of \(run.totalSteps)): kept as it is") }
        continue
      }
      do {
        let outcome = try run.run(
          events: events,
          shouldStop: { flag.isRaised || stopAfter.map { run.trainer.state.step >= $0 } ?? false })
        printer.finish()
        guard group.isRoot else { continue }
        Out.print(
          "\(outcome.runDir): final \(Format.metrics(outcome.final.eval)); best \(Format.bestScore(outcome.bestScore, languageModel: outcome.final.eval.perplexity != nil)) at step \(outcome.bestStep)"
        )
      } catch {
        printer.finish()
        throw error
      }
    }
  }

  // MARK: compress

  static func compress(_ a: Arguments) throws {
    let input = a.positionals[0]
    let location = "layercollapse compress"
    guard let dropText = a.option("--max-drop") else {
      throw LCError.usage(
        ErrorDetail(
          what: "--max-drop is required", location: location,
          hint: "e.g. --max-drop 1 (accuracy points) or --max-drop 5 --metric perplexity (% rise)"))
    }
    guard !(a.flags.contains("--resume") && a.flags.contains("--overwrite")) else {
      throw LCError.usage(
        ErrorDetail(
          what: "--resume and --overwrite contradict each other", location: location,
          hint: "--resume continues the search in the directory; --overwrite starts it again"))
    }
    let givenHoldout = try a.option("--holdout").map { try int($0, "--holdout", atLeast: 1) }  // before any work
    let ckpt = try Checkpoint.load(input)
    // The data as the fine-tunes will read it: the checkpoint's, with the data.* overrides
    // (data.root, data.train_limit, ...) that the search applies too.
    var dataTree = try ConfigTree.parse(ckpt.configText, file: input + ":/meta/config")
    _ = try dataTree.apply(try ConfigOverride.parse(a.overrides).filter { $0.key.hasPrefix("data.") })
    let settings = try RunSettings.decode(dataTree).settings
    let languageModel = ckpt.model.family.predictsEveryPosition(ckpt.model.config.kind)
    let metric = try choice(
      a, "--metric", location: location, default: languageModel ? CompressMetric.perplexity : .accuracy)
    let order = try choice(a, "--order", location: location, default: CompressOrder.outputFirst)
    // The default held-out slice: a tenth of the training split, at most 1000 examples
    // (a corpus: windows).
    let holdout: Int
    if let h = givenHoldout {
      holdout = h
    } else {
      let data = try ckpt.loadData(settings.data)
      let examples: Int
      if case .corpus(let c) = data.source {
        examples = (c.train.count - 1) / c.maxLength
      } else {
        examples = data.trainCount
      }
      holdout = max(1, min(1000, examples / 10))
    }
    let options = CompressOptions(
      maxDrop: try double(dropText, "--max-drop"), metric: metric,
      roundSteps: try a.option("--round-steps").map { try int($0, "--round-steps", atLeast: 1) } ?? 200, order: order,
      holdout: holdout, lambdaCap: try a.option("--lambda-cap").map { try double($0, "--lambda-cap") },
      overrides: a.overrides)
    let dir = a.option("-o") ?? (URL(fileURLWithPath: input).deletingLastPathComponent().path + "/compress")
    let search = try Compression(
      input: input, dir: dir, options: options, resume: a.flags.contains("--resume"),
      overwrite: a.flags.contains("--overwrite"))
    let flag = InterruptFlag.shared
    flag.install()
    let printer = ProgressPrinter()
    let unitWord = metric == .accuracy ? "points" : "% perplexity"
    let name = metric == .accuracy ? "accuracy" : "perplexity"
    let decimals = metric == .accuracy ? 2 : 3
    func value(_ v: MetricValue) -> String { String(format: "%.\(decimals)f ± %.\(decimals)f", v.value, v.error) }
    Out.err(
      "compress \(input) → \(dir): \(order.rawValue) order, at most \(Compression.g(options.maxDrop)) \(unitWord) "
        + "worse on \(holdout) held-out training examples, \(options.roundSteps) steps per fine-tune stage")
    // One accuracy on n examples carries a binomial standard error up to 50/√n points: a
    // budget below about twice that is decided by noise.
    // (--max-drop 0, no loss at all, is a choice of its own: no note.)
    let noise = 50 / Double(holdout).squareRoot()
    if metric == .accuracy && options.maxDrop > 0 && 2 * noise > options.maxDrop {
      let needed = (100 / options.maxDrop) * (100 / options.maxDrop)  // examples for ±maxDrop/2
      let remedy =
        needed <= 1e6
        ? "about \(Int(needed.rounded(.up))) held-out examples (--holdout, if the training split has them)"
        : "far more held-out examples than a training split has"
      Out.err(
        "  note  an accuracy on \(holdout) examples is uncertain by up to ±\(String(format: "%.1f", noise)) points, "
          + "more than half the \(Compression.g(options.maxDrop))-point budget: decisions will follow noise; "
          + "\(remedy) or a larger --max-drop would make it ±\(Compression.g(options.maxDrop / 2))")
    }
    do {
      let state = try search.run(
        events: { event in
          switch event {
          case .resumed(let rounds): printer.line("resuming after round \(rounds)")
          case .measured(let r):
            printer.finish()
            let what = r.unitName.map { "round \(r.round): \($0) collapsed" } ?? "round 0 (the checkpoint)"
            printer.line(
              "\(what): held-out \(name) \(value(r.holdout))"
                + (r.round > 0 ? String(format: " (drop %.\(decimals)f)", r.drop) : "")
                + ", eval \(value(r.eval)), \(Format.count(r.parameters)) parameters, "
                + String(format: "%.2f ms", r.latencyMilliseconds) + (r.admissible ? "" : " — over the limit"))
          case .chose(let round, _, let unitName, let costs):
            let listed = costs.map { String(format: "%d: %.\(decimals)f", $0.unit, $0.cost) }.joined(separator: ", ")
            printer.line(
              "round \(round): \(unitName)" + (costs.isEmpty ? "" : " (zero-shot cost per unit: \(listed))"))
          case .fineTuning(let round, _, let stage, let lambda, let alpha):
            printer.line(
              "round \(round), stage \(stage): fine-tune with λ \(Compression.g(lambda))"
                + (alpha.map { String(format: " from α %.4f", $0) } ?? ""))
          case .training(let t):
            if case .started = t { return }
            if case .saved = t { return }
            printer.handle(t)
          case .stopped(let reason): printer.line("stopped: \(reason)")
          }
        }, shouldStop: { flag.isRaised })
      printer.finish()
      Out.print(CompressDocument(state: state).table.markdown)
      if let best = state.best {
        Out.print("saved \(search.compressedPath) (round \(best)); table \(dir)/compress.md, plot \(dir)/compress.svg")
      }
    } catch {
      printer.finish()
      throw error
    }
  }

  // MARK: collapse

  static func collapse(_ a: Arguments) throws {
    let input = a.positionals[0]
    let probeCount = try a.option("--probe").map { try int($0, "--probe", atLeast: 0) } ?? 64
    let ckpt = try Checkpoint.load(input)
    let storedSettings = try? storedRunSettings(ckpt, input, overrides: []).settings
    let threshold =
      try a.option("--threshold").map { try double($0, "--threshold") }
      ?? Double(storedSettings?.lc.threshold ?? 0.05)
    guard threshold > 0 && threshold < 1 else {
      throw LCError.usage(
        ErrorDetail(
          what: "--threshold out of range", location: "layercollapse collapse", expected: "0 < T < 1 (the paper: 0.05)",
          got: "\(threshold)",
          hint: threshold <= 0
            ? "No α is closer to 1 than 0: nothing would merge. 0.05 merges units the fine-tune made almost linear"
            : "|α − 1| < 1 would merge even a ReLU (α = 0); --force merges units whatever their α, labelled approximate"
        ))
    }
    var force: Set<Int> = []
    if let f = a.option("--force") {
      guard f.contains(where: \.isNumber) else {
        throw LCError.usage(
          ErrorDetail(
            what: "--force names no unit", location: "layercollapse collapse --force", expected: "units, e.g. 2,3",
            got: "`\(f)`"))
      }
      for part in f.split(separator: ",") {
        let b = try int(String(part), "--force")
        guard b >= 0 && b < ckpt.model.architecture.unitCount else {
          throw LCError.usage(
            ErrorDetail(
              what: "--force names a unit the model does not have", location: "layercollapse collapse",
              expected: "0…\(ckpt.model.architecture.unitCount - 1)", got: "\(b)"))
        }
        force.insert(b)
      }
    }
    let output =
      a.option("-o")
      ?? (URL(fileURLWithPath: input).deletingLastPathComponent().path + "/" + CheckpointFiles.defaultCollapsed)
    let overwrite = a.flags.contains("--overwrite")
    try checkCheckpointOutput(output, command: "collapse", overwrite: overwrite)
    // The per-unit record goes beside it: it may replace an earlier one, not another file
    // (`-o run/eval.h5` would write over the run's eval.json).
    let json = CheckpointFiles.collapseRecord(output)
    if FileManager.default.fileExists(atPath: json) && !CollapseRecord.isRecord(json) && !overwrite {
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "refusing to replace an existing file", location: "layercollapse collapse -o \(output)",
          got: "\(json), where the collapse record goes, holds something else",
          hint: "Choose another -o, or add --overwrite to replace it"))
    }
    // An earlier collapse is replaced without --overwrite only when it was of the same
    // checkpoint: the default name (collapsed.h5 beside the input) is shared by every
    // checkpoint of a directory, and an import's .h5 is no collapse at all.
    if !overwrite && FileManager.default.fileExists(atPath: output) {
      let earlier = try? CollapseRecord.read(json)
      // Records store the input's absolute path; an older one's relative path meant the
      // directory it ran in, unknown now: its file name is all that compares.
      func same(_ recorded: String, _ given: String) -> Bool {
        let (x, y) = (Paths.absolute(recorded), Paths.absolute(given))
        return recorded.hasPrefix("/") ? x == y : (x as NSString).lastPathComponent == (y as NSString).lastPathComponent
      }
      if earlier.map({ !same($0.input, input) }) ?? true {
        throw LCError.cannotCreate(
          ErrorDetail(
            what: "refusing to replace an existing checkpoint", location: "layercollapse collapse -o \(output)",
            got: earlier.map { "a collapse of \($0.input)" } ?? "a checkpoint that no collapse wrote",
            hint: "Choose another -o, or add --overwrite to replace it"))
      }
    }
    var probe: Batch? = nil
    var probeNote = "no probe batch"
    if probeCount > 0 {
      do {
        guard let s = storedSettings else {
          throw LCError.other(ErrorDetail(what: "stored config unreadable", location: input))
        }
        let data = try ckpt.loadData(s.data)
        probe = try data.evalBatches(batchSize: probeCount).first
        probeNote = "probe: \(probe?.examples ?? 0) evaluation examples"
      } catch let e as LCError {
        probeNote = "no probe batch (\(e.details.first?.what ?? "data unavailable"))"
      }
    }
    // --fit N: the forced units are replaced by their least-squares linear fit on the first
    // N training examples (unaugmented), the training-free baseline, not by W2·W1.
    var fitted: [Int: AffineMap] = [:]
    if let n = try a.option("--fit").map({ try int($0, "--fit", atLeast: 1) }) {
      guard !force.isEmpty else {
        throw LCError.usage(
          ErrorDetail(
            what: "--fit replaces forced units: name them with --force", location: "layercollapse collapse --fit",
            hint: "layercollapse collapse CKPT --force 2,3 --fit 512"))
      }
      guard let s = storedSettings else {
        throw LCError.badConfig([
          ErrorDetail(what: "--fit needs the run's data, and the stored config is unreadable", location: input)
        ])
      }
      let data = try ckpt.loadData(s.data)
      let batches = try data.trainEvalBatches(batchSize: min(n, 64), limit: n).map(\.input)
      fitted = try LinearFit.fit(ckpt.model, units: force.sorted(), batches: batches, location: input)
      probeNote += "; fitted on \(min(n, data.trainCount)) training examples"
    }
    let (merged, report) = Collapse.run(
      ckpt.model, options: CollapseOptions(threshold: Float(threshold), force: force), probe: probe?.input,
      fitted: fitted)
    printCollapse(report, model: ckpt.model, input: input, note: probeNote)
    let replacing = FileManager.default.fileExists(atPath: output)
    try Checkpoint(model: merged, configText: ckpt.configText, vocabulary: ckpt.vocabulary).save(to: output)
    try CollapseRecord(
      input: Paths.absolute(input), output: output, report: report
    ).write(to: json)
    Out.print("saved \(output) and \(json)")
    if replacing { try removeRecords(describing: output) }
  }

  static func printCollapse(_ r: CollapseReport, model: any Model, input: String, note: String) {
    let arch = model.architecture
    Out.print("collapse with threshold |α − 1| < \(r.threshold); \(note)")
    Out.print("")
    var table = MarkdownTable(
      header: ["unit", "activation", "α", "|α−1|", "decision", "params before → after", "max rel. dev."],
      alignments: [.left, .left, .right, .right, .left, .right, .right])
    for b in r.blocks {
      table.append([
        arch.unitName(b.block), arch.collapsed[b.block] ? "linear" : arch.activations[b.block].rawValue,
        b.alpha.map { String(format: "%.4f", $0) } ?? "—", b.distance.map { String(format: "%.4f", $0) } ?? "—",
        b.decision.explanation, "\(Format.count(b.parametersBefore)) → \(Format.count(b.parametersAfter))",
        b.maxRelativeDeviation.map { String(format: "%.2e", $0) } ?? "—",
      ])
    }
    Out.print(table.markdown)
    Out.print("")
    Out.print(
      "model: \(Format.count(r.parametersBefore)) → \(Format.count(r.parametersAfter)) parameters "
        + "(\(Format.percentChange(r.parametersBefore, r.parametersAfter))), MACs/example \(Format.large(r.macsBefore)) → "
        + "\(Format.large(r.macsAfter)) (\(Format.percentChange(r.macsBefore, r.macsAfter)))")
    if let d = r.logitDeviation {
      Out.print(String(format: "logits: max relative deviation %.2e on the probe batch", d))
    }
    if r.approximate {
      Out.print(
        "note: merged units marked approximate were not linear (forced, fitted, or |α − 1| ≥ "
          + "\(CollapseOptions.paperThreshold), the paper's threshold); the collapsed model only APPROXIMATES the original"
      )
    }
    let open = (0..<arch.unitCount).filter { !arch.collapsed[$0] }
    if r.collapsedCount == 0 && open.isEmpty {
      Out.print("note: every unit was collapsed already: the output is the same model")
    } else if r.collapsedCount == 0 {
      let prelu = open.contains { arch.activations[$0] == .prelu }
      let pulled = prelu ? "none has |α − 1| < \(r.threshold)" : "it has no PReLU units, so nothing to collapse yet"
      let next =
        prelu
        ? "A LayerCollapse fine-tune pulls α to 1 (more steps or a larger lc.lambda; lc.mode: decoupled pulls hardest)"
        : "First a LayerCollapse fine-tune from it: train a config with train.init_from=\(input), lc.blocks (how many "
          + "blocks from the output end get a PReLU) and lc.lambda > 0 (the pull to linear), as "
          + "configs/sst2-minilm-lc.yaml does (README: Pretrained models)"
      Out.print(
        "note: no unit merged (\(pulled)): the output is the same model. \(next); --force merges units regardless, "
          + "labelled approximate")
    }
  }

  // MARK: eval

  static func eval(_ a: Arguments) throws {
    let path = a.positionals[0]
    let ckpt = try Checkpoint.load(path)
    let (settings, overridden) = try storedRunSettings(ckpt, path, overrides: a.overrides)
    let split = a.option("--split") ?? "eval"
    guard split == "eval" || split == "train" else {
      throw LCError.usage(
        ErrorDetail(
          what: "unknown split", location: "layercollapse eval --split", expected: "eval or train", got: split))
    }
    if let out = a.option("-o") {
      // Before the evaluation: its directory made, and no file of the user's replaced.
      try AtomicFile.prepare(out)
      if FileManager.default.fileExists(atPath: out) {
        guard let earlier = try? EvalRecord.read(out) else {
          throw LCError.cannotCreate(
            ErrorDetail(
              what: "would replace a file that is not an evaluation record", location: out,
              hint: "Remove it, or name another file with -o"))
        }
        // A run's eval.json or best.eval.json is what `report` shows for that checkpoint:
        // another checkpoint's evaluation does not take its place.
        guard earlier.describes(checkpointNamed: (path as NSString).lastPathComponent) else {
          throw LCError.cannotCreate(
            ErrorDetail(
              what: "would replace the evaluation record of another checkpoint", location: out,
              expected: "a record of \((path as NSString).lastPathComponent)",
              got: "the record of \(earlier.checkpoint)",
              hint: "Name another file with -o (without -o, \(CheckpointFiles.evalRecord(path)))"))
        }
      }
    }
    let data = try ckpt.loadData(settings.data)
    let batches =
      split == "eval"
      ? try data.evalBatches(batchSize: settings.train.evalBatchSize)
      : try data.trainEvalBatches(batchSize: settings.train.evalBatchSize, limit: Int.max)
    let metrics = Evaluator.evaluate(ckpt.model, batches: batches)
    let singles = Array(try data.evalBatches(batchSize: 1).prefix(33))
    let latency = Evaluator.latencyMilliseconds(ckpt.model, singles: singles)
    let arch = ckpt.model.architecture
    Out.print(
      "\(path) on \(split) split of \(settings.data.task.rawValue) (\(settings.data.resolvedPath)): \(Format.metrics(metrics))"
    )
    Out.print(
      "parameters \(Format.count(arch.parameterCount)), MACs/example \(Format.large(arch.macsPerExample())), "
        + String(
          format: "%.0f examples/s at batch %d, %.2f ms at batch 1", metrics.examplesPerSecond,
          min(settings.train.evalBatchSize, metrics.examples), latency ?? .nan))
    // The default file is what `report` reads as the checkpoint's evaluation: only an
    // evaluation of its whole eval split goes there. The train split, or an eval_limit
    // other than the run's, get names of their own (X.train.eval.json, X.limit64.eval.json).
    var variants: [String] = split == "train" ? ["train"] : []
    // Limits compared as they decode (`64.0` is 64; an imported checkpoint stores no key),
    // with the run's own settings read once, and only when a limit or the data was overridden.
    if overridden.contains("data.eval_limit") || overridden.contains("data.train_limit")
      || overridden.contains("data.path")
    {
      let stored = try storedRunSettings(ckpt, path, overrides: []).settings.data
      // Other data (not the same data under a moved data.root): a record named for it, so
      // that the checkpoint's own record, which `report` shows, stays the run's data's.
      let measured = Paths.absolute(settings.data.resolvedPath)
      var storedHere = stored  // the run's data.path under this evaluation's data.root
      storedHere.root = settings.data.root
      if overridden.contains("data.path") && measured != Paths.absolute(storedHere.resolvedPath) {
        let name = URL(fileURLWithPath: settings.data.path).deletingPathExtension().lastPathComponent
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let base = "data-" + (safe.isEmpty ? "other" : safe)
        // Another file of the same name (a/valid.txt, b/valid.txt) gets its own record.
        var variant = base
        var k = 2
        while let earlier = try? EvalRecord.read(CheckpointFiles.evalRecord(path, variants: variants + [variant])),
          let data = earlier.data, Paths.absolute(data) != measured
        {
          variant = base + "-\(k)"
          k += 1
        }
        variants.append(variant)
      }
      // An eval_limit counts as the examples it keeps: one at or above the split's size
      // keeps them all (the same record as no limit), and the record is named for what it
      // measured. (The train split's limit applies before data.holdout: compared as given.)
      if split == "eval" && overridden.contains("data.eval_limit") && settings.data.evalLimit != stored.evalLimit {
        let asked = settings.data.evalLimit
        var whole = settings.data
        whole.evalLimit = nil
        // A limit above what was measured cut nothing: that was the whole split.
        let size = (asked.map { $0 > metrics.examples } ?? true) ? metrics.examples : try ckpt.loadData(whole).evalCount
        func effective(_ limit: Int?) -> Int? { limit.flatMap { $0 >= size ? nil : $0 } }
        let measured = effective(asked)
        if let l = asked, measured == nil {
          Out.err(
            "note: data.eval_limit=\(l) is at or above the eval split's \(size) \(data.countUnits.eval): all of them "
              + "were evaluated")
        }
        if measured != effective(stored.evalLimit) { variants.append("limit\(measured ?? size)") }
      }
      // The train split read with another data.train_limit than the run's: a record of its own.
      if split == "train" && overridden.contains("data.train_limit") && settings.data.trainLimit != stored.trainLimit {
        variants.append("trainlimit\(settings.data.trainLimit ?? 0)")
      }
    }
    let out = a.option("-o") ?? CheckpointFiles.evalRecord(path, variants: variants)
    try EvalRecord(
      checkpoint: path, architecture: arch, metrics: metrics, step: ckpt.progress?.globalStep,
      latencyMilliseconds: latency, data: settings.data.resolvedPath
    ).write(to: out)
    Out.print("wrote \(out)")
  }

  /// The keys `eval` overrides may set: where the data is and how much of it is read.
  /// Anything else (sizes, tokenization, the task) would contradict the trained model.
  static let evalOverridable = [
    "data.root", "data.path", "data.eval_limit", "data.train_limit", "data.bucket_by_length", "train.eval_batch_size",
  ]

  /// The run settings stored in a checkpoint, with `key=value` overrides applied, and the
  /// keys the overrides named.
  static func storedRunSettings(
    _ c: Checkpoint, _ path: String, overrides: [String]
  ) throws -> (settings: RunSettings, overridden: Set<String>) {
    var tree = try ConfigTree.parse(c.configText, file: path + ":/meta/config")
    let parsed = try ConfigOverride.parse(overrides)
    let refused = parsed.filter { !evalOverridable.contains($0.key) }
    if !refused.isEmpty {
      // A key this config does not have, close to one eval takes, is a typo
      // (`data.eval_limt`), not a setting fixed by training.
      let known = Set(RunSettings.settingKeys(of: tree))
      throw LCError.badConfig(
        refused.map {
          if !known.contains($0.key), let near = DidYouMean.suggestion(for: $0.key, among: evalOverridable) {
            return ErrorDetail(
              what: "unknown key \($0.key)", location: "override `\($0.text)`",
              expected: "one of " + evalOverridable.joined(separator: ", "), hint: "Did you mean `\(near)`?")
          }
          return ErrorDetail(
            what: "\($0.key) cannot change after training: the checkpoint's model was built with "
              + "\(tree.value($0.key).map { "\($0)" } ?? "its default")",
            location: "override `\($0.text)`", expected: "one of " + evalOverridable.joined(separator: ", "),
            hint: "To use another \($0.key), train a model with it")
        })
    }
    let applied = try tree.apply(parsed)
    for o in applied { Out.err("override \(o)") }
    return (try RunSettings.decode(tree).settings, Set(applied.map(\.key)))
  }

  // MARK: inspect

  // MARK: import

  static func importModel(_ a: Arguments) throws {
    guard let out = a.option("-o") else {
      throw LCError.usage(
        ErrorDetail(
          what: "import needs an output checkpoint", location: "layercollapse import", expected: "-o MODEL.h5",
          hint: "layercollapse import HF_MODEL_DIR -o MODEL.h5"))
    }
    try checkCheckpointOutput(out, command: "import", overwrite: a.flags.contains("--overwrite"))
    let source = a.positionals[0]
    let classes = try a.option("--classes").map { try int($0, "--classes", atLeast: 2, atMost: 1 << 20) }
    let (model, report) = try HuggingFaceImport.load(directory: source, classes: classes)
    let kind = model.config.kind
    let task =
      try a.option("--task").map { name in
        let fitting = HuggingFaceImport.tasks(kind)
        guard let t = DataTaskKind(rawValue: name) else {
          throw LCError.usage(
            ErrorDetail(
              what: "unknown task", location: "layercollapse import --task",
              expected: DataTaskKind.allCases.map(\.rawValue).joined(separator: ", "), got: name))
        }
        guard fitting.contains(t) else {
          throw LCError.usage(
            ErrorDetail(
              what: "the imported \(kind.rawValue) model cannot read \(name)", location: "layercollapse import --task",
              expected: fitting.map(\.rawValue).joined(separator: ", "), got: name))
        }
        return t
      } ?? HuggingFaceImport.defaultTask(kind)
    let config = HuggingFaceImport.storedConfig(model.config, task: task, report: report, source: source)
    let replacing = FileManager.default.fileExists(atPath: out)
    try Checkpoint(model: model, configText: config, vocabulary: report.vocabulary).save(to: out)
    if replacing { try removeRecords(describing: out) }
    let arch = model.architecture
    Out.print(
      "\(source): \(report.modelType), \(report.tensors) tensors → \(out) (\(arch.config.kind.rawValue), "
        + "\(arch.config.sizeDescription), \(Format.count(arch.parameterCount)) parameters)")
    if !report.ignored.isEmpty {
      Out.print(
        "  skipped: \(report.ignored.count) tensors the model has no use for (\(report.ignored[0]), …: buffers, or "
          + "a pooler a ViT classifier does not read)")
    }
    if report.vocabulary == nil && !ModelRegistry.family(kind).fits(kind, task: .cifar10) {
      let fastOnly = FileManager.default.fileExists(atPath: source + "/tokenizer.json")
      Out.print(
        "  note: no tokenizer files beside config.json (vocab.txt; vocab.json and merges.txt)"
          + (fastOnly
            ? ", only tokenizer.json, which import does not read (transformers writes the others too with "
              + "tokenizer.save_pretrained(DIR, legacy_format=True))"
            : "")
          + ": the data would be tokenized by a vocabulary of its own, whose ids mean nothing to this model")
    }
    if let p = report.paddedVocabulary {
      Out.print(
        "  note: the embedding has \(Format.count(p.rows)) rows, the tokenizer \(Format.count(p.tokens)) ids: the "
          + "other \(Format.count(p.rows - p.tokens)) rows (padding) are kept, and no text produces them")
    }
    if let r = report.replacedClassifier {
      Out.print(
        "  the source's classifier of \(r) classes replaced by a new head of \(arch.config.classes) (--classes)")
    } else if let n = report.newClassifier {
      Out.print("  the source has no classifier: a new head of \(n) classes (--classes)")
    }
    if report.defaultNormalization {
      Out.print(
        "  note: no preprocessor_config.json beside config.json: images are normalized with mean 0.5, std 0.5 "
          + "(transformers' ViT default); put the model's own file there if it was trained with others")
    }
    if !report.otherHeads.isEmpty {
      Out.print(
        "  the source's other heads, \(report.otherHeads.count) tensors (\(report.otherHeads[0]), …), left out: a "
          + "classifier has no use for them")
    }
    if report.newPooler {
      Out.print("  the source has no pooler (a BertModel without one, or a masked-LM checkpoint): a new pooler")
    }
    if report.newClassifier != nil {
      Out.print(
        "  note: the new \(report.newPooler ? "pooler and head are" : "head is") untrained (weights drawn "
          + "N(0, 0.02)): fine-tune before judging accuracy (train.init_from, README: Pretrained models)")
    }
    if let n = task.fixedClasses, n != arch.config.classes {
      Out.print(
        "  note: \(task.rawValue) has \(n) classes, the model \(arch.config.classes): train and eval on it need "
          + "a head of \(n) (import again with --classes \(n))")
    } else if task == .sst2 && arch.config.classes != 2 {
      // sst2 reads any sentence TSV (data.path); SST-2 itself, the default, has 2 labels.
      Out.print(
        "  note: SST-2 (the sst2 task's default data) has 2 classes, the model \(arch.config.classes): right for "
          + "a TSV of \(arch.config.classes) labels (data.path); for SST-2, import again with --classes 2")
    }
  }

  // MARK: export

  static func export(_ a: Arguments) throws {
    guard let dir = a.option("-o") else {
      throw LCError.usage(
        ErrorDetail(
          what: "export needs an output directory", location: "layercollapse export", expected: "-o DIR",
          hint: "layercollapse export CHECKPOINT.h5 -o DIR"))
    }
    let c = try Checkpoint.load(a.positionals[0])
    let format = (a.option("--format") ?? "layercollapse").lowercased()
    guard format == "layercollapse" || format == "hf" else {
      throw LCError.usage(
        ErrorDetail(
          what: "unknown export format", location: "layercollapse export --format", expected: "layercollapse or hf",
          got: format))
    }
    try ModelExport.checkDestination(dir, overwrite: a.flags.contains("--overwrite"))
    // An image checkpoint written before the normalization was stored with the model (an
    // older import's or a run's with data.mean/std) still has it in its stored config.
    var vocabulary = c.vocabulary
    if vocabulary == nil,
      let n = (try? storedRunSettings(c, a.positionals[0], overrides: []))?.settings.data.normalization
    {
      vocabulary = .imageNormalization(n)
    }
    let written: [String]
    switch format {
    case "layercollapse":
      written = try ModelExport.write(c.model, vocabulary: vocabulary, to: dir)
    default:
      written = try HuggingFaceExport.write(c.model, vocabulary: vocabulary, to: dir, source: a.positionals[0])
    }
    for path in written { Out.print("wrote \(path)") }
    if format == "layercollapse", let loader = Self.loaderScript() {
      Out.print("as a torch.nn.Module: python \(loader) \(dir)")
    }
    if c.model.architecture.hasApproximateMerges {
      let units = (0..<c.model.architecture.unitCount).filter { c.model.architecture.approximate[$0] }
      Out.print(
        "note: \(units.map { c.model.architecture.unitName($0) }.joined(separator: ", ")) merged approximately "
          + "(config.json: architecture.approximate): the model only approximates the one it came from")
    }
    if format == "hf", case .corpus(let corpus)? = vocabulary, corpus.bpe == nil {
      Out.print(
        "note: the model's \(corpus.kind.rawValue) vocabulary has no transformers tokenizer: none was written "
          + "(the layercollapse format's config.json lists it, and scripts/load_exported.py reads it)")
    }
    for path in try ModelExport.removeStaleTokenizerFiles(
      in: dir, written: written, overwrite: a.flags.contains("--overwrite"))
    {
      Out.print("removed \(path) (another model's file: this model has none)")
    }
  }

  /// scripts/load_exported.py where this binary can find it: installed beside it
  /// (`make install`: PREFIX/share/layercollapse) or in the checkout it was built in.
  static func loaderScript() -> String? {
    guard let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() else { return nil }
    let bin = executable.deletingLastPathComponent()
    let candidates = [
      bin.deletingLastPathComponent().appendingPathComponent("share/layercollapse/load_exported.py"),
      // .build/<triple>/release/layercollapse in a checkout
      bin.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/load_exported.py"),
    ]
    return candidates.map(\.path).first { FileManager.default.fileExists(atPath: $0) }
  }

  static func inspect(_ a: Arguments) throws {
    let path = a.positionals[0]
    let c = try Checkpoint.load(path)
    let arch = c.model.architecture
    let cfg = arch.config
    Out.print("\(path)")
    // A sequence length means something to a model of tokens or patches, not to a VGG's one row.
    let sequence = cfg.sequenceLength > 1 ? "sequence \(cfg.sequenceLength), " : ""
    Out.print("  model        \(cfg.kind.rawValue): \(cfg.sizeDescription), \(sequence)outputs \(cfg.outputs)")
    Out.print(
      "  parameters   \(Format.count(arch.parameterCount)); MACs/example \(Format.large(arch.macsPerExample()))")
    let names = (0..<arch.unitCount).map { arch.unitName($0) }
    let width = names.map(\.count).max() ?? 0
    for i in 0..<arch.unitCount {
      var what =
        !arch.collapsed[i]
        ? arch.activations[i].rawValue
        : arch.approximate[i] ? "collapsed (a single linear, merged approximately)" : "collapsed (a single linear)"
      if let a = c.model.alphaParameter(unit: i) {
        what += String(format: ", α = %.5f, |α−1| = %.5f", a.value[0], abs(a.value[0] - 1))
      }
      Out.print("  unit \(i)  \(names[i].padding(toLength: width, withPad: " ", startingAt: 0))  \(what)")
    }
    if arch.hasApproximateMerges {
      Out.print(
        "  note: units merged approximately were not linear when collapsed (forced, a least-squares fit, or "
          + "|α − 1| ≥ \(CollapseOptions.paperThreshold)): this model only approximates the one it came from")
    }
    switch c.vocabulary {
    case .words(let t)?: Out.print("  vocabulary   \(t.count) word tokens")
    case .wordPiece(let w)?:
      Out.print("  vocabulary   \(w.count) WordPiece tokens\(w.lowercase ? ", lowercased" : ", cased")")
    case .corpus(let v)?: Out.print("  vocabulary   \(v.count) \(v.kind.rawValue) symbols")
    case .imageNormalization(let s)?:
      let f = { (v: [Float]) in v.map { String(format: "%.4f", $0) }.joined(separator: ", ") }
      Out.print("  images       normalized with mean (\(f(s.mean))), std (\(f(s.std)))")
    case nil: break
    }
    if let p = c.progress {
      // `epoch` is where the next step falls (after an epoch's last step, the next one):
      // that many epochs are complete, whether the run stopped or finished.
      let epochs = p.epoch == 1 ? "1 full epoch" : "\(p.epoch) full epochs"
      var s = "  training     step \(p.globalStep) (\(epochs)), \(Format.duration(p.elapsedSeconds)) trained"
      if let b = p.bestScore, let at = p.bestStep {
        let languageModel = c.model.family.predictsEveryPosition(cfg.kind)
        s += ", best \(Format.bestScore(b, languageModel: languageModel)) at step \(at)"
      }
      Out.print(s)
    } else {
      Out.print("  training     no optimizer state (not resumable)")
    }
    Out.print("")
    Out.print("| parameter | shape | count |")
    Out.print("|:--|:--|--:|")
    for p in c.model.parameters.all {
      Out.print("| \(p.name) | \(p.shape.map(String.init).joined(separator: "×")) | \(Format.count(p.value.count)) |")
    }
    if a.flags.contains("--config") {
      Out.print("")
      Out.print(c.configText)
    }
  }

  // MARK: validate

  static func validate(_ a: Arguments) throws {
    var tree = try ConfigTree.load(path: a.positionals[0], pipes: true)
    let applied = try tree.apply(try ConfigOverride.parse(a.overrides))
    for o in applied { Out.err("override \(o)") }
    let points = try tree.expandSweep(settingKeys: RunSettings.settingKeys(of: tree))
    try ConfigTree.checkNotSwept(applied, points: points)
    for point in points {
      let pointTree = try point.runTree()
      let (settings, resolved) = try RunSettings.decode(pointTree)
      // What train would meet next: the files the config names.
      func location(_ key: String) -> String { pointTree.entry(key)?.location.description ?? key }
      var missing: [ErrorDetail] = []
      let fm = FileManager.default
      if !fm.fileExists(atPath: settings.data.resolvedPath) {
        let key = pointTree.entry("data.path") != nil ? "data.path" : "data.root"
        missing.append(
          ErrorDetail(
            what: "the data is not there", location: location(key), expected: "an existing file or directory",
            got: settings.data.resolvedPath, hint: "Set data.root or LAYERCOLLAPSE_DATA (datasets/README.md)"))
      }
      for (key, path) in [
        ("train.init_from", settings.train.initFrom), ("train.distill_from", settings.train.distillFrom),
      ]
      where !path.isEmpty && !fm.fileExists(atPath: path) {
        missing.append(
          ErrorDetail(what: "\(key) names no file", location: location(key), expected: "a checkpoint", got: path))
      }
      // Missing input, as train exits for the same files (66), every one listed.
      if !missing.isEmpty { throw missing.count == 1 ? LCError.missingInput(missing[0]) : .missingInputs(missing) }
      // Checkpoints to start from or distill: read, and the model built against them with
      // the data, as train does before its first step (sizes, activations, heads,
      // tokenizer level must match).
      if !settings.train.initFrom.isEmpty || !settings.train.distillFrom.isEmpty {
        let start =
          settings.train.initFrom.isEmpty
          ? nil : try TrainingRun.loadCheckpoint(named: "train.init_from", settings.train.initFrom)
        let prepared = try TrainingRun.prepare(settings, start: start, resume: false, location: settings.train.initFrom)
        if !settings.train.distillFrom.isEmpty {
          _ = try TrainingRun.teacher(settings, student: prepared.model, vocabulary: prepared.vocabulary)
        }
      }
      if !point.name.isEmpty { Out.print("# sweep point \(point.name)") }
      Out.print(resolved.serialized())
    }
  }

  // MARK: generate

  static func generate(_ a: Arguments) throws {
    let path = a.positionals[0]
    guard let prompt = a.option("--prompt") else {
      throw LCError.usage(
        ErrorDetail(
          what: "missing --prompt", location: "layercollapse generate", hint: "Run `layercollapse generate --help`"))
    }
    let count = try a.option("--tokens").map { try int($0, "--tokens") } ?? 200
    let temperature = try a.option("--temperature").map { try double($0, "--temperature") } ?? 0.8
    let topK = try a.option("--top-k").map { try int($0, "--top-k") } ?? 40
    let seed = try a.option("--seed").map { try int($0, "--seed", atMost: .max) } ?? 1  // not a count
    // Below 0.001 the draw is the most likely token anyway, and a temperature that rounds
    // to 0 in float32 would divide by it.
    guard temperature >= 0.001, temperature.isFinite, count >= 0, topK >= 0, seed >= 0 else {
      throw LCError.usage(
        ErrorDetail(
          what: "bad sampling settings", location: "layercollapse generate",
          expected: "a finite --temperature ≥ 0.001, --tokens ≥ 0, --top-k ≥ 0, --seed ≥ 0",
          got: "temperature \(temperature), tokens \(count), top-k \(topK), seed \(seed)",
          hint: temperature < 0.001 && temperature >= 0
            ? "For greedy decoding (the most likely token each step) use --top-k 1" : ""))
    }
    let c = try Checkpoint.load(path)
    // Generation is the transformer's (`Transformer.generate`), for a language model.
    guard let gpt = c.model as? Transformer, c.model.family.predictsEveryPosition(c.model.config.kind) else {
      throw LCError.usage(
        ErrorDetail(
          what: "generate needs a gpt checkpoint", location: path, expected: "model kind gpt",
          got: c.model.config.kind.rawValue))
    }
    guard case .corpus(let vocab)? = c.vocabulary else {
      throw LCError.badData(
        ErrorDetail(
          what: "the checkpoint stores no vocabulary to turn text into tokens and back", location: path,
          expected: "a corpus vocabulary (characters, bytes, or an imported GPT-2's BPE)",
          hint: "Import GPT-2 with its vocab.json and merges.txt beside config.json, or fine-tune it on a corpus"))
    }
    var ids = try vocab.encode(prompt, file: "--prompt")
    // No prompt: GPT-2 starts from its <|endoftext|>, as transformers' unconditional
    // generation does; a vocabulary without one has nothing to start from.
    if ids.isEmpty, let start = vocab.bpe?.vocabulary["<|endoftext|>"] { ids = [start] }
    guard !ids.isEmpty else {
      throw LCError.usage(
        ErrorDetail(
          what: "--prompt is empty", location: "layercollapse generate",
          hint: "This vocabulary has no <|endoftext|> to start from: give a prompt"))
    }
    var rng = RNG(seed: UInt64(seed), stream: "generate")
    // The text streams out as it is drawn: the prompt, then each token's text once it is
    // whole (a byte-level token can end inside a UTF-8 character: held until the next
    // ones complete it, up to 8 tokens).
    Out.write(prompt)
    var pending: [Int32] = []
    func flush(final: Bool) {
      let text = vocab.decode(pending)
      if !final && pending.count < 8 && text.unicodeScalars.last == "\u{FFFD}" { return }
      Out.write(text)
      pending.removeAll()
    }
    do {
      _ = try gpt.generate(
        prompt: ids, count: count, sampling: SamplingSettings(temperature: Float(temperature), topK: topK), rng: &rng,
        onToken: { token in
          pending.append(token)
          flush(final: false)
        })
    } catch LCError.badData(var d) {
      flush(final: true)
      Out.write("\n")
      d.location = "\(path), generated \(d.location)"
      throw LCError.badData(d)
    }
    flush(final: true)
    Out.write("\n")
  }

  // MARK: report

  static func report(_ a: Arguments) throws {
    let out = a.option("-o") ?? "results"
    let elapsed = try a.option("--elapsed").map { try int($0, "--elapsed") }
    let env = ReportEnvironment(
      blasThreads: BLASThreads.count,
      blasConfiguration: "\(BLASThreads.configuration), kernels \(BLASThreads.coreName)", elapsedSeconds: elapsed)
    try ExperimentReport.checkDestination(out, overwrite: a.flags.contains("--overwrite"))
    // The bands file is read first: a bad one fails before anything is written.
    let bandList = try a.option("--check").map { try ExpectedBands.load($0) }
    let report = try ExperimentReport.build(paths: a.positionals, environment: env)
    // A compress search's rounds are runs of their own; its table is the search's file.
    for path in a.positionals where FileManager.default.fileExists(atPath: path + "/compress.json") {
      Out.err(
        "note: \(path) is a compress search: its table of rounds is \(path)/compress.md (and compress.csv, "
          + "compress.svg); this report shows the fine-tune run of each round")
    }
    let files = try report.write(to: out)
    Out.print("wrote \(out)/results.md and \(files.count - 1) other files")
    guard let bands = a.option("--check"), let bandList else { return }
    let outcomes = ExpectedBands.check(report.results, bands: bandList)
    let failed = outcomes.filter { !$0.passed }
    for o in outcomes {
      let v = o.value.map { String(format: "%.4g", $0) } ?? "missing"
      let near =
        o.suggestion.map { " (no such result; did you mean \($0)?)" } ?? (o.value == nil ? " (no such result)" : "")
      Out.print(
        "\(o.passed ? "ok  " : "FAIL") \(o.key) = \(v)\(near), band [\(o.band.lowerBound), \(o.band.upperBound)]")
    }
    if !failed.isEmpty {
      throw LCError.other(
        ErrorDetail(
          what: "\(failed.count) of \(outcomes.count) results outside their bands: "
            + failed.map { $0.key }.joined(separator: ", "), location: bands,
          hint: "See the lines marked FAIL above; \(out)/results.md and results.csv hold the figures they come from"))
    }
  }

  // MARK: helpers

  /// The value of `option`, one of `T`'s cases by name, or `fallback` when it is not given;
  /// any other value is a usage error listing the cases.
  static func choice<T: RawRepresentable & CaseIterable>(
    _ a: Arguments, _ option: String, location: String, default fallback: T
  ) throws -> T where T.RawValue == String {
    guard let given = a.option(option) else { return fallback }
    guard let value = T(rawValue: given) else {
      throw LCError.usage(
        ErrorDetail(
          what: "unknown \(option.dropFirst(2))", location: location + " " + option,
          expected: T.allCases.map(\.rawValue).joined(separator: " or "), got: given))
    }
    return value
  }

  /// A whole number option within `minimum…maximum`; the default maximum, 2^40, is more
  /// than any count of examples, classes or steps, and keeps sums of such counts in Int.
  static func int(_ s: String, _ option: String, atLeast minimum: Int = .min, atMost maximum: Int = 1 << 40) throws
    -> Int
  {
    guard let v = Int(s) else {
      throw LCError.usage(
        ErrorDetail(what: "\(option) needs a whole number", location: "", got: "\"\(s)\""))
    }
    guard v >= minimum && v <= maximum else {
      let range = minimum == .min ? "≤ \(maximum)" : "\(minimum)…\(maximum)"
      throw LCError.usage(ErrorDetail(what: "\(option) is out of range", location: "", expected: range, got: "\(v)"))
    }
    return v
  }

  static func double(_ s: String, _ option: String) throws -> Double {
    guard let v = Double(s) else {
      throw LCError.usage(ErrorDetail(what: "\(option) needs a number", location: "", got: "\"\(s)\""))
    }
    return v
  }

  /// After a checkpoint at `path` was replaced: its evaluation records describe the model
  /// that was there, and `report` would show them beside the new one's collapse.
  static func removeRecords(describing path: String) throws {
    for file in EvalRecord.filesDescribing(path) {
      try Paths.remove(
        file, what: "the replaced model's record", hint: "Remove it by hand: it describes the model \(path) held before"
      )
      Out.print("removed \(file) (it described the model \(path) held before)")
    }
  }

  /// Checks a checkpoint output (`-o`) before any work: its directory is created, and it may
  /// replace an earlier checkpoint that can be made again (a collapsed or imported model),
  /// but not a run's training checkpoint (its optimizer state would be lost and the run
  /// could not resume) nor a file that is no checkpoint, unless `--overwrite`.
  static func checkCheckpointOutput(_ path: String, command: String, overwrite: Bool) throws {
    let location = "layercollapse \(command) -o \(path)"
    // A name that promises another format (x.safetensors would hold HDF5): before anything is made.
    let ext = (path as NSString).pathExtension.lowercased()
    if ["safetensors", "bin", "pt", "pth", "onnx"].contains(ext) {
      throw LCError.usage(
        ErrorDetail(
          what: "-o names a .\(ext) file, but \(command) writes a layercollapse checkpoint (HDF5)", location: location,
          expected: "a .h5 path",
          hint: ["safetensors", "bin", "pt", "pth"].contains(ext)
            ? "Write the .h5, then `layercollapse export CKPT -o DIR` for safetensors (PyTorch, transformers)" : ""))
    }
    // Its directory is made if missing (a file in the way is named).
    let dir = Paths.parent(path)
    if !dir.isEmpty { try OutputDirectory.create(dir, what: "the directory for \(path)") }
    let other = Paths.notAFile(path)
    if let other, other != .directory {
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "cannot write the checkpoint: not a regular file", location: location, got: "\(other)",
          hint: "-o names the .h5 file to write"))
    }
    if other == nil { try AtomicFile.probeWritable(path) }
    let refused: String
    switch Checkpoint.occupant(of: path) {
    case .nothing, .checkpoint(resumable: false): return
    case .directory:
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "cannot write the checkpoint", location: location, got: "a directory",
          hint: "-o names the .h5 file to write"))
    case .checkpoint(resumable: true):
      refused = "a training checkpoint (it holds a run's optimizer state)"
    case .otherFile: refused = "a file that is not a layercollapse checkpoint"
    }
    guard overwrite else {
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "refusing to replace an existing file", location: location, got: refused,
          hint: "Choose another -o, or add --overwrite to replace it"))
    }
  }
}
