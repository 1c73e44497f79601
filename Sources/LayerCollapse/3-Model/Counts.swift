import Foundation
import Kernels

/// Closed-form parameter and multiply–accumulate counts, from the architecture alone.
extension Architecture {
  /// Parameters of one MLP: `2dh + h + d` (+1 for a PReLU's α), or `d² + d` collapsed.
  public static func mlpParameters(d: Int, h: Int, activation: Activation, collapsed: Bool) -> Int {
    if collapsed { return d * d + d }
    return 2 * d * h + h + d + (activation == .prelu ? 1 : 0)
  }

  public func mlpParameters(block i: Int) -> Int {
    Architecture.mlpParameters(
      d: config.dModel, h: config.mlpHidden, activation: activations[i], collapsed: collapsed[i])
  }

  /// Every scalar parameter of the model.
  public var parameterCount: Int {
    let c = config.dModel
    var n = config.sequenceLength * c  // positions
    switch config.kind {
    case .encoder, .gpt: n += config.vocabSize * c
    case .vit: n += c * config.patchValues + c + c  // patch weight, bias, [CLS]
    }
    // Per block: two norms (4c), qkv (3c² + 3c), proj (c² + c), then the MLP.
    for i in 0..<config.layers { n += 4 * c + 4 * c * c + 4 * c + mlpParameters(block: i) }
    n += 2 * c  // final norm
    switch config.kind {
    case .gpt: n += config.tieWeights ? 0 : config.vocabSize * c
    case .encoder, .vit: n += config.classes * c + config.classes
    }
    return n
  }

  /// Multiply–accumulates of one forward pass for one example of `time` positions
  /// (default: the longest). Matrix products only; attention counts QKᵀ and PV in full
  /// (the causal mask is applied after, as the kernel computes it).
  public func macsPerExample(time: Int? = nil) -> Int {
    let c = config.dModel
    let t = time ?? config.sequenceLength
    var n = 0
    if config.kind == .vit { n += (t - 1) * config.patchValues * c }
    for i in 0..<config.layers { n += blockMACs(i, time: t) }
    n += config.kind == .gpt ? t * c * config.vocabSize : c * config.classes
    return n
  }

  /// The multiply–accumulates our forward pass computes for one example: as
  /// `macsPerExample`, except that when the head reads the first position alone
  /// (`headReadsFirstRow`) the last block projects keys and values for every position but
  /// the query, attention, output projection and MLP for the first only
  /// (`Transformer.pruneLastBlock`). What speed is measured against.
  public func macsComputedPerExample(time: Int? = nil) -> Int {
    let n = macsPerExample(time: time)
    guard config.headReadsFirstRow, config.layers > 0 else { return n }
    let (c, t, last) = (config.dModel, time ?? config.sequenceLength, config.layers - 1)
    let pruned = t * c * 2 * c + c * c + 2 * t * c + c * c + mlpMACs(last)
    return n - blockMACs(last, time: t) + pruned
  }

  /// Block i at t positions: qkv, attention (QKᵀ and PV), projection, MLP.
  private func blockMACs(_ i: Int, time t: Int) -> Int {
    let c = config.dModel
    return t * c * 3 * c + 2 * t * t * c + t * c * c + t * mlpMACs(i)
  }

  /// Block i's MLP (or its collapsed linear) for one position.
  private func mlpMACs(_ i: Int) -> Int {
    collapsed[i] ? config.dModel * config.dModel : 2 * config.dModel * config.mlpHidden
  }
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

  /// A training step of `config` on batches of `batchSize`, with `vocabulary` tokens and
  /// `classes` outputs (the data decides them later; estimates are enough here).
  public static func training(_ config: ModelConfig, batchSize: Int) -> MemoryEstimate {
    let (d, h, layers) = (Double(config.dModel), Double(config.mlpHidden), Double(config.layers))
    let t = Double(config.sequenceLength)
    let outputs = Double(config.outputs)
    var p = layers * (4 * d * d + 2 * d * h + 9 * d + h) + t * d + 2 * d
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
