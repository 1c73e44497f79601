import Foundation
import Kernels

/// What `compress` judges a model by.
public enum CompressMetric: String, Sendable, Codable, CaseIterable {
  /// Classification accuracy in %; the drop is in percentage points.
  case accuracy
  /// A language model's perplexity; the drop is its rise in % of the starting value.
  case perplexity
}

/// Which unit `compress` collapses next.
public enum CompressOrder: String, Sendable, Codable, CaseIterable {
  /// The last unit not yet collapsed (the paper's order, as the sensitivity study).
  case outputFirst = "output-first"
  /// The unit whose collapse, with no fine-tune, costs least on the held-out slice.
  case greedy
}

/// The knobs of a `compress` search.
public struct CompressOptions: Sendable, Codable, Equatable {
  /// The largest admissible drop from the starting model, on the held-out slice:
  /// accuracy points, or perplexity's rise in %.
  public var maxDrop: Double
  public var metric: CompressMetric
  /// Steps of each fine-tune stage; a stage whose α misses the threshold is followed by
  /// another with λ raised.
  public var roundSteps: Int
  public var order: CompressOrder
  /// Training examples (a corpus: windows) held out from the end of the training split:
  /// every decision is taken on them, never on the evaluation split.
  public var holdout: Int
  /// The largest λ the automatic raise reaches; nil: the default of the mode.
  public var lambdaCap: Double?
  /// `key=value` changes to the fine-tunes' config (train.lr, lc.mode, ...).
  public var overrides: [String]

  public init(
    maxDrop: Double, metric: CompressMetric, roundSteps: Int = 200, order: CompressOrder = .outputFirst,
    holdout: Int, lambdaCap: Double? = nil, overrides: [String] = []
  ) {
    self.maxDrop = maxDrop
    self.metric = metric
    self.roundSteps = roundSteps
    self.order = order
    self.holdout = holdout
    self.lambdaCap = lambdaCap
    self.overrides = overrides
  }
}

/// A measured metric with its standard error.
public struct MetricValue: Sendable, Codable, Equatable {
  public var value: Double
  public var error: Double

  public init(value: Double, error: Double) {
    self.value = value
    self.error = error
  }
}

/// One fine-tune of a round: its λ, and α of the round's unit after it.
public struct CompressStage: Sendable, Codable, Equatable {
  public var lambda: Double
  public var steps: Int
  public var alpha: Double
  public var runDir: String
}

/// One row of the search: round 0 is the starting model, round k has k more units collapsed
/// (the unit of the round, plus any other whose α was already within the threshold).
public struct CompressRound: Sendable, Codable, Equatable {
  public var round: Int
  /// The unit this round collapsed (nil for round 0).
  public var unit: Int?
  public var unitName: String?
  /// Every unit collapsed in this round's model.
  public var collapsedUnits: [Int]
  public var stages: [CompressStage]
  /// Greedy order: each candidate's cost (its zero-shot collapse's drop on the held-out
  /// slice), by unit index.
  public var candidateCosts: [String: Double]?
  public var holdout: MetricValue
  public var eval: MetricValue
  /// The drop from round 0 on the held-out slice (points, or % rise of perplexity).
  public var drop: Double
  public var admissible: Bool
  public var parameters: Int
  public var macsPerExample: Int
  /// Forward time of one example (batch 1), the fastest of 15, milliseconds.
  public var latencyMilliseconds: Double
  public var checkpoint: String
}

/// A round under way: written before its first fine-tune, so a resumed search continues
/// with the same unit and λ.
public struct PendingRound: Sendable, Codable, Equatable {
  public var round: Int
  public var unit: Int
  public var candidateCosts: [String: Double]?
  public var stages: [CompressStage]
}

/// Everything a search has done, kept in `DIR/compress.json` after every step.
public struct CompressState: Sendable, Codable, Equatable {
  public var input: String
  public var options: CompressOptions
  public var rounds: [CompressRound]
  public var pending: PendingRound?
  /// Why the search ended; nil while it runs.
  public var stopReason: String?
  /// The round saved as compressed.h5: the last admissible one.
  public var best: Int?

  public var finished: Bool { stopReason != nil }
}

/// What a search tells its caller as it goes.
public enum CompressEvent {
  case measured(CompressRound)
  case chose(round: Int, unit: Int, name: String, costs: [(unit: Int, cost: Double)])
  case fineTuning(round: Int, unit: Int, stage: Int, lambda: Double, alpha: Float?)
  case training(TrainingEvent)
  case stopped(reason: String)
  case resumed(rounds: Int)
}

/// `compress`: from a trained checkpoint, collapse one unit after another, each after a
/// LayerCollapse fine-tune that brings its α within the threshold, until the next would
/// cost more than `maxDrop` on the held-out slice of the training data. Every round's
/// checkpoint is kept; the last admissible one is copied to `DIR/compressed.h5`.
public final class Compression {
  public let input: String
  public let dir: String
  public let options: CompressOptions
  public private(set) var state: CompressState
  let start: Checkpoint
  /// The fine-tunes' config: the checkpoint's, with compress's settings and the overrides.
  let baseTree: ConfigTree
  let threshold: Float
  let startLambda: Double
  let lambdaCap: Double
  /// What to try when α will not reach 1 with λ at its cap (the stop message says it).
  let stuckHint: String
  let holdoutBatches: [Batch]
  let evalBatches: [Batch]
  private var lock: RunLock?

  /// What a search writes into its directory, besides a `round-K/` directory per round
  /// (`--overwrite` removes exactly these).
  static let stateFile = "compress.json"
  static let compressedFile = "compressed.h5"
  static let tableFiles = (markdown: "compress.md", csv: "compress.csv", plot: "compress.svg")
  static let roundPrefix = "round-"

  public var statePath: String { dir + "/" + Self.stateFile }
  public var compressedPath: String { dir + "/" + Self.compressedFile }

  /// Keys `compress` sets itself in every fine-tune: overriding them is a usage error.
  public static let managedKeys = [
    "train.init_from", "output.dir", "lc.units", "lc.blocks", "lc.fraction", "train.steps", "data.holdout",
  ]

  public init(input: String, dir: String, options: CompressOptions, resume: Bool, overwrite: Bool) throws {
    // Absolute, links resolved, as compress.json stores them (the rounds' checkpoints too):
    // a search resumed from another directory finds its checkpoints, and its input however
    // spelled.
    self.input = URL(fileURLWithPath: input).resolvingSymlinksInPath().path
    self.dir = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
    self.options = options
    let command = "layercollapse compress"
    guard options.maxDrop >= 0 && options.maxDrop.isFinite else {
      throw LCError.usage(
        ErrorDetail(what: "--max-drop must be a finite number ≥ 0", location: command, got: "\(options.maxDrop)"))
    }
    guard options.roundSteps >= 1 else {
      throw LCError.usage(
        ErrorDetail(what: "--round-steps must be ≥ 1", location: command, got: "\(options.roundSteps)"))
    }
    guard options.holdout >= 1 else {
      throw LCError.usage(ErrorDetail(what: "--holdout must be ≥ 1", location: command, got: "\(options.holdout)"))
    }
    if let cap = options.lambdaCap, !(cap > 0 && cap.isFinite) {
      throw LCError.usage(
        ErrorDetail(what: "--lambda-cap must be a finite number > 0", location: command, got: "\(cap)"))
    }
    start = try Checkpoint.load(input)
    let arch = start.model.architecture
    if Compression.candidates(arch).isEmpty {
      throw LCError.usage(
        ErrorDetail(
          what: "the model has no unit left to collapse", location: input,
          expected: "a \(arch.config.kind.rawValue) model with an MLP that is not collapsed and whose merge is smaller",
          got: "\(arch.unitCount) units, \(arch.collapsed.filter { $0 }.count) collapsed"))
    }
    let predictsTokens = start.model.family.predictsEveryPosition(arch.config.kind)
    if predictsTokens != (options.metric == .perplexity) {
      throw LCError.usage(
        ErrorDetail(
          what: "--metric \(options.metric.rawValue) does not fit the model", location: command + " --metric",
          expected: predictsTokens ? "perplexity (a language model)" : "accuracy (a classifier)",
          got: options.metric.rawValue))
    }

    // The fine-tunes' config: the checkpoint's own, a short decoupled fine-tune by default.
    var tree = try ConfigTree.parse(start.configText, file: input + ":/meta/config")
    let at = ConfigLocation(file: "compress")
    let parsed = try ConfigOverride.parse(options.overrides)
    let refused = parsed.filter { o in
      Compression.managedKeys.contains(o.key) || o.key.hasPrefix("model.") || o.key == "sweep"
        || o.key.hasPrefix("sweep.")
    }
    if !refused.isEmpty {
      // What each refused key is: one the search sets, or the model's shape (fixed by the
      // checkpoint), or a sweep (compress runs its own search).
      let reasons = refused.map { o in
        Compression.managedKeys.contains(o.key)
          ? "compress sets \(o.key) itself"
          : o.key.hasPrefix("model.")
            ? "\(o.key) is the checkpoint's model, which compress does not reshape"
            : "\(o.key): compress runs its own search, not a sweep"
      }
      throw LCError.usage(
        ErrorDetail(
          what: reasons.joined(separator: "; "),
          location: "override `\(refused[0].text)`",
          expected: "a fine-tuning key (train.lr, lc.mode, lc.alpha_lr_scale, data.*, ...)",
          hint: "--round-steps, --holdout and --lambda-cap choose the steps, the held-out slice and λ's cap"))
    }
    let warmup = tree.value("train.warmup_steps").flatMap { v -> Int? in
      if case .int(let i) = v { return i }
      return nil
    }
    let defaults: [(String, ConfigValue)] = [
      ("lc.mode", .string("decoupled")), ("train.eval_every", .int(0)), ("train.train_eval_limit", .int(0)),
      ("train.distill_from", .string("")),
      ("train.warmup_steps", .int(min(warmup ?? 0, max(1, options.roundSteps / 10)))),
      ("lc.blocks", .int(0)), ("lc.fraction", .int(0)), ("train.steps", .int(options.roundSteps)),
      ("data.holdout", .int(options.holdout)), ("lc.units", .list([.int(0)])), ("lc.lambda", .double(1)),
      // The activation the weights were trained with, from the architecture: a VGG's stored
      // config from before its defaults were recorded says gelu where the head ran ReLU.
      ("model.activation", .string(start.model.architecture.config.activation.rawValue)),
    ]
    for (key, value) in defaults { _ = try tree.set(key, to: value, at: at) }
    _ = try tree.apply(parsed)
    // One decode up front: a bad override or a holdout too large fails here, before any work.
    let (settings, _) = try RunSettings.decode(tree)
    baseTree = tree
    threshold = settings.lc.threshold
    let data: TaskData
    do {
      data = try start.loadData(settings.data)
    } catch LCError.badConfig(let details) where details.count == 1 && details[0].location == "data.holdout" {
      // data.holdout is compress's to set (an override of it is refused above): the
      // slice too large is the --holdout the command was given, a usage error.
      var d = details[0]
      d.what = "--holdout leaves nothing to train on"
      d.location = command + " --holdout"
      throw LCError.usage(d)
    }
    holdoutBatches = try data.holdoutBatches(batchSize: predictsTokens ? 8 : settings.train.evalBatchSize)
    evalBatches = try data.evalBatches(batchSize: predictsTokens ? 8 : settings.train.evalBatchSize)

    // λ: the decoupled pull moves α − 1 by a factor (1 − 2·lr·s·λ) per step (s:
    // lc.alpha_lr_scale). Starting λ takes it from 0.99 to 0.05 in about a stage at the
    // schedule's mean rate; the cap keeps the factor above −1 at the peak rate.
    let lr = settings.train.optimizer.learningRate
    let meanRate = (lr + settings.train.optimizer.minLearningRate) / 2 * settings.lc.alphaLearningRateScale
    let userLambda = parsed.last(where: { $0.key == "lc.lambda" }).map { _ in settings.lc.lambda }
    if settings.lc.mode == .decoupled {
      let stable = 0.9 / (lr * settings.lc.alphaLearningRateScale)
      if let cap = options.lambdaCap, cap >= 1 / (lr * settings.lc.alphaLearningRateScale) {
        throw LCError.usage(
          ErrorDetail(
            what: "--lambda-cap makes the decoupled pull diverge", location: command + " --lambda-cap",
            expected:
              "< 1/(train.lr · lc.alpha_lr_scale) = \(Compression.g(1 / (lr * settings.lc.alphaLearningRateScale)))",
            got: Compression.g(cap)))
      }
      lambdaCap = options.lambdaCap ?? stable
      startLambda = min(userLambda ?? 1.5 / (Double(options.roundSteps) * max(meanRate, 1e-12)), lambdaCap)
      stuckHint = "--lambda-cap raises it; --round-steps gives each stage more steps"
    } else {
      lambdaCap = options.lambdaCap ?? 1e4
      startLambda = min(userLambda ?? 1, lambdaCap)
      // AdamW normalizes the penalty's gradient: α moves at most about train.lr ·
      // lc.alpha_lr_scale per step however large λ is, so a larger cap does not help.
      stuckHint =
        "in lc.mode penalty AdamW moves α at most about train.lr per step however large λ is: "
        + "lc.mode=decoupled, a larger lc.alpha_lr_scale or more --round-steps move it further"
    }

    // The search directory: a finished or stopped search is resumed or replaced on request.
    let fm = FileManager.default
    let statePath = dir + "/" + Self.stateFile
    // Nothing to resume: said before the directory (and its lock file) is made.
    if resume && !fm.fileExists(atPath: dir) {
      throw LCError.missingInput(
        ErrorDetail(what: "nothing to resume", location: statePath, hint: "Start the search without --resume"))
    }
    try OutputDirectory.create(dir, what: "the compress directory")
    lock = try RunLock(directory: dir)
    let exists = fm.fileExists(atPath: statePath)
    if exists && !resume && !overwrite {
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "directory already holds a compress search", location: dir,
          hint: "Continue it with --resume, replace it with --overwrite, or choose -o NEW_DIR"))
    }
    if resume {
      guard exists else {
        throw LCError.missingInput(
          ErrorDetail(what: "nothing to resume", location: statePath, hint: "Start the search without --resume"))
      }
      let text = try String(contentsOfFile: statePath, encoding: .utf8)
      let saved = try JSONFile.decode(CompressState.self, text, location: statePath)
      // (A search started before paths were stored absolute stored them as typed.)
      let savedInput = URL(fileURLWithPath: saved.input).resolvingSymlinksInPath().path
      guard savedInput == self.input && saved.options == options else {
        let (a, b) = (saved.options, options)
        let changes: [(String, String, String)] = [
          ("CHECKPOINT", savedInput, self.input), ("--max-drop", Self.g(a.maxDrop), Self.g(b.maxDrop)),
          ("--metric", a.metric.rawValue, b.metric.rawValue), ("--round-steps", "\(a.roundSteps)", "\(b.roundSteps)"),
          ("--order", a.order.rawValue, b.order.rawValue), ("--holdout", "\(a.holdout)", "\(b.holdout)"),
          ("--lambda-cap", a.lambdaCap.map(Self.g) ?? "default", b.lambdaCap.map(Self.g) ?? "default"),
          (
            "key=value", a.overrides.isEmpty ? "none" : a.overrides.joined(separator: " "),
            b.overrides.isEmpty ? "none" : b.overrides.joined(separator: " ")
          ),
        ].filter { $0.1 != $0.2 }
        throw LCError.usage(
          ErrorDetail(
            what: "the checkpoint or options differ from the ones the search was started with", location: statePath,
            expected: "compress \(saved.input) with the same options",
            got: changes.map { "\($0.0) \($0.1) → \($0.2)" }.joined(separator: "; "),
            hint: "Resume with the same command, or start a new search with -o NEW_DIR (or --overwrite)"))
      }
      state = saved
    } else {
      // A new search: what an earlier one wrote here goes first (its stage directories
      // would otherwise be resumed as if they were this search's).
      if exists { try Self.removeEarlierSearch(in: dir) }
      state = CompressState(input: self.input, options: options, rounds: [])
    }
  }

  /// The files and `round-K/` directories a search writes into its directory; nothing else.
  static func removeEarlierSearch(in dir: String) throws {
    let fm = FileManager.default
    let t = tableFiles
    let ours: Set<String> = [stateFile, compressedFile, t.markdown, t.csv, t.plot]
    for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
      guard ours.contains(name) || (name.hasPrefix(roundPrefix) && Int(name.dropFirst(roundPrefix.count)) != nil) else {
        continue
      }
      try Paths.remove(
        dir + "/" + name, what: "the earlier search's \(name) for --overwrite",
        hint: "Remove it by hand, or choose -o NEW_DIR")
    }
  }

  /// Units that can still be collapsed: not collapsed yet, and smaller when merged.
  public static func candidates(_ arch: Architecture) -> [Int] {
    (0..<arch.unitCount).filter { u in
      !arch.collapsed[u] && arch.family.unitParameters(arch, unit: u, collapsed: true) < arch.unitParameters(u)
    }
  }

  // MARK: the search

  /// Runs (or continues) the search to its end. When `shouldStop` returns true (checked
  /// after every training step and between evaluations) the state is saved and
  /// `.interrupted` thrown; the same command with `resume` continues.
  @discardableResult
  public func run(events: (CompressEvent) -> Void, shouldStop: () -> Bool = { false }) throws -> CompressState {
    if !state.rounds.isEmpty { events(.resumed(rounds: state.rounds.count - 1)) }
    if state.rounds.isEmpty {
      let r0 = measure(start.model, round: 0, unit: nil, stages: [], costs: nil, checkpoint: input, base: nil)
      state.rounds.append(r0)
      try save()
      events(.measured(r0))
    }
    while !state.finished {
      try checkStop(shouldStop)
      let previous = state.rounds[state.rounds.count - 1]
      let current = previous.round == 0 ? start : try Checkpoint.load(previous.checkpoint)
      let candidates = Compression.candidates(current.model.architecture)
      if candidates.isEmpty {
        try finish("every collapsible unit is collapsed", events)
        break
      }
      let round = previous.round + 1
      var pending: PendingRound
      if let p = state.pending, p.round == round {
        pending = p
      } else {
        let (unit, costs) = try choose(current.model, candidates: candidates, base: previous, shouldStop: shouldStop)
        pending = PendingRound(
          round: round, unit: unit,
          candidateCosts: costs.map { Dictionary(uniqueKeysWithValues: $0.map { (String($0.unit), $0.cost) }) },
          stages: [])
        state.pending = pending
        try save()
        events(
          .chose(
            round: round, unit: unit, name: current.model.architecture.unitName(unit),
            costs: costs ?? []))
      }
      guard let tuned = try fineTune(&pending, from: current, events: events, shouldStop: shouldStop) else {
        let name = current.model.architecture.unitName(pending.unit)
        let alpha = pending.stages.last.map { Compression.g($0.alpha) } ?? "?"
        try finish(
          "α of \(name) stayed at \(alpha), not within \(Compression.g(Double(threshold))) of 1, with λ at its cap "
            + "\(Compression.g(lambdaCap)) (\(stuckHint))",
          events)
        break
      }
      // This round's unit alone: another already within the threshold gets a round (and a
      // row) of its own.
      let (merged, report) = Collapse.run(
        tuned.model, options: CollapseOptions(threshold: threshold, only: [pending.unit]))
      // No stage ran when the unit's α was within the threshold already: nothing made the
      // round's directory yet.
      try OutputDirectory.create(roundDir(round), what: "the round's directory")
      let path = roundDir(round) + "/collapsed.h5"
      try Checkpoint(model: merged, configText: tuned.configText, vocabulary: tuned.vocabulary).save(to: path)
      try CollapseRecord(input: pending.stages.last?.runDir ?? previous.checkpoint, output: path, report: report)
        .write(to: roundDir(round) + "/collapsed.json")
      let r = measure(
        merged, round: round, unit: pending.unit, stages: pending.stages, costs: pending.candidateCosts,
        checkpoint: path, base: state.rounds[0])
      state.rounds.append(r)
      state.pending = nil
      try save()
      events(.measured(r))
      if !r.admissible {
        let unitWord = options.metric == .accuracy ? "points" : "% perplexity"
        try finish(
          "collapsing \(r.unitName ?? "") costs \(Compression.g(r.drop)) \(unitWord) on the held-out slice, "
            + "more than --max-drop \(Compression.g(options.maxDrop))", events)
      }
    }
    return state
  }

  private func checkStop(_ shouldStop: () -> Bool) throws {
    guard shouldStop() else { return }
    try save()
    throw LCError.interrupted(
      ErrorDetail(
        what: "stopped after round \(state.rounds.count - 1); saved \(statePath)", location: dir,
        hint: "Continue with the same command and --resume"))
  }

  /// The next unit: the output end's, or (greedy) the cheapest zero-shot collapse.
  private func choose(_ model: any Model, candidates: [Int], base: CompressRound, shouldStop: () -> Bool) throws
    -> (Int, [(unit: Int, cost: Double)]?)
  {
    guard options.order == .greedy, candidates.count > 1 else { return (candidates.max() ?? candidates[0], nil) }
    var costs: [(unit: Int, cost: Double)] = []
    for u in candidates.reversed() {
      try checkStop(shouldStop)
      let (forced, _) = Collapse.run(model, options: CollapseOptions(threshold: threshold, force: [u]))
      costs.append((u, drop(from: base.holdout, to: score(forced, holdoutBatches))))
    }
    // Least cost first; a tie goes to the unit nearer the output (listed first).
    let best = costs.enumerated().min { a, b in
      a.element.cost != b.element.cost ? a.element.cost < b.element.cost : a.offset < b.offset
    }
    return (best?.element.unit ?? candidates[0], costs)
  }

  /// Fine-tunes `pending.unit` until its α is within the threshold, raising λ ×4 per stage
  /// up to the cap. Returns the tuned checkpoint, or nil when α missed with λ at the cap.
  private func fineTune(
    _ pending: inout PendingRound, from current: Checkpoint, events: (CompressEvent) -> Void,
    shouldStop: () -> Bool
  ) throws -> Checkpoint? {
    var model = current
    var startPath = pending.stages.last.map { $0.runDir + "/last.h5" } ?? currentPath(pending.round)
    if !pending.stages.isEmpty { model = try Checkpoint.load(startPath) }
    func within(_ c: Checkpoint) -> Bool {
      guard c.model.architecture.activations[pending.unit] == .prelu,
        let a = c.model.alphaParameter(unit: pending.unit)?.value[0]
      else { return false }
      return abs(a - 1) < threshold
    }
    while !within(model) {
      let previousLambda = pending.stages.last?.lambda
      if let l = previousLambda, l >= lambdaCap { return nil }
      let lambda = previousLambda.map { min($0 * 4, lambdaCap) } ?? startLambda
      let stage = pending.stages.count + 1
      let runDir = roundDir(pending.round) + "/stage-\(stage)"
      events(
        .fineTuning(
          round: pending.round, unit: pending.unit, stage: stage, lambda: lambda,
          alpha: model.model.alphaParameter(unit: pending.unit)?.value[0]))
      var tree = baseTree
      let at = ConfigLocation(file: "compress round \(pending.round) stage \(stage)")
      _ = try tree.set("train.init_from", to: .string(startPath), at: at)
      _ = try tree.set("lc.units", to: .list([.int(pending.unit)]), at: at)
      _ = try tree.set("lc.lambda", to: .double(lambda), at: at)
      _ = try tree.set("output.dir", to: .string(runDir), at: at)
      let (settings, resolved) = try RunSettings.decode(tree)
      let resumable = FileManager.default.fileExists(atPath: runDir + "/last.h5")
      let run = try TrainingRun(settings: settings, resolved: resolved, resume: resumable, overwrite: !resumable)
      do {
        try run.run(events: { events(.training($0)) }, shouldStop: shouldStop)
      } catch let e as LCError {
        guard case .interrupted = e else { throw e }
        try save()
        // The fine-tune's own message names its stage directory and train's flags: the
        // search is what continues.
        throw LCError.interrupted(
          ErrorDetail(
            what: "stopped in round \(pending.round), fine-tune stage \(stage); saved \(statePath)", location: dir,
            hint: "Continue with the same command and --resume"))
      }
      model = try Checkpoint.load(run.lastCheckpoint)
      let alpha = model.model.alphaParameter(unit: pending.unit)?.value[0] ?? .nan
      pending.stages.append(
        CompressStage(lambda: lambda, steps: options.roundSteps, alpha: clean(alpha), runDir: runDir))
      state.pending = pending
      try save()
      startPath = run.lastCheckpoint
    }
    return model
  }

  /// A number as a reader wants it in a message: 4 significant digits.
  public static func g(_ x: Double) -> String { String(format: "%.4g", x) }

  private func roundDir(_ round: Int) -> String { dir + "/" + Self.roundPrefix + "\(round)" }

  /// The checkpoint round `round` starts from: the previous round's.
  private func currentPath(_ round: Int) -> String {
    state.rounds.last(where: { $0.round == round - 1 })?.checkpoint ?? input
  }

  // MARK: measuring

  private func measure(
    _ model: any Model, round: Int, unit: Int?, stages: [CompressStage], costs: [String: Double]?, checkpoint: String,
    base: CompressRound?
  ) -> CompressRound {
    let held = score(model, holdoutBatches)
    let arch = model.architecture
    let drop = base.map { self.drop(from: $0.holdout, to: held) } ?? 0
    return CompressRound(
      round: round, unit: unit, unitName: unit.map { arch.unitName($0) },
      collapsedUnits: (0..<arch.unitCount).filter { arch.collapsed[$0] }, stages: stages, candidateCosts: costs,
      holdout: held, eval: score(model, evalBatches), drop: drop, admissible: drop <= options.maxDrop,
      parameters: arch.parameterCount, macsPerExample: arch.macsPerExample(),
      latencyMilliseconds: Compression.latency(model, evalBatches.first ?? holdoutBatches[0]), checkpoint: checkpoint)
  }

  /// How much worse `after` is than `before`: accuracy points, or perplexity's rise in %.
  func drop(from before: MetricValue, to after: MetricValue) -> Double {
    switch options.metric {
    case .accuracy: before.value - after.value
    case .perplexity: (after.value / before.value - 1) * 100
    }
  }

  /// Accuracy in % (± its binomial standard error), or perplexity (± exp(mean loss) times
  /// the standard error of the mean over the batches, whose windows are independent).
  func score(_ model: any Model, _ batches: [Batch]) -> MetricValue {
    switch options.metric {
    case .accuracy:
      let m = Evaluator.evaluate(model, batches: batches)
      return MetricValue(value: m.accuracy * 100, error: m.accuracyStandardError * 100)
    case .perplexity:
      let losses = batches.map { Evaluator.evaluate(model, batches: [$0]).loss }
      let weights = batches.map { Double($0.examples) }
      let total = weights.reduce(0, +)
      var mean = 0.0
      for (l, w) in zip(losses, weights) { mean += l * w / total }
      var variance = 0.0
      for l in losses { variance += (l - mean) * (l - mean) }
      let n = Double(losses.count)
      let se = n > 1 ? (variance / (n - 1)).squareRoot() / n.squareRoot() : 0
      return MetricValue(value: exp(mean), error: exp(mean) * se)
    }
  }

  /// The fastest of `runs` forward passes over one example, after one warm-up pass (the
  /// fastest, not the median: other work on the machine only ever adds time).
  static func latency(_ model: any Model, _ batch: Batch, runs: Int = 15) -> Double {
    let one = batch.examples(0..<1).input
    _ = model.infer(one)
    var times: [Double] = []
    for _ in 0..<runs {
      let t0 = DispatchTime.now().uptimeNanoseconds
      _ = model.infer(one)
      times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-6)
    }
    return times.min() ?? .nan
  }

  // MARK: the end

  private func finish(_ reason: String, _ events: (CompressEvent) -> Void) throws {
    state.stopReason = reason
    let best = state.rounds.last(where: { $0.admissible }) ?? state.rounds[0]
    state.best = best.round
    let bytes: Data
    do {
      bytes = try Data(contentsOf: URL(fileURLWithPath: best.checkpoint))
    } catch {
      throw LCError.io(
        ErrorDetail(what: "cannot read the best round's checkpoint", location: best.checkpoint, got: "\(error)"))
    }
    try AtomicFile.write(bytes, to: compressedPath)
    try save()
    events(.stopped(reason: reason))
  }

  private func save() throws {
    try AtomicFile.write(Data(try JSONFile.encode(state, pretty: true).utf8), to: statePath)
    let document = CompressDocument(state: state)
    let t = Self.tableFiles
    try AtomicFile.write(Data(document.markdown.utf8), to: dir + "/" + t.markdown)
    try AtomicFile.write(Data(document.csv.utf8), to: dir + "/" + t.csv)
    try AtomicFile.write(Data(document.plot.svg().utf8), to: dir + "/" + t.plot)
  }
}
