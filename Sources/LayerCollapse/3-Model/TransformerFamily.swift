import Kernels

extension ModelConfig {
  /// Whether a transformer's head reads each sequence's first position alone ([CLS]): vit,
  /// the encoder with `cls` pooling (`Transformer.pruneLastBlock`), and BERT's pooler
  /// (`Bert.pruneLastBlock`).
  public var headReadsFirstRow: Bool { kind == .vit || kind == .bert || (kind == .encoder && pooling == .cls) }
}

/// The transformer family (`encoder`, `vit`, `gpt`): one LayerCollapse unit per block, its
/// MLP. Closed-form counts; `Transformer` is the model.
public enum TransformerFamily: ModelFamily {
  public static let unitsPerBlock = 1

  public static func unitName(_ unit: Int) -> String { "blocks.\(unit).mlp" }

  public static func build(_ architecture: Architecture) -> any Model { Transformer(architecture) }

  public static func fits(_ kind: ModelKind, task: DataTaskKind) -> Bool {
    switch kind {
    case .encoder: task == .sst2
    case .gpt: task == .text
    default: task != .sst2 && task != .text  // vit: the image tasks
    }
  }

  /// Besides the shared keys: `model.layer_norm_eps` (1e-5; an imported ViT's is 1e-12),
  /// and for token models `model.max_positions`, the rows of the position table when
  /// more than `data.max_len` (an imported GPT-2's 1,024, fine-tuned on shorter windows).
  public static func readConfig(_ r: ConfigReader, into config: inout ModelConfig) {
    r.require(
      config.heads <= 0 || config.dModel % config.heads == 0, at: "model.heads", "heads must divide d_model",
      expected: "a divisor of d_model = \(config.dModel)", got: "\(config.heads)")
    config.layerNormEpsilon = Float(r.double("model.layer_norm_eps", default: 1e-5, range: 0...1))
    if config.kind != .vit {
      config.maxPositions = r.int("model.max_positions", default: 0, range: 0...(1 << 20))
      r.require(
        config.maxPositions == 0 || config.maxLen <= config.maxPositions, at: "data.max_len",
        "sequences longer than the position table", expected: "at most model.max_positions = \(config.maxPositions)",
        got: "\(config.maxLen)")
    }
  }

  /// Rows of the position table: patches + [CLS] (vit), else `maxLen`, or an imported
  /// model's `maxPositions` when more.
  public static func positionRows(_ config: ModelConfig) -> Int {
    config.kind == .vit ? sequenceLength(config) : max(config.maxPositions, config.maxLen)
  }

  public static func fit(_ config: inout ModelConfig, outputs: Int, tokens: Int?) {
    switch config.kind {
    case .gpt: config.vocabSize = outputs
    case .encoder:
      if let t = tokens { config.vocabSize = t }
      config.classes = outputs
    default: config.classes = outputs
    }
  }

  public static func predictsEveryPosition(_ kind: ModelKind) -> Bool { kind == .gpt }

  public static func storedProblems(_ config: ModelConfig) -> [String] {
    var problems: [String] = []
    if config.dModel % config.heads != 0 {
      problems.append("heads \(config.heads) do not divide d_model \(config.dModel)")
    }
    if config.kind == .vit && config.imageSize % config.patchSize != 0 {
      problems.append("patch size \(config.patchSize) does not divide image size \(config.imageSize)")
    }
    if config.kind != .vit && config.maxLen < 1 { problems.append("max_len \(config.maxLen): no token fits") }
    return problems
  }

  /// Tokens (encoder, gpt), or patches + [CLS] (vit).
  public static func sequenceLength(_ config: ModelConfig) -> Int {
    config.kind == .vit ? config.patchesPerSide * config.patchesPerSide + 1 : config.maxLen
  }

  public static func sizeDescription(_ c: ModelConfig) -> String {
    "d_model \(c.dModel), \(c.heads) heads, \(c.layers) layers, MLP \(c.mlpHidden)"
  }

  /// N(0, 1) images and class labels (vit); token ids at full length and class labels
  /// (encoder) or the ids themselves as targets (gpt).
  public static func exampleBatch(
    _ config: ModelConfig, batch: Int, rng: inout RNG
  ) -> (input: ModelInput, targets: [Int32]) {
    if config.kind == .vit { return ImageExamples.batch(config, batch: batch, rng: &rng) }
    return TokenExamples.batch(config, batch: batch, rng: &rng, targetsAreTheIDs: config.kind == .gpt)
  }

  public static func unitParameters(_ a: Architecture, unit: Int, collapsed: Bool) -> Int {
    Architecture.mlpParameters(
      d: a.config.dModel, h: a.config.mlpHidden, activation: a.activations[unit], collapsed: collapsed)
  }

  public static func parameterCount(_ a: Architecture) -> Int {
    let config = a.config
    let c = config.dModel
    var n = positionRows(config) * c  // positions
    switch config.kind {
    case .vit: n += c * config.patchValues + c + c  // patch weight, bias, [CLS]
    default: n += config.vocabSize * c
    }
    // Per block: two norms (4c), qkv (3c² + 3c), proj (c² + c), then the MLP.
    for i in 0..<config.layers { n += 4 * c + 4 * c * c + 4 * c + a.unitParameters(i) }
    n += 2 * c  // final norm
    switch config.kind {
    case .gpt: n += config.tieWeights ? 0 : config.vocabSize * c
    default: n += config.classes * c + config.classes
    }
    return n
  }

  /// Attention counts QKᵀ and PV in full (the causal mask is applied after, as the
  /// kernel computes it); matrix products only.
  public static func macsPerExample(_ a: Architecture, time: Int?) -> Int {
    let config = a.config
    let c = config.dModel
    let t = time ?? config.sequenceLength
    var n = 0
    if config.kind == .vit { n += (t - 1) * config.patchValues * c }
    for i in 0..<config.layers { n += blockMACs(a, i, time: t) }
    n += config.kind == .gpt ? t * c * config.vocabSize : c * config.classes
    return n
  }

  /// As `macsPerExample`, except that when the head reads the first position alone
  /// (`headReadsFirstRow`) the last block projects keys and values for every position but
  /// the query, attention, output projection and MLP for the first only
  /// (`Transformer.pruneLastBlock`).
  public static func macsComputedPerExample(_ a: Architecture, time: Int?) -> Int {
    let n = macsPerExample(a, time: time)
    let config = a.config
    guard config.headReadsFirstRow, config.layers > 0 else { return n }
    let (t, last) = (time ?? config.sequenceLength, config.layers - 1)
    return n - blockMACs(a, last, time: t) + firstRowBlockMACs(a, last, time: t)
  }

  /// Block i at t positions computed for the first alone: keys and values of every
  /// position, the query, attention, projection and MLP of the first.
  static func firstRowBlockMACs(_ a: Architecture, _ i: Int, time t: Int) -> Int {
    let c = a.config.dModel
    return t * c * 2 * c + c * c + 2 * t * c + c * c + mlpMACs(a, i)
  }

  /// Block i at t positions: qkv, attention (QKᵀ and PV), projection, MLP.
  static func blockMACs(_ a: Architecture, _ i: Int, time t: Int) -> Int {
    let c = a.config.dModel
    return t * c * 3 * c + 2 * t * t * c + t * c * c + t * mlpMACs(a, i)
  }

  /// Block i's MLP (or its collapsed linear) for one position.
  static func mlpMACs(_ a: Architecture, _ i: Int) -> Int {
    a.collapsed[i] ? a.config.dModel * a.config.dModel : 2 * a.config.dModel * a.config.mlpHidden
  }

  /// Parameters with gradients and AdamW moments, and the activations a step keeps.
  public static func trainingMemory(_ config: ModelConfig, batchSize: Int) -> MemoryEstimate {
    let (d, h, layers) = (Double(config.dModel), Double(config.mlpHidden), Double(config.layers))
    let t = Double(config.sequenceLength)
    let outputs = Double(config.outputs)
    var p = layers * (4 * d * d + 2 * d * h + 9 * d + h) + Double(positionRows(config)) * d + 2 * d
    p += config.kind == .vit ? d * Double(config.patchValues) + 2 * d : Double(config.vocabSize) * d
    p += config.kind == .gpt && config.tieWeights ? 0 : outputs * d + outputs
    // Per example and block: the norms, qkv, attention output, projection and residuals
    // (~12·T·d), the MLP's hidden activations before and after the activation and their
    // gradient (3·T·h), the attention probabilities (H·T², kept and their gradient).
    let heads = Double(config.heads)
    var perExample = layers * (t * (12 * d + 3 * h) + 2 * heads * t * t) + 4 * t * d
    perExample += config.kind == .gpt ? 3 * t * outputs : 3 * outputs
    return MemoryEstimate(parameters: p, activationBytes: 4 * perExample * Double(batchSize))
  }
}
