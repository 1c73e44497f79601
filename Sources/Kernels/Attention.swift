/// Multi-head scaled dot-product self-attention (the core between the QKV and output
/// projections). Each token's row of `qkv` is `[q | k | v]`, each of width C split into
/// `heads` heads of `C / heads` columns, as PyTorch's packed in-projection lays it out.
public enum Attention {
  public struct Shape: Sendable, Equatable {
    public var batch: Int
    public var time: Int
    public var channels: Int
    public var heads: Int
    public init(batch: Int, time: Int, channels: Int, heads: Int) {
      precondition(heads > 0 && channels % heads == 0, "attention: \(heads) heads do not divide \(channels) channels")
      self.batch = batch
      self.time = time
      self.channels = channels
      self.heads = heads
    }
    public var headSize: Int { channels / heads }
  }

  /// qkv: (B, T, 3C) -> out: (B, T, C); caches probs: (B, H, T, T) for backward, or,
  /// when `probs` is nil (no backward will follow), keeps each head's (T, T) in scratch.
  /// `causal` hides keys after the query; `keyValid` (B·T, true = real token) hides padding.
  /// A query that can see no key at all gets a zero output.
  /// (batch, head) pairs run in parallel; each writes only its own probs and out columns.
  public static func forward(
    out: Tensor, probs: Tensor?, qkv: Tensor, shape s: Shape, causal: Bool, keyValid: [Bool]?
  ) {
    let (b, t, c, nh, hs) = (s.batch, s.time, s.channels, s.heads, s.headSize)
    precondition(qkv.count == b * t * 3 * c && out.count == b * t * c, "attention: qkv \(qkv.shape), out \(out.shape)")
    precondition(probs == nil || probs!.count == b * nh * t * t, "attention: probs \(probs!.shape)")
    precondition(keyValid == nil || keyValid!.count == b * t, "attention: key mask length")
    let scale = 1 / Float(hs).squareRoot()
    let (qkvp, kept, op) = (UnsafePointer(qkv.data), probs?.data, out.data)
    Parallel.forRanges(b * nh, grain: pairsPerPart(t, hs)) { pairs in
      let scratch = kept == nil ? UnsafeMutablePointer<Float>.allocate(capacity: max(t * t, 1)) : nil
      defer { scratch?.deallocate() }
      for bh in pairs {
        let (bi, h) = (bh / nh, bh % nh)
        let q = qkvp + bi * t * 3 * c + h * hs
        let p = kept.map { $0 + bh * t * t } ?? scratch!
        // (T, hs) · (T, hs)ᵀ -> (T, T) scores
        GEMM.multiplyOnThisThread(
          transA: false, transB: true, m: t, n: t, k: hs, alpha: scale,
          a: q, lda: 3 * c, b: q + c, ldb: 3 * c, c: p, ldc: t)
        for i in 0..<t {
          let row = p + i * t
          if causal && keyValid == nil {
            // Only keys 0...i are visible: softmax over those, zeros after (the same bits
            // as masking the rest with −∞, whose exp is exactly 0, without computing it).
            Softmax.row(row, row, i + 1)
            (row + i + 1).update(repeating: 0, count: t - i - 1)
            continue
          }
          if causal { for j in (i + 1)..<max(i + 1, t) { row[j] = -.infinity } }
          if let valid = keyValid {
            for j in 0..<t where !valid[bi * t + j] { row[j] = -.infinity }
          }
          Softmax.row(row, row, t)
        }
        // (T, T) · (T, hs) -> (T, hs) into this head's columns of out
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: t, n: hs, k: t,
          a: p, lda: t, b: q + 2 * c, ldb: 3 * c, c: op + bi * t * c + h * hs, ldc: c)
      }
    }
  }

  /// dout: (B, T, C) -> dqkv += ... (B, T, 3C) (or =, `write`). (batch, head) pairs run in
  /// parallel, each writing only its own head's q, k, v columns.
  public static func backward(
    dqkv: Tensor, dout: Tensor, qkv: Tensor, probs: Tensor, shape s: Shape,
    write: GradientWrite = .accumulate
  ) {
    let (b, t, c, nh, hs) = (s.batch, s.time, s.channels, s.heads, s.headSize)
    precondition(
      dqkv.count == qkv.count && dout.count == b * t * c && probs.count == b * nh * t * t,
      "attention backward shapes")
    let scale = 1 / Float(hs).squareRoot()
    let beta: Float = write == .accumulate ? 1 : 0
    let (qkvp, dqkvp, pp, gp) = (
      UnsafePointer(qkv.data), dqkv.data, UnsafePointer(probs.data), UnsafePointer(dout.data)
    )
    Parallel.forRanges(b * nh, grain: pairsPerPart(t, hs)) { pairs in
      let dp = UnsafeMutablePointer<Float>.allocate(capacity: max(t * t, 1))
      defer { dp.deallocate() }
      for bh in pairs {
        let (bi, h) = (bh / nh, bh % nh)
        let q = qkvp + bi * t * 3 * c + h * hs
        let dq = dqkvp + bi * t * 3 * c + h * hs
        let p = pp + bh * t * t
        let g = gp + bi * t * c + h * hs
        // dP = dOut · Vᵀ  (T, T)
        GEMM.multiplyOnThisThread(
          transA: false, transB: true, m: t, n: t, k: hs,
          a: g, lda: c, b: q + 2 * c, ldb: 3 * c, c: dp, ldc: t)
        // dV += Pᵀ · dOut  (T, hs)
        GEMM.multiplyOnThisThread(
          transA: true, transB: false, m: t, n: hs, k: t,
          a: p, lda: t, b: g, ldb: c, beta: beta, c: dq + 2 * c, ldc: 3 * c)
        // dS = P ⊙ (dP − rowsum(dP ⊙ P)); masked entries have P = 0 and so dS = 0
        for i in 0..<t {
          let prow = p + i * t
          let drow = dp + i * t
          let dot = Softmax.dot(drow, prow, t)
          vectorLoop(0, t) { j, m in
            store8(load8(prow + j, m) * (load8(drow + j, m) - dot), drow + j, m)
          }
        }
        // dQ += scale · dS · K ; dK += scale · dSᵀ · Q
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: t, n: hs, k: t, alpha: scale,
          a: dp, lda: t, b: q + c, ldb: 3 * c, beta: beta, c: dq, ldc: 3 * c)
        GEMM.multiplyOnThisThread(
          transA: true, transB: false, m: t, n: hs, k: t, alpha: scale,
          a: dp, lda: t, b: q, ldb: 3 * c, beta: beta, c: dq + c, ldc: 3 * c)
      }
    }
  }

  /// (batch, head) pairs per part of the parallel loops: about 2¹⁸ multiply-adds (T²·hs
  /// per pair and product) each, so a part is worth waking a second core for.
  static func pairsPerPart(_ t: Int, _ hs: Int) -> Int { max(1, (1 << 18) / max(t * t * hs, 1)) }

  /// Naive reference forward (loops, Double accumulation) for tests.
  public static func referenceForward(
    out: Tensor, qkv: Tensor, shape s: Shape, causal: Bool, keyValid: [Bool]?
  ) {
    let (b, t, c, nh, hs) = (s.batch, s.time, s.channels, s.heads, s.headSize)
    let scale = 1 / Double(hs).squareRoot()
    var w = [Double](repeating: 0, count: t)
    for bi in 0..<b {
      for h in 0..<nh {
        for i in 0..<t {
          var mx = -Double.infinity
          for j in 0..<t {
            let visible = (!causal || j <= i) && (keyValid?[bi * t + j] ?? true)
            if !visible {
              w[j] = -.infinity
              continue
            }
            var dot: Double = 0
            for d in 0..<hs {
              dot +=
                Double(qkv.data[(bi * t + i) * 3 * c + h * hs + d])
                * Double(qkv.data[(bi * t + j) * 3 * c + c + h * hs + d])
            }
            w[j] = dot * scale
            mx = max(mx, w[j])
          }
          var sum: Double = 0
          for j in 0..<t {
            w[j] = mx == -.infinity ? 0 : _exp(w[j] - mx)
            sum += w[j]
          }
          for d in 0..<hs {
            var acc: Double = 0
            for j in 0..<t where sum > 0 {
              acc += w[j] / sum * Double(qkv.data[(bi * t + j) * 3 * c + 2 * c + h * hs + d])
            }
            out.data[(bi * t + i) * c + h * hs + d] = Float(acc)
          }
        }
      }
    }
  }
}
