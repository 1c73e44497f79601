import Kernels

/// What every model family gives training, the regularizer, evaluation, checkpoints,
/// collapse and the command line. A family (one file under `3-Model/`) implements it and
/// registers its `ModelFamily` in `ModelRegistry`.
///
/// A model's LayerCollapse units are its collapsible chains (`Linear → act → Linear`),
/// numbered from the input end: a transformer has one per block (its MLP), an MLP-Mixer
/// two (token mixing, then channel mixing). `Architecture.activations` and `.collapsed`
/// hold one entry per unit.
public protocol Model: AnyObject {
  /// The shape, saved with every checkpoint.
  var architecture: Architecture { get }
  /// Every parameter in a fixed order, sealed into two flat buffers.
  var parameters: ParameterSet { get }

  /// Logits: (B, K) for a classifier, (B·T, V) for a language model. Keeps what
  /// `backward` needs; `training` turns dropout on, its masks drawn from `rng`.
  @discardableResult
  func forward(_ input: ModelInput, training: Bool, rng: inout RNG) -> Tensor
  /// The same logits without dropout and without keeping what `backward` needs; a large
  /// batch may run in chunks of about `rowsPerChunk` rows (equal to one pass up to rounding).
  @discardableResult
  func infer(_ input: ModelInput, rowsPerChunk: Int) -> Tensor
  /// Mean cross-entropy of the last forward's (or infer's) logits; with a `teacher`, mixed
  /// with its soft targets (`DistillationTarget`), and `backward` follows the mix.
  func loss(targets: [Int32], teacher: DistillationTarget?) -> Float
  /// Softmax of the logits of the last `loss` call.
  var probabilities: Tensor { get }
  /// Adds d(mean loss)/d(parameter) into every gradient, for the last forward and loss.
  func backward()

  /// The PReLU slope α of `unit`, while it is an uncollapsed PReLU.
  func alphaParameter(unit: Int) -> Parameter?
  /// The affine maps of `unit`'s chain (nil once collapsed), in order.
  func chain(unit: Int) -> [(weight: Parameter, bias: Parameter)]?
  /// The linear that replaced `unit` in a model where it is collapsed.
  func collapsedLinear(unit: Int) -> (weight: Parameter, bias: Parameter)?
  /// `unit`'s input and output in the last forward, as the rows the chain maps
  /// (input · Wᵀ + b), for the collapse report's measured deviation.
  func unitProbe(unit: Int) -> (input: Tensor, output: Tensor)?
  /// Writes the merged weights of `units` (each now collapsed in `merged`'s architecture)
  /// into `merged`, whose other parameters are already this model's. The default merges
  /// each unit's own chain into its collapsed linear; a family whose units share linears
  /// (VGG's head) merges them together.
  func writeCollapsed(units: [Int], into merged: any Model)
}

extension Model {
  /// Mean cross-entropy of the last forward's (or infer's) logits.
  public func loss(targets: [Int32]) -> Float { loss(targets: targets, teacher: nil) }

  public func writeCollapsed(units: [Int], into merged: any Model) {
    for i in units {
      guard let chain = chain(unit: i), let target = merged.collapsedLinear(unit: i) else {
        preconditionFailure("unit \(i): merging needs a full chain into a collapsed linear")
      }
      var linear = AffineMap(weight: chain[0].weight.value, bias: chain[0].bias.value)
      for next in chain.dropFirst() {
        linear = ChainMerge.compose(linear, AffineMap(weight: next.weight.value, bias: next.bias.value))
      }
      target.weight.value.copy(from: linear.weight)
      target.bias.value.copy(from: linear.bias)
    }
  }

  public var config: ModelConfig { architecture.config }
  public var family: any ModelFamily.Type { ModelRegistry.family(config.kind) }

  /// Evaluation forward: no dropout, no randomness.
  @discardableResult
  public func forward(_ input: ModelInput) -> Tensor {
    var unused = RNG(state: 0)
    return forward(input, training: false, rng: &unused)
  }

  @discardableResult
  public func infer(_ input: ModelInput) -> Tensor { infer(input, rowsPerChunk: ModelRegistry.inferenceRows) }

  /// A classifier's inference in chunks of `per` samples (the last padded with copies of
  /// its last sample): one evaluation forward per chunk, the (B, K) logits gathered; one
  /// forward when the batch fits a chunk. For `infer` implementations.
  func logitsInChunks(_ input: ModelInput, batch b: Int, perChunk per: Int) -> Tensor {
    logitsInChunks(input, batch: b, perChunk: per, workers: [self]) { model, chunk in model.forward(chunk) }
  }

  /// As above, each chunk run by `pass` on one of `workers` (`spreadPasses`: with several,
  /// one per thread, each on one core).
  func logitsInChunks<W>(
    _ input: ModelInput, batch b: Int, perChunk per: Int, workers: [W], pass: (W, ModelInput) -> Tensor
  ) -> Tensor {
    if b <= per { return pass(workers[0], input) }
    let k = config.classes
    let all = Tensor([b, k])
    spreadPasses((b + per - 1) / per, over: workers) { chunk, worker in
      let (start, n) = (chunk * per, min(per, b - chunk * per))
      let part = pass(worker, input.samples(start..<(start + n), paddedTo: per))
      Rows.copy(n, width: k, from: part, row: 0, to: all, row: start)
    }
    return all
  }

  /// The α of each unit that has one.
  public var alphas: [(unit: Int, alpha: Float)] {
    (0..<architecture.unitCount).compactMap { u in alphaParameter(unit: u).map { (u, $0.value[0]) } }
  }

  /// Copies every parameter of `other` whose name and shape match; returns the names of
  /// this model's parameters that had no match.
  @discardableResult
  public func copyParameters(from other: ParameterSet) -> [String] {
    var missing: [String] = []
    for p in parameters.all {
      if let q = other[p.name], q.shape == p.shape { p.value.copy(from: q.value) } else { missing.append(p.name) }
    }
    return missing
  }

  /// Initialization by role: N(0, 0.02) weights, embeddings and tokens (or the
  /// parameter's `initStd`), zero biases and shifts, unit norm scales, α = `alphaInit`.
  public func initialize(rng: inout RNG, alphaInit: Float) {
    for p in parameters.all {
      switch p.role {
      case .slope: p.value.fill(alphaInit)
      case .weight, .embedding, .token: rng.fillNormal(p.value, std: p.initStd ?? 0.02)
      case .bias, .normShift: p.value.zero()
      case .normScale: p.value.fill(1)
      case .buffer: break  // its module sets it (running statistics)
      }
    }
  }
}

/// A model family: how to build one from an architecture, what its units are called, and
/// its closed-form sizes. One conforming type per family file, registered in
/// `ModelRegistry`.
public protocol ModelFamily {
  /// LayerCollapse units per block.
  static var unitsPerBlock: Int { get }
  /// The unit's module path (`blocks.3.mlp`), for tables and logs.
  static func unitName(_ unit: Int) -> String
  /// A model of this architecture with every parameter zero (norm scales one).
  static func build(_ architecture: Architecture) -> any Model
  /// Every scalar parameter.
  static func parameterCount(_ architecture: Architecture) -> Int
  /// The parameters of `unit`: its chain, or (`collapsed`) the one linear replacing it.
  static func unitParameters(_ architecture: Architecture, unit: Int, collapsed: Bool) -> Int
  /// Multiply–accumulates of one forward pass for one example, every position counted.
  static func macsPerExample(_ architecture: Architecture, time: Int?) -> Int
  /// The multiply–accumulates this implementation computes for one example (may skip work
  /// that cannot reach the output, e.g. a pruned last block).
  static func macsComputedPerExample(_ architecture: Architecture, time: Int?) -> Int
  /// Memory a training step holds, estimated before anything is allocated.
  static func trainingMemory(_ config: ModelConfig, batchSize: Int) -> MemoryEstimate

  /// Whether a model of `kind` reads the data of `task` (`RunSettings` checks it).
  static func fits(_ kind: ModelKind, task: DataTaskKind) -> Bool
  /// Reads the family's own `model.*` keys into `config`, and checks its cross-field
  /// rules, after the keys every family shares.
  static func readConfig(_ reader: ConfigReader, into config: inout ModelConfig)
  /// Sets the sizes the data decides: `outputs` (classes, or a language model's
  /// vocabulary) and, for token models, the tokenizer's `tokens`.
  static func fit(_ config: inout ModelConfig, outputs: Int, tokens: Int?)
  /// Whether the model predicts a token at every position (a language model: evaluation
  /// reports perplexity).
  static func predictsEveryPosition(_ kind: ModelKind) -> Bool
  /// Positions the model sees at most (tokens, or patches and any extra token).
  static func sequenceLength(_ config: ModelConfig) -> Int
  /// The sizes that matter for this family, for banners and `inspect`.
  static func sizeDescription(_ config: ModelConfig) -> String
  /// `batch` random inputs of the shape the model reads, and random targets (benchmarks
  /// and tests; the values follow `rng`).
  static func exampleBatch(_ config: ModelConfig, batch: Int, rng: inout RNG) -> (input: ModelInput, targets: [Int32])
  /// Whether a new model's units are already single linears (a VGG head of one linear).
  static func startsCollapsed(_ config: ModelConfig) -> Bool
  /// The defaults of the keys every family shares, as this family wants them: the generic
  /// reader reads those keys with these, so the resolved config records what was built.
  static var sharedDefaults: SharedModelDefaults { get }
  /// What `build` and the forward pass need of a config that did not come through
  /// `readConfig` (a checkpoint's stored architecture, which a damaged file can change):
  /// each problem in words, none for a config this family can run.
  static func storedProblems(_ config: ModelConfig) -> [String]
}

extension ModelFamily {
  public static func storedProblems(_ config: ModelConfig) -> [String] { [] }
  public static func startsCollapsed(_ config: ModelConfig) -> Bool { false }
  public static var sharedDefaults: SharedModelDefaults { SharedModelDefaults() }
}

/// Defaults of shared keys a family may set otherwise (a VGG head: torchvision's ReLU,
/// dropout 0.5 and 512 wide; its PReLUs start at α = 0, the ReLU they replace).
public struct SharedModelDefaults: Sendable {
  /// `model.activation`.
  public var activation: Activation = .gelu
  /// `model.dropout`.
  public var dropout: Double = 0
  /// `model.mlp_hidden` where `model.mlp_ratio` is not set either; nil: `mlp_ratio × d_model`.
  public var mlpHidden: Int? = nil
  /// `lc.alpha_init`.
  public var alphaInit: Double = 0.01

  public init() {}
}

/// `model.kind` → its family: the one place that lists them.
public enum ModelRegistry {
  public static func family(_ kind: ModelKind) -> any ModelFamily.Type {
    switch kind {
    case .encoder, .vit, .gpt: TransformerFamily.self
    case .mixer: MixerFamily.self
    case .bert: BertFamily.self
    case .vgg: VGGFamily.self
    }
  }

  /// A model of `architecture`, every parameter zero (norm scales one).
  public static func build(_ architecture: Architecture) -> any Model {
    family(architecture.config.kind).build(architecture)
  }

  /// A model initialized from `seed` (`Model.initialize`).
  public static func build(_ architecture: Architecture, seed: UInt64, alphaInit: Float = 0.01) -> any Model {
    let model = build(architecture)
    var rng = RNG(seed: seed, stream: "init")
    model.initialize(rng: &rng, alphaInit: alphaInit)
    return model
  }

  /// Rows (B·T) per chunk of a large inference batch, by default.
  public static let inferenceRows = 512
}

/// Random token batches for the token families' `exampleBatch`.
enum TokenExamples {
  /// B sequences of `maxLen` uniform ids, and uniform class labels or (a language model's)
  /// the ids themselves as targets.
  static func batch(_ config: ModelConfig, batch: Int, rng: inout RNG, targetsAreTheIDs: Bool = false) -> (
    input: ModelInput, targets: [Int32]
  ) {
    let ids: [Int32] = (0..<(batch * config.maxLen)).map { _ in Int32(rng.int(below: config.vocabSize)) }
    let targets: [Int32] = targetsAreTheIDs ? ids : (0..<batch).map { _ in Int32(rng.int(below: config.classes)) }
    return (.tokens(ids: ids, valid: nil, batch: batch, time: config.maxLen), targets)
  }
}

/// Random image batches for the image families' `exampleBatch`.
enum ImageExamples {
  /// N(0, 1) images (B, channels, S, S) and uniform class labels.
  static func batch(_ config: ModelConfig, batch: Int, rng: inout RNG) -> (input: ModelInput, targets: [Int32]) {
    let images = Tensor([batch, config.imageChannels, config.imageSize, config.imageSize])
    rng.fillNormal(images)
    return (.images(images), (0..<batch).map { _ in Int32(rng.int(below: config.classes)) })
  }
}

/// Runs passes 0..<count over `workers`: with one, in order on the calling thread; with
/// several, one thread each, pass p on worker p mod count, every thread on one core with
/// one-thread kernels (a pass split over the threads would spend its time handing out
/// parts). Each worker must own the buffers its passes use.
func spreadPasses<W>(_ count: Int, over workers: [W], _ pass: (Int, W) -> Void) {
  guard workers.count > 1 else {
    for p in 0..<count { pass(p, workers[0]) }
    return
  }
  Parallel.forEach(workers.count) { t in
    Parallel.$limit.withValue(1) {
      for p in stride(from: t, to: count, by: workers.count) { pass(p, workers[t]) }
    }
  }
}

/// `owner` and the first `threads − 1` of `helpers`, made by `make` where missing (models
/// that read the owner's parameters: `ParameterSet(sharing:)`), for `spreadPasses`.
func workerModels<W>(_ owner: W, helpers: inout [W], threads: Int, make: () -> W) -> [W] {
  while helpers.count < threads - 1 { helpers.append(make()) }
  return [owner] + helpers.prefix(max(threads - 1, 0))
}
