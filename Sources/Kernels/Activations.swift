/// Element-wise activations. `forward` writes `out`; `backward` adds `f'(x)·dout` into `dx`.
public enum Activation: String, Sendable, CaseIterable, Codable {
  /// GELU, tanh approximation (GPT-2, BERT's common implementation).
  case gelu
  /// GELU through erf.
  case geluExact = "gelu_exact"
  case relu
  /// PReLU with ONE scalar slope: x if x > 0 else α·x.
  case prelu

  /// x -> out (same shape); `alpha` is the PReLU slope (ignored by the others).
  public func forward(out: Tensor, x: Tensor, alpha: Float = 0) {
    switch self {
    case .gelu: GELU.forward(out: out, x: x)
    case .geluExact: GELU.forwardExact(out: out, x: x)
    case .relu: ReLU.forward(out: out, x: x)
    case .prelu: PReLU.forward(out: out, x: x, alpha: alpha)
    }
  }

  /// dout -> dx (`write`: added or overwritten); returns dL/dα for a PReLU, 0 otherwise.
  @discardableResult
  public func backward(dx: Tensor, dout: Tensor, x: Tensor, alpha: Float = 0, write: GradientWrite) -> Float {
    switch self {
    case .gelu: GELU.backward(dx: dx, dout: dout, x: x, write: write)
    case .geluExact: GELU.backwardExact(dx: dx, dout: dout, x: x, write: write)
    case .relu: ReLU.backward(dx: dx, dout: dout, x: x, write: write)
    case .prelu: return PReLU.backward(dx: dx, dout: dout, x: x, alpha: alpha, write: write)
    }
    return 0
  }
}

/// max|a − b| / max|b| over two equal-length arrays (max|a − b| when b is all zero;
/// infinity when the lengths differ or a difference is not finite): how far one result
/// is from another at the scale of the second.
public func relativeDifference(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
  guard a.count == b.count else { return .infinity }
  var (worst, scale): (Float, Float) = (0, 0)
  for i in 0..<a.count {
    worst = max(worst, abs(a[i] - b[i]))
    scale = max(scale, abs(b[i]))
  }
  guard worst.isFinite else { return .infinity }
  return scale > 0 ? worst / scale : worst
}

/// `relativeDifference` of two arrays.
public func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
  a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in relativeDifference(pa, pb) } }
}

/// `relativeDifference` of two tensors' elements.
public func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
  relativeDifference(
    UnsafeBufferPointer(start: a.data, count: a.count), UnsafeBufferPointer(start: b.data, count: b.count))
}

public enum GELU {
  static let c: Float = 0.797_884_56  // √(2/π)

  // The tanh form through a sigmoid: 0.5·(1 + tanh u) = σ(2u), so
  // GELU(x) = x·σ(2u) and GELU'(x) = σ + 2x·σ(1 − σ)·c·(1 + 3·0.044715·x²),
  // u = c·(x + 0.044715·x³). With a vectorized exp this is 10× faster than `tanhf`,
  // and has no cancellation in 1 + tanh u for negative x.

  @inline(__always)
  static func sigmoid2u(_ v: Float8) -> Float8 {
    let u = c * (v + 0.044_715 * (v * v * v))
    return 1 / (1 + FastMath.exp(-2 * u))
  }

  /// GELU'(x) = σ + 2x·σ(1 − σ)·c·(1 + 3·0.044715·x²), σ = σ(2u).
  @inline(__always)
  static func derivative(_ v: Float8) -> Float8 {
    let s = sigmoid2u(v)
    return s + 2 * c * v * s * (1 - s) * (1 + 3 * 0.044_715 * (v * v))
  }

  // Both directions are written out as loops (whole vectors, then the short tail): through
  // `Elementwise.Part.vectors` the compiler left `sigmoid2u` a call per vector on the
  // one-thread path, and GELU forward ran 1.4× slower (0.93 against 0.68 ns per element).

  /// x: (n) -> out: (n), tanh approximation.
  public static func forward(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "gelu: \(out.shape) vs \(x.shape)")
    let (o, xp) = (out.data, UnsafePointer(x.data))
    Elementwise.parts(x.count) { part in
      var i = part.start
      while i + 8 <= part.end {
        let v = load8(xp + i)
        store8(v * sigmoid2u(v), o + i)
        i += 8
      }
      if i < part.end {
        let v = load8(xp + i, part.end - i)
        store8(v * sigmoid2u(v), o + i, part.end - i)
      }
    }
  }

  /// dx += (or =, see `GradientWrite`) GELU'(x)·dout.
  public static func backward(dx: Tensor, dout: Tensor, x: Tensor, write: GradientWrite = .accumulate) {
    precondition(dx.count == x.count && dout.count == x.count, "gelu backward shapes")
    let (d, g, xp) = (dx.data, UnsafePointer(dout.data), UnsafePointer(x.data))
    let add = write == .accumulate
    Elementwise.parts(x.count) { part in
      var i = part.start
      while i + 8 <= part.end {
        let grad = derivative(load8(xp + i)) * load8(g + i)
        store8(add ? load8(d + i) + grad : grad, d + i)
        i += 8
      }
      if i < part.end {
        let m = part.end - i
        let grad = derivative(load8(xp + i, m)) * load8(g + i, m)
        store8(add ? load8(d + i, m) + grad : grad, d + i, m)
      }
    }
  }

  /// Reference forward through `tanhf`, element by element (for tests).
  public static func referenceForward(out: Tensor, x: Tensor) {
    for i in 0..<x.count {
      let v = x.data[i]
      let u = c * (v + 0.044715 * v * v * v)
      out.data[i] = 0.5 * v * (1 + _tanhf(u))
    }
  }

  /// Reference backward through `tanhf` (for tests).
  public static func referenceBackward(dx: Tensor, dout: Tensor, x: Tensor) {
    for i in 0..<x.count {
      let v = x.data[i]
      let u = c * (v + 0.044715 * v * v * v)
      let t = _tanhf(u)
      let sech2 = 1 - t * t
      let grad = 0.5 * (1 + t) + 0.5 * v * sech2 * c * (1 + 3 * 0.044715 * v * v)
      dx.data[i] += grad * dout.data[i]
    }
  }

  static let invSqrt2: Float = 0.707_106_77
  static let invSqrt2Pi: Float = 0.398_942_28

  // Exact GELU, x·Φ(x), Φ(x) = ½·(1 + erf(x/√2)), in eight lanes: erfc(|z|) by
  // Abramowitz–Stegun 7.1.26 (a degree-5 polynomial in t = 1/(1 + p·|z|) times e^(−z²),
  // within 1.5e-7 of erfc), the vectorized exp, and Φ = 1 − ½·erfc(|z|) for x ≥ 0,
  // ½·erfc(|z|) below (no cancellation in the negative tail). The same e^(−z²) = e^(−x²/2)
  // gives the density for the derivative. (Before: libm's `erff`, one element at a time.)

  /// Φ(x) and φ(x) = e^(−x²/2)/√(2π).
  @inline(__always)
  static func normalCDF(_ v: Float8) -> (cdf: Float8, pdf: Float8) {
    // |v| by clearing the sign bits: `pointwiseMax(v, -v)` stayed a generic call per vector
    // (2 % of a MiniLM training step in perf).
    let magnitude = unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x7fff_ffff)
    let z = unsafeBitCast(magnitude, to: Float8.self) * invSqrt2
    let t = 1 / muladd(z, Float8(repeating: 0.327_591_1), Float8(repeating: 1))
    var p = Float8(repeating: 1.061_405_429)
    p = muladd(p, t, -1.453_152_027)
    p = muladd(p, t, 1.421_413_741)
    p = muladd(p, t, -0.284_496_736)
    p = muladd(p, t, 0.254_829_592)
    let e = FastMath.exp(-(z * z))
    let half = 0.5 * (p * t * e)  // ½·erfc(|z|)
    let cdf = (1 - half).replacing(with: half, where: v .< 0)
    return (cdf, invSqrt2Pi * e)
  }

  /// Exact GELU: x·Φ(x).
  public static func forwardExact(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "gelu: \(out.shape) vs \(x.shape)")
    let (o, xp) = (out.data, UnsafePointer(x.data))
    Elementwise.parts(x.count) { part in
      var i = part.start
      while i + 8 <= part.end {
        let v = load8(xp + i)
        store8(v * normalCDF(v).cdf, o + i)
        i += 8
      }
      if i < part.end {
        let v = load8(xp + i, part.end - i)
        store8(v * normalCDF(v).cdf, o + i, part.end - i)
      }
    }
  }

  /// d/dx x·Φ(x) = Φ(x) + x·φ(x).
  public static func backwardExact(dx: Tensor, dout: Tensor, x: Tensor, write: GradientWrite = .accumulate) {
    precondition(dx.count == x.count && dout.count == x.count, "gelu backward shapes")
    let (d, g, xp) = (dx.data, UnsafePointer(dout.data), UnsafePointer(x.data))
    let add = write == .accumulate
    Elementwise.parts(x.count) { part in
      var i = part.start
      while i + 8 <= part.end {
        let v = load8(xp + i)
        let (cdf, pdf) = normalCDF(v)
        let grad = muladd(v, pdf, cdf) * load8(g + i)
        store8(add ? load8(d + i) + grad : grad, d + i)
        i += 8
      }
      if i < part.end {
        let m = part.end - i
        let v = load8(xp + i, m)
        let (cdf, pdf) = normalCDF(v)
        let grad = muladd(v, pdf, cdf) * load8(g + i, m)
        store8(add ? load8(d + i, m) + grad : grad, d + i, m)
      }
    }
  }

  /// Reference exact GELU through libm's `erff`, element by element (for tests).
  public static func referenceForwardExact(out: Tensor, x: Tensor) {
    for i in 0..<x.count {
      let v = x.data[i]
      out.data[i] = 0.5 * v * (1 + _erff(v * invSqrt2))
    }
  }

  /// Reference exact GELU derivative through `erff` and `expf` (for tests).
  public static func referenceBackwardExact(dx: Tensor, dout: Tensor, x: Tensor) {
    for i in 0..<x.count {
      let v = x.data[i]
      let grad = 0.5 * (1 + _erff(v * invSqrt2)) + v * invSqrt2Pi * _expf(-0.5 * v * v)
      dx.data[i] += grad * dout.data[i]
    }
  }
}

/// tanh (BERT's pooler). Small tensors only: no threads, libm's tanhf.
public enum Tanh {
  /// x -> out = tanh(x).
  public static func forward(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "tanh: \(out.shape) vs \(x.shape)")
    for i in 0..<x.count { out.data[i] = _tanhf(x.data[i]) }
  }

  /// dout -> dx = dout·(1 − y²), overwritten, from the forward's output `y`.
  public static func backward(dx: Tensor, dout: Tensor, y: Tensor) {
    precondition(dx.count == y.count && dout.count == y.count, "tanh backward shapes")
    for i in 0..<y.count { dx.data[i] = dout.data[i] * (1 - y.data[i] * y.data[i]) }
  }
}

public enum ReLU {
  /// One value: 0 where v ≤ 0, v elsewhere (NaN kept), as `forward` does in lanes; for
  /// kernels that apply a ReLU on their way out.
  @inline(__always)
  public static func apply(_ v: Float) -> Float { v <= 0 ? 0 : v }

  public static func forward(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "relu: \(out.shape) vs \(x.shape)")
    let (o, xp) = (out.data, UnsafePointer(x.data))
    Elementwise.parts(x.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        let v = load8(xp + i, lanes)
        store8(v.replacing(with: 0, where: v .<= 0), o + i, lanes)
      }
      part.vectors(vector)
    }
  }

  public static func backward(dx: Tensor, dout: Tensor, x: Tensor, write: GradientWrite = .accumulate) {
    precondition(dx.count == x.count && dout.count == x.count, "relu backward shapes")
    let (d, g, xp) = (dx.data, UnsafePointer(dout.data), UnsafePointer(x.data))
    let add = write == .accumulate
    Elementwise.parts(x.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        let v = load8(xp + i, lanes)
        let pass = load8(g + i, lanes).replacing(with: 0, where: .!(v .> 0))
        store8(add ? load8(d + i, lanes) + pass : pass, d + i, lanes)
      }
      part.vectors(vector)
    }
  }
}

/// PReLU with a single learnable slope shared by every element.
public enum PReLU {
  public static func forward(out: Tensor, x: Tensor, alpha: Float) {
    precondition(out.count == x.count, "prelu: \(out.shape) vs \(x.shape)")
    let (o, xp) = (out.data, UnsafePointer(x.data))
    Elementwise.parts(x.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        let v = load8(xp + i, lanes)
        store8(v.replacing(with: alpha * v, where: .!(v .> 0)), o + i, lanes)
      }
      part.vectors(vector)
    }
  }

  /// Elements per partial sum of dα.
  static let chunk = 4096

  /// Adds `dout·f'(x)` into dx (if given; `.overwrite` writes it instead) and returns
  /// dα = Σ_{x ≤ 0} dout·x.
  /// dα is summed in fixed chunks of `chunk` elements (8 float lanes each), and the chunk
  /// sums are added in Double in chunk order: the same bits at any thread count.
  @discardableResult
  public static func backward(
    dx: Tensor?, dout: Tensor, x: Tensor, alpha: Float, write: GradientWrite = .accumulate
  ) -> Float {
    precondition(dout.count == x.count && (dx == nil || dx!.count == x.count), "prelu backward shapes")
    let n = x.count
    let chunks = (n + chunk - 1) / chunk
    let partial = UnsafeMutablePointer<Double>.allocate(capacity: max(chunks, 1))
    defer { partial.deallocate() }
    let (d, g, xp) = (dx?.data, UnsafePointer(dout.data), UnsafePointer(x.data))
    let add = write == .accumulate
    Parallel.forEach(chunks, grain: Elementwise.grain / chunk) { ci in
      // Written out: as a local function or closure through `vectorLoop` the compiler
      // made this 2.6× slower (0.5 -> 1.3 ns per element).
      var lanes = Float8(repeating: 0)
      let end = min(n, (ci + 1) * chunk)
      var i = ci * chunk
      while i < end {
        let m = min(8, end - i)
        let v = m == 8 ? load8(xp + i) : load8(xp + i, m)
        let gv = m == 8 ? load8(g + i) : load8(g + i, m)
        lanes += (v * gv).replacing(with: 0, where: v .> 0)
        if let d = d {
          let scaled = gv.replacing(with: gv * alpha, where: v .<= 0)
          let out = add ? load8(d + i, m) + scaled : scaled
          if m == 8 { store8(out, d + i) } else { store8(out, d + i, m) }
        }
        i += 8
      }
      partial[ci] = Double(sum8(lanes))
    }
    var dAlpha: Double = 0
    for ci in 0..<chunks { dAlpha += partial[ci] }
    return Float(dAlpha)
  }
}
