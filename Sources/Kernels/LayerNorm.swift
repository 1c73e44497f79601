/// Layer normalization over the last dimension, with learned scale and shift.
public enum LayerNorm {
  /// PyTorch's default; a layer may use another (BERT checkpoints carry `layer_norm_eps`).
  public static let epsilon: Float = 1e-5

  /// x: (N, C), weight/bias: (C) -> out: (N, C); caches mean, rstd: (N).
  /// A constant row has variance 0: it normalizes to 0 and outputs `bias`.
  /// Rows run in parallel, eight lanes at a time (mean and variance summed in float lanes,
  /// even and odd vectors apart: with one accumulator each pass was one chain of dependent
  /// adds, and forward ran 2.4× slower).
  public static func forward(
    out: Tensor, mean: Tensor, rstd: Tensor, x: Tensor, weight: Tensor, bias: Tensor,
    epsilon: Float = LayerNorm.epsilon
  ) {
    let c = weight.count
    let rows = x.count / c
    precondition(out.count == x.count && mean.count == rows && rstd.count == rows, "layernorm shapes")
    precondition(bias.count == c && x.count == rows * c, "layernorm: x \(x.shape), weight \(weight.shape)")
    let (xp, op, mp, sp) = (UnsafePointer(x.data), out.data, mean.data, rstd.data)
    let (w, b) = (UnsafePointer(weight.data), UnsafePointer(bias.data))
    Parallel.forRanges(rows, grain: max(1, (1 << 13) / c)) { range in
      for r in range {
        let row = xp + r * c
        // Two accumulators (even and odd vectors), so each sum is two dependency chains
        // of half the length.
        var even = Float8(repeating: 0)
        var odd = Float8(repeating: 0)
        var i = 0
        while i + 16 <= c {
          even += load8(row + i)
          odd += load8(row + i + 8)
          i += 16
        }
        @inline(__always) func sum(_ j: Int, _ n: Int) { even += load8(row + j, n) }
        vectorLoop(i, c, sum)
        let m = sum8(even + odd) / Float(c)
        even = Float8(repeating: 0)
        odd = Float8(repeating: 0)
        i = 0
        while i + 16 <= c {
          let d0 = load8(row + i) - m
          let d1 = load8(row + i + 8) - m
          even += d0 * d0
          odd += d1 * d1
          i += 16
        }
        @inline(__always) func squares(_ j: Int, _ n: Int) {
          let d = (load8(row + j, n) - m).replacing(with: 0, where: Softmax.lanes(n))
          even += d * d
        }
        vectorLoop(i, c, squares)
        let s = 1 / (sum8(even + odd) / Float(c) + epsilon).squareRoot()
        let o = op + r * c
        @inline(__always) func normalize(_ i: Int, _ n: Int) {
          store8((load8(row + i, n) - m) * s * load8(w + i, n) + load8(b + i, n), o + i, n)
        }
        vectorLoop(0, c, normalize)
        mp[r] = m
        sp[r] = s
      }
    }
  }

  /// dout: (N, C) -> dx += ..., dweight += Σ dout·x̂, dbias += Σ dout.
  /// dx by rows in parallel; dweight and dbias by columns in parallel, each column summed
  /// over the rows in order, so the result does not depend on the thread count.
  public static func backward(
    dx: Tensor, dweight: Tensor, dbias: Tensor,
    dout: Tensor, x: Tensor, weight: Tensor, mean: Tensor, rstd: Tensor
  ) {
    let c = weight.count
    let rows = x.count / c
    precondition(
      dx.count == x.count && dout.count == x.count && mean.count == rows && rstd.count == rows,
      "layernorm backward shapes")
    precondition(dweight.count == c && dbias.count == c, "layernorm backward: parameter gradients")
    let (xp, gp, dp) = (UnsafePointer(x.data), UnsafePointer(dout.data), dx.data)
    let (w, mp, sp) = (UnsafePointer(weight.data), UnsafePointer(mean.data), UnsafePointer(rstd.data))
    // dx̂ = dout·w; dx = s·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
    Parallel.forRanges(rows, grain: max(1, (1 << 13) / c)) { range in
      for r in range {
        let (row, g, d) = (xp + r * c, gp + r * c, dp + r * c)
        let (m, s) = (mp[r], sp[r])
        var sumD = Float8(repeating: 0)
        var sumDX = Float8(repeating: 0)
        @inline(__always) func sums(_ i: Int, _ n: Int) {
          let xhat = (load8(row + i, n) - m) * s
          let dxhat = load8(g + i, n) * load8(w + i, n)
          sumD += dxhat
          sumDX += dxhat * xhat
        }
        vectorLoop(0, c, sums)
        let meanD = sum8(sumD) / Float(c)
        let meanDX = sum8(sumDX) / Float(c)
        @inline(__always) func write(_ i: Int, _ n: Int) {
          let xhat = (load8(row + i, n) - m) * s
          let dxhat = load8(g + i, n) * load8(w + i, n)
          store8(load8(d + i, n) + s * (dxhat - meanD - xhat * meanDX), d + i, n)
        }
        vectorLoop(0, c, write)
      }
    }
    // Column sums over all rows, in blocks of eight columns.
    let (dw, db) = (dweight.data, dbias.data)
    Parallel.forRanges((c + 7) / 8, grain: max(1, (1 << 16) / max(rows * 8, 1))) { blocks in
      let j0 = blocks.lowerBound * 8
      let width = min(c, blocks.upperBound * 8) - j0
      let accW = UnsafeMutablePointer<Float>.allocate(capacity: width)
      let accB = UnsafeMutablePointer<Float>.allocate(capacity: width)
      defer {
        accW.deallocate()
        accB.deallocate()
      }
      accW.initialize(repeating: 0, count: width)
      accB.initialize(repeating: 0, count: width)
      for r in 0..<rows {
        let (row, g) = (xp + r * c + j0, gp + r * c + j0)
        let (m, s) = (mp[r], sp[r])
        @inline(__always) func vector(_ i: Int, _ n: Int) {
          let gv = load8(g + i, n)
          store8(load8(accW + i, n) + gv * ((load8(row + i, n) - m) * s), accW + i, n)
          store8(load8(accB + i, n) + gv, accB + i, n)
        }
        vectorLoop(0, width, vector)
      }
      for i in 0..<width {
        dw[j0 + i] += accW[i]
        db[j0 + i] += accB[i]
      }
    }
  }
}
