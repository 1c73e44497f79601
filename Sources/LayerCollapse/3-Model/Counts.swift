import Foundation
import Kernels

/// Closed-form parameter and multiply–accumulate counts, from the architecture alone:
/// each family (`ModelFamily`) has its formulas; these ask the architecture's family.
extension Architecture {
  public var family: any ModelFamily.Type { ModelRegistry.family(config.kind) }

  /// Parameters of one `Linear(d→h) → act → Linear(h→d)` unit: `2dh + h + d` (+1 for a
  /// PReLU's α), or `d² + d` collapsed.
  public static func mlpParameters(d: Int, h: Int, activation: Activation, collapsed: Bool) -> Int {
    if collapsed { return d * d + d }
    return 2 * d * h + h + d + (activation == .prelu ? 1 : 0)
  }

  /// LayerCollapse units: `unitsPerBlock` per block.
  public var unitCount: Int { config.layers * ModelRegistry.family(config.kind).unitsPerBlock }

  /// Every scalar parameter of the model.
  public var parameterCount: Int { family.parameterCount(self) }

  /// The parameters of `unit` as it is now (its chain, or its collapsed linear).
  public func unitParameters(_ unit: Int) -> Int {
    family.unitParameters(self, unit: unit, collapsed: collapsed[unit])
  }

  /// Multiply–accumulates of one forward pass for one example of `time` positions
  /// (default: the longest), every position counted: the usual count, as the paper's.
  public func macsPerExample(time: Int? = nil) -> Int { family.macsPerExample(self, time: time) }

  /// The multiply–accumulates our forward pass computes for one example: what speed is
  /// measured against (a transformer's pruned last block computes less, see
  /// `Transformer.pruneLastBlock`).
  public func macsComputedPerExample(time: Int? = nil) -> Int { family.macsComputedPerExample(self, time: time) }
}

/// What a training run will hold in memory, estimated from the sizes alone before anything
/// is allocated, so that `validate` and `train` refuse a config that cannot fit instead of
/// dying in the allocator. In Double: the sizes a config can ask for overflow Int products.
public struct MemoryEstimate: Sendable, Equatable {
  public var parameters: Double
  /// Parameters, their gradients and AdamW's two moments: 16 bytes a parameter.
  public var parameterBytes: Double { 16 * parameters }
  /// Forward activations kept for the backward pass, and the backward's scratch.
  public var activationBytes: Double
  public var totalBytes: Double { parameterBytes + activationBytes }

  public init(parameters: Double, activationBytes: Double) {
    self.parameters = parameters
    self.activationBytes = activationBytes
  }

  /// The memory this process may use: the machine's, or its cgroup's limit when lower.
  public static var available: Double {
    var bytes = Double(ProcessInfo.processInfo.physicalMemory)
    for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
      if let text = try? String(contentsOfFile: file, encoding: .utf8),
        let limit = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0
      {
        bytes = min(bytes, limit)
      }
    }
    return bytes
  }
}
