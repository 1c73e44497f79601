/// Ridge least squares for an affine map: the W (out, in) and b (out) minimizing
/// `Σ_rows |y − (W·x + b)|² + ε·|W|²` over rows of x (in) and y (out), from the sums
/// `Σ x̃·x̃ᵀ` and `Σ x̃·yᵀ` (x̃ = [x, 1]) accumulated in Double, solved by Cholesky.
/// ReplaceMe's training-free replacement of an MLP by one linear (`W = Y·Xᵀ(X·Xᵀ + εI)⁻¹`,
/// with a bias) is this fit on the MLP's inputs and outputs.
public struct LeastSquaresFit: Sendable {
  public let inputs: Int
  public let outputs: Int
  /// Rows added so far.
  public private(set) var rows: Int = 0
  private var gram: [Double]  // (in + 1)²
  private var cross: [Double]  // (in + 1, out)

  public init(inputs: Int, outputs: Int) {
    self.inputs = inputs
    self.outputs = outputs
    gram = [Double](repeating: 0, count: (inputs + 1) * (inputs + 1))
    cross = [Double](repeating: 0, count: (inputs + 1) * outputs)
  }

  /// Adds the rows of x (N, in) and y (N, out).
  public mutating func add(x: Tensor, y: Tensor) {
    let (n, m, k) = (inputs + 1, outputs, x.count / max(inputs, 1))
    precondition(x.count == k * inputs && y.count == k * m, "least squares: x \(x.shape), y \(y.shape)")
    var row = [Double](repeating: 1, count: n)
    for r in 0..<k {
      for i in 0..<inputs { row[i] = Double(x.data[r * inputs + i]) }
      for i in 0..<n {
        let a = row[i]
        for j in i..<n { gram[i * n + j] += a * row[j] }
        for j in 0..<m { cross[i * m + j] += a * Double(y.data[r * m + j]) }
      }
    }
    rows += k
  }

  /// The fit with ridge `ε` on W (not on b); nil when the system is singular (too few or
  /// degenerate rows and ε = 0).
  public func solve(ridge: Double) -> (weight: Tensor, bias: Tensor)? {
    let n = inputs + 1
    var a = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in i..<n {
        a[i * n + j] = gram[i * n + j]
        a[j * n + i] = gram[i * n + j]
      }
      if i < inputs { a[i * n + i] += ridge }
    }
    // Cholesky: a = L·Lᵀ, L in the lower triangle.
    for j in 0..<n {
      var d = a[j * n + j]
      for k in 0..<j { d -= a[j * n + k] * a[j * n + k] }
      guard d > 1e-12 * max(1, abs(a[j * n + j])) else { return nil }
      let l = d.squareRoot()
      a[j * n + j] = l
      for i in (j + 1)..<max(j + 1, n) {
        var s = a[i * n + j]
        for k in 0..<j { s -= a[i * n + k] * a[j * n + k] }
        a[i * n + j] = s / l
      }
    }
    let weight = Tensor([outputs, inputs])
    let bias = Tensor([outputs])
    var z = [Double](repeating: 0, count: n)
    for o in 0..<outputs {
      // L·z = c, then Lᵀ·β = z: β is column o of the (in + 1, out) solution.
      for i in 0..<n {
        var s = cross[i * outputs + o]
        for k in 0..<i { s -= a[i * n + k] * z[k] }
        z[i] = s / a[i * n + i]
      }
      for i in stride(from: n - 1, through: 0, by: -1) {
        var s = z[i]
        for k in (i + 1)..<max(i + 1, n) { s -= a[k * n + i] * z[k] }
        z[i] = s / a[i * n + i]
      }
      for i in 0..<inputs { weight.data[o * inputs + i] = Float(z[i]) }
      bias.data[o] = Float(z[inputs])
    }
    return (weight, bias)
  }

  /// Mean of the diagonal of Σ x·xᵀ (the inputs' mean square per feature times rows): the
  /// scale a relative ridge refers to.
  public var meanSquare: Double {
    let n = inputs + 1
    var s = 0.0
    for i in 0..<inputs { s += gram[i * n + i] }
    return s / Double(max(inputs, 1))
  }
}
