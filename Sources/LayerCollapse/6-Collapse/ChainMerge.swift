import Kernels

/// One affine layer of a collapsible chain: `y = x·Wᵀ + b`, W (out, in) as PyTorch stores it.
public struct AffineMap {
  public var weight: Tensor  // (out, in)
  public var bias: Tensor  // (out)

  public init(weight: Tensor, bias: Tensor) {
    precondition(
      weight.rank == 2 && bias.count == weight.shape[0], "affine map \(weight.shape) with bias \(bias.shape)")
    self.weight = weight
    self.bias = bias
  }

  public var inputs: Int { weight.shape[1] }
  public var outputs: Int { weight.shape[0] }
  public var parameterCount: Int { weight.count + bias.count }

  /// y = x·Wᵀ + b for x (rows, in).
  public func apply(_ x: Tensor) -> Tensor {
    let y = Tensor([x.count / inputs, outputs])
    Linear.forward(y: y, x: x, w: weight, b: bias)
    return y
  }
}

/// BatchNorm1d in evaluation mode, an affine map per feature:
/// `y = γ·(x − μ)/√(σ² + ε) + β` with the running mean μ and variance σ².
public struct BatchNormStatistics {
  public var scale: Tensor  // γ (features)
  public var shift: Tensor  // β
  public var runningMean: Tensor
  public var runningVariance: Tensor
  public var epsilon: Float

  public init(scale: Tensor, shift: Tensor, runningMean: Tensor, runningVariance: Tensor, epsilon: Float = 1e-5) {
    self.scale = scale
    self.shift = shift
    self.runningMean = runningMean
    self.runningVariance = runningVariance
    self.epsilon = epsilon
  }
}

/// LayerCollapse's merge of a fully connected chain `Linear → [BatchNorm1d] → act →
/// [Dropout] → Linear → … → Linear`: where an activation is linear (|α − 1| below the
/// threshold, so act(x) = x), the linears around it become one, `W = W2·W1`,
/// `b = W2·b1 + b2`, a BatchNorm between them folded in first. Dropout is the identity
/// outside training. Each merge is made only where it leaves fewer parameters.
public enum ChainMerge {
  /// The linear followed by its BatchNorm, as one affine map:
  /// `W' = diag(s)·W`, `b' = s·(b − μ) + β`, `s = γ/√(σ² + ε)`.
  public static func foldBatchNorm(_ layer: AffineMap, _ bn: BatchNormStatistics) -> AffineMap {
    let (out, inputs) = (layer.outputs, layer.inputs)
    precondition(bn.scale.count == out, "BatchNorm over \(bn.scale.count) features after a linear of \(out)")
    let w = Tensor([out, inputs])
    let b = Tensor([out])
    for o in 0..<out {
      // In Double: the running variance can be tiny, and s multiplies a whole row.
      let s = Double(bn.scale[o]) / (Double(bn.runningVariance[o]) + Double(bn.epsilon)).squareRoot()
      for i in 0..<inputs { w[o * inputs + i] = Float(s * Double(layer.weight[o * inputs + i])) }
      b[o] = Float(s * (Double(layer.bias[o]) - Double(bn.runningMean[o])) + Double(bn.shift[o]))
    }
    return AffineMap(weight: w, bias: b)
  }

  /// `second ∘ first`: W = W2·W1 (out₂, in₁), b = W2·b1 + b2.
  public static func compose(_ first: AffineMap, _ second: AffineMap) -> AffineMap {
    precondition(second.inputs == first.outputs, "cannot compose \(first.weight.shape) then \(second.weight.shape)")
    let (w, b) = Linear.compose(w1: first.weight, b1: first.bias, w2: second.weight, b2: second.bias)
    return AffineMap(weight: w, bias: b)
  }

  /// Whether merging `first` and `second` leaves fewer parameters than the two hold.
  public static func mergeIsSmaller(_ first: AffineMap, _ second: AffineMap) -> Bool {
    second.outputs * first.inputs + second.outputs < first.parameterCount + second.parameterCount
  }

  /// What happened at one junction (the activation between map i and map i + 1).
  public enum Junction: Sendable, Equatable {
    /// The activation is not linear: both sides stay.
    case kept
    /// Linear, but the merged map would not be smaller.
    case notSmaller
    case merged
  }

  /// Merges `maps` (each with the BatchNorm that follows it, if any) across every junction
  /// whose activation is linear (`linear[i]` for the activation after map i), from the
  /// input end, where the merge is smaller. A BatchNorm is folded into its linear when the
  /// junction after it merges; elsewhere it stays. Returns the chain's new maps, the
  /// BatchNorm after each (nil where folded or absent), and each junction's fate.
  public static func merge(
    _ maps: [AffineMap], batchNorms: [BatchNormStatistics?], linear: [Bool]
  ) -> (maps: [AffineMap], batchNorms: [BatchNormStatistics?], junctions: [Junction]) {
    precondition(!maps.isEmpty && batchNorms.count == maps.count && linear.count == maps.count - 1, "chain shape")
    var outMaps: [AffineMap] = [maps[0]]
    var outNorms: [BatchNormStatistics?] = [batchNorms[0]]
    var junctions: [Junction] = []
    for i in 1..<maps.count {
      let previous = outMaps[outMaps.count - 1]
      let folded = outNorms[outNorms.count - 1].map { foldBatchNorm(previous, $0) } ?? previous
      if !linear[i - 1] {
        junctions.append(.kept)
      } else if !mergeIsSmaller(folded, maps[i]) {
        junctions.append(.notSmaller)
      } else {
        outMaps[outMaps.count - 1] = compose(folded, maps[i])
        outNorms[outNorms.count - 1] = batchNorms[i]
        junctions.append(.merged)
        continue
      }
      outMaps.append(maps[i])
      outNorms.append(batchNorms[i])
    }
    return (outMaps, outNorms, junctions)
  }
}
