/// AdamW (Loshchilov and Hutter) with decoupled weight decay, PyTorch's update order:
/// `p ← p − lr·wd·p`, then the bias-corrected Adam step.
public struct AdamW: Sendable, Equatable {
  // Hyper-parameters are Double, as PyTorch's are Python floats: `1 − β2` for β2 = 0.999
  // in float32 would lose 1e-5 of its value to cancellation.
  public var beta1: Double
  public var beta2: Double
  public var epsilon: Double
  public var weightDecay: Double

  public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01) {
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
  }

  /// One update of `param` from `grad` · `gradScale`, with moments `m`, `v` and the
  /// 1-based step `t`. `decay: false` exempts the tensor from weight decay (biases, norms,
  /// LayerCollapse's α in decoupled mode). `gradScale` is gradient clipping's factor
  /// (`GradientClipping.factor`), applied as each gradient is read: the same bits as
  /// scaling the gradients first (`clip`), without that pass over them; `grad` is left
  /// as it is.
  public func update(
    param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: Double, step t: Int, decay: Bool = true,
    gradScale: Float = 1
  ) {
    precondition(t >= 1, "AdamW step is 1-based, got \(t)")
    precondition(grad.count == param.count && m.count == param.count && v.count == param.count, "AdamW shapes")
    let b1 = Float(beta1)
    let b2 = Float(beta2)
    let a1 = Float(1 - beta1)
    let a2 = Float(1 - beta2)
    let c1 = Float(1 - power(beta1, t))
    let c2 = Float(1 - power(beta2, t))
    let eps = Float(epsilon)
    let rate = Float(lr)
    let shrink = decay ? Float(1 - lr * weightDecay) : 1
    let (pp, gp, mp, vp) = (param.data, UnsafePointer(grad.data), m.data, v.data)
    let scale = Float8(repeating: gradScale)
    // Eight lanes of exactly the scalar arithmetic (no FMA), so the bits are unchanged.
    Elementwise.parts(param.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        let g = load8(gp + i, lanes) * scale
        let mi = b1 * load8(mp + i, lanes) + a1 * g
        let vi = b2 * load8(vp + i, lanes) + a2 * g * g
        store8(mi, mp + i, lanes)
        store8(vi, vp + i, lanes)
        let mhat = mi / c1
        let vhat = vi / c2
        store8(load8(pp + i, lanes) * shrink - rate * mhat / (vhat.squareRoot() + eps), pp + i, lanes)
      }
      part.vectors(vector)
    }
  }

  /// βⁿ by repeated squaring: log₂ n multiplications, where a loop of n cost a million per
  /// tensor at step 10⁶. Within a few Double ulps of the loop's product (tested), far
  /// below the Float the bias correction is used as.
  public func power(_ base: Double, _ n: Int) -> Double {
    var result: Double = 1
    var square: Double = base
    var rest: Int = n
    while rest > 0 {
      if rest & 1 == 1 { result *= square }
      square *= square
      rest >>= 1
    }
    return result
  }
}

public enum GradientClipping {
  /// Elements per piece of the parallel loops: about 10 µs of work each.
  static let pieceSize = 1 << 15

  /// The L2 norm over all tensors together. Each tensor is cut into pieces of
  /// `pieceSize`, each piece's squares are summed in Double lanes (on whichever thread),
  /// and the piece sums are added in order: the same bits at every thread count.
  public static func globalNorm(_ grads: [Tensor]) -> Float { norm(of: cut(grads)) }

  /// The L2 norm over pieces as `cut` makes them.
  static func norm(of pieces: [(UnsafeMutablePointer<Float>, Int)]) -> Float {
    var sums = [Double](repeating: 0, count: pieces.count)
    sums.withUnsafeMutableBufferPointer { out in
      let o = out.baseAddress!
      Parallel.forEach(pieces.count) { i in
        let (p, n) = pieces[i]
        o[i] = sumOfSquares(p, n)
      }
    }
    var total: Double = 0
    for x in sums { total += x }
    return Float(total.squareRoot())
  }

  /// The factor that brings gradients of global norm `norm` to at most `maxNorm`: 1 when
  /// they are within it (or `maxNorm` is 0, no clipping), else `maxNorm / norm`.
  public static func factor(norm: Float, maxNorm: Float) -> Float {
    maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1
  }

  /// Scales all gradients so their global norm is at most `maxNorm`; returns the norm
  /// before. The trainer hands `factor` to AdamW instead (one pass over the gradients
  /// fewer); this is the two-pass reference that fused path is tested against.
  @discardableResult
  public static func clip(_ grads: [Tensor], maxNorm: Float) -> Float {
    let pieces = cut(grads)
    let norm = norm(of: pieces)
    let s = factor(norm: norm, maxNorm: maxNorm)
    if s != 1 {
      Parallel.forEach(pieces.count) { i in
        let (p, n) = pieces[i]
        @inline(__always) func vector(_ j: Int, _ lanes: Int) { store8(load8(p + j, lanes) * s, p + j, lanes) }
        vectorLoop(0, n, vector)
      }
    }
    return norm
  }

  /// The tensors as pieces of at most `pieceSize` elements: (start, count).
  static func cut(_ grads: [Tensor]) -> [(UnsafeMutablePointer<Float>, Int)] {
    var pieces: [(UnsafeMutablePointer<Float>, Int)] = []
    for g in grads {
      for start in stride(from: 0, to: g.count, by: pieceSize) {
        pieces.append((g.data + start, min(pieceSize, g.count - start)))
      }
    }
    return pieces
  }

  /// Σ x² over n values, in Double: eight lanes, then the tail.
  static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var low = SIMD4<Double>(repeating: 0)
    var high = SIMD4<Double>(repeating: 0)
    var i = 0
    while i + 8 <= n {
      let v = load8(p + i)
      let a = SIMD4<Double>(v.lowHalf)
      let b = SIMD4<Double>(v.highHalf)
      low += a * a
      high += b * b
      i += 8
    }
    let both = low + high
    var sum = (both[0] + both[1]) + (both[2] + both[3])
    while i < n {
      sum += Double(p[i]) * Double(p[i])
      i += 1
    }
    return sum
  }
}

/// Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to `minimum`
/// at `totalSteps` (and `minimum` after it). Steps are 0-based.
public struct LearningRateSchedule: Sendable, Equatable {
  public var peak: Float
  public var minimum: Float
  public var warmupSteps: Int
  public var totalSteps: Int

  public init(peak: Float, minimum: Float = 0, warmupSteps: Int, totalSteps: Int) {
    precondition(
      warmupSteps >= 0 && totalSteps >= warmupSteps, "schedule: warm-up \(warmupSteps) beyond total \(totalSteps)")
    self.peak = peak
    self.minimum = minimum
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
  }

  public func rate(at step: Int) -> Float {
    if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
    if step >= totalSteps || totalSteps == warmupSteps { return minimum }
    let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
    let cosine = 0.5 * (1 + _cos(Double.pi * progress))
    return minimum + (peak - minimum) * Float(cosine)
  }
}
