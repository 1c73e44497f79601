/// Layer normalization over the last dimension, with learned scale and shift.
public enum LayerNorm {
  public static let epsilon: Float = 1e-5

  /// x: (N, C), weight/bias: (C) -> out: (N, C); caches mean, rstd: (N).
  /// A constant row has variance 0: it normalizes to 0 and outputs `bias`.
  public static func forward(
    out: Tensor, mean: Tensor, rstd: Tensor, x: Tensor, weight: Tensor, bias: Tensor
  ) {
    let c = weight.count
    let rows = x.count / c
    precondition(out.count == x.count && mean.count == rows && rstd.count == rows, "layernorm shapes")
    for r in 0..<rows {
      let row = x.data + r * c
      var m: Double = 0
      for i in 0..<c { m += Double(row[i]) }
      m /= Double(c)
      var v: Double = 0
      for i in 0..<c {
        let d = Double(row[i]) - m
        v += d * d
      }
      v /= Double(c)
      let s = Float(1 / (v + Double(epsilon)).squareRoot())
      let mf = Float(m)
      let o = out.data + r * c
      for i in 0..<c { o[i] = (row[i] - mf) * s * weight.data[i] + bias.data[i] }
      mean.data[r] = mf
      rstd.data[r] = s
    }
  }

  /// dout: (N, C) -> dx += ..., dweight += Σ dout·x̂, dbias += Σ dout.
  public static func backward(
    dx: Tensor, dweight: Tensor, dbias: Tensor,
    dout: Tensor, x: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor
  ) {
    let c = weight.count
    let rows = x.count / c
    for r in 0..<rows {
      let row = x.data + r * c
      let g = dout.data + r * c
      let m = mean.data[r]
      let s = rstd.data[r]
      // dx̂ = dout·w; dx = s·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
      var meanD: Float = 0
      var meanDX: Float = 0
      for i in 0..<c {
        let xhat = (row[i] - m) * s
        let dxhat = g[i] * weight.data[i]
        meanD += dxhat
        meanDX += dxhat * xhat
      }
      meanD /= Float(c)
      meanDX /= Float(c)
      let d = dx.data + r * c
      for i in 0..<c {
        let xhat = (row[i] - m) * s
        let dxhat = g[i] * weight.data[i]
        dbias.data[i] += g[i]
        dweight.data[i] += g[i] * xhat
        d[i] += s * (dxhat - meanD - xhat * meanDX)
      }
    }
  }
}
