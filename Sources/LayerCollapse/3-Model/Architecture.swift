import Kernels

/// The three model families, one shared block implementation.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
  /// Sentence classifier: token + position embeddings, bidirectional blocks, pooled head.
  case encoder
  /// Image classifier: patch embedding, [CLS] token, positions, blocks, head on [CLS].
  case vit
  /// Language model: causally masked blocks and an LM head.
  case gpt
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

  public init(
    kind: ModelKind, dModel: Int, heads: Int, layers: Int, mlpHidden: Int, dropout: Float = 0,
    maxLen: Int = 0, vocabSize: Int = 0, classes: Int = 0, pooling: Pooling = .cls,
    imageSize: Int = 32, imageChannels: Int = 3, patchSize: Int = 4, tieWeights: Bool = false,
    activation: Activation = .gelu
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
  }

  /// Patches per image side (vit).
  public var patchesPerSide: Int { imageSize / patchSize }
  /// Sequence length the model sees at most: tokens, or patches + [CLS].
  public var sequenceLength: Int { kind == .vit ? patchesPerSide * patchesPerSide + 1 : maxLen }
  /// Values in one flattened patch (vit): channels × patch × patch, PyTorch's conv order.
  public var patchValues: Int { imageChannels * patchSize * patchSize }
  /// Width of the output layer: classes, or the vocabulary for gpt.
  public var outputs: Int { kind == .gpt ? vocabSize : classes }
  /// Whether the head reads each sequence's first position alone ([CLS]): vit, and the
  /// encoder with `cls` pooling.
  public var headReadsFirstRow: Bool { kind == .vit || (kind == .encoder && pooling == .cls) }
}

/// The shape of a model at one moment: its config plus what LayerCollapse has done to
/// each block. Saved with every checkpoint.
public struct Architecture: Sendable, Equatable, Codable {
  public var config: ModelConfig
  /// Per block: the MLP activation (`prelu` for LayerCollapse-selected blocks).
  public var activations: [Activation]
  /// Per block: the MLP is a single (d → d) linear.
  public var collapsed: [Bool]

  /// Every block with `config.activation`, none collapsed.
  public init(config: ModelConfig) {
    self.config = config
    self.activations = Array(repeating: config.activation, count: config.layers)
    self.collapsed = Array(repeating: false, count: config.layers)
  }

  public init(config: ModelConfig, activations: [Activation], collapsed: [Bool]) {
    precondition(activations.count == config.layers && collapsed.count == config.layers, "one entry per block")
    self.config = config
    self.activations = activations
    self.collapsed = collapsed
  }

  /// The indices of the last `count` blocks (counted from the output end), in block order.
  public static func lastBlocks(_ count: Int, of layers: Int) -> [Int] {
    Array(max(0, layers - count)..<layers)
  }
}
