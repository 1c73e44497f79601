/// Batch normalization as PyTorch's `nn.BatchNorm2d` / `nn.BatchNorm1d` compute it, on
/// x viewed as (N, C, S): S = H·W for images, 1 for features.
///
/// Training: each channel is normalized with its batch mean and biased variance over the
/// N·S values, `y = γ·(x − μ)·invStd + β`, `invStd = 1/√(σ² + ε)`; the running statistics
/// move by `momentum` (PyTorch's convention: `running = (1 − m)·running + m·batch`), the
/// running variance with the unbiased variance (`σ²·n/(n − 1)`). Evaluation: the running
/// statistics instead. One part per channel, its sums in a fixed order (eight float lanes
/// per run of S values, the runs added in Double), so the result does not depend on the
/// thread count.
public enum BatchNorm {
  public struct Shape: Sendable, Equatable {
    public var batch: Int
    public var channels: Int
    public var spatial: Int
    public init(batch: Int, channels: Int, spatial: Int = 1) {
      (self.batch, self.channels, self.spatial) = (batch, channels, spatial)
    }
    /// Values per channel.
    public var count: Int { batch * spatial }
  }

  static func check(_ x: Tensor, _ s: Shape, _ what: String) {
    precondition(x.count == s.batch * s.channels * s.spatial, "batchnorm: \(what) \(x.shape) for \(s)")
  }

  /// x -> y (written); saves each channel's batch mean and invStd (C) for the backward and
  /// updates `runningMean` and `runningVariance` (C). Needs more than one value per
  /// channel (the caller refuses a batch of 1, as PyTorch does).
  public static func forwardTraining(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, invStd: Tensor, runningMean: Tensor,
    runningVariance: Tensor, momentum: Float, epsilon: Float, relu: Bool = false, _ s: Shape
  ) {
    check(x, s, "x")
    check(y, s, "y")
    precondition(s.count > 1, "batchnorm: training needs more than one value per channel")
    let (xs, ys) = (x.data, y.data)
    let (c, sp, n) = (s.channels, s.spatial, s.count)
    Parallel.forEach(c, grain: max(1, Elementwise.grain / max(n, 1))) { ch in
      var sum: Double = 0
      for b in 0..<s.batch { sum += Double(laneSum(xs + (b * c + ch) * sp, sp)) }
      let mu: Double = sum / Double(n)
      let muF: Float = Float(mu)
      var squares: Double = 0
      for b in 0..<s.batch { squares += Double(runSquares(xs + (b * c + ch) * sp, sp, minus: muF)) }
      let variance: Double = squares / Double(n)
      let inv: Double = 1 / (variance + Double(epsilon)).squareRoot()
      mean.data[ch] = muF
      invStd.data[ch] = Float(inv)
      let m: Double = Double(momentum)
      runningMean.data[ch] = Float((1 - m) * Double(runningMean.data[ch]) + m * mu)
      runningVariance.data[ch] = Float(
        (1 - m) * Double(runningVariance.data[ch]) + m * variance * Double(n) / Double(n - 1))
      let (g, bt, invF): (Float, Float, Float) = (gamma.data[ch], beta.data[ch], Float(inv))
      for b in 0..<s.batch {
        let offset: Int = (b * c + ch) * sp
        if relu {
          // ReLU's forward on the way out: max(0, ·), NaN kept, as `ReLU.forward`.
          for i in 0..<sp { ys[offset + i] = ReLU.apply(g * (xs[offset + i] - muF) * invF + bt) }
        } else {
          for i in 0..<sp { ys[offset + i] = g * (xs[offset + i] - muF) * invF + bt }
        }
      }
    }
  }

  /// Σ (x − mu)² of a run, in eight lanes (the lanes past the run's end add nothing).
  @inline(__always)
  static func runSquares(_ p: UnsafePointer<Float>, _ count: Int, minus mu: Float) -> Float {
    var lanes: Float8 = Float8()
    let shift: Float8 = Float8(repeating: mu)
    @inline(__always) func add(_ i: Int, _ width: Int) {
      var d: Float8 = load8(p + i, width) - shift
      if width < 8 { for l in width..<8 { d[l] = 0 } }
      lanes += d * d
    }
    vectorLoop(0, count, add)
    return sum8(lanes)
  }

  /// x -> y (written) with the running statistics.
  public static func forwardInference(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVariance: Tensor, epsilon: Float,
    _ s: Shape
  ) {
    check(x, s, "x")
    check(y, s, "y")
    let (xs, ys) = (x.data, y.data)
    let (c, sp) = (s.channels, s.spatial)
    let (scales, shifts) = inferenceAffine(
      gamma: gamma, beta: beta, runningMean: runningMean, runningVariance: runningVariance, epsilon: epsilon)
    scales.withUnsafeBufferPointer { scale in
      shifts.withUnsafeBufferPointer { shift in
        Parallel.forRanges(s.batch, grain: max(1, Elementwise.grain / max(c * sp, 1))) { images in
          for b in images {
            for ch in 0..<c {
              let (a, t, offset) = (scale[ch], shift[ch], (b * c + ch) * sp)
              for i in 0..<sp { ys[offset + i] = a * xs[offset + i] + t }
            }
          }
        }
      }
    }
  }

  /// Evaluation's map per channel, `y = scale·x + shift`: scale = γ/√(running σ² + ε)
  /// (in Double, rounded once), shift = β − scale·running μ. `forwardInference` applies it,
  /// and a convolution can apply it on its way out (`Conv2d.Epilogue`), to the same bits.
  public static func inferenceAffine(
    gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVariance: Tensor, epsilon: Float
  ) -> (scale: [Float], shift: [Float]) {
    let c: Int = gamma.count
    var scales: [Float] = [Float](repeating: 0, count: c)
    var shifts: [Float] = [Float](repeating: 0, count: c)
    for ch in 0..<c {
      scales[ch] = Float(Double(gamma.data[ch]) / (Double(runningVariance.data[ch]) + Double(epsilon)).squareRoot())
      shifts[ch] = beta.data[ch] - scales[ch] * runningMean.data[ch]
    }
    return (scales, shifts)
  }

  /// The training forward's gradients: dx (added, or written with `.overwrite`), dγ and
  /// dβ (added), from the saved mean and invStd. With x̂ = (x − μ)·invStd over the
  /// n = N·S values of a channel: dβ = Σ dy, dγ = Σ dy·x̂,
  /// dx = γ·invStd·(dy − Σdy/n − x̂·Σ(dy·x̂)/n).
  /// `reluOutput` (the forward's output with `relu: true`): dy is the gradient after the
  /// ReLU, passed back only where that output is > 0 (`ReLU.backward`'s rule, fused).
  public static func backward(
    dx: Tensor, dgamma: Tensor, dbeta: Tensor, dy: Tensor, x: Tensor, gamma: Tensor, mean: Tensor, invStd: Tensor,
    write: GradientWrite = .accumulate, reluOutput: Tensor? = nil, _ s: Shape
  ) {
    check(dx, s, "dx")
    check(dy, s, "dy")
    if let r = reluOutput { check(r, s, "reluOutput") }
    let (xs, dys, dxs) = (x.data, dy.data, dx.data)
    let gate: UnsafeMutablePointer<Float> = reluOutput?.data ?? dy.data
    let gated: Bool = reluOutput != nil
    let (c, sp, n) = (s.channels, s.spatial, s.count)
    let overwrite = write == .overwrite
    Parallel.forEach(c, grain: max(1, Elementwise.grain / max(n, 1))) { ch in
      let (mu, inv) = (mean.data[ch], invStd.data[ch])
      var sumDy: Double = 0
      var sumDyXhat: Double = 0
      let (shift, scale): (Float8, Float8) = (Float8(repeating: mu), Float8(repeating: inv))
      /// dy at `at`, gated by the ReLU's output when there is one.
      @inline(__always) func gradient(_ at: Int, _ width: Int) -> Float8 {
        var g: Float8 = load8(dys + at, width)
        if gated { g.replace(with: 0, where: .!(load8(gate + at, width) .> 0)) }
        return g
      }
      for b in 0..<s.batch {
        let offset: Int = (b * c + ch) * sp
        var (lanes, products): (Float8, Float8) = (Float8(), Float8())
        // x̂ of the lanes past the run's end is garbage, but their dy loads as 0.
        @inline(__always) func add(_ i: Int, _ width: Int) {
          let g: Float8 = gradient(offset + i, width)
          lanes += g
          products += g * ((load8(xs + offset + i, width) - shift) * scale)
        }
        vectorLoop(0, sp, add)
        sumDy += Double(sum8(lanes))
        sumDyXhat += Double(sum8(products))
      }
      dbeta.data[ch] += Float(sumDy)
      dgamma.data[ch] += Float(sumDyXhat)
      let k = gamma.data[ch] * inv
      let (meanDy, meanDyXhat) = (Float(sumDy / Double(n)), Float(sumDyXhat / Double(n)))
      let (factor, dyMean, productMean): (Float8, Float8, Float8) = (
        Float8(repeating: k), Float8(repeating: meanDy), Float8(repeating: meanDyXhat)
      )
      for b in 0..<s.batch {
        let offset: Int = (b * c + ch) * sp
        @inline(__always) func write(_ i: Int, _ width: Int) {
          let g: Float8 = gradient(offset + i, width)
          let xhat: Float8 = (load8(xs + offset + i, width) - shift) * scale
          let term: Float8 = factor * (g - dyMean - xhat * productMean)
          store8(overwrite ? term : load8(dxs + offset + i, width) + term, dxs + offset + i, width)
        }
        vectorLoop(0, sp, write)
      }
    }
  }

  /// The training forward from the definition, in Double (statistics and output): the
  /// tests' reference. Returns the batch means and biased variances.
  public static func referenceForwardTraining(
    y: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float, _ s: Shape
  )
    -> (mean: [Double], variance: [Double])
  {
    var means: [Double] = []
    var variances: [Double] = []
    for ch in 0..<s.channels {
      var values: [Double] = []
      for b in 0..<s.batch {
        for i in 0..<s.spatial { values.append(Double(x[(b * s.channels + ch) * s.spatial + i])) }
      }
      let mu = values.reduce(0, +) / Double(values.count)
      let variance = values.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(values.count)
      means.append(mu)
      variances.append(variance)
      for b in 0..<s.batch {
        for i in 0..<s.spatial {
          let at = (b * s.channels + ch) * s.spatial + i
          y[at] = Float(
            Double(gamma[ch]) * (Double(x[at]) - mu) / (variance + Double(epsilon)).squareRoot() + Double(beta[ch]))
        }
      }
    }
    return (means, variances)
  }
}
