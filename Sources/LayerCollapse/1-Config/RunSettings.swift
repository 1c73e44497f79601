import Foundation
import Kernels

/// Which dataset a run reads.
public enum DataTaskKind: String, Sendable, Codable, CaseIterable {
  case sst2
  case cifar10
  case cifar100
  case cifar100Coarse = "cifar100-coarse"
  case text
}

extension DataTaskKind {
  /// The classes of an image task's data set; nil where the data decides (a TSV's labels
  /// or `data.classes`, a corpus's vocabulary).
  public var fixedClasses: Int? {
    switch self {
    case .cifar10: 10
    case .cifar100: 100
    case .cifar100Coarse: 20
    case .sst2, .text: nil
    }
  }
}

/// `data.*`: where the data is and how to read it.
public struct DataSettings: Sendable, Equatable {
  public var task: DataTaskKind
  /// Data root; empty means $LAYERCOLLAPSE_DATA, else ../shared/datasets.
  public var root: String
  /// Below the root: a directory (sst2, cifar) or the corpus file (text).
  public var path: String
  public var trainLimit: Int?
  public var evalLimit: Int?
  /// Text classification: the number of classes; nil takes them from the training labels,
  /// each of which must then occur in the evaluation file.
  public var classes: Int?
  public var augment: Bool
  /// Tokens per sequence (text classification, including [CLS]) or per window (corpus).
  public var maxLen: Int
  public var vocabSize: Int
  public var minFreq: Int
  public var level: CorpusVocabulary.Kind
  public var trainFraction: Double
  public var bucketByLength: Bool
  /// Images: the side they are resized to (nil: 32, as stored), and the per-channel
  /// normalization (nil: computed from the training split).
  public var resize: Int? = nil
  public var normalization: ChannelStats? = nil
  /// Training examples (a corpus: windows) set aside at the end of the training split,
  /// never trained on (`TaskData.holdingOut`); 0: none.
  public var holdout: Int = 0

  /// Side of the images the model reads.
  public var imageSide: Int { resize ?? ImageSplit.side }

  /// The data root after applying the environment default.
  public var resolvedRoot: String { resolveDataRoot(configured: root.isEmpty ? nil : root) }
  /// `path` under the root (an absolute `path` is kept as is).
  public var resolvedPath: String { path.hasPrefix("/") ? path : resolvedRoot + "/" + path }
}

/// `train.*`: the optimization schedule.
public struct TrainSettings: Sendable, Equatable {
  public var epochs: Int
  /// When > 0, the run lasts this many steps instead of `epochs`.
  public var steps: Int
  public var batchSize: Int
  public var evalBatchSize: Int
  /// Evaluate every this many steps; 0 means at the end of every epoch.
  public var evalEvery: Int
  /// Training examples re-evaluated (unaugmented) at each evaluation, for the train–validation gap.
  public var trainEvalLimit: Int
  /// A checkpoint whose weights start this run (the paper's LC fine-tune of a trained model).
  public var initFrom: String
  public var optimizer: OptimizerSettings
  /// Knowledge distillation: a trained checkpoint whose logits soften the loss,
  /// `(1 − weight)·CE + weight·T²·KL(teacher_T ‖ student_T)`; empty: none.
  public var distillFrom: String = ""
  public var distillWeight: Double = 0.5
  public var distillTemperature: Double = 4
  /// Micro-batches per optimizer step: `batchSize` examples (over all processes) go
  /// through in this many forward/backward passes, their gradients summed before the
  /// update (less memory; under MPI, one allreduce per step either way).
  public var accumulate: Int = 1
}

/// Everything a `train` run needs, decoded from a config file.
public struct RunSettings: Sendable, Equatable {
  public var seed: UInt64
  public var data: DataSettings
  /// The model's shape; `vocabSize`, `classes` and `maxLen` are filled from the data.
  public var model: ModelConfig
  public var lc: LayerCollapseSettings
  public var train: TrainSettings
  public var logEvery: Int
  public var outputDir: String

  /// The per-block activations: LayerCollapse-selected blocks get PReLU.
  public var architecture: Architecture {
    var arch = Architecture(config: model)
    for u in lc.selectedUnits(arch) { arch.activations[u] = .prelu }
    return arch
  }

  /// Reads every setting, checking types, ranges and cross-field rules; throws
  /// `.badConfig` listing every problem, unknown keys with a did-you-mean among them.
  /// Also returns the resolved tree (every default filled in) to record in the run.
  public static func decode(_ tree: ConfigTree) throws -> (settings: RunSettings, resolved: ConfigTree) {
    let r = ConfigReader(tree)
    let settings = read(r)
    try r.finish()
    // One process holds one micro-batch at a time.
    let train = settings.train
    let micro = (train.batchSize + train.accumulate - 1) / train.accumulate
    try checkMemory(settings.model, data: settings.data, batchSize: micro, reader: r)
    return (settings, r.resolved)
  }

  /// Every key a config of this kind may set (its resolved config's keys, defaults
  /// included): what a sweep may vary. Problems of the tree are left to `decode`.
  public static func settingKeys(of tree: ConfigTree) -> [String] {
    let r = ConfigReader(tree.removing("sweep"))
    _ = read(r)
    return r.resolved.valuePaths
  }

  /// Reads every setting into `r` (which collects the problems and the resolved tree).
  private static func read(_ r: ConfigReader) -> RunSettings {
    let pos = 1...Int.max
    let nonNegative = 0...Int.max
    // Counts of examples and steps: far beyond any run, and small enough that their
    // products with a sequence length (≤ 4096) or steps per epoch stay inside Int.
    let counts = 0...(1 << 40)
    let seed = r.int("seed", default: 1, range: nonNegative)
    let task = r.string("data.task", oneOf: DataTaskKind.allCases.map(\.rawValue))
    let kind = DataTaskKind(rawValue: task) ?? .sst2
    let defaultPath: String =
      switch kind {
      case .sst2: "sst2"
      case .cifar10: "cifar10-partial"
      case .cifar100, .cifar100Coarse: "cifar100"
      case .text: "text/austen.txt"
      }
    let trainLimit = r.int("data.train_limit", default: 0, range: counts)
    let evalLimit = r.int("data.eval_limit", default: 0, range: counts)
    let classes = r.int("data.classes", default: 0, range: 0...(1 << 24))
    r.require(
      classes != 1, at: "data.classes", "a classifier needs at least 2 classes",
      expected: "0 (from the labels) or ≥ 2", got: "1")
    if classes > 0 && kind != .sst2 {
      r.addError(
        at: "data.classes",
        "data.classes applies to text classification (sst2) only; image data sets fix their classes",
        expected: "0", got: "\(classes)")
    }
    let images = kind != .sst2 && kind != .text
    var data = DataSettings(
      task: kind, root: r.string("data.root", default: ""), path: r.string("data.path", default: defaultPath),
      trainLimit: trainLimit == 0 ? nil : trainLimit, evalLimit: evalLimit == 0 ? nil : evalLimit,
      classes: classes == 0 ? nil : classes, augment: r.bool("data.augment", default: images),
      maxLen: r.int("data.max_len", default: kind == .text ? 128 : 64, range: 2...4096),
      vocabSize: r.int("data.vocab_size", default: 8192, range: 5...1_000_000),
      minFreq: r.int("data.min_freq", default: 1, range: pos),
      level: CorpusVocabulary.Kind(
        rawValue: r.string("data.level", default: "character", oneOf: CorpusVocabulary.Kind.allCases.map(\.rawValue)))
        ?? .character,
      trainFraction: r.double("data.train_fraction", default: 0.9, range: 0.01...0.99),
      bucketByLength: r.bool("data.bucket_by_length", default: false))
    data.holdout = r.int("data.holdout", default: 0, range: counts)
    let resize = r.int("data.resize", default: 0, range: 0...1024)
    let mean = r.doubles("data.mean", default: [], range: -1000...1000)
    let std = r.doubles("data.std", default: [], range: 1e-6...1000)
    if !images && (resize != 0 || !mean.isEmpty || !std.isEmpty) {
      r.addError(
        at: resize != 0 ? "data.resize" : !mean.isEmpty ? "data.mean" : "data.std",
        "data.resize, data.mean and data.std apply to image data sets only", expected: "no such key for \(task)")
    }
    r.require(
      mean.count == std.count && (mean.isEmpty || mean.count == 3), at: mean.count == 3 ? "data.std" : "data.mean",
      "give three means and three standard deviations (R, G, B), or neither",
      expected: "[r, g, b] for both data.mean and data.std", got: "\(mean.count) means, \(std.count) deviations")
    data.resize = resize > 0 ? resize : nil
    if mean.count == 3 && std.count == 3 {
      data.normalization = ChannelStats(mean: mean.map { Float($0) }, std: std.map { Float($0) })
    }

    let modelKind = r.string("model.kind", oneOf: ModelKind.allCases.map(\.rawValue))
    let defaults =
      ModelKind(rawValue: modelKind).map { ModelRegistry.family($0).sharedDefaults } ?? SharedModelDefaults()
    // Upper bounds far beyond any machine's memory (checked below), so that no size
    // arithmetic can overflow before that check.
    let size = 1...(1 << 24)
    let dModel = r.int("model.d_model", default: 128, range: size)
    let heads = r.int("model.heads", default: 4, range: size)
    let ratio = r.double("model.mlp_ratio", default: 4, range: 0.01...64)
    let hiddenDefault = r.contains("model.mlp_ratio") ? 0 : defaults.mlpHidden ?? 0
    let hiddenSetting = r.int("model.mlp_hidden", default: hiddenDefault, range: 0...(1 << 24))
    let activation = r.string(
      "model.activation", default: defaults.activation.rawValue,
      oneOf: Activation.allCases.filter { $0 != .prelu }.map(\.rawValue))
    var model = ModelConfig(
      kind: ModelKind(rawValue: modelKind) ?? .encoder, dModel: dModel, heads: heads,
      layers: r.int("model.layers", default: 4, range: size),
      mlpHidden: hiddenSetting > 0 ? hiddenSetting : max(1, Int((ratio * Double(dModel)).rounded())),
      dropout: Float(r.double("model.dropout", default: defaults.dropout, range: 0...0.9)),
      pooling: Pooling(rawValue: r.string("model.pooling", default: "cls", oneOf: Pooling.allCases.map(\.rawValue)))
        ?? .cls,
      patchSize: r.int("model.patch_size", default: 4, range: pos),
      tieWeights: r.bool("model.tie_weights", default: false),
      activation: Activation(rawValue: activation) ?? .gelu)
    model.maxLen = data.maxLen
    model.imageSize = data.imageSide
    let family = ModelRegistry.family(model.kind)
    family.readConfig(r, into: &model)
    r.require(
      model.patchSize <= 0 || data.imageSide % model.patchSize == 0, at: "model.patch_size",
      "patch size must divide the \(data.imageSide)-pixel image",
      expected: "a divisor of \(data.imageSide)" + (data.resize == nil ? " (data.resize changes the side)" : ""),
      got: "\(model.patchSize)")
    let fitting = ModelKind.allCases.filter { ModelRegistry.family($0).fits($0, task: kind) }
    if let k = ModelKind(rawValue: modelKind), !fitting.contains(k) {
      r.addError(
        at: "model.kind", "model.kind does not fit data.task = \(task)",
        expected: fitting.map(\.rawValue).joined(separator: " or "), got: k.rawValue)
    }

    let lcBlocks = r.int("lc.blocks", default: 0, range: nonNegative)
    let lcFraction = r.double("lc.fraction", default: 0, range: 0...1)
    let lcUnits = r.ints("lc.units", default: [], range: nonNegative)
    var lc = LayerCollapseSettings(
      lambda: r.double("lc.lambda", default: 0, range: 0...Double.infinity),
      blocks: lcBlocks > 0 ? lcBlocks : nil, fraction: lcFraction > 0 ? lcFraction : nil,
      alphaInit: Float(r.double("lc.alpha_init", default: defaults.alphaInit, range: -10...10)),
      threshold: Float(r.double("lc.threshold", default: 0.05, range: 0...Double.infinity)),
      mode: RegularizerMode(
        rawValue: r.string("lc.mode", default: "penalty", oneOf: RegularizerMode.allCases.map(\.rawValue))) ?? .penalty,
      alphaLearningRateScale: r.double("lc.alpha_lr_scale", default: 1, range: 0...1000))
    // |α − 1| < 1 would already merge a ReLU (α = 0): a threshold that large is no longer
    // "almost linear" (`collapse --force` merges regardless, labelled approximate).
    r.require(
      lc.threshold > 0 && lc.threshold < 1, at: "lc.threshold", "threshold out of range",
      expected: "0 < threshold < 1 (the paper: 0.05)", got: "\(lc.threshold)")
    r.require(
      lcBlocks == 0 || lcFraction == 0, at: "lc.fraction", "set lc.blocks or lc.fraction, not both",
      got: "blocks = \(lcBlocks), fraction = \(lcFraction)")
    if !lcUnits.isEmpty {
      lc.units = Array(Set(lcUnits)).sorted()
      r.require(
        lcBlocks == 0 && lcFraction == 0, at: "lc.units", "set lc.units or lc.blocks/lc.fraction, not both",
        got: "units = \(lcUnits), blocks = \(lcBlocks), fraction = \(lcFraction)")
      let unitCount = model.layers * ModelRegistry.family(model.kind).unitsPerBlock
      if let bad = lcUnits.first(where: { $0 >= unitCount }), model.layers > 0 {
        r.addError(
          at: "lc.units", "lc.units names a unit the model does not have", expected: "0…\(unitCount - 1)",
          got: "\(bad)")
      }
    }
    // A model that starts collapsed (a VGG with head_linears: 1) has no activation for
    // LayerCollapse to act on: selecting units there would be silently ignored.
    if ModelRegistry.family(model.kind).startsCollapsed(model) && (lcBlocks > 0 || lcFraction > 0 || !lcUnits.isEmpty) {
      r.addError(
        at: lcUnits.isEmpty ? (lcBlocks > 0 ? "lc.blocks" : "lc.fraction") : "lc.units",
        "LayerCollapse units selected on a model without activations between its linears",
        expected: "lc.blocks: 0 (a head of 1 linear, model.head_linears: 1, is already the collapsed shape)")
    }
    if lcBlocks > model.layers && model.layers > 0 {
      r.addError(
        at: "lc.blocks", "more LayerCollapse blocks than the model has", expected: "≤ \(model.layers)",
        got: "\(lcBlocks)")
    }

    let lr = r.double("train.lr", default: 1e-3, range: 0...10)
    r.require(lr > 0, at: "train.lr", "learning rate must be positive", expected: "> 0", got: "\(lr)")
    let optimizer = OptimizerSettings(
      learningRate: lr, minLearningRate: r.double("train.min_lr", default: 0, range: 0...10),
      warmupSteps: r.int("train.warmup_steps", default: 0, range: counts), totalSteps: 0,
      weightDecay: r.double("train.weight_decay", default: 0.01, range: 0...10),
      beta1: r.double("train.beta1", default: 0.9, range: 0...0.999_999),
      beta2: r.double("train.beta2", default: 0.999, range: 0...0.999_999_999),
      epsilon: r.double("train.eps", default: 1e-8, range: 0...1),
      gradClip: r.double("train.grad_clip", default: 1, range: 0...Double.infinity))
    var train = TrainSettings(
      epochs: r.int("train.epochs", default: 1, range: 0...(1 << 20)),
      steps: r.int("train.steps", default: 0, range: counts),
      batchSize: r.int("train.batch_size", default: 32, range: 1...(1 << 32)),
      evalBatchSize: r.int("train.eval_batch_size", default: 256, range: 1...(1 << 32)),
      evalEvery: r.int("train.eval_every", default: 0, range: counts),
      trainEvalLimit: r.int("train.train_eval_limit", default: 1000, range: counts),
      initFrom: r.string("train.init_from", default: ""), optimizer: optimizer,
      accumulate: r.int("train.accumulate", default: 1, range: 1...(1 << 20)))
    train.distillFrom = r.string("train.distill_from", default: "")
    train.distillWeight = r.double("train.distill_weight", default: 0.5, range: 0...1)
    train.distillTemperature = r.double("train.distill_temperature", default: 4, range: 0.01...100)
    r.require(
      train.accumulate <= train.batchSize, at: "train.accumulate", "more micro-batches than examples in a batch",
      expected: "at most train.batch_size = \(train.batchSize)", got: "\(train.accumulate)")
    r.require(
      train.epochs > 0 || train.steps > 0, at: "train.epochs", "the run has no steps",
      expected: "train.epochs > 0 or train.steps > 0")
    let logEvery = r.int("log.every", default: 50, range: pos)
    let outputDir = r.string("output.dir")
    r.require(!outputDir.isEmpty, at: "output.dir", "output.dir must name a directory")
    return RunSettings(
      seed: UInt64(seed), data: data, model: model, lc: lc, train: train, logEvery: logEvery, outputDir: outputDir)
  }

  /// Refuses (`.badConfig`, exit 78) sizes whose training step would not fit in this
  /// machine's memory, before anything is allocated or written, naming the keys that
  /// decide the larger part and how much it would need. The data decides the vocabulary
  /// and classes later; the largest the task allows stands in for them here.
  static func checkMemory(_ model: ModelConfig, data: DataSettings, batchSize: Int, reader r: ConfigReader) throws {
    var sized = model
    switch data.task {
    case .sst2: (sized.vocabSize, sized.classes) = (data.vocabSize, data.classes ?? 2)
    case .text: sized.vocabSize = 256  // bytes; a character vocabulary is rarely larger
    case .cifar10, .cifar100, .cifar100Coarse: sized.classes = data.task.fixedClasses ?? sized.classes
    }
    let need = ModelRegistry.family(model.kind).trainingMemory(sized, batchSize: batchSize)
    let have = MemoryEstimate.available
    guard need.totalBytes > have else { return }
    func gib(_ b: Double) -> String { String(format: "%.1f GiB", b / 1_073_741_824) }
    let parametersDominate = need.parameterBytes >= need.activationBytes
    let keys =
      parametersDominate
      ? ["model.d_model", "model.layers", "model.mlp_hidden"]
      : [
        "train.batch_size", data.task == .sst2 || data.task == .text ? "data.max_len" : "model.patch_size",
        "model.d_model",
      ]
    let sizes =
      parametersDominate
      ? "d_model \(model.dModel), \(model.layers) layers, MLP hidden \(model.mlpHidden)"
      : "batch \(batchSize) × \(sized.sequenceLength) positions"
    throw LCError.badConfig([
      ErrorDetail(
        what: "the model does not fit in this machine's memory (\(sizes))",
        location: keys.map { "\($0) (\(r.location(of: $0)))" }.joined(separator: ", "),
        expected: "at most \(gib(have)), the memory this machine has",
        got: String(
          format:
            "about %@: %.3g parameters take %@ with their gradients and AdamW moments, activations at batch %d take %@",
          gib(need.totalBytes), need.parameters, gib(need.parameterBytes), batchSize, gib(need.activationBytes)),
        hint: parametersDominate ? "Use a smaller model" : "Use a smaller train.batch_size")
    ])
  }

  /// Loads `path`, applies `key=value` overrides and decodes. Returns the overrides applied
  /// so the caller can echo them.
  public static func load(path: String, overrides: [String]) throws -> (
    settings: RunSettings, resolved: ConfigTree, applied: [AppliedOverride]
  ) {
    var tree = try ConfigTree.load(path: path, pipes: true)
    let applied = try tree.apply(try ConfigOverride.parse(overrides))
    let (settings, resolved) = try decode(tree)
    return (settings, resolved, applied)
  }
}
