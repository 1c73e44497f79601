/// Row-wise softmax over the last dimension.
public enum Softmax {
  /// x: (N, C) -> out: (N, C). Subtracts the row max, so any finite logits are safe.
  public static func forward(out: Tensor, x: Tensor, columns c: Int) {
    precondition(out.count == x.count && x.count % c == 0, "softmax shapes")
    for r in 0..<(x.count / c) { row(out.data + r * c, x.data + r * c, c) }
  }

  @inline(__always)
  static func row(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ c: Int) {
    var mx = -Float.infinity
    for i in 0..<c { mx = max(mx, x[i]) }
    if mx == -Float.infinity {  // every entry masked: no probability mass anywhere
      out.update(repeating: 0, count: c)
      return
    }
    var sum: Float = 0
    for i in 0..<c {
      let e = _expf(x[i] - mx)
      out[i] = e
      sum += e
    }
    let inv = 1 / sum
    for i in 0..<c { out[i] *= inv }
  }

  /// dx += p ⊙ (dout − Σ dout·p), with p the forward output.
  public static func backward(dx: Tensor, dout: Tensor, out p: Tensor, columns c: Int) {
    for r in 0..<(p.count / c) {
      rowBackward(dx.data + r * c, dout.data + r * c, p.data + r * c, c)
    }
  }

  @inline(__always)
  static func rowBackward(
    _ dx: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ p: UnsafePointer<Float>,
    _ c: Int
  ) {
    var dot: Float = 0
    for i in 0..<c { dot += g[i] * p[i] }
    for i in 0..<c { dx[i] += p[i] * (g[i] - dot) }
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
    precondition(targets.count == n && losses.count == n && probs.count == logits.count,
      "cross-entropy: \(n) rows, \(targets.count) targets")
    var total: Double = 0
    var counted = 0
    for r in 0..<n {
      let x = logits.data + r * v
      let p = probs.data + r * v
      var mx = -Float.infinity
      for i in 0..<v { mx = max(mx, x[i]) }
      var sum: Float = 0
      for i in 0..<v {
        let e = _expf(x[i] - mx)
        p[i] = e
        sum += e
      }
      let inv = 1 / sum
      for i in 0..<v { p[i] *= inv }
      let t = targets[r]
      if t == ignoreIndex {
        losses.data[r] = 0
        continue
      }
      precondition(t >= 0 && Int(t) < v, "cross-entropy: target \(t) outside 0..<\(v)")
      let loss = _logf(sum) - (x[Int(t)] - mx)
      losses.data[r] = loss
      total += Double(loss)
      counted += 1
    }
    return counted == 0 ? 0 : Float(total / Double(counted))
  }

  /// dlogits += (probs − onehot(target)) · scale for every counted row; `scale` is
  /// d(loss)/d(row loss), i.e. 1/(number of counted rows) for the mean loss.
  public static func backward(dlogits: Tensor, probs: Tensor, targets: [Int32], scale: Float) {
    let v = probs.lastDim
    for r in 0..<(probs.count / v) where targets[r] != ignoreIndex {
      let p = probs.data + r * v
      let d = dlogits.data + r * v
      for i in 0..<v { d[i] += p[i] * scale }
      d[Int(targets[r])] -= scale
    }
  }

  /// Number of rows whose target is not `ignoreIndex`.
  public static func countedRows(_ targets: [Int32]) -> Int {
    targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
  }
}
