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
  /// Units named one by one (`lc.units`, e.g. the one `compress` collapses next): takes
  /// precedence over `blocks` and `fraction`.
  public var units: [Int]? = nil
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

  /// The units of the selected blocks of `architecture` (every unit of each block).
  public func selectedUnits(_ architecture: Architecture) -> [Int] {
    if let named = units { return named.filter { $0 < architecture.unitCount }.sorted() }
    return architecture.units(ofBlocks: selectedBlocks(layers: architecture.config.layers))
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

/// The LayerCollapse regularizer over a model's selected PReLU units.
public struct Regularizer: Sendable {
  public let settings: LayerCollapseSettings
  /// The units whose α it pulls toward 1 (`LayerCollapseSettings.selectedUnits`).
  public let units: [Int]

  public init(settings: LayerCollapseSettings, units: [Int]) {
    self.settings = settings
    self.units = units
  }

  /// The α parameters of the selected units that still have one.
  func slopes(_ model: any Model) -> [Parameter] { units.compactMap { model.alphaParameter(unit: $0) } }

  /// λ·Σ(α − 1)² over the selected units that still have an α.
  public func penalty(_ model: any Model) -> Double {
    var s = 0.0
    for a in slopes(model) {
      let d = Double(a.value[0]) - 1
      s += d * d
    }
    return settings.lambda * s
  }

  /// Penalty mode: adds d(penalty)/dα = 2λ(α − 1) into each α's gradient.
  public func addGradient(_ model: any Model) {
    guard settings.mode == .penalty else { return }
    for a in slopes(model) { a.grad[0] += Float(2 * settings.lambda * (Double(a.value[0]) - 1)) }
  }

  /// Decoupled mode: α ← α − 2·lr·λ·(α − 1), before the optimizer step.
  public func pull(_ model: any Model, lr: Double) {
    guard settings.mode == .decoupled else { return }
    for a in slopes(model) {
      let alpha = Double(a.value[0])
      a.value[0] = Float(alpha - 2 * lr * settings.lambda * (alpha - 1))
    }
  }

  /// True when every selected unit's α is within the collapse threshold of 1.
  public func converged(_ model: any Model) -> Bool {
    slopes(model).allSatisfy { abs($0.value[0] - 1) < settings.threshold }
  }
}

extension Model {
  /// A copy of this model whose `units` use a PReLU with slope `alphaInit`: how the paper
  /// converts a trained GELU model before its LayerCollapse fine-tune. Every other
  /// parameter is copied by name.
  public func withPReLU(units selected: [Int], alphaInit: Float) -> any Model {
    var arch = architecture
    for u in selected where !arch.collapsed[u] { arch.activations[u] = .prelu }
    let model = ModelRegistry.build(arch)
    model.copyParameters(from: parameters)
    for u in selected { model.alphaParameter(unit: u)?.value.fill(alphaInit) }
    return model
  }
}
