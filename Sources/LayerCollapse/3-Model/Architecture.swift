import Kernels

/// What `model.kind` names. `ModelRegistry` maps each to its family: the three
/// transformers share one implementation (`Transformer`), the MLP-Mixer has its own.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
  /// Sentence classifier: token + position embeddings, bidirectional blocks, pooled head.
  case encoder
  /// Image classifier: patch embedding, [CLS] token, positions, blocks, head on [CLS].
  case vit
  /// Language model: causally masked blocks and an LM head.
  case gpt
  /// Image classifier: patch embedding, blocks of token-mixing and channel-mixing MLPs,
  /// global average pool, head (Tolstikhin et al., 2021).
  case mixer
  /// BERT sentence classifier (imported from Hugging Face): post-LayerNorm blocks,
  /// token-type embeddings, a tanh pooler on [CLS] and a classifier.
  case bert
  /// VGG image classifier (Simonyan and Zisserman, 2015, as torchvision builds it): 3×3
  /// convolutions and max pools, adaptive average pooling, a head of three linears whose
  /// two activations are the LayerCollapse units.
  case vgg

  /// The transformers, which `Transformer` implements.
  public static let transformers: [ModelKind] = [.encoder, .vit, .gpt]
}

/// How the encoder turns a sequence into one vector.
public enum Pooling: String, Sendable, Codable, CaseIterable {
  /// The first position (the tokenizer puts [CLS] there).
  case cls
  /// Mean over the non-padding positions.
  case mean
}

/// Sizes and choices that fix a model's shape. Everything comes from the config.
public struct ModelConfig: Sendable, Equatable, Codable {
  public var kind: ModelKind
  public var dModel: Int
  public var heads: Int
  public var layers: Int
  public var mlpHidden: Int
  /// Dropout after the MLP activation, during training only.
  public var dropout: Float
  /// Longest sequence (encoder, gpt); for vit it is derived from the image and patch size.
  public var maxLen: Int
  /// Token vocabulary (encoder, gpt).
  public var vocabSize: Int
  /// Output classes (encoder, vit).
  public var classes: Int
  public var pooling: Pooling
  public var imageSize: Int
  public var imageChannels: Int
  public var patchSize: Int
  /// gpt: the LM head reuses the token embedding.
  public var tieWeights: Bool
  /// The activation of blocks that are not LayerCollapse-selected.
  public var activation: Activation
  /// Mixer: hidden width of the token-mixing MLP (across patches).
  public var tokenMLPHidden: Int
  /// LayerNorm's ε (BERT: 1e-12; our own models 1e-5).
  public var layerNormEpsilon: Float = 1e-5
  /// BERT: rows of the token-type (segment) embedding.
  public var typeVocabSize: Int = 0
  /// BERT, gpt, encoder: rows of the position embedding, when more than `maxLen` (the
  /// data's sequence length): an imported model's `max_position_embeddings` / `n_positions`.
  public var maxPositions: Int = 0
  /// VGG: the feature layers, output channels of each 3×3 convolution, 0 for a 2×2 max
  /// pool (torchvision's "M").
  public var convLayers: [Int] = []
  /// VGG: BatchNorm after each convolution (torchvision's `vgg16_bn`), and after the
  /// head's first two linears.
  public var convBatchNorm: Bool = false
  public var headBatchNorm: Bool = false
  /// VGG: side of the adaptive average pool before the head (torchvision: 7).
  public var pooledSize: Int = 0
  /// VGG: linears in the head, 3 (torchvision's) or 1 (a single linear from the pooled
  /// features to the classes: the collapsed head's shape, trained as such, for the
  /// knowledge-distillation baseline).
  public var headLinears: Int = 3

  public init(
    kind: ModelKind, dModel: Int, heads: Int, layers: Int, mlpHidden: Int, dropout: Float = 0,
    maxLen: Int = 0, vocabSize: Int = 0, classes: Int = 0, pooling: Pooling = .cls,
    imageSize: Int = 32, imageChannels: Int = 3, patchSize: Int = 4, tieWeights: Bool = false,
    activation: Activation = .gelu, tokenMLPHidden: Int = 0
  ) {
    self.kind = kind
    self.dModel = dModel
    self.heads = heads
    self.layers = layers
    self.mlpHidden = mlpHidden
    self.dropout = dropout
    self.maxLen = maxLen
    self.vocabSize = vocabSize
    self.classes = classes
    self.pooling = pooling
    self.imageSize = imageSize
    self.imageChannels = imageChannels
    self.patchSize = patchSize
    self.tieWeights = tieWeights
    self.activation = activation
    self.tokenMLPHidden = tokenMLPHidden
  }

  enum CodingKeys: String, CodingKey {
    case kind, dModel, heads, layers, mlpHidden, dropout, maxLen, vocabSize, classes, pooling, imageSize
    case imageChannels, patchSize, tieWeights, activation
    // Spelled so that JSON's snake_case (`token_mlp_hidden`) maps back to it.
    case tokenMLPHidden = "tokenMlpHidden"
    case layerNormEpsilon, typeVocabSize, maxPositions
    case convLayers, convBatchNorm, headBatchNorm, pooledSize, headLinears
  }

  /// `tokenMLPHidden` came with format version 2; version 1 files read it as 0.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    kind = try c.decode(ModelKind.self, forKey: .kind)
    dModel = try c.decode(Int.self, forKey: .dModel)
    heads = try c.decode(Int.self, forKey: .heads)
    layers = try c.decode(Int.self, forKey: .layers)
    mlpHidden = try c.decode(Int.self, forKey: .mlpHidden)
    dropout = try c.decode(Float.self, forKey: .dropout)
    maxLen = try c.decode(Int.self, forKey: .maxLen)
    vocabSize = try c.decode(Int.self, forKey: .vocabSize)
    classes = try c.decode(Int.self, forKey: .classes)
    pooling = try c.decode(Pooling.self, forKey: .pooling)
    imageSize = try c.decode(Int.self, forKey: .imageSize)
    imageChannels = try c.decode(Int.self, forKey: .imageChannels)
    patchSize = try c.decode(Int.self, forKey: .patchSize)
    tieWeights = try c.decode(Bool.self, forKey: .tieWeights)
    activation = try c.decode(Activation.self, forKey: .activation)
    tokenMLPHidden = try c.decodeIfPresent(Int.self, forKey: .tokenMLPHidden) ?? 0
    layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-5
    typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? 0
    maxPositions = try c.decodeIfPresent(Int.self, forKey: .maxPositions) ?? 0
    convLayers = try c.decodeIfPresent([Int].self, forKey: .convLayers) ?? []
    convBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .convBatchNorm) ?? false
    headBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .headBatchNorm) ?? false
    pooledSize = try c.decodeIfPresent(Int.self, forKey: .pooledSize) ?? 0
    headLinears = try c.decodeIfPresent(Int.self, forKey: .headLinears) ?? 3
  }

  /// Patches per image side (vit).
  public var patchesPerSide: Int { imageSize / patchSize }
  /// Sequence length the model sees at most: tokens, patches + [CLS] (vit), or patches (mixer).
  public var sequenceLength: Int { ModelRegistry.family(kind).sequenceLength(self) }
  /// The sizes that matter for this kind, for banners and `inspect`.
  public var sizeDescription: String { ModelRegistry.family(kind).sizeDescription(self) }
  /// Values in one flattened patch (vit, mixer): channels × patch × patch, PyTorch's conv order.
  public var patchValues: Int { imageChannels * patchSize * patchSize }
  /// Width of the output layer: classes, or the vocabulary of a language model.
  public var outputs: Int { ModelRegistry.family(kind).predictsEveryPosition(kind) ? vocabSize : classes }
}

/// The shape of a model at one moment: its config plus what LayerCollapse has done to
/// each unit (a block's MLP; a Mixer block has two). Saved with every checkpoint.
public struct Architecture: Sendable, Equatable, Codable {
  public var config: ModelConfig
  /// Per unit: the activation (`prelu` for LayerCollapse-selected units).
  public var activations: [Activation]
  /// Per unit: the chain is a single linear.
  public var collapsed: [Bool]
  /// Per unit: collapsed by a merge that only approximates the chain it replaced (forced,
  /// a least-squares fit, or |α − 1| at or above the paper's 0.05). Travels with the model
  /// (checkpoints, exports) so that whoever uses it later can tell. Absent in files written
  /// before it existed: all false.
  public var approximate: [Bool]

  /// Every unit with `config.activation`, none collapsed (unless the family builds a
  /// unit already merged: a VGG head of one linear).
  public init(config: ModelConfig) {
    let family = ModelRegistry.family(config.kind)
    let units = config.layers * family.unitsPerBlock
    self.config = config
    self.activations = Array(repeating: config.activation, count: units)
    self.collapsed = Array(repeating: family.startsCollapsed(config), count: units)
    self.approximate = Array(repeating: false, count: units)
  }

  public init(config: ModelConfig, activations: [Activation], collapsed: [Bool]) {
    let units = config.layers * ModelRegistry.family(config.kind).unitsPerBlock
    precondition(activations.count == units && collapsed.count == units, "one entry per unit")
    self.config = config
    self.activations = activations
    self.collapsed = collapsed
    self.approximate = Array(repeating: false, count: units)
  }

  enum CodingKeys: String, CodingKey {
    case config, activations, collapsed, approximate
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    config = try c.decode(ModelConfig.self, forKey: .config)
    activations = try c.decode([Activation].self, forKey: .activations)
    collapsed = try c.decode([Bool].self, forKey: .collapsed)
    approximate =
      try c.decodeIfPresent([Bool].self, forKey: .approximate) ?? Array(repeating: false, count: collapsed.count)
  }

  /// Whether any unit was merged approximately.
  public var hasApproximateMerges: Bool { approximate.contains(true) }

  /// The indices of the last `count` blocks (counted from the output end), in block order.
  public static func lastBlocks(_ count: Int, of layers: Int) -> [Int] {
    Array(max(0, layers - count)..<layers)
  }

  /// Every unit of `blocks`, in order.
  public func units(ofBlocks blocks: [Int]) -> [Int] {
    let per = ModelRegistry.family(config.kind).unitsPerBlock
    return blocks.flatMap { b in (b * per)..<((b + 1) * per) }
  }

  /// The module path of `unit`, e.g. `blocks.3.mlp`.
  public func unitName(_ unit: Int) -> String { ModelRegistry.family(config.kind).unitName(unit) }
}
