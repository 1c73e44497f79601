/// Row-wise softmax over the last dimension.
public enum Softmax {
  /// x: (N, C) -> out: (N, C). Subtracts the row max, so any finite logits are safe.
  public static func forward(out: Tensor, x: Tensor, columns c: Int) {
    precondition(out.count == x.count && x.count % c == 0, "softmax shapes")
    let (o, xp) = (out.data, UnsafePointer(x.data))
    Parallel.forRanges(x.count / c, grain: max(1, (1 << 13) / c)) { rows in
      for r in rows { row(o + r * c, xp + r * c, c) }
    }
  }

  /// One row, eight lanes at a time; returns the row max and the sum of exp(x − max)
  /// (a row that is all −∞ gets all zeros and sum 0). `out` may be `x`.
  @inline(__always)
  @discardableResult
  static func row(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ c: Int
  ) -> (max: Float, sum: Float) {
    var mx8 = Float8(repeating: -.infinity)
    @inline(__always) func rowMax(_ i: Int, _ m: Int) {
      let v = m == 8 ? load8(x + i) : load8(x + i, m).replacing(with: -.infinity, where: lanes(m))
      mx8 = mx8.replacing(with: v, where: v .> mx8)
    }
    vectorLoop(0, c, rowMax)
    let mx = max8(mx8)
    if mx == -Float.infinity {  // every entry masked: no probability mass anywhere
      out.update(repeating: 0, count: c)
      return (mx, 0)
    }
    // Written out rather than through `vectorLoop`: the compiler would not inline this
    // local function (the exp makes it large) and called it once per vector.
    var sum8v = Float8(repeating: 0)
    var i = 0
    while i + 8 <= c {
      let e = FastMath.exp(load8(x + i) - mx)
      store8(e, out + i)
      sum8v += e
      i += 8
    }
    if i < c {
      let e = FastMath.exp(load8(x + i, c - i) - mx).replacing(with: 0, where: lanes(c - i))
      store8(e, out + i, c - i)
      sum8v += e
    }
    let sum = sum8(sum8v)
    let inv = 1 / sum
    @inline(__always) func normalize(_ i: Int, _ m: Int) {
      store8(load8(out + i, m) * inv, out + i, m)
    }
    vectorLoop(0, c, normalize)
    return (mx, sum)
  }

  /// Lanes m..<8 (those past the end of a row of which m remain).
  @inline(__always)
  static func lanes(_ m: Int) -> SIMDMask<SIMD8<Int32>> {
    SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(m))
  }

  /// dx += p ⊙ (dout − Σ dout·p), with p the forward output.
  public static func backward(dx: Tensor, dout: Tensor, out p: Tensor, columns c: Int) {
    let (d, g, pp) = (dx.data, UnsafePointer(dout.data), UnsafePointer(p.data))
    Parallel.forRanges(p.count / c, grain: max(1, (1 << 13) / c)) { rows in
      for r in rows { rowBackward(d + r * c, g + r * c, pp + r * c, c) }
    }
  }

  /// dx += p ⊙ (g − Σ g·p) for one row; `dx` must not alias `g` or `p`.
  @inline(__always)
  static func rowBackward(
    _ dx: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ p: UnsafePointer<Float>,
    _ c: Int
  ) {
    let dot = dot(g, p, c)
    @inline(__always) func vector(_ i: Int, _ m: Int) {
      let pv = load8(p + i, m)
      store8(load8(dx + i, m) + pv * (load8(g + i, m) - dot), dx + i, m)
    }
    vectorLoop(0, c, vector)
  }

  /// Σ a·b over c values, in eight lanes summed in a fixed order.
  @inline(__always)
  static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: Int) -> Float {
    var acc = Float8(repeating: 0)
    @inline(__always) func vector(_ i: Int, _ m: Int) {
      acc += load8(a + i, m) * load8(b + i, m)
    }
    vectorLoop(0, c, vector)
    return sum8(acc)
  }
}

/// Softmax followed by the negative log-likelihood of integer targets, fused.
public enum CrossEntropy {
  /// Target value that contributes nothing to loss or gradient (e.g. padding).
  public static let ignoreIndex: Int32 = -1

  /// logits: (N, V), targets: (N) -> probs: (N, V), losses: (N). Returns the mean
  /// loss over the targets that are not `ignoreIndex` (0 when there are none).
  /// Loss is `logsumexp(x − max) − (x_t − max)`: finite for logits of any magnitude.
  @discardableResult
  public static func forward(
    losses: Tensor, probs: Tensor, logits: Tensor, targets: [Int32]
  ) -> Float {
    let v = logits.lastDim
    let n = logits.count / v
    precondition(
      targets.count == n && losses.count == n && probs.count == logits.count,
      "cross-entropy: \(n) rows, \(targets.count) targets")
    for r in 0..<n {
      let t = targets[r]
      precondition(t == ignoreIndex || (t >= 0 && Int(t) < v), "cross-entropy: target \(t) outside 0..<\(v)")
    }
    // Rows in parallel; the mean is summed afterwards in row order.
    let (lp, pp, xp) = (losses.data, probs.data, UnsafePointer(logits.data))
    targets.withUnsafeBufferPointer { tp in
      Parallel.forRanges(n, grain: max(1, (1 << 13) / v)) { rows in
        for r in rows {
          let x = xp + r * v
          let (mx, sum) = Softmax.row(pp + r * v, x, v)
          let t = tp[r]
          if t == ignoreIndex {
            lp[r] = 0
            continue
          }
          lp[r] = _logf(sum) - (x[Int(t)] - mx)
        }
      }
    }
    var total: Double = 0
    var counted = 0
    for r in 0..<n where targets[r] != ignoreIndex {
      total += Double(lp[r])
      counted += 1
    }
    return counted == 0 ? 0 : Float(total / Double(counted))
  }

  /// dlogits += (probs − onehot(target)) · scale for every counted row; `scale` is
  /// d(loss)/d(row loss), i.e. 1/(number of counted rows) for the mean loss.
  public static func backward(dlogits: Tensor, probs: Tensor, targets: [Int32], scale: Float) {
    let v = probs.lastDim
    let (dp, pp) = (dlogits.data, UnsafePointer(probs.data))
    targets.withUnsafeBufferPointer { tp in
      Parallel.forRanges(probs.count / v, grain: max(1, (1 << 13) / v)) { rows in
        for r in rows where tp[r] != ignoreIndex {
          let p = pp + r * v
          let d = dp + r * v
          @inline(__always) func vector(_ i: Int, _ m: Int) {
            store8(load8(d + i, m) + load8(p + i, m) * scale, d + i, m)
          }
          vectorLoop(0, v, vector)
          d[Int(tp[r])] -= scale
        }
      }
    }
  }

  /// Number of rows whose target is not `ignoreIndex`.
  public static func countedRows(_ targets: [Int32]) -> Int {
    targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
  }
}
