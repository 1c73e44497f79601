import Kernels
import Testing

/// Central finite differences against analytic gradients, in float32.
///
/// Tolerance: a kernel computes in float32 (unit roundoff u ≈ 6e-8). With loss
/// L = Σ out·g summed in Double and step h = 1e-2, the difference quotient carries a
/// rounding error of about u·Σ|out·g| / h ≈ 1e-5 per unit of |L| and a truncation error
/// h²·|f'''|/6 ≈ 2e-5 for the smooth activations used here, so |analytic − numeric| ≤
/// 2e-3 + 1e-2·|numeric| never fails a correct kernel, while a wrong formula (a missing
/// term, a transposed index, a sign) is off by O(1) and fails it.
enum FD {
  static let step: Float = 1e-2
  static let rtol: Double = 1e-2
  static let atol: Double = 2e-3

  /// Random tensor with entries N(0, scale²), from a named stream.
  static func random(_ shape: [Int], _ rng: inout RNG, scale: Float = 1) -> Tensor {
    let t = Tensor(shape)
    rng.fillNormal(t, std: scale)
    return t
  }

  /// Random tensor whose entries are at least `gap` away from zero (for kinked functions).
  static func awayFromZero(_ shape: [Int], _ rng: inout RNG, gap: Float = 0.05) -> Tensor {
    let t = random(shape, &rng)
    for i in 0..<t.count where abs(t.data[i]) < gap { t.data[i] = t.data[i] < 0 ? -gap - 0.1 : gap + 0.1 }
    return t
  }

  /// Σ out·g in Double.
  static func dot(_ out: Tensor, _ g: Tensor) -> Double {
    var s: Double = 0
    for i in 0..<out.count { s += Double(out.data[i]) * Double(g.data[i]) }
    return s
  }

  /// Numeric gradient of `loss` with respect to every element of `t`.
  static func numeric(_ t: Tensor, step h: Float = step, _ loss: () -> Double) -> [Double] {
    var grad = [Double](repeating: 0, count: t.count)
    for i in 0..<t.count {
      let saved = t.data[i]
      t.data[i] = saved + h
      let plus = loss()
      t.data[i] = saved - h
      let minus = loss()
      t.data[i] = saved
      grad[i] = (plus - minus) / Double(2 * h)
    }
    return grad
  }

  /// Expects the analytic gradient to match central differences of `loss` in `t`.
  static func check(
    _ label: String, analytic: Tensor, wrt t: Tensor, step h: Float = step,
    sourceLocation: SourceLocation = #_sourceLocation, _ loss: () -> Double
  ) {
    let numeric = numeric(t, step: h, loss)
    var worst = 0.0
    var worstIndex = 0
    for i in 0..<t.count {
      let excess = abs(Double(analytic.data[i]) - numeric[i]) - (atol + rtol * abs(numeric[i]))
      if excess > worst {
        worst = excess
        worstIndex = i
      }
    }
    #expect(
      worst == 0,
      "\(label)[\(worstIndex)]: analytic \(analytic.data[worstIndex]) vs numeric \(numeric[worstIndex])",
      sourceLocation: sourceLocation)
  }

  /// Scalar version, for a single parameter such as PReLU's α.
  static func checkScalar(
    _ label: String, analytic: Float, value: inout Float, step h: Float = step,
    sourceLocation: SourceLocation = #_sourceLocation, _ loss: (Float) -> Double
  ) {
    let numeric = (loss(value + h) - loss(value - h)) / Double(2 * h)
    #expect(
      abs(Double(analytic) - numeric) <= atol + rtol * abs(numeric),
      "\(label): analytic \(analytic) vs numeric \(numeric)", sourceLocation: sourceLocation)
  }
}
