import Kernels

/// How the pull of α toward 1 is applied.
public enum RegularizerMode: String, Sendable, Codable, CaseIterable {
  /// Adds λ·Σ(α − 1)² to the loss; α is decayed like other weights.
  case penalty
  /// Before each optimizer step, α ← α − 2·lr·λ·(α − 1); α is exempt from weight decay
  /// (as the reference NLP code does).
  case decoupled
}

/// LayerCollapse settings (`lc.*` in a config).
public struct LayerCollapseSettings: Sendable, Equatable, Codable {
  public var lambda: Double
  /// How many blocks, counted from the output end. Takes precedence over `fraction`.
  public var blocks: Int?
  /// Fraction of blocks, counted from the output end (rounded to nearest, at least 1 if > 0).
  public var fraction: Double?
  public var alphaInit: Float
  public var threshold: Float
  public var mode: RegularizerMode
  /// α's learning rate is the run's times this. Adam moves a scalar about lr per step, so
  /// α (from 0.01) needs Σ lr ≳ 1 to reach 1: short runs raise this to give α the travel
  /// the paper's long runs had. 1 is the paper's setting.
  public var alphaLearningRateScale: Double

  public init(
    lambda: Double = 0, blocks: Int? = nil, fraction: Double? = nil, alphaInit: Float = 0.01,
    threshold: Float = 0.05, mode: RegularizerMode = .penalty, alphaLearningRateScale: Double = 1
  ) {
    self.lambda = lambda
    self.blocks = blocks
    self.fraction = fraction
    self.alphaInit = alphaInit
    self.threshold = threshold
    self.mode = mode
    self.alphaLearningRateScale = alphaLearningRateScale
  }

  /// The selected block indices for a model with `layers` blocks.
  public func selectedBlocks(layers: Int) -> [Int] {
    if let k = blocks { return Architecture.lastBlocks(min(k, layers), of: layers) }
    if let f = fraction, f > 0 {
      return Architecture.lastBlocks(max(1, Int((f * Double(layers)).rounded())), of: layers)
    }
    return []
  }
}

/// The LayerCollapse regularizer over a model's selected PReLU blocks.
public struct Regularizer: Sendable {
  public let settings: LayerCollapseSettings
  public let blocks: [Int]

  public init(settings: LayerCollapseSettings, blocks: [Int]) {
    self.settings = settings
    self.blocks = blocks
  }

  /// λ·Σ(α − 1)² over the selected blocks that still have an α.
  public func penalty(_ model: Transformer) -> Double {
    var s = 0.0
    for b in blocks {
      if let a = model.alphaParameter(block: b) {
        let d = Double(a.value[0]) - 1
        s += d * d
      }
    }
    return settings.lambda * s
  }

  /// Penalty mode: adds d(penalty)/dα = 2λ(α − 1) into each α's gradient.
  public func addGradient(_ model: Transformer) {
    guard settings.mode == .penalty else { return }
    for b in blocks {
      if let a = model.alphaParameter(block: b) {
        a.grad.data[0] += Float(2 * settings.lambda * (Double(a.value[0]) - 1))
      }
    }
  }

  /// Decoupled mode: α ← α − 2·lr·λ·(α − 1), before the optimizer step.
  public func pull(_ model: Transformer, lr: Double) {
    guard settings.mode == .decoupled else { return }
    for b in blocks {
      if let a = model.alphaParameter(block: b) {
        let alpha = Double(a.value[0])
        a.value.data[0] = Float(alpha - 2 * lr * settings.lambda * (alpha - 1))
      }
    }
  }

  /// True when every selected block's α is within the collapse threshold of 1.
  public func converged(_ model: Transformer) -> Bool {
    blocks.allSatisfy { b in
      guard let a = model.alphaParameter(block: b) else { return true }
      return abs(a.value[0] - 1) < settings.threshold
    }
  }
}

extension Transformer {
  /// A copy of this model whose `blocks` use a PReLU with slope `alphaInit`: how the paper
  /// converts a trained GELU model before its LayerCollapse fine-tune. Every other
  /// parameter is copied by name.
  public func withPReLU(blocks selected: [Int], alphaInit: Float) -> Transformer {
    var arch = architecture
    for b in selected where !arch.collapsed[b] { arch.activations[b] = .prelu }
    let model = Transformer(arch)
    model.copyParameters(from: parameters)
    for b in selected { model.alphaParameter(block: b)?.value.fill(alphaInit) }
    return model
  }
}
