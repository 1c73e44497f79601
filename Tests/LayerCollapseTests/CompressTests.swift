import Foundation
import Kernels
import LayerCollapse
import Testing

extension JSONDecoder {
  /// The project's JSON files use snake_case keys.
  static var snakeCase: JSONDecoder {
    let d = JSONDecoder()
    d.keyDecodingStrategy = .convertFromSnakeCase
    return d
  }
}

/// `compress`: the search's rules (admissibility, greedy choice, λ raise, resume) and its
/// command line. The models are the Workspace's tiny ViT (2 blocks, so 2 units) trained
/// for a few steps: the tests check what the search does with whatever the metric is,
/// never a particular accuracy.
@Suite(.serialized) struct CompressTests {
  /// A workspace with a plain (GELU) ViT trained for 2 epochs at ws.dir/run/last.h5.
  static func trained() throws -> Workspace {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let r = try CLI.run(["train", config, "lc.blocks=0", "lc.lambda=0"])
    #expect(r.code == 0, "\(r.stderr)")
    return ws
  }

  static func options(
    maxDrop: Double = 100, order: CompressOrder = .outputFirst, overrides: [String] = [], cap: Double? = nil
  ) -> CompressOptions {
    CompressOptions(
      maxDrop: maxDrop, metric: .accuracy, roundSteps: 6, order: order, holdout: 24, lambdaCap: cap,
      overrides: ["train.batch_size=8"] + overrides)
  }

  @Test func collapsesEveryUnitWhenTheLimitAllowsAndRecordsWhatItMeasured() throws {
    let ws = try Self.trained()
    let dir = ws.dir + "/c"
    let search = try Compression(
      input: ws.dir + "/run/last.h5", dir: dir, options: Self.options(), resume: false, overwrite: false)
    let state = try search.run(events: { _ in })
    // Output-first: unit 1, then unit 0; each after a fine-tune that brought α within 0.05.
    #expect(state.rounds.map(\.unit) == [nil, 1, 0])
    #expect(state.rounds.map(\.collapsedUnits) == [[], [1], [0, 1]])
    for r in state.rounds.dropFirst() {
      let last = try #require(r.stages.last)
      #expect(abs(last.alpha - 1) < 0.05, "round \(r.round): α \(last.alpha)")
      #expect(r.admissible)
    }
    #expect(state.stopReason == "every collapsible unit is collapsed")
    #expect(state.best == 2)
    let best = try Checkpoint.load(search.compressedPath)
    #expect(best.model.architecture.collapsed == [true, true])
    #expect(state.rounds[2].parameters == best.model.architecture.parameterCount)
    #expect(state.rounds[2].parameters < state.rounds[0].parameters)
    // The recorded held-out accuracy is the saved round checkpoint's, on the held-out
    // examples (the training split's last 24, which the fine-tunes never read).
    let settings = try RunSettings.decode(try ConfigTree.parse(best.configText, file: "stored")).settings
    #expect(settings.data.holdout == 24)
    let (data, _) = try TaskLoader.load(settings.data, vocabulary: best.vocabulary)
    let held = Evaluator.evaluate(best.model, batches: try data.holdoutBatches(batchSize: 7))
    #expect(abs(held.accuracy * 100 - state.rounds[2].holdout.value) < 1e-9)
    #expect(held.examples == 24)
    for file in ["compress.json", "compress.md", "compress.csv", "compress.svg", "round-1/collapsed.h5"] {
      #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "\(file)")
    }
    let csv = try String(contentsOfFile: dir + "/compress.csv", encoding: .utf8)
    #expect(csv.split(separator: "\n").count == 4)  // header + rounds 0, 1, 2
  }

  /// Units whose α is within the threshold already need no fine-tune: each still gets a
  /// round of its own (one unit a round, the other left for the next), and the round's
  /// directory is made although no stage ran in it (it was not, and the save failed, 73).
  @Test func unitsAlreadyWithinTheThresholdTakeARoundEach() throws {
    let ws = try Self.trained()
    let plain = try Checkpoint.load(ws.dir + "/run/last.h5")
    var arch = plain.model.architecture
    arch.activations = [.prelu, .prelu]
    let model = ModelRegistry.build(arch)
    _ = model.copyParameters(from: plain.model.parameters)
    for u in 0..<2 { model.alphaParameter(unit: u)?.value.fill(0.99) }
    try Checkpoint(model: model, configText: plain.configText, vocabulary: plain.vocabulary)
      .save(to: ws.dir + "/near.h5")
    let search = try Compression(
      input: ws.dir + "/near.h5", dir: ws.dir + "/c", options: Self.options(), resume: false, overwrite: false)
    let state = try search.run(events: { _ in })
    #expect(state.rounds.map(\.unit) == [nil, 1, 0])
    #expect(state.rounds.map(\.collapsedUnits) == [[], [1], [0, 1]])
    #expect(state.rounds.dropFirst().allSatisfy { $0.stages.isEmpty })
    let record = try CollapseRecord.read(ws.dir + "/c/round-1/collapsed.json")
    #expect(record.blocks.map(\.decision) == ["kept: not selected", "collapsed"], "\(record.blocks)")
  }

  /// The search works on every family with collapsible units, whatever a unit is: the
  /// Mixer's token and channel MLPs (2 a block), the VGG head's two junctions (ReLU, α = 0
  /// at the start, so the pull has twice as far to go).
  @Test(arguments: ["mixer", "vgg"]) func everyFamilyWithUnitsCompresses(kind: String) throws {
    let ws = try Workspace()
    let config =
      kind == "vgg"
      ? try ws.config("vgg.yaml", VGGCommandTests.config)
      : try ws.config("m.yaml", Workspace.mixer)
    let trained = try CLI.run(["train", config, "lc.blocks=0", "lc.lambda=0", "output.dir=\(ws.dir)/run"])
    try #require(trained.code == 0, "\(trained.stderr)")
    if kind == "vgg" {
      // A VGG checkpoint from before the family's defaults were recorded: its stored config
      // says gelu, its head ran ReLU. The fine-tunes take the architecture's.
      let c = try Checkpoint.load(ws.dir + "/run/last.h5")
      let old = c.configText.replacingOccurrences(of: "activation: relu", with: "activation: gelu")
      try #require(old != c.configText)
      try Checkpoint(model: c.model, configText: old, vocabulary: c.vocabulary).save(to: ws.dir + "/run/last.h5")
    }
    let search = try Compression(
      input: ws.dir + "/run/last.h5", dir: ws.dir + "/c", options: Self.options(), resume: false, overwrite: false)
    let state = try search.run(events: { _ in })
    let units = kind == "vgg" ? 2 : 4
    #expect(state.stopReason == "every collapsible unit is collapsed", "\(state.stopReason ?? "")")
    #expect(state.rounds.count == units + 1 && state.rounds.allSatisfy(\.admissible))
    #expect(state.rounds.map(\.unit) == [nil] + (0..<units).reversed().map { Optional($0) })
    let best = try Checkpoint.load(search.compressedPath)
    #expect(best.model.architecture.collapsed == Array(repeating: true, count: units))
    #expect(state.rounds[units].parameters == best.model.architecture.parameterCount)
    #expect(state.rounds[units].parameters < state.rounds[0].parameters)
  }

  /// With no drop allowed the search stops at the first round that loses anything; every
  /// round is admissible exactly when its drop is within the limit, and compressed.h5 is the
  /// last admissible round.
  @Test func stopsBeforeTheFirstInadmissibleRound() throws {
    let ws = try Self.trained()
    let search = try Compression(
      input: ws.dir + "/run/last.h5", dir: ws.dir + "/c", options: Self.options(maxDrop: 0), resume: false,
      overwrite: false)
    let state = try search.run(events: { _ in })
    for r in state.rounds { #expect(r.admissible == (r.drop <= 0), "round \(r.round): drop \(r.drop)") }
    let firstBad = state.rounds.firstIndex { !$0.admissible }
    if let k = firstBad {
      #expect(k == state.rounds.count - 1, "the search went on after an inadmissible round")
      #expect(state.stopReason?.contains("more than --max-drop 0") == true, "\(state.stopReason ?? "")")
    }
    let best = try #require(state.best)
    #expect(best == (firstBad.map { $0 - 1 } ?? state.rounds.count - 1))
    let saved = try Checkpoint.load(search.compressedPath)
    #expect(saved.model.architecture.collapsed.filter { $0 }.count == state.rounds[best].collapsedUnits.count)
  }

  @Test func greedyTakesTheCheapestZeroShotCollapse() throws {
    let ws = try Self.trained()
    let search = try Compression(
      input: ws.dir + "/run/last.h5", dir: ws.dir + "/g", options: Self.options(order: .greedy), resume: false,
      overwrite: false)
    let state = try search.run(events: { _ in })
    let first = try #require(state.rounds.count > 1 ? state.rounds[1] : nil)
    let costs = try #require(first.candidateCosts)
    #expect(Set(costs.keys) == ["0", "1"])
    let cheapest = costs.values.min()!
    #expect(costs[String(first.unit!)] == cheapest)
    // A tie goes to the unit nearer the output.
    if costs["0"] == costs["1"] { #expect(first.unit == 1) }
  }

  /// A λ too weak to move α is raised ×4 per stage up to the cap; α still short, the
  /// search stops there with the start as compressed.h5. The stop says what would help:
  /// a larger cap for the decoupled pull; in penalty mode, where AdamW moves α by about
  /// the learning rate per step whatever λ is, not the cap.
  @Test(arguments: ["decoupled", "penalty"])
  func raisesLambdaUpToTheCapThenStops(mode: String) throws {
    let ws = try Self.trained()
    let search = try Compression(
      input: ws.dir + "/run/last.h5", dir: ws.dir + "/l-" + mode,
      options: Self.options(overrides: ["lc.lambda=0.001", "lc.mode=" + mode], cap: 0.02),
      resume: false, overwrite: false)
    let state = try search.run(events: { _ in })
    #expect(state.rounds.count == 1)
    #expect(state.pending?.stages.map(\.lambda) == [0.001, 0.004, 0.016, 0.02])
    let reason = state.stopReason ?? ""
    #expect(reason.contains("λ at its cap 0.02"), "\(reason)")
    #expect(reason.contains("--lambda-cap raises it") == (mode == "decoupled"), "\(reason)")
    #expect(reason.contains("lc.mode=decoupled") == (mode == "penalty"), "\(reason)")
    #expect(state.best == 0)
    #expect(try Checkpoint.load(search.compressedPath).model.architecture.collapsed == [false, false])
  }

  /// Stopped in the middle of a fine-tune (as by Ctrl-C) and resumed, the search ends where
  /// an uninterrupted one does, bit for bit.
  @Test func resumesAfterAStopToTheSameResult() throws {
    let ws = try Self.trained()
    let input = ws.dir + "/run/last.h5"
    let whole = try Compression(
      input: input, dir: ws.dir + "/a", options: Self.options(), resume: false, overwrite: false
    )
    .run(events: { _ in })
    do {
      // Dropped at the end of this scope, releasing the directory's lock as a stopped process would.
      var calls = 0
      let stopped = try Compression(
        input: input, dir: ws.dir + "/b", options: Self.options(), resume: false, overwrite: false)
      #expect(throws: LCError.self) {
        try stopped.run(
          events: { _ in },
          shouldStop: {
            calls += 1
            return calls == 9  // inside round 2's fine-tune
          })
      }
      #expect(stopped.state.pending?.round == 2)
    }
    do {
      _ = try Compression(input: input, dir: ws.dir + "/b", options: Self.options(), resume: false, overwrite: false)
      Issue.record("a second search in the same directory was not refused")
    } catch let e as LCError {
      #expect(e.exitCode == 73 && e.details[0].what == "directory already holds a compress search", "\(e)")
    }
    let resumed = try Compression(
      input: input, dir: ws.dir + "/b", options: Self.options(), resume: true, overwrite: false
    )
    .run(events: { _ in })
    #expect(resumed.rounds.count == whole.rounds.count)
    for (a, b) in zip(whole.rounds, resumed.rounds) {
      #expect(
        a.unit == b.unit && a.holdout == b.holdout && a.eval == b.eval && a.stages.map(\.alpha) == b.stages.map(\.alpha)
      )
    }
    let x = try Checkpoint.load(ws.dir + "/a/compressed.h5").model.parameters
    let y = try Checkpoint.load(ws.dir + "/b/compressed.h5").model.parameters
    for p in x.all { #expect(p.value.array.map(\.bitPattern) == y[p.name]!.value.array.map(\.bitPattern), "\(p.name)") }
    // Other options on resume are refused.
    #expect(throws: LCError.self) {
      _ = try Compression(
        input: input, dir: ws.dir + "/b", options: Self.options(maxDrop: 3), resume: true, overwrite: false)
    }
    // --overwrite starts again: the earlier search's stages are not resumed (it had reused
    // them, so another learning rate changed nothing), and files of the user's stay.
    try "mine".write(toFile: ws.dir + "/b/notes.txt", atomically: true, encoding: .utf8)
    var resumedStages = 0
    let again = try Compression(
      input: input, dir: ws.dir + "/b", options: Self.options(overrides: ["train.lr=1e-3"]), resume: false,
      overwrite: true
    )
    .run(events: { event in
      if case .training(.resumed) = event { resumedStages += 1 }
    })
    #expect(resumedStages == 0)
    #expect(again.rounds.map(\.unit) == whole.rounds.map(\.unit))
    #expect(again.rounds.last?.stages.map(\.alpha) != whole.rounds.last?.stages.map(\.alpha))
    #expect(FileManager.default.fileExists(atPath: ws.dir + "/b/notes.txt"))
  }

  /// A language model is judged by perplexity (the default for gpt): the drop is the rise
  /// in %, and the recorded value is exp of the held-out windows' mean loss.
  @Test func aLanguageModelIsJudgedByPerplexity() throws {
    let ws = try Workspace()
    let config = try ws.config("g.yaml", Workspace.gpt)
    #expect(try CLI.run(["train", config, "train.steps=10"]).code == 0)
    // Relative paths, as typed in the workspace.
    let options = ["--max-drop", "1000", "--round-steps", "4", "--holdout", "6"]
    let r = try CLI.run(["compress", "gpt/last.h5"] + options + ["-o", "c"], in: ws.dir)
    #expect(r.code == 0, "\(r.stderr)")
    let text = try String(contentsOfFile: ws.dir + "/c/compress.json", encoding: .utf8)
    let state = try JSONDecoder.snakeCase.decode(CompressState.self, from: Data(text.utf8))
    #expect(state.options.metric == .perplexity && state.rounds.count == 3)
    // Stored absolute: the search resumes from another directory, its input spelled otherwise.
    let root = URL(fileURLWithPath: ws.dir).resolvingSymlinksInPath().path
    #expect(state.input == root + "/gpt/last.h5" && state.rounds[2].checkpoint == root + "/c/round-2/collapsed.h5")
    let elsewhere = try CLI.run(["compress", "last.h5"] + options + ["-o", "../c", "--resume"], in: ws.dir + "/gpt")
    #expect(elsewhere.code == 0, "\(elsewhere.stderr)")
    let base = state.rounds[0].holdout.value
    for r in state.rounds.dropFirst() {
      #expect(abs(r.drop - (r.holdout.value / base - 1) * 100) < 1e-9)
    }
    // The last round's held-out perplexity is its checkpoint's, on the 6 held-out windows.
    let last = try Checkpoint.load(state.rounds[2].checkpoint)
    let settings = try RunSettings.decode(try ConfigTree.parse(last.configText, file: "stored")).settings
    let (data, _) = try TaskLoader.load(settings.data, vocabulary: last.vocabulary)
    let m = Evaluator.evaluate(last.model, batches: try data.holdoutBatches(batchSize: 6))
    #expect(abs(m.perplexity! - state.rounds[2].holdout.value) < 1e-6 * m.perplexity!)
    let wrong = try CLI.run(["compress", ws.dir + "/gpt/last.h5", "--max-drop", "1", "--metric", "accuracy"])
    #expect(wrong.code == 64 && wrong.stderr.contains("perplexity (a language model)"), "\(wrong.stderr)")
    // The data moved: a data.root override finds it for the default held-out slice too
    // (sized from the training split before the search starts), not only for the fine-tunes.
    try FileManager.default.moveItem(atPath: ws.dir + "/data", toPath: ws.dir + "/moved")
    let moved = try CLI.run([
      "compress", ws.dir + "/gpt/last.h5", "--max-drop", "1000", "--round-steps", "2", "data.root=\(ws.dir)/moved",
      "-o", ws.dir + "/c-moved",
    ])
    #expect(moved.code == 0 && moved.stderr.contains("held-out training examples"), "\(moved.stderr)")
  }

  /// A real Ctrl-C during a fine-tune: compress saves its state and the stage's last.h5,
  /// exits 130 saying how to continue, and the same command with --resume finishes.
  @Test func sigintStopsAndResumeFinishes() throws {
    let ws = try Self.trained()
    let args = [
      "compress", ws.dir + "/run/last.h5", "--max-drop", "100", "--round-steps", "1000", "--holdout", "24", "-o",
      ws.dir + "/c", "train.batch_size=8", "log.every=1",
    ]
    let (p, err, first) = try CLI.start(args, until: "step 3/")
    let seen = first + CLI.interrupt(p, reading: err)
    #expect(p.terminationStatus == 130, "\(seen.suffix(400))")
    #expect(seen.contains("--resume"), "\(seen.suffix(400))")
    // The search's own stop message: the directory given, not the stage's; no train flags.
    #expect(
      seen.contains("stopped in round 1, fine-tune stage 1") && !seen.contains("--stop-after")
        && !seen.contains("stage-1: stopped"), "\(seen.suffix(400))")
    #expect(FileManager.default.fileExists(atPath: ws.dir + "/c/round-1/stage-1/last.h5"))
    let state = try JSONDecoder.snakeCase.decode(
      CompressState.self, from: Data(contentsOf: URL(fileURLWithPath: ws.dir + "/c/compress.json")))
    #expect(state.pending?.unit == 1 && state.rounds.count == 1 && !state.finished)
    // Resuming with other options is refused; with the same ones the search finishes.
    let other = try CLI.run(Array(args.prefix(3)) + ["7"] + Array(args.dropFirst(4)) + ["--resume"])
    #expect(
      other.code == 64 && other.stderr.contains("differ from the ones the search was started with"), "\(other.stderr)")
    #expect(other.stderr.contains("got --max-drop 100 → 7"), "\(other.stderr)")
    let resumed = try CLI.run(args + ["--resume"])
    #expect(resumed.code == 0, "\(resumed.stderr.suffix(400))")
    #expect(resumed.stderr.contains("resuming at step"), "the stopped fine-tune did not continue from its last.h5")
    #expect(!resumed.stderr.contains("uncertain"), "100 points is far above the noise of 24 examples")
    // A budget below the noise of its held-out accuracy gets a note with the slice it needs.
    let noisy = try CLI.run([
      "compress", ws.dir + "/run/last.h5", "--max-drop", "1", "--round-steps", "1", "--holdout", "24", "-o",
      ws.dir + "/noisy",
    ])
    #expect(noisy.stderr.contains("uncertain by up to ±10.2 points") && noisy.stderr.contains("about 10000 held-out"))
    // No loss allowed at all is its own choice: no note, and no arithmetic on a zero budget.
    let strict = try CLI.run([
      "compress", ws.dir + "/run/last.h5", "--max-drop", "0", "--round-steps", "1", "--holdout", "24", "-o",
      ws.dir + "/strict",
    ])
    #expect(strict.code == 0 && !strict.stderr.contains("uncertain"), "\(strict.stderr.suffix(300))")
    let tiny = try CLI.run([
      "compress", ws.dir + "/run/last.h5", "--max-drop", "1e-160", "--round-steps", "1", "--holdout", "24", "-o",
      ws.dir + "/tiny",
    ])
    #expect(tiny.code == 0 && tiny.stderr.contains("far more held-out examples"), "\(tiny.stderr.suffix(300))")
    let done = try JSONDecoder.snakeCase.decode(
      CompressState.self, from: Data(contentsOf: URL(fileURLWithPath: ws.dir + "/c/compress.json")))
    #expect(done.finished && done.rounds.count == 3)
  }

  @Test func commandLineRunsAndRefusesBadInput() throws {
    let ws = try Self.trained()
    let ckpt = ws.dir + "/run/last.h5"
    let ok = try CLI.run([
      "compress", ckpt, "--max-drop", "100", "--round-steps", "4", "--holdout", "24", "-o", ws.dir + "/c",
      "train.batch_size=8",
    ])
    #expect(ok.code == 0, "\(ok.stderr)")
    #expect(ok.stdout.contains("| round |") && ok.stdout.contains("saved \(ws.dir)/c/compressed.h5"), "\(ok.stdout)")
    let again = try CLI.run(["compress", ckpt, "--max-drop", "1", "-o", ws.dir + "/c"])
    #expect(again.code == 73 && again.stderr.contains("--resume"), "\(again.stderr)")
    // report on the search's directory reports its rounds' runs, and points at its own table.
    let report = try CLI.run(["report", ws.dir + "/c", "-o", ws.dir + "/c-report"])
    #expect(
      report.code == 0
        && report.stderr.contains("is a compress search: its table of rounds is \(ws.dir)/c/compress.md"),
      "\(report)")
    let cases: [([String], Int32, String)] = [
      ([], 64, "--max-drop is required"),
      (["--max-drop", "-1"], 64, "--max-drop"),
      (["--max-drop", "1", "--metric", "perplexity"], 64, "does not fit the model"),
      (["--max-drop", "1", "--order", "random"], 64, "unknown order"),
      (["--max-drop", "1", "model.d_model=8"], 64, "model.d_model is the checkpoint's model"),
      (["--max-drop", "1", "lc.units=[1]"], 64, "compress sets lc.units itself"),
      (["--max-drop", "1", "--holdout", "5000"], 64, "compress --holdout: --holdout leaves nothing to train on"),
      (["--max-drop", "1", "--resume"], 66, "nothing to resume"),
      (["--max-drop", "1", "--lambda-cap", "1000"], 64, "diverge"),
    ]
    for (args, code, message) in cases {
      let r = try CLI.run(["compress", ckpt] + args + ["-o", ws.dir + "/bad-\(code)-\(args.count)"])
      #expect(r.code == code && r.stderr.contains(message), "\(args): \(r.code) \(r.stderr)")
    }
    // A search that was never started leaves no directory behind when asked to resume.
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/bad-66-3"))
  }
}

/// `data.holdout` and `lc.units`, the two config keys `compress` builds on.
@Suite struct HoldoutAndUnitSelectionTests {
  @Test func heldOutExamplesAreNeverInATrainingBatch() throws {
    let ws = try Workspace()
    var tree = try ConfigTree.parse(Workspace.vit.replacingOccurrences(of: "$DIR", with: ws.dir), file: "v.yaml")
    _ = try tree.set("data.holdout", to: .int(20), at: ConfigLocation(file: "test"))
    let settings = try RunSettings.decode(tree).settings
    let (data, _) = try TaskLoader.load(settings.data)
    #expect(data.trainCount == 100 && data.holdout == 20)
    for epoch in 0..<3 {
      let plan = try data.epochPlan(epoch: epoch, batchSize: 16, seed: 3)
      #expect(plan.flatMap { $0 }.sorted() == Array(0..<100))
    }
    let held = try data.holdoutBatches(batchSize: 8)
    #expect(held.map(\.examples) == [8, 8, 4])
    // The held-out images are the training split's last 20, unaugmented.
    let (all, _) = try TaskLoader.load(
      {
        var d = settings.data
        d.holdout = 0
        return d
      }())
    let tail = try all.trainEvalBatches(batchSize: 120, limit: 120)[0]
    #expect(held[0].targets == Array(tail.targets[100..<108]))
  }

  @Test func aHoldoutTooLargeIsAConfigError() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let r = try CLI.run(["train", config, "data.holdout=120"])
    #expect(r.code == 78 && r.stderr.contains("data.holdout leaves nothing to train on"), "\(r.stderr)")
    let corpus = try ws.config("g.yaml", Workspace.gpt)
    let c = try CLI.run(["train", corpus, "data.holdout=1000"])
    #expect(c.code == 78 && c.stderr.contains("data.holdout"), "\(c.stderr)")
    let fine = try CLI.run(["train", corpus, "data.holdout=4", "--overwrite"])
    #expect(fine.code == 0, "\(fine.stderr)")
    // compress sets data.holdout from its --holdout flag: the flag is named, a usage error.
    let flag = try CLI.run(["compress", ws.dir + "/gpt/last.h5", "--max-drop", "1", "--holdout", "100000"])
    #expect(
      flag.code == 64 && flag.stderr.contains("compress --holdout: --holdout leaves nothing to train on")
        && !flag.stderr.contains("data.holdout"), "\(flag.stderr)")
  }

  @Test func lcUnitsSelectsUnitsAndInitFromKeepsTrainedPReLUs() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    // A run with PReLU on unit 1 (lc.blocks: 1), then a fine-tune that selects unit 0 only.
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    let first = try Checkpoint.load(ws.dir + "/run/last.h5")
    let alpha1 = try #require(first.model.alphaParameter(unit: 1)?.value[0])
    let r = try CLI.run([
      "train", config, "lc.blocks=0", "lc.units=[0]", "train.init_from=\(ws.dir)/run/last.h5", "train.steps=1",
      "train.lr=1e-9", "output.dir=\(ws.dir)/ft",
    ])
    #expect(r.code == 0, "\(r.stderr)")
    // The banner says unit 1 keeps its PReLU but gets no pull.
    #expect(
      r.stderr.contains("units [0] as PReLU")
        && r.stderr.contains("note    units [1] are PReLU from train.init_from but not selected by lc.*"),
      "\(r.stderr)")
    let tuned = try Checkpoint.load(ws.dir + "/ft/last.h5")
    #expect(tuned.model.architecture.activations == [.prelu, .prelu])
    // Unit 1's α came from the checkpoint (not lc.alpha_init), and moved by at most a tiny step.
    let kept = try #require(tuned.model.alphaParameter(unit: 1)?.value[0])
    #expect(abs(kept - alpha1) < 1e-6 && abs(alpha1 - 0.01) > 1e-4, "\(alpha1) → \(kept)")
    // A smaller model than its checkpoint is refused (a config error naming what would be
    // left out), as is a differently sized one; nothing is trained or written.
    let fewer = try CLI.run([
      "train", config, "model.layers=1", "lc.blocks=1", "train.init_from=\(ws.dir)/run/last.h5",
      "output.dir=\(ws.dir)/fewer",
    ])
    #expect(fewer.code == 78 && fewer.stderr.contains("train.init_from holds parameters the model does not have"))
    #expect(fewer.stderr.contains("blocks.1.") && !fewer.stderr.contains("does not fit"), "\(fewer.stderr)")
    let wider = try CLI.run([
      "train", config, "model.d_model=32", "train.init_from=\(ws.dir)/run/last.h5", "output.dir=\(ws.dir)/wider",
    ])
    #expect(wider.code == 78 && wider.stderr.contains("train.init_from does not fit the model"), "\(wider.stderr)")
    // Each parameter in another shape is listed with both shapes.
    #expect(
      wider.stderr.contains("16] in the checkpoint, ") && wider.stderr.contains("32] in the model")
        && wider.stderr.contains("data.resize"), "\(wider.stderr)")
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/fewer/last.h5"))
    let relu = try CLI.run([
      "train", config, "model.activation=relu", "train.init_from=\(ws.dir)/run/last.h5", "output.dir=\(ws.dir)/relu",
    ])
    #expect(relu.code == 78 && relu.stderr.contains("model.activation differs"), "\(relu.stderr)")
    #expect(relu.stderr.contains("expected gelu, got relu (blocks.0.mlp)"), "\(relu.stderr)")
    // Sizes that shape no parameter but change the function: refused too, both named.
    let unshaped = try CLI.run([
      "train", config, "model.heads=4", "model.layer_norm_eps=1e-6", "train.init_from=\(ws.dir)/run/last.h5",
      "output.dir=\(ws.dir)/heads",
    ])
    #expect(
      unshaped.code == 78 && unshaped.stderr.contains("model.heads differs from the one train.init_from was trained")
        && unshaped.stderr.contains("expected 2, got 4") && unshaped.stderr.contains("Set model.heads: 2"),
      "\(unshaped.stderr)")
    #expect(
      unshaped.stderr.contains("model.layer_norm_eps differs") && unshaped.stderr.contains("expected 1e-05, got 1e-06"),
      "\(unshaped.stderr)")
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/heads"))
    // `validate` refuses each of them as train does, before any run exists.
    for (override, expected) in [
      ("model.d_model=32", "train.init_from does not fit the model"),
      ("model.activation=relu", "model.activation differs"),
      ("model.heads=4", "model.heads differs from the one train.init_from was trained"),
    ] {
      let v = try CLI.run(["validate", config, override, "train.init_from=\(ws.dir)/run/last.h5"])
      #expect(v.code == 78 && v.stderr.contains(expected), "validate \(override): \(v.stderr)")
    }
    let directory = try CLI.run(["validate", config, "train.init_from=\(ws.dir)/run"])
    #expect(directory.code != 0 && directory.stderr.contains("train.init_from"), "\(directory.stderr)")
    let absent = try CLI.run(["train", config, "train.init_from=\(ws.dir)/none.h5", "output.dir=\(ws.dir)/absent"])
    #expect(
      absent.code == 66 && absent.stderr.contains("train.init_from names no file")
        && absent.stderr.contains("got \(ws.dir)/none.h5"), "\(absent.stderr)")
    let bad = try CLI.run(["validate", config, "lc.blocks=0", "lc.units=[2]"])
    #expect(bad.code == 78 && bad.stderr.contains("lc.units names a unit the model does not have"), "\(bad.stderr)")
    let both = try CLI.run(["validate", config, "lc.units=[0]"])
    #expect(both.code == 78 && both.stderr.contains("set lc.units or lc.blocks"), "\(both.stderr)")
  }
}
