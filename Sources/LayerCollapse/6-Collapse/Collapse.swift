import Kernels

/// Options of the collapse pass.
public struct CollapseOptions: Sendable, Equatable {
  /// Collapse a PReLU block when |α − 1| < threshold.
  public var threshold: Float
  /// Blocks to collapse whatever their α or activation: an approximation, for
  /// sensitivity studies, labelled as such in the report.
  public var force: Set<Int>
  /// The units the pass may merge; nil: all. `compress` merges one unit a round, even where
  /// another's α is within the threshold already (it gets a round of its own).
  public var only: Set<Int>?

  /// The paper's threshold. A unit merged with |α − 1| at or beyond it (a looser
  /// `threshold`) was visibly non-linear: its merge is labelled approximate.
  public static let paperThreshold: Float = 0.05

  public init(threshold: Float = CollapseOptions.paperThreshold, force: Set<Int> = [], only: Set<Int>? = nil) {
    self.threshold = threshold
    self.force = force
    self.only = only
  }
}

/// What the pass did with one block.
public enum CollapseDecision: Sendable, Equatable {
  case collapsed
  /// Merged although the MLP is not (near) linear: the result only approximates it.
  case forcedApproximate
  /// Merged under a threshold looser than the paper's, with |α − 1| ≥ 0.05: approximate.
  case collapsedLoose
  case alreadyCollapsed
  case notPReLU(Activation)
  case alphaTooFar
  /// The merged (d→d) linear would not be smaller than fc1 + fc2.
  case notSmaller
  /// Replaced by the least-squares linear fit of its inputs to its outputs (approximate).
  case leastSquares
  /// Not among `CollapseOptions.only`.
  case notSelected

  public var merged: Bool { self == .collapsed || approximate }

  /// Merged although the unit was not (near) linear.
  public var approximate: Bool { self == .forcedApproximate || self == .collapsedLoose || self == .leastSquares }

  public var explanation: String {
    switch self {
    case .collapsed: "collapsed"
    case .forcedApproximate: "forced (approximate)"
    case .collapsedLoose: "collapsed with |α−1| ≥ \(CollapseOptions.paperThreshold) (approximate)"
    case .alreadyCollapsed: "already collapsed"
    case .notPReLU(let a): "kept: activation is \(a.rawValue), not prelu"
    case .alphaTooFar: "kept: |α−1| not below threshold"
    case .notSmaller: "kept: merged d×d would not be smaller"
    case .leastSquares: "least-squares fit (approximate)"
    case .notSelected: "kept: not selected"
    }
  }
}

public struct BlockCollapseReport: Sendable, Equatable {
  /// The unit's index (a transformer's block).
  public var block: Int
  /// The unit's module path (`Architecture.unitName`).
  public var name: String
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
  public var approximate: Bool { blocks.contains { $0.decision.approximate } }
}

/// LayerCollapse's merge: where a unit's chain (a transformer's MLP, a Mixer's token or
/// channel MLP) is (close to) linear, replace fc1 → act → fc2 by the single linear
/// `W = W2·W1`, `b = W2·b1 + b2` (`ChainMerge`). Works on any `Model`.
public enum Collapse {
  /// Returns the collapsed model and what happened to each unit. With a `probe` batch,
  /// each merged unit's output and the model's logits are compared with the original.
  /// `fitted`: least-squares linears (`LinearFit`) for some of the merged units, which
  /// replace their W2·W1 merge (ReplaceMe's training-free baseline).
  public static func run(
    _ model: any Model, options: CollapseOptions = CollapseOptions(), probe: ModelInput? = nil,
    fitted: [Int: AffineMap] = [:]
  ) -> (model: any Model, report: CollapseReport) {
    let arch = model.architecture
    var newArch = arch
    var rows: [BlockCollapseReport] = []
    // Units are decided in order, each against the architecture with the earlier merges
    // made: where units share linears (a VGG head's junctions) each row then counts what its
    // own merge saves, and the rows add up to the model's change.
    for i in 0..<arch.unitCount {
      let before = newArch.unitParameters(i)
      let alpha = model.alphaParameter(unit: i)?.value[0]
      var decision = decide(newArch, unit: i, alpha: alpha, options: options)
      if decision.merged && fitted[i] != nil { decision = .leastSquares }
      let after = decision.merged ? arch.family.unitParameters(newArch, unit: i, collapsed: true) : before
      if decision.merged {
        newArch.collapsed[i] = true
        newArch.approximate[i] = decision.approximate
      }
      rows.append(
        BlockCollapseReport(
          block: i, name: arch.unitName(i), alpha: alpha, decision: decision, parametersBefore: before,
          parametersAfter: after))
    }
    let merged = ModelRegistry.build(newArch)
    merged.copyParameters(from: model.parameters)
    model.writeCollapsed(units: rows.filter { $0.decision.merged }.map(\.block), into: merged)
    for r in rows where r.decision == .leastSquares {
      guard let map = fitted[r.block], let target = merged.collapsedLinear(unit: r.block) else { continue }
      target.weight.value.copy(from: map.weight)
      target.bias.value.copy(from: map.bias)
    }

    var logitDeviation: Float? = nil
    if let probe = probe {
      let reference = model.forward(probe).clone()
      for k in rows.indices where rows[k].decision.merged {
        guard let io = model.unitProbe(unit: rows[k].block), let linear = merged.collapsedLinear(unit: rows[k].block)
        else { continue }
        let approx = Tensor(io.output.shape)
        Linear.forward(y: approx, x: io.input, w: linear.weight.value, b: linear.bias.value)
        rows[k].maxRelativeDeviation = relativeDifference(approx, io.output)
      }
      logitDeviation = relativeDifference(merged.forward(probe), reference)
    }
    let report = CollapseReport(
      threshold: options.threshold, blocks: rows, parametersBefore: arch.parameterCount,
      parametersAfter: newArch.parameterCount, macsBefore: arch.macsPerExample(),
      macsAfter: newArch.macsPerExample(), logitDeviation: logitDeviation)
    return (merged, report)
  }

  static func decide(_ arch: Architecture, unit i: Int, alpha: Float?, options: CollapseOptions) -> CollapseDecision {
    if arch.collapsed[i] { return .alreadyCollapsed }
    if let only = options.only, !only.contains(i) { return .notSelected }
    if arch.family.unitParameters(arch, unit: i, collapsed: true) >= arch.unitParameters(i) { return .notSmaller }
    if options.force.contains(i) {
      if let a = alpha, abs(a - 1) < options.threshold { return withinThreshold(a) }
      return .forcedApproximate
    }
    guard arch.activations[i] == .prelu, let a = alpha else { return .notPReLU(arch.activations[i]) }
    return abs(a - 1) < options.threshold ? withinThreshold(a) : .alphaTooFar
  }

  private static func withinThreshold(_ alpha: Float) -> CollapseDecision {
    abs(alpha - 1) < CollapseOptions.paperThreshold ? .collapsed : .collapsedLoose
  }
}
