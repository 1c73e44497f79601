import Kernels

/// Options of the collapse pass.
public struct CollapseOptions: Sendable, Equatable {
  /// Collapse a PReLU block when |α − 1| < threshold.
  public var threshold: Float
  /// Blocks to collapse whatever their α or activation: an approximation, for
  /// sensitivity studies, labelled as such in the report.
  public var force: Set<Int>

  public init(threshold: Float = 0.05, force: Set<Int> = []) {
    self.threshold = threshold
    self.force = force
  }
}

/// What the pass did with one block.
public enum CollapseDecision: Sendable, Equatable {
  case collapsed
  /// Merged although the MLP is not (near) linear: the result only approximates it.
  case forcedApproximate
  case alreadyCollapsed
  case notPReLU(Activation)
  case alphaTooFar
  /// The merged (d→d) linear would not be smaller than fc1 + fc2.
  case notSmaller

  public var merged: Bool { self == .collapsed || self == .forcedApproximate }

  public var explanation: String {
    switch self {
    case .collapsed: "collapsed"
    case .forcedApproximate: "forced (approximate)"
    case .alreadyCollapsed: "already collapsed"
    case .notPReLU(let a): "kept: activation is \(a.rawValue), not prelu"
    case .alphaTooFar: "kept: |α−1| not below threshold"
    case .notSmaller: "kept: merged d×d would not be smaller"
    }
  }
}

public struct BlockCollapseReport: Sendable, Equatable {
  public var block: Int
  public var alpha: Float?
  public var decision: CollapseDecision
  public var parametersBefore: Int
  public var parametersAfter: Int
  /// max |merged(x) − mlp(x)| / max |mlp(x)| over the probe batch, for merged blocks.
  public var maxRelativeDeviation: Float?

  public var distance: Float? { alpha.map { abs($0 - 1) } }
}

public struct CollapseReport: Sendable, Equatable {
  public var threshold: Float
  public var blocks: [BlockCollapseReport]
  public var parametersBefore: Int
  public var parametersAfter: Int
  public var macsBefore: Int
  public var macsAfter: Int
  /// max |Δ logits| / max |logits| on the probe batch.
  public var logitDeviation: Float?

  public var collapsedCount: Int { blocks.filter { $0.decision.merged }.count }
  public var approximate: Bool { blocks.contains { $0.decision == .forcedApproximate } }
}

/// LayerCollapse's merge: where a block's MLP is (close to) linear, replace fc1 → act →
/// fc2 by the single linear `W = W2·W1`, `b = W2·b1 + b2`.
public enum Collapse {
  /// Returns the collapsed model and what happened to each block. With a `probe` batch,
  /// each merged block's output and the model's logits are compared with the original.
  public static func run(
    _ model: Transformer, options: CollapseOptions = CollapseOptions(), probe: ModelInput? = nil
  ) -> (model: Transformer, report: CollapseReport) {
    let arch = model.architecture
    let cfg = arch.config
    var newArch = arch
    var rows: [BlockCollapseReport] = []
    for i in 0..<cfg.layers {
      let before = arch.mlpParameters(block: i)
      let alpha = model.alphaParameter(block: i)?.value[0]
      let decision = decide(arch, block: i, alpha: alpha, options: options)
      if decision.merged { newArch.collapsed[i] = true }
      let after = decision.merged ? cfg.dModel * cfg.dModel + cfg.dModel : before
      rows.append(
        BlockCollapseReport(
          block: i, alpha: alpha, decision: decision, parametersBefore: before, parametersAfter: after))
    }
    let merged = Transformer(newArch)
    merged.copyParameters(from: model.parameters)
    for r in rows where r.decision.merged { mergeWeights(block: r.block, from: model, into: merged) }

    var logitDeviation: Float? = nil
    if let probe = probe {
      let reference = model.forward(probe).clone()
      for k in rows.indices where rows[k].decision.merged {
        let (x, y) = model.mlpProbe(block: rows[k].block)
        guard case .collapsed(let w, let b) = merged.blocks[rows[k].block].mlp else { continue }
        let approx = Tensor(y.shape)
        Linear.forward(y: approx, x: x, w: w.value, b: b.value)
        rows[k].maxRelativeDeviation = relativeDeviation(approx, y)
      }
      logitDeviation = relativeDeviation(merged.forward(probe), reference)
    }
    let report = CollapseReport(
      threshold: options.threshold, blocks: rows, parametersBefore: arch.parameterCount,
      parametersAfter: newArch.parameterCount, macsBefore: arch.macsPerExample(),
      macsAfter: newArch.macsPerExample(), logitDeviation: logitDeviation)
    return (merged, report)
  }

  static func decide(_ arch: Architecture, block i: Int, alpha: Float?, options: CollapseOptions) -> CollapseDecision {
    if arch.collapsed[i] { return .alreadyCollapsed }
    let d = arch.config.dModel
    if d * d + d >= arch.mlpParameters(block: i) { return .notSmaller }
    if options.force.contains(i) {
      if let a = alpha, abs(a - 1) < options.threshold { return .collapsed }
      return .forcedApproximate
    }
    guard arch.activations[i] == .prelu, let a = alpha else { return .notPReLU(arch.activations[i]) }
    return abs(a - 1) < options.threshold ? .collapsed : .alphaTooFar
  }

  /// The block's fc1 → act → fc2 as one linear: W = W2·W1 (d, d), b = W2·b1 + b2 (d).
  static func mergeWeights(block i: Int, from model: Transformer, into merged: Transformer) {
    guard case .full(let fc1W, let fc1B, let fc2W, let fc2B, _, _) = model.blocks[i].mlp,
      case .collapsed(let w, let b) = merged.blocks[i].mlp
    else { preconditionFailure("block \(i): merging needs a full MLP into a collapsed one") }
    let linear = ChainMerge.compose(
      AffineMap(weight: fc1W.value, bias: fc1B.value), AffineMap(weight: fc2W.value, bias: fc2B.value))
    w.value.copy(from: linear.weight)
    b.value.copy(from: linear.bias)
  }

  /// max |a − b| / max |b| (0 when both are zero).
  static func relativeDeviation(_ a: Tensor, _ b: Tensor) -> Float {
    var diff: Float = 0
    var scale: Float = 0
    for i in 0..<b.count {
      diff = max(diff, abs(a.data[i] - b.data[i]))
      scale = max(scale, abs(b.data[i]))
    }
    return scale > 0 ? diff / scale : diff
  }
}
