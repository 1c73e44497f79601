import Foundation
import Kernels

/// What a training run tells its caller as it goes. The library never prints: the
/// command line turns these into a progress bar or log lines.
public enum TrainingEvent {
  case started(RunBanner)
  case resumed(fromStep: Int)
  case step(StepLog)
  case evaluated(EvaluationLog)
  case saved(path: String)
}

/// The settings and sizes a run starts with.
public struct RunBanner: Sendable {
  public var runDir: String
  public var settings: RunSettings
  public var architecture: Architecture
  public var parameters: Int
  public var macsPerExample: Int
  public var blasThreads: Int
  public var totalSteps: Int
  public var stepsPerEpoch: Int
  public var trainExamples: Int
  public var evalExamples: Int
  /// What the two counts count (`TaskData.countUnits`).
  public var exampleUnits: (train: String, eval: String)
  /// The LayerCollapse units the regularizer acts on (a transformer's blocks).
  public var lcUnits: [Int]
  /// PReLU units (kept from train.init_from) that lc.* does not select: their α trains
  /// without the pull.
  public var unpulledUnits: [Int] = []
  /// Units lc.* selects that train.init_from had collapsed already: nothing to pull.
  public var collapsedSelection: [Int] = []
  public var initFrom: String?
  /// Files of an earlier run that `--overwrite` removed from the directory.
  public var replaced: [String] = []
  /// Processes (MPI ranks) training together, and the examples each takes per
  /// micro-batch (at most; shares differ by one where the batch does not divide).
  public var worldSize: Int = 1
  public var rankBatch: Int = 0
  public var accumulate: Int = 1
}

/// One logged training step (a line of metrics.jsonl).
public struct StepLog: Sendable, Codable, Equatable {
  public var step: Int
  /// The epoch the step falls in, counted from 1 (as the progress lines and summary.csv).
  public var epoch: Int
  public var epochStep: Int
  public var stepsPerEpoch: Int
  public var totalSteps: Int
  public var loss: Double
  public var penalty: Double
  public var meanAlpha: Double?
  /// Block index (as a string, for JSON) → α.
  public var alphas: [String: Double]
  public var learningRate: Double
  public var gradNorm: Double
  public var examplesPerSecond: Double
  public var elapsedSeconds: Double
  public var etaSeconds: Double
}

/// One evaluation (a row of summary.csv).
public struct EvaluationLog: Sendable, Equatable {
  public var step: Int
  /// The epoch the evaluated step falls in, counted from 1.
  public var epoch: Int
  public var eval: Metrics
  public var train: Metrics?
  public var isBest: Bool
  public var alphas: [Int: Float]
}

/// How a run ended.
public struct TrainingOutcome: Sendable {
  public var runDir: String
  public var final: EvaluationLog
  public var bestScore: Double
  public var bestStep: Int
}

/// A `train` run: data, model, optimizer, regularizer, schedule, checkpoints and logs,
/// all from one config. Batches are a function of (seed, epoch, index) and the dropout
/// stream is checkpointed, so a stopped run resumes bit for bit.
///
/// In a group of processes (MPI ranks, `ProcessGroup`) every rank builds the same run;
/// rank 0's parameters are broadcast at the start, each rank trains on its share of
/// each global batch and evaluates its share of the evaluation batches (the sums are
/// reduced), but only rank 0 locks and writes the run directory: config, logs,
/// checkpoints, summaries.
public final class TrainingRun {
  public let settings: RunSettings
  public let group: ProcessGroup
  public let runDir: String
  public let data: TaskData
  public let vocabulary: Vocabulary?
  public let trainer: Trainer
  public var model: any Model { trainer.model }
  let configText: String
  let initFrom: String?
  private(set) var progress: TrainingProgress
  private var dropoutRNG: RNG
  public private(set) var resumedFrom: Int?
  /// Held from before the run directory is read until this run is released.
  private var lock: RunLock?
  /// What `--overwrite` removed (`CheckpointFiles.earlierRun`), for the banner.
  private(set) var replaced: [String] = []
  /// The step of the newest last.h5 on disk, for the divergence message.
  private var savedStep: Int?

  public var lastCheckpoint: String { runDir + "/last.h5" }

  /// Whether `dir` holds a run, finished or stopped (even before its first checkpoint).
  public static func holdsRun(_ dir: String) -> Bool {
    let fm = FileManager.default
    return fm.fileExists(atPath: dir + "/config.yaml") || hasCheckpoint(dir)
  }
  public var bestCheckpoint: String { runDir + "/best.h5" }

  /// Whether the run in `dir` saved a checkpoint to resume from (its last.h5).
  public static func hasCheckpoint(_ dir: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/last.h5") }

  /// Sets up a run in `settings.outputDir`. An existing run directory is an error unless
  /// `resume` (continue from its last.h5, with the same config) or `overwrite`.
  public init(
    settings: RunSettings, resolved: ConfigTree, resume: Bool = false, overwrite: Bool = false,
    group: ProcessGroup = .single
  ) throws {
    self.settings = settings
    self.group = group
    let dir = settings.outputDir
    self.runDir = dir
    self.configText = resolved.serialized(header: [
      "Resolved config of the run in \(dir).", "Rerun: layercollapse train \(dir)/config.yaml output.dir=NEW_DIR",
    ])
    let fm = FileManager.default
    let configPath = dir + "/config.yaml"
    // A directory that exists may be in use: lock it before reading anything in it.
    var isDirectory: ObjCBool = false
    let root = group.isRoot  // only rank 0 checks, locks and writes the run directory
    if root && fm.fileExists(atPath: dir, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else {
        throw LCError.cannotCreate(
          ErrorDetail(
            what: "output.dir names a file, not a directory", location: dir, hint: "Choose output.dir=NEW_DIR"))
      }
      lock = try RunLock(directory: dir)
    }
    let exists = Self.holdsRun(dir)
    var moved = false
    if resume && !root {
      guard Self.hasCheckpoint(dir) else {
        throw LCError.missingInput(
          ErrorDetail(
            what: "rank \(group.rank) cannot read the run to resume", location: dir + "/last.h5",
            hint: "Every rank reads the run directory on resume: put it on a file system all nodes share"))
      }
    } else if resume {
      guard Self.hasCheckpoint(dir) else {
        throw LCError.missingInput(
          ErrorDetail(
            what: "nothing to resume", location: dir + "/last.h5", expected: "the last.h5 of a stopped run",
            hint: exists
              ? "The run stopped before its first checkpoint: start it again with --overwrite"
              : "Start the run without --resume"))
      }
      let saved = (try? String(contentsOfFile: configPath, encoding: .utf8)) ?? ""
      let savedTree = try? ConfigTree.parse(saved, file: configPath)
      // The same values, whatever their order (overrides add keys in the order typed).
      // Where the run and its data live, and how often it logs, are not among them: a run
      // directory copied or moved resumes with output.dir naming its new place, data
      // moved with data.root (as LAYERCOLLAPSE_DATA may move it), and log.every changes
      // no number.
      let differences = savedTree.map { $0.differences(to: resolved) } ?? []
      let free = ["output.dir: ", "data.root: ", "log.every: "]
      let changed = differences.filter { d in !free.contains { d.hasPrefix($0) } }
      // Its config.yaml then says what holds now, so that it resumes itself next time.
      moved = differences.count > changed.count
      if savedTree == nil || !changed.isEmpty {
        throw LCError.badConfig([
          ErrorDetail(
            what: "the config differs from the one the run was started with", location: configPath,
            got: savedTree == nil
              ? "a saved config that does not parse"
              : changed.prefix(6).joined(separator: "; ") + (changed.count > 6 ? "; …" : ""),
            hint: "Resume with the same config and overrides. To go on from this run with other settings (more "
              + "steps, say), start a new one from its weights, with a fresh learning-rate schedule and AdamW state: "
              + "train.init_from=\(dir)/last.h5 output.dir=NEW_DIR")
        ])
      }
    } else if root && exists && !overwrite {
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "run directory already holds a run", location: dir,
          hint: "Continue it with --resume, replace it with --overwrite, or choose output.dir=NEW_DIR"))
    }

    // Weights to start from: a resumed run's last.h5, or train.init_from.
    var start: Checkpoint? = nil
    if resume {
      start = try Checkpoint.load(dir + "/last.h5")
    } else if !settings.train.initFrom.isEmpty {
      start = try TrainingRun.loadCheckpoint(named: "train.init_from", settings.train.initFrom)
    }
    self.initFrom = settings.train.initFrom.isEmpty ? nil : settings.train.initFrom
    let prepared = try TrainingRun.prepare(settings, start: start, resume: resume, location: dir + "/last.h5")
    let (data, vocabulary, arch, model) = (prepared.data, prepared.vocabulary, prepared.architecture, prepared.model)
    self.data = data
    self.vocabulary = vocabulary
    var optimizer = settings.train.optimizer
    optimizer.totalSteps = TrainingRun.totalSteps(settings, data)
    let trainer = Trainer(
      model: model,
      regularizer: Regularizer(
        settings: settings.lc,
        units: settings.lc.selectedUnits(arch).filter { !arch.collapsed[$0] }),
      settings: optimizer)
    self.trainer = trainer
    self.progress = TrainingProgress()
    self.dropoutRNG = RNG(seed: settings.seed, stream: "dropout")
    if group.size > 1 {
      try TrainingRun.checkSameRun(group, configText: configText, architecture: model.architecture)
      guard settings.train.batchSize >= group.size * settings.train.accumulate else {
        throw LCError.badConfig([
          ErrorDetail(
            what: "the batch has fewer examples than the ranks have micro-batches", location: "train.batch_size",
            expected: "at least \(group.size * settings.train.accumulate) (\(group.size) ranks × train.accumulate "
              + "\(settings.train.accumulate))",
            got: "\(settings.train.batchSize)")
        ])
      }
    }
    try TrainingRun.checkBatchNormBatches(model, data: data, settings: settings, ranks: group.size)
    if !settings.train.distillFrom.isEmpty {
      trainer.teacher = try TrainingRun.teacher(settings, student: model, vocabulary: vocabulary)
    }
    if let s = start, resume {
      guard let o = s.optimizer, let p = s.progress, let r = s.dropoutRNG else {
        throw LCError.badData(
          ErrorDetail(what: "checkpoint has no training state to resume from", location: dir + "/last.h5"))
      }
      for (name, m) in o.m { trainer.state.m[name]!.copy(from: m) }
      for (name, v) in o.v { trainer.state.v[name]!.copy(from: v) }
      trainer.state.step = o.step
      progress = p
      dropoutRNG = r
      resumedFrom = p.globalStep
      savedStep = p.globalStep
    }
    // Every rank starts from rank 0's weights and optimizer state.
    try group.broadcast(model.parameters.values)
    if group.size > 1 {
      for p in model.parameters.all {
        if let m = trainer.state.m[p.name], let v = trainer.state.v[p.name] {
          try group.broadcast(m)
          try group.broadcast(v)
        }
      }
    }
    guard root else { return }
    try OutputDirectory.create(dir, what: "the run directory")
    if lock == nil { lock = try RunLock(directory: dir) }
    AtomicFile.removeStaleTemporaries(in: dir)  // from a run killed while writing
    if overwrite && !resume {
      // Only now, with the new run's config, data and model checked: the earlier run's
      // checkpoints and the records made from them would otherwise be read (by report,
      // by its CI bands) as this run's until it wrote its own, or for good (a collapse).
      // The checkpoints this run reads stay, wherever they are (init_from may name the
      // earlier run's best.h5): they were loaded, but they are the user's.
      let reads = Set([settings.train.initFrom, settings.train.distillFrom].filter { !$0.isEmpty }.map(Paths.absolute))
      for name in CheckpointFiles.earlierRun(in: dir) where !reads.contains(Paths.absolute(dir + "/" + name)) {
        try Paths.remove(
          dir + "/" + name, what: "the earlier run's \(name)", hint: "Remove it by hand, or choose output.dir=NEW_DIR")
        replaced.append(name)
      }
    }
    if !resume || moved { try writeText(configText, to: configPath) }
  }

  /// The examples of a global batch of `examples` that rank `rank` of `ranks` takes, in
  /// `accumulate` micro-batches (consecutive ranges; some may be empty).
  static func microBatches(of examples: Int, rank: Int, ranks: Int, accumulate: Int) -> [Range<Int>] {
    let share = ProcessGroup.share(of: examples, rank: rank, size: ranks)
    return (0..<accumulate).map { k in
      let r = ProcessGroup.share(of: share.count, rank: k, size: accumulate)
      return (share.lowerBound + r.lowerBound)..<(share.lowerBound + r.upperBound)
    }
  }

  /// BatchNorm in training normalizes with the statistics of the examples a forward sees,
  /// which one example cannot give (PyTorch refuses it too): every micro-batch of every
  /// rank, the epoch's last, smaller batch included, must hold at least two.
  static func checkBatchNormBatches(_ model: any Model, data: TaskData, settings: RunSettings, ranks: Int) throws {
    guard model.parameters.all.contains(where: { $0.role == .buffer }) else { return }
    let (batch, k) = (settings.train.batchSize, settings.train.accumulate)
    let remainder = data.trainCount % batch
    var sizes: [Int] = []
    for n in [batch, remainder] where n > 0 {
      for r in 0..<ranks { sizes += microBatches(of: n, rank: r, ranks: ranks, accumulate: k).map(\.count) }
    }
    guard let smallest = sizes.filter({ $0 > 0 }).min(), smallest < 2 else { return }
    throw LCError.badConfig([
      ErrorDetail(
        what: "a BatchNorm model would train on a micro-batch of one example", location: "train.batch_size",
        expected: "at least 2 examples in every micro-batch (batch \(batch) over \(ranks) process(es) × "
          + "train.accumulate \(k); the epoch's last batch holds \(remainder == 0 ? batch : remainder) of the "
          + "\(data.trainCount) training examples)",
        got: "a micro-batch of \(smallest)",
        hint: "Choose a train.batch_size that leaves no lone example (or set data.train_limit)")
    ])
  }

  /// What a run trains, built as `train` builds it before its first step and without
  /// touching output.dir: the data (read with `start`'s tokenizer), the architecture the
  /// data completes (classes, vocabulary), and the model — `start`'s own when resuming
  /// (`location`: its file), else new, with `start`'s weights (train.init_from) checked
  /// against it: every parameter used and of the same shape, the same activations, heads
  /// and LayerNorm ε. `validate` runs it for a config with train.init_from.
  public static func prepare(
    _ settings: RunSettings, start: Checkpoint?, resume: Bool, location: String
  ) throws -> (data: TaskData, vocabulary: Vocabulary?, architecture: Architecture, model: any Model) {
    if let s = start, !resume, s.model.config.kind != settings.architecture.config.kind {
      // Another family altogether: its parameter lists (or its tokenizer) would say so only
      // in many lines.
      let (theirs, mine) = (s.model.config.kind.rawValue, settings.architecture.config.kind.rawValue)
      throw LCError.badConfig([
        ErrorDetail(
          what: "train.init_from holds a \(theirs) model, the config builds a \(mine)",
          location: settings.train.initFrom, expected: "model.kind: \(mine)", got: theirs,
          hint: "Start from a checkpoint of the same family, or set model.kind and the model.* sizes of the "
            + "checkpoint (`layercollapse inspect \(settings.train.initFrom) --config` prints them)")
      ])
    }
    let (data, vocabulary) = try TaskLoader.load(settings.data, vocabulary: start?.vocabulary)

    var arch = settings.architecture
    // Sizes the data decides: the vocabulary (tokenizer or corpus) and the classes.
    var tokens: Int? = nil
    if case .words(let t)? = vocabulary { tokens = t.count }
    if case .wordPiece(let w)? = vocabulary { tokens = w.count }
    // The tokenizer of the checkpoint it starts from, whose embedding may have more rows
    // than the tokenizer ids (an imported BERT padded to a round vocab_size): those rows.
    if let s = start, let t = tokens, s.vocabulary == vocabulary, s.model.config.vocabSize > t {
      tokens = s.model.config.vocabSize
    }
    arch.family.fit(&arch.config, outputs: data.outputs, tokens: tokens)
    if let s = start {
      // Blocks the starting checkpoint (init_from, or a resumed run's last.h5) already
      // collapsed stay collapsed: the sensitivity study collapses one more block per
      // round. LayerCollapse selection skips them. Its PReLU units stay PReLU with their
      // trained α (a model fine-tuned with LayerCollapse keeps the function it learned,
      // whichever units this run regularizes).
      let stored = s.model.architecture
      if stored.config.kind == arch.config.kind && stored.unitCount == arch.unitCount {
        for u in 0..<stored.unitCount where stored.collapsed[u] {
          arch.collapsed[u] = true
          arch.approximate[u] = stored.approximate[u]
        }
        for u in 0..<stored.unitCount where stored.activations[u] == .prelu { arch.activations[u] = .prelu }
      }
    }
    let model: any Model
    if let s = start, resume {
      guard s.model.architecture == arch else {
        throw LCError.other(
          ErrorDetail(
            what: "the checkpoint's architecture differs from the config's", location: location,
            hint: "Resume with the config the run was started with"))
      }
      model = s.model
    } else {
      model = ModelRegistry.build(arch, seed: settings.seed, alphaInit: settings.lc.alphaInit)
      if let s = start {
        // α is new when the LayerCollapse fine-tune starts from a trained model (and left
        // behind when a plain fine-tune starts from a LayerCollapse one). Anything else
        // must match both ways: a model smaller than its checkpoint (fewer layers, say)
        // would otherwise train on part of it without a word.
        let missing = model.copyParameters(from: s.model.parameters).filter { model.parameters[$0]?.role != .slope }
        let unused = s.model.parameters.all.filter { $0.role != .slope && model.parameters[$0.name] == nil }
          .map(\.name)
        func listed(_ names: [String]) -> String {
          names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", … (\(names.count) in all)" : "")
        }
        var problems: [ErrorDetail] = []
        if !missing.isEmpty {
          // A parameter of the same name in another shape: both shapes say which size differs.
          let reshaped = missing.compactMap { name -> String? in
            guard let theirs = s.model.parameters[name], let ours = model.parameters[name] else { return nil }
            return "\(name) \(theirs.shape) in the checkpoint, \(ours.shape) in the model"
          }
          let readsImages = model.family.fits(model.config.kind, task: .cifar10)
          problems.append(
            ErrorDetail(
              what: "train.init_from does not fit the model", location: settings.train.initFrom,
              expected: "parameters " + listed(missing),
              got: reshaped.isEmpty ? "no parameter of that name and shape" : listed(reshaped),
              hint: "Use the model.* sizes of the run that wrote the checkpoint (`layercollapse inspect "
                + "\(settings.train.initFrom) --config` prints them)"
                + (readsImages ? "; an image model's positions follow data.resize and model.patch_size" : "")))
        }
        if !unused.isEmpty {
          problems.append(
            ErrorDetail(
              what: "train.init_from holds parameters the model does not have", location: settings.train.initFrom,
              expected: "every parameter of the checkpoint used", got: listed(unused),
              hint: "A smaller model.* (e.g. fewer layers) than the checkpoint's would train on part of it; use "
                + "the checkpoint's sizes (`layercollapse inspect \(settings.train.initFrom) --config`)"))
        }
        // The weights were trained through their activations: another one (relu for a GELU
        // model) is a config slip, except LayerCollapse's PReLU swap either way.
        let (theirs, ours) = (s.model.architecture.activations, model.architecture.activations)
        let swapped = zip(ours, theirs).enumerated().filter { $0.1.0 != $0.1.1 && $0.1.0 != .prelu && $0.1.1 != .prelu }
        if theirs.count == ours.count, let (u, (mine, stored)) = swapped.first {
          problems.append(
            ErrorDetail(
              what: "model.activation differs from the one train.init_from was trained with",
              location: settings.train.initFrom, expected: stored.rawValue,
              got:
                "\(mine.rawValue) (\(model.architecture.unitName(u))\(swapped.count > 1 ? " and \(swapped.count - 1) more" : ""))",
              hint: "Set model.activation: \(stored.rawValue); lc.* selects the units that become PReLU"))
        }
        // Sizes that shape no parameter but change what the weights compute: attention
        // heads split the same projections otherwise, LayerNorm's ε moves every output.
        let (stored, mine) = (s.model.config, model.config)
        var unshaped: [(key: String, stored: String, mine: String)] = [
          ("model.layer_norm_eps", "\(stored.layerNormEpsilon)", "\(mine.layerNormEpsilon)")
        ]
        if (ModelKind.transformers + [.bert]).contains(mine.kind) {
          unshaped.append(("model.heads", "\(stored.heads)", "\(mine.heads)"))
        }
        if mine.kind == .encoder { unshaped.append(("model.pooling", stored.pooling.rawValue, mine.pooling.rawValue)) }
        for u in unshaped where u.stored != u.mine {
          problems.append(
            ErrorDetail(
              what: "\(u.key) differs from the one train.init_from was trained with",
              location: settings.train.initFrom, expected: u.stored, got: u.mine,
              hint: "Set \(u.key): \(u.stored) (`layercollapse inspect \(settings.train.initFrom) --config` prints "
                + "the checkpoint's model.* keys)"))
        }
        if !problems.isEmpty { throw LCError.badConfig(problems) }
      }
    }
    return (data, vocabulary, arch, model)
  }

  /// The checkpoint a config key names; one that is not there is said as `validate` says it.
  public static func loadCheckpoint(named key: String, _ path: String) throws -> Checkpoint {
    guard FileManager.default.fileExists(atPath: path) else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "\(key) names no file", location: key, expected: "a checkpoint", got: path,
          hint: "A run's best.h5 or last.h5, or the output of `layercollapse import`"))
    }
    return try Checkpoint.load(path)
  }

  /// The `train.distill_from` checkpoint as the teacher: its outputs must be the
  /// student's (classes, or a language model's vocabulary), it must read the same input
  /// (images, or tokens of the same vocabulary) and its images must be the same size.
  public static func teacher(_ s: RunSettings, student: any Model, vocabulary: Vocabulary?) throws -> Trainer.Teacher {
    let path = s.train.distillFrom
    let t = try loadCheckpoint(named: "train.distill_from", path)
    let (tc, sc) = (t.model.config, student.config)
    let readsImages = { (c: ModelConfig) in ModelRegistry.family(c.kind).fits(c.kind, task: .cifar10) }
    var problem: (expected: String, got: String)? = nil
    if tc.outputs != sc.outputs {
      problem = ("\(sc.outputs) outputs, as the student", "\(tc.outputs)")
    } else if readsImages(tc) != readsImages(sc) {
      problem = ("a model that reads \(readsImages(sc) ? "images" : "tokens"), as the student", tc.kind.rawValue)
    } else if readsImages(sc) && tc.imageSize != sc.imageSize {
      problem = ("\(sc.imageSize)×\(sc.imageSize) images, as the student", "\(tc.imageSize)×\(tc.imageSize)")
    } else if !readsImages(sc) && t.vocabulary != vocabulary {
      problem = ("the student's vocabulary (token ids mean the same)", "another vocabulary")
    }
    if let p = problem {
      throw LCError.badConfig([
        ErrorDetail(
          what: "the teacher does not fit the student", location: "train.distill_from (\(path))",
          expected: p.expected, got: p.got, hint: "Distil from a model trained on the same data")
      ])
    }
    // Images reach the student normalized with its mean and std; the teacher learned on
    // its own (stored with it): given another, its targets would be a stranger's.
    var renormalize: (scale: [Float], shift: [Float])? = nil
    if case .imageNormalization(let mine)? = vocabulary, case .imageNormalization(let theirs)? = t.vocabulary,
      mine != theirs
    {
      renormalize = Trainer.Teacher.renormalization(from: mine, to: theirs)
    }
    return Trainer.Teacher(
      model: t.model, weight: Float(s.train.distillWeight), temperature: Float(s.train.distillTemperature),
      renormalize: renormalize)
  }

  static func totalSteps(_ s: RunSettings, _ data: TaskData) -> Int {
    s.train.steps > 0 ? s.train.steps : s.train.epochs * data.stepsPerEpoch(batchSize: s.train.batchSize)
  }

  public var totalSteps: Int { TrainingRun.totalSteps(settings, data) }

  // MARK: run

  /// Trains to the end, evaluating and checkpointing on schedule. When `shouldStop`
  /// returns true (checked after every step) it saves last.h5 and throws `.interrupted`.
  @discardableResult
  public func run(events: (TrainingEvent) -> Void, shouldStop: () -> Bool = { false }) throws -> TrainingOutcome {
    let batchSize = settings.train.batchSize
    let accumulate = settings.train.accumulate
    let perEpoch = data.stepsPerEpoch(batchSize: batchSize)
    let total = totalSteps
    let arch = model.architecture
    let pulled = trainer.regularizer.units
    let selected = settings.lc.selectedUnits(arch)
    var banner = RunBanner(
      runDir: runDir, settings: settings, architecture: arch, parameters: arch.parameterCount,
      macsPerExample: arch.macsPerExample(), blasThreads: BLASThreads.count, totalSteps: total,
      stepsPerEpoch: perEpoch, trainExamples: data.trainCount, evalExamples: data.evalCount,
      exampleUnits: data.countUnits,
      lcUnits: trainer.regularizer.units, initFrom: initFrom, replaced: replaced, worldSize: group.size,
      rankBatch: (batchSize + group.size * accumulate - 1) / (group.size * accumulate), accumulate: accumulate)
    banner.unpulledUnits = (0..<arch.unitCount).filter {
      arch.activations[$0] == .prelu && !arch.collapsed[$0] && !pulled.contains($0)
    }
    banner.collapsedSelection = selected.filter { arch.collapsed[$0] }
    events(.started(banner))
    let root = group.isRoot
    let logs = root ? try RunLogs(dir: runDir, resumedAt: resumedFrom) : nil
    if let r = resumedFrom { events(.resumed(fromStep: r)) }
    let evalBatches = try data.evalBatches(batchSize: settings.train.evalBatchSize)
    let trainEvalBatches =
      settings.train.trainEvalLimit > 0
      ? try data.trainEvalBatches(batchSize: settings.train.evalBatchSize, limit: settings.train.trainEvalLimit) : []

    var plan: [[Int]] = []
    var planEpoch = -1
    var lastEval: EvaluationLog? = nil
    let segmentStart = DispatchTime.now().uptimeNanoseconds
    let elapsedBefore = progress.elapsedSeconds
    let stepsBefore = progress.globalStep
    var windowExamples = 0
    var windowStart = segmentStart
    func elapsed() -> Double { elapsedBefore + Double(DispatchTime.now().uptimeNanoseconds - segmentStart) * 1e-9 }

    while progress.globalStep < total {
      let step = progress.globalStep
      let epoch = step / perEpoch
      let index = step % perEpoch
      if epoch != planEpoch {
        plan = try data.epochPlan(epoch: epoch, batchSize: batchSize, seed: settings.seed)
        planEpoch = epoch
      }
      let batch = try data.trainBatch(plan: plan, index: index, epoch: epoch, batchSize: batchSize, seed: settings.seed)
      let report: StepReport
      if group.size == 1 && accumulate == 1 {
        report = trainer.step(batch.input, targets: batch.targets, rng: &dropoutRNG)
      } else {
        // This rank's share of the global batch, in `accumulate` micro-batches. Under MPI
        // each rank draws its dropout masks from its own stream, derived from the shared
        // one (which every rank advances alike, and the checkpoint keeps).
        let micro = TrainingRun.microBatches(
          of: batch.examples, rank: group.rank, ranks: group.size, accumulate: accumulate
        ).map { batch.examples($0) }
        if group.size == 1 {
          report = try trainer.step(micro, group: group, rng: &dropoutRNG)
        } else {
          var rankRNG = RNG(seed: dropoutRNG.next(), stream: "rank \(group.rank)")
          report = try trainer.step(micro, group: group, rng: &rankRNG)
        }
      }
      if report.diverged {
        throw diverged(
          at: step + 1,
          "loss \(report.loss.isNaN ? "NaN" : "\(report.loss)"), "
            + "gradient norm \(report.gradNorm.isNaN ? "NaN" : "\(report.gradNorm)"); the step was not applied")
      }
      progress.globalStep += 1
      windowExamples += batch.examples
      let done = progress.globalStep

      if done % settings.logEvery == 0 || done == total || done == 1 {
        let now = DispatchTime.now().uptimeNanoseconds
        let window = max(Double(now - windowStart) * 1e-9, 1e-9)
        let spent = elapsed()
        let rate = Double(done - stepsBefore) / max(spent - elapsedBefore, 1e-9)
        let log = StepLog(
          step: done, epoch: epoch + 1, epochStep: index + 1, stepsPerEpoch: perEpoch, totalSteps: total,
          loss: clean(report.loss), penalty: report.penalty,
          meanAlpha: report.alphas.isEmpty
            ? nil : report.alphas.values.reduce(0.0) { $0 + clean($1) } / Double(report.alphas.count),
          alphas: Dictionary(uniqueKeysWithValues: report.alphas.map { (String($0.key), clean($0.value)) }),
          learningRate: report.learningRate, gradNorm: clean(report.gradNorm),
          examplesPerSecond: Double(windowExamples) / window, elapsedSeconds: spent,
          etaSeconds: Double(total - done) / max(rate, 1e-9))
        try logs?.append(log)
        events(.step(log))
        windowExamples = 0
        windowStart = now
      }

      let epochEnds = (index + 1 == perEpoch)
      let evalDue = settings.train.evalEvery > 0 ? done % settings.train.evalEvery == 0 : epochEnds
      if evalDue || done == total {
        progress.elapsedSeconds = elapsed()
        let e = try evaluate(step: done, epoch: epoch + 1, evalBatches, trainEvalBatches)
        lastEval = e
        try logs?.append(e)
        events(.evaluated(e))
        // best.h5 before last.h5, which records the best step: a kill between the two
        // leaves a best.h5 ahead of last.h5, and resuming from last.h5 replays the same
        // steps to the same evaluation and writes the same best.h5 again. The other
        // order would leave last.h5 naming a best step whose weights were never written.
        if e.isBest && root {
          try saveCheckpoint(bestCheckpoint)
          events(.saved(path: bestCheckpoint))
        }
        if root {
          try saveCheckpoint(lastCheckpoint)
          events(.saved(path: lastCheckpoint))
        }
      }
      // A stop requested on any rank stops every rank after this same step.
      if done < total, try group.any(shouldStop()) {
        progress.elapsedSeconds = elapsed()
        if root {
          try saveCheckpoint(lastCheckpoint)
          events(.saved(path: lastCheckpoint))
        }
        throw LCError.interrupted(
          ErrorDetail(
            what: "stopped after step \(done) of \(total); saved \(lastCheckpoint)", location: runDir,
            hint: "Continue with the same command and --resume (with --stop-after left out or at a later step)"))
      }
    }
    let final: EvaluationLog
    if let e = lastEval {
      final = e
    } else {
      // Resumed at the very end: evaluate the final weights once more for the summary.
      final = try evaluate(step: total, epoch: (total - 1) / perEpoch + 1, evalBatches, trainEvalBatches)
    }
    if root {
      try EvalRecord(
        checkpoint: lastCheckpoint, architecture: model.architecture, metrics: final.eval, train: final.train,
        step: final.step, data: settings.data.resolvedPath
      ).write(to: runDir + "/" + CheckpointFiles.runEvaluation)
    }
    return TrainingOutcome(
      runDir: runDir, final: final, bestScore: progress.bestScore ?? final.eval.score,
      bestStep: progress.bestStep ?? final.step)
  }

  /// Under MPI the ranks split the batches and reduce the sums: every rank gets the same
  /// metrics, and so the same best-checkpoint decisions.
  private func evaluate(step: Int, epoch: Int, _ evalBatches: [Batch], _ trainBatches: [Batch]) throws
    -> EvaluationLog
  {
    let eval = try Evaluator.evaluate(model, batches: evalBatches, group: group)
    let train = trainBatches.isEmpty ? nil : try Evaluator.evaluate(model, batches: trainBatches, group: group)
    let isBest = progress.bestScore.map { eval.score > $0 } ?? true
    if isBest {
      progress.bestScore = eval.score
      progress.bestStep = step
    }
    var alphas: [Int: Float] = [:]
    for (b, a) in model.alphas { alphas[b] = a }
    return EvaluationLog(step: step, epoch: epoch, eval: eval, train: train, isBest: isBest, alphas: alphas)
  }

  /// Fails on every rank unless all run the same config and architecture, built by the
  /// same executable: ranks that disagree would train different models and average their
  /// gradients into nonsense.
  static func checkSameRun(_ group: ProcessGroup, configText: String, architecture: Architecture) throws {
    let archJSON = (try? JSONFile.encoder().encode(architecture)) ?? Data()
    var configHash = StableHash()
    configHash.add(Array(configText.utf8))
    configHash.add(Array(archJSON))
    guard try group.agree(on: configHash.value) else {
      throw LCError.usage(
        ErrorDetail(
          what: "the ranks run different configs or architectures", location: "rank \(group.rank)",
          hint: "Start every rank with the same config file, overrides and data (mpirun passes the same "
            + "arguments to all; check the file is the same on every node)"))
    }
    var binaryHash = StableHash()
    if let binary = FileManager.default.contents(atPath: "/proc/self/exe") { binaryHash.add(Array(binary)) }
    guard try group.agree(on: binaryHash.value) else {
      throw LCError.usage(
        ErrorDetail(
          what: "the ranks run different layercollapse executables", location: "rank \(group.rank)",
          hint: "Install the same build on every node (the same commit, built the same way)"))
    }
  }

  /// Stops a run that can no longer train, keeping every checkpoint on disk as it is.
  private func diverged(at step: Int, _ what: String) -> LCError {
    let kept = savedStep.map { "last.h5 (step \($0)) is kept" } ?? "no checkpoint had been written yet"
    var hint =
      "Lower train.lr, add train.warmup_steps, or set train.grad_clip (now \(settings.train.optimizer.gradClip))"
    if settings.lc.mode == .decoupled {
      hint += "; the decoupled pull overshoots unless 2·lr·alpha_lr_scale·lc.lambda < 2"
    }
    return LCError.diverged(
      ErrorDetail(what: "training diverged at step \(step): \(what); \(kept)", location: runDir, hint: hint))
  }

  private func saveCheckpoint(_ path: String) throws {
    // Never save weights a diverged update produced (a finite loss can still come
    // before them, e.g. from an overflowing update at an evaluation step).
    if let bad = model.parameters.firstNonFinite() {
      throw diverged(at: progress.globalStep, "parameter \(bad.parameter.name) is no longer finite")
    }
    progress.epoch = progress.globalStep / data.stepsPerEpoch(batchSize: settings.train.batchSize)
    try Checkpoint(
      model: model, configText: configText, vocabulary: vocabulary, optimizer: trainer.state, progress: progress,
      dropoutRNG: dropoutRNG
    ).save(to: path)
    if path == lastCheckpoint { savedStep = progress.globalStep }
  }
}

/// A float as the shortest decimal that reads back to it (0.1, not 0.10000000149).
func clean(_ f: Float) -> Double { Double(f.description) ?? Double(f) }

/// FNV-1a, 64 bits: a hash that is the same in every process (Swift's `Hasher` is seeded
/// per process), for checking that ranks agree.
struct StableHash {
  private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

  mutating func add(_ bytes: [UInt8]) {
    for b in bytes {
      value ^= UInt64(b)
      value &*= 0x0000_0100_0000_01b3
    }
  }
}
