/// Element-wise activations. `forward` writes `out`; `backward` adds `f'(x)·dout` into `dx`.
public enum Activation: String, Sendable, CaseIterable, Codable {
  /// GELU, tanh approximation (GPT-2, BERT's common implementation).
  case gelu
  /// GELU through erf.
  case geluExact = "gelu_exact"
  case relu
  /// PReLU with ONE scalar slope: x if x > 0 else α·x.
  case prelu
}

public enum GELU {
  static let c: Float = 0.797_884_56  // √(2/π)

  /// x: (n) -> out: (n), tanh approximation.
  public static func forward(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "gelu: \(out.shape) vs \(x.shape)")
    for i in 0..<x.count {
      let v = x.data[i]
      let u = c * (v + 0.044715 * v * v * v)
      out.data[i] = 0.5 * v * (1 + _tanhf(u))
    }
  }

  public static func backward(dx: Tensor, dout: Tensor, x: Tensor) {
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

  /// Exact GELU: x·Φ(x).
  public static func forwardExact(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "gelu: \(out.shape) vs \(x.shape)")
    for i in 0..<x.count {
      let v = x.data[i]
      out.data[i] = 0.5 * v * (1 + _erff(v * invSqrt2))
    }
  }

  /// d/dx x·Φ(x) = Φ(x) + x·φ(x).
  public static func backwardExact(dx: Tensor, dout: Tensor, x: Tensor) {
    for i in 0..<x.count {
      let v = x.data[i]
      let cdf = 0.5 * (1 + _erff(v * invSqrt2))
      let pdf = invSqrt2Pi * _expf(-0.5 * v * v)
      dx.data[i] += (cdf + v * pdf) * dout.data[i]
    }
  }
}

public enum ReLU {
  public static func forward(out: Tensor, x: Tensor) {
    precondition(out.count == x.count, "relu: \(out.shape) vs \(x.shape)")
    for i in 0..<x.count { out.data[i] = max(x.data[i], 0) }
  }

  public static func backward(dx: Tensor, dout: Tensor, x: Tensor) {
    for i in 0..<x.count where x.data[i] > 0 { dx.data[i] += dout.data[i] }
  }
}

/// PReLU with a single learnable slope shared by every element.
public enum PReLU {
  public static func forward(out: Tensor, x: Tensor, alpha: Float) {
    precondition(out.count == x.count, "prelu: \(out.shape) vs \(x.shape)")
    for i in 0..<x.count {
      let v = x.data[i]
      out.data[i] = v > 0 ? v : alpha * v
    }
  }

  /// Adds `dout·f'(x)` into dx (if given) and returns dα = Σ_{x ≤ 0} dout·x.
  /// The reduction runs in 8 float lanes summed in Double at the end: a fixed order,
  /// so the same inputs always give the same bits.
  @discardableResult
  public static func backward(dx: Tensor?, dout: Tensor, x: Tensor, alpha: Float) -> Float {
    let n = x.count
    var lanes = SIMD8<Float>(repeating: 0)
    var i = 0
    let xp = x.data
    let gp = dout.data
    while i + 8 <= n {
      let v = UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD8<Float>.self)
      let g = UnsafeRawPointer(gp + i).loadUnaligned(as: SIMD8<Float>.self)
      let negative = v .<= 0
      lanes += (v * g).replacing(with: 0, where: .!negative)
      if let dx = dx {
        let d = UnsafeRawPointer(dx.data + i).loadUnaligned(as: SIMD8<Float>.self)
        let scaled = g.replacing(with: g * alpha, where: negative)
        UnsafeMutableRawPointer(dx.data + i).storeBytes(of: d + scaled, as: SIMD8<Float>.self)
      }
      i += 8
    }
    var dAlpha: Double = 0
    for l in 0..<8 { dAlpha += Double(lanes[l]) }
    while i < n {
      let v = xp[i]
      if v <= 0 { dAlpha += Double(v * gp[i]) }
      dx?.data[i] += v > 0 ? gp[i] : alpha * gp[i]
      i += 1
    }
    return Float(dAlpha)
  }
}
