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
        let o = op + bi * t * c + h * hs
        if causal && keyValid == nil {
          causalForward(q: q, p: p, out: o, t: t, c: c, hs: hs, scale: scale)
          continue
        }
        // (T, hs) · (T, hs)ᵀ -> (T, T) scores
        GEMM.multiplyOnThisThread(
          transA: false, transB: true, m: t, n: t, k: hs, alpha: scale,
          a: q, lda: 3 * c, b: q + c, ldb: 3 * c, c: p, ldc: t)
        for i in 0..<t {
          let row = p + i * t
          if causal { for j in (i + 1)..<max(i + 1, t) { row[j] = -.infinity } }
          if let valid = keyValid {
            for j in 0..<t where !valid[bi * t + j] { row[j] = -.infinity }
          }
          Softmax.row(row, row, t)
        }
        // (T, T) · (T, hs) -> (T, hs) into this head's columns of out
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: t, n: hs, k: t,
          a: p, lda: t, b: q + 2 * c, ldb: 3 * c, c: o, ldc: c)
      }
    }
  }

  /// Query rows per block of the causal path: a block's products stop at its last visible
  /// key, so about (1 + 1/blocks)/2 of the full products' work is done.
  static let causalRows = 32

  /// One (batch, head) pair under a causal mask alone, by blocks of `causalRows` queries:
  /// scores against keys 0..<end of the block only, softmax over each row's visible keys
  /// (the hidden ones get exact zeros, as exp(−∞) would), and the values of those keys.
  /// Same probabilities and output as the full products with −∞ masking (tested).
  @inline(__always)
  static func causalForward(
    q: UnsafePointer<Float>, p: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
    t: Int, c: Int, hs: Int, scale: Float
  ) {
    for r0 in stride(from: 0, to: t, by: causalRows) {
      let r1 = min(t, r0 + causalRows)
      // (r1 − r0, hs) · (r1, hs)ᵀ -> scores of rows r0..<r1 against keys 0..<r1
      GEMM.multiplyOnThisThread(
        transA: false, transB: true, m: r1 - r0, n: r1, k: hs, alpha: scale,
        a: q + r0 * 3 * c, lda: 3 * c, b: q + c, ldb: 3 * c, c: p + r0 * t, ldc: t)
      for i in r0..<r1 {
        let row = p + i * t
        Softmax.row(row, row, i + 1)
        (row + i + 1).update(repeating: 0, count: t - i - 1)
      }
      // (r1 − r0, r1) · (r1, hs) -> rows r0..<r1 of out
      GEMM.multiplyOnThisThread(
        transA: false, transB: false, m: r1 - r0, n: hs, k: r1,
        a: p + r0 * t, lda: t, b: q + 2 * c, ldb: 3 * c, c: out + r0 * c, ldc: c)
    }
  }

  /// dout: (B, T, C) -> dqkv += ... (B, T, 3C) (or =, `write`). (batch, head) pairs run in
  /// parallel, each writing only its own head's q, k, v columns.
  ///
  /// `causal` (the forward hid every key after its query) lets the products skip the zero
  /// upper triangle of the probabilities, by blocks of `causalRows`.
  public static func backward(
    dqkv: Tensor, dout: Tensor, qkv: Tensor, probs: Tensor, shape s: Shape, causal: Bool = false,
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
        if causal {
          causalBackward(q: q, dq: dq, p: p, g: g, dp: dp, t: t, c: c, hs: hs, scale: scale, beta: beta)
          continue
        }
        // dP = dOut · Vᵀ  (T, T)
        GEMM.multiplyOnThisThread(
          transA: false, transB: true, m: t, n: t, k: hs,
          a: g, lda: c, b: q + 2 * c, ldb: 3 * c, c: dp, ldc: t)
        // dV += Pᵀ · dOut  (T, hs)
        GEMM.multiplyOnThisThread(
          transA: true, transB: false, m: t, n: hs, k: t,
          a: p, lda: t, b: g, ldb: c, beta: beta, c: dq + 2 * c, ldc: 3 * c)
        // dS = P ⊙ (dP − rowsum(dP ⊙ P)); masked entries have P = 0 and so dS = 0
        for i in 0..<t { softmaxBackwardRow(p + i * t, dp + i * t, t) }
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

  /// dS = P ⊙ (dP − Σ dP ⊙ P) over the first n entries of one row, written over dP.
  @inline(__always)
  static func softmaxBackwardRow(_ prow: UnsafePointer<Float>, _ drow: UnsafeMutablePointer<Float>, _ n: Int) {
    let dot = Softmax.dot(drow, prow, n)
    @inline(__always) func vector(_ j: Int, _ m: Int) {
      store8(load8(prow + j, m) * (load8(drow + j, m) - dot), drow + j, m)
    }
    vectorLoop(0, n, vector)
  }

  /// The backward of one (batch, head) pair whose probabilities are zero above the
  /// diagonal, by blocks of `causalRows`: a block of rows needs keys up to its end only,
  /// and a block of keys gets gradient from the rows from its start on.
  @inline(__always)
  static func causalBackward(
    q: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>, p: UnsafePointer<Float>, g: UnsafePointer<Float>,
    dp: UnsafeMutablePointer<Float>, t: Int, c: Int, hs: Int, scale: Float, beta: Float
  ) {
    for r0 in stride(from: 0, to: t, by: causalRows) {
      let r1 = min(t, r0 + causalRows)
      // dP = dOut · Vᵀ for rows r0..<r1 and keys 0..<r1
      GEMM.multiplyOnThisThread(
        transA: false, transB: true, m: r1 - r0, n: r1, k: hs,
        a: g + r0 * c, lda: c, b: q + 2 * c, ldb: 3 * c, c: dp + r0 * t, ldc: t)
      // dS over keys 0..<r1 (zero past the diagonal, as P is)
      for i in r0..<r1 { softmaxBackwardRow(p + i * t, dp + i * t, r1) }
      // dQ = scale · dS · K for rows r0..<r1
      GEMM.multiplyOnThisThread(
        transA: false, transB: false, m: r1 - r0, n: hs, k: r1, alpha: scale,
        a: dp + r0 * t, lda: t, b: q + c, ldb: 3 * c, beta: beta, c: dq + r0 * 3 * c, ldc: 3 * c)
    }
    for c0 in stride(from: 0, to: t, by: causalRows) {
      let c1 = min(t, c0 + causalRows)
      // keys c0..<c1 get gradient from rows c0..<T only: dV = Pᵀ · dOut, dK = scale · dSᵀ · Q
      GEMM.multiplyOnThisThread(
        transA: true, transB: false, m: c1 - c0, n: hs, k: t - c0,
        a: p + c0 * t + c0, lda: t, b: g + c0 * c, ldb: c, beta: beta, c: dq + 2 * c + c0 * 3 * c, ldc: 3 * c)
      GEMM.multiplyOnThisThread(
        transA: true, transB: false, m: c1 - c0, n: hs, k: t - c0, alpha: scale,
        a: dp + c0 * t + c0, lda: t, b: q + c0 * 3 * c, ldb: 3 * c, beta: beta, c: dq + c + c0 * 3 * c, ldc: 3 * c)
    }
  }

  /// (batch, head) pairs per part of the parallel loops: about 2¹⁸ multiply-adds (T²·hs
  /// per pair and product) each, so a part is worth waking a second core for.
  static func pairsPerPart(_ t: Int, _ hs: Int) -> Int { max(1, (1 << 18) / max(t * t * hs, 1)) }

  /// The attention of each sequence's first query alone, for a head that reads only the
  /// first position ([CLS]): the q of position 0 and the k and v of every position are
  /// read from qkv (B, T, 3C) -> out: (B, C); probs: (B, H, T) kept for
  /// `firstQueryBackward`. The same arithmetic per row as `forward`'s row 0, up to the
  /// summation order of the products. (batch, head) pairs run in parallel.
  public static func firstQueryForward(
    out: Tensor, probs: Tensor, qkv: Tensor, shape s: Shape, keyValid: [Bool]?
  ) {
    let (b, t, c, nh, hs) = (s.batch, s.time, s.channels, s.heads, s.headSize)
    precondition(
      qkv.count == b * t * 3 * c && out.count == b * c, "attention: qkv \(qkv.shape), first rows \(out.shape)")
    precondition(probs.count == b * nh * t, "attention: first-query probs \(probs.shape)")
    precondition(keyValid == nil || keyValid!.count == b * t, "attention: key mask length")
    let scale = 1 / Float(hs).squareRoot()
    let (qkvp, pp, op) = (UnsafePointer(qkv.data), probs.data, out.data)
    Parallel.forRanges(b * nh, grain: max(1, pairsPerPart(t, hs) * t)) { pairs in
      for bh in pairs {
        let (bi, h) = (bh / nh, bh % nh)
        let q = qkvp + bi * t * 3 * c + h * hs
        let p = pp + bh * t
        // (1, hs) · (T, hs)ᵀ -> (1, T) scores
        GEMM.multiplyOnThisThread(
          transA: false, transB: true, m: 1, n: t, k: hs, alpha: scale,
          a: q, lda: 3 * c, b: q + c, ldb: 3 * c, c: p, ldc: t)
        if let valid = keyValid {
          for j in 0..<t where !valid[bi * t + j] { p[j] = -.infinity }
        }
        Softmax.row(p, p, t)
        // (1, T) · (T, hs) -> this head's columns of the sequence's row of out
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: 1, n: hs, k: t,
          a: p, lda: t, b: q + 2 * c, ldb: 3 * c, c: op + bi * c + h * hs, ldc: c)
      }
    }
  }

  /// The backward of `firstQueryForward`: dout (B, C) -> dqkv (B, T, 3C), overwriting the
  /// q columns of each sequence's first row and the k and v columns of every row; the q
  /// columns of the other rows are not written (no gradient flows there).
  public static func firstQueryBackward(
    dqkv: Tensor, dout: Tensor, qkv: Tensor, probs: Tensor, shape s: Shape
  ) {
    let (b, t, c, nh, hs) = (s.batch, s.time, s.channels, s.heads, s.headSize)
    precondition(
      dqkv.count == qkv.count && qkv.count == b * t * 3 * c && dout.count == b * c && probs.count == b * nh * t,
      "attention first-query backward shapes")
    let scale = 1 / Float(hs).squareRoot()
    let (qkvp, dqkvp, pp, gp) = (
      UnsafePointer(qkv.data), dqkv.data, UnsafePointer(probs.data), UnsafePointer(dout.data)
    )
    Parallel.forRanges(b * nh, grain: max(1, pairsPerPart(t, hs) * t)) { pairs in
      let dp = UnsafeMutablePointer<Float>.allocate(capacity: max(t, 1))
      defer { dp.deallocate() }
      for bh in pairs {
        let (bi, h) = (bh / nh, bh % nh)
        let q = qkvp + bi * t * 3 * c + h * hs
        let dq = dqkvp + bi * t * 3 * c + h * hs
        let p = pp + bh * t
        let g = gp + bi * c + h * hs
        // dP = dOut · Vᵀ  (1, T)
        GEMM.multiplyOnThisThread(
          transA: false, transB: true, m: 1, n: t, k: hs,
          a: g, lda: c, b: q + 2 * c, ldb: 3 * c, c: dp, ldc: t)
        // dV = Pᵀ · dOut  (T, hs), an outer product
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: t, n: hs, k: 1,
          a: p, lda: 1, b: g, ldb: hs, c: dq + 2 * c, ldc: 3 * c)
        // dS = P ⊙ (dP − Σ dP ⊙ P); hidden keys have P = 0 and so dS = 0
        softmaxBackwardRow(p, dp, t)
        // dq = scale · dS · K  (1, hs); dK = scale · dSᵀ · q  (T, hs)
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: 1, n: hs, k: t, alpha: scale,
          a: dp, lda: t, b: q + c, ldb: 3 * c, c: dq, ldc: 3 * c)
        GEMM.multiplyOnThisThread(
          transA: false, transB: false, m: t, n: hs, k: 1, alpha: scale,
          a: dp, lda: 1, b: q, ldb: 3 * c, c: dq + c, ldc: 3 * c)
      }
    }
  }

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
