import Kernels
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

private func libmExp(_ x: Double) -> Double { exp(x) }

/// The vectorized and parallel kernels against their scalar references, and the same
/// bits with one thread as with several (`Parallel.$limit`).
@Suite struct FastPathTests {
  /// FastMath.exp is within 2 ulp (relative 2.4e-7) of expf over the whole finite range,
  /// exactly 0 below −87.3 and for −∞, and exactly 1 at 0.
  @Test func expMatchesLibm() {
    var worst: Double = 0
    var x: Float = -87.3
    while x < 88.7 {
      let fast = Double(FastMath.exp(x))
      let exact = libmExp(Double(x))
      worst = max(worst, abs(fast - exact) / exact)
      x += 0.001_37
    }
    #expect(worst < 2.4e-7, "worst relative error \(worst)")
    #expect(FastMath.exp(-Float.infinity) == 0 && FastMath.exp(-100) == 0 && FastMath.exp(0) == 1)
  }

  /// The sigmoid form of tanh-GELU and its derivative match the `tanhf` reference to
  /// float rounding (odd length exercises the tail lanes).
  @Test func geluMatchesReference() {
    var rng = RNG(seed: 11, stream: "gelu fast")
    let x = FD.random([1001], &rng, scale: 4)
    for i in 0..<8 { x.data[i] = [-12, -9, -5, 0, 5, 9, 12, -0.0][i] }
    let g = FD.random(x.shape, &rng)
    let (fast, slow) = (Tensor(x.shape), Tensor(x.shape))
    GELU.forward(out: fast, x: x)
    GELU.referenceForward(out: slow, x: x)
    for i in 0..<x.count { #expect(abs(fast[i] - slow[i]) <= 1e-6 * max(1, abs(slow[i])), "x = \(x[i])") }
    let (dfast, dslow) = (Tensor(x.shape, fill: 0.5), Tensor(x.shape, fill: 0.5))
    GELU.backward(dx: dfast, dout: g, x: x)
    GELU.referenceBackward(dx: dslow, dout: g, x: x)
    for i in 0..<x.count { #expect(abs(dfast[i] - dslow[i]) <= 2e-6 * max(1, abs(dslow[i])), "x = \(x[i])") }
  }

  /// Exact GELU in eight lanes (Abramowitz–Stegun erfc, within 1.5e-7 of it) against libm's
  /// `erff`: Φ within 2e-7 absolute, so x·Φ within 2e-7·|x| plus rounding; the derivative
  /// Φ + x·φ likewise, at large |x| too (tails, and ±0).
  @Test func exactGELUMatchesReference() {
    var rng = RNG(seed: 13, stream: "gelu exact fast")
    let x = FD.random([1001], &rng, scale: 4)
    for i in 0..<8 { x.data[i] = [-12, -9, -5, 0, 5, 9, 12, -0.0][i] }
    let g = FD.random(x.shape, &rng)
    let (fast, slow) = (Tensor(x.shape), Tensor(x.shape))
    GELU.forwardExact(out: fast, x: x)
    GELU.referenceForwardExact(out: slow, x: x)
    for i in 0..<x.count {
      #expect(abs(fast[i] - slow[i]) <= 2e-7 * abs(x[i]) + 1e-6 * abs(slow[i]) + 1e-30, "x = \(x[i])")
    }
    let (dfast, dslow) = (Tensor(x.shape, fill: 0.5), Tensor(x.shape, fill: 0.5))
    GELU.backwardExact(dx: dfast, dout: g, x: x)
    GELU.referenceBackwardExact(dx: dslow, dout: g, x: x)
    for i in 0..<x.count {
      #expect(abs(dfast[i] - dslow[i]) <= (4e-7 + 1e-6) * max(1, abs(g[i])) * max(1, abs(x[i])), "x = \(x[i])")
    }
  }

  /// Softmax rows of awkward lengths (1, 7, 9, 65) against a Double reference.
  @Test(arguments: [1, 7, 9, 65])
  func softmaxMatchesReference(columns c: Int) {
    var rng = RNG(seed: 12, stream: "softmax \(c)")
    let x = FD.random([5, c], &rng, scale: 5)
    let out = Tensor(x.shape)
    Softmax.forward(out: out, x: x, columns: c)
    for r in 0..<5 {
      var mx = -Double.infinity
      for j in 0..<c { mx = max(mx, Double(x[r * c + j])) }
      var sum: Double = 0
      for j in 0..<c { sum += libmExp(Double(x[r * c + j]) - mx) }
      for j in 0..<c {
        let p = libmExp(Double(x[r * c + j]) - mx) / sum
        #expect(abs(Double(out[r * c + j]) - p) <= 1e-6 * max(p, 1e-3))
      }
    }
  }

  /// Attention (parallel over batch·head) against the naive reference, causal and padded.
  @Test(arguments: [false, true])
  func attentionMatchesReference(causal: Bool) {
    var rng = RNG(seed: 13, stream: "attention fast \(causal)")
    let s = Attention.Shape(batch: 3, time: 11, channels: 16, heads: 4)
    let qkv = FD.random([3, 11, 48], &rng)
    let valid = (0..<33).map { $0 % 11 < 9 }
    let (fast, slow) = (Tensor([3, 11, 16]), Tensor([3, 11, 16]))
    Attention.forward(out: fast, probs: Tensor([3, 4, 11, 11]), qkv: qkv, shape: s, causal: causal, keyValid: valid)
    Attention.referenceForward(out: slow, qkv: qkv, shape: s, causal: causal, keyValid: valid)
    for i in 0..<fast.count { #expect(abs(fast[i] - slow[i]) < 1e-5) }
    // A causal mask alone takes a shorter path (softmax over the visible keys only): the
    // same bits as the general masking path, reached here with every key valid.
    if causal {
      let (short, general) = (Tensor(fast.shape), Tensor(fast.shape))
      let allValid = [Bool](repeating: true, count: 33)
      Attention.forward(out: short, probs: nil, qkv: qkv, shape: s, causal: true, keyValid: nil)
      Attention.forward(out: general, probs: nil, qkv: qkv, shape: s, causal: true, keyValid: allValid)
      #expect(Self.sameBits(short.array, general.array))
    }
    // Without kept probabilities (inference): the same bits from per-thread scratch.
    let scratch = Tensor(fast.shape)
    Attention.forward(out: scratch, probs: nil, qkv: qkv, shape: s, causal: causal, keyValid: valid)
    #expect(Self.sameBits(scratch.array, fast.array))
  }

  /// The causal path works in blocks of `causalRows` queries and keys: at a length of
  /// several blocks and a ragged last one, its forward and backward agree with the full
  /// products (the forward through −∞ masking, the backward without `causal`) and with
  /// the naive reference.
  ///
  /// Agree, not equal: the blocked path multiplies Q·Kᵀ over fewer keys, and OpenBLAS
  /// picks its kernels by shape and CPU (its kernels for the columns left over after the
  /// register tiles add in another order), so a score may differ in the last bits. A score
  /// is a dot product of d_head = 8 terms; float32 sums of k terms in two orders differ by
  /// at most k·ε·Σ|qᵢkᵢ| (ε = 2⁻²⁴), so 1e-5 of the largest value bounds it with room.
  @Test(arguments: [70, 96])
  func causalBlocksMatchFullProducts(time t: Int) {
    var rng = RNG(seed: 16, stream: "causal blocks \(t)")
    let s = Attention.Shape(batch: 2, time: t, channels: 16, heads: 2)
    let qkv = FD.random([2, t, 48], &rng)
    let (blocked, full, reference) = (Tensor([2, t, 16]), Tensor([2, t, 16]), Tensor([2, t, 16]))
    let (pb, pf) = (Tensor([2, 2, t, t]), Tensor([2, 2, t, t]))
    Attention.forward(out: blocked, probs: pb, qkv: qkv, shape: s, causal: true, keyValid: nil)
    let allValid = [Bool](repeating: true, count: 2 * t)
    Attention.forward(out: full, probs: pf, qkv: qkv, shape: s, causal: true, keyValid: allValid)
    Attention.referenceForward(out: reference, qkv: qkv, shape: s, causal: true, keyValid: nil)
    #expect(relativeDifference(pb.array, pf.array) < 1e-5)
    #expect(relativeDifference(blocked.array, full.array) < 1e-5)
    for i in 0..<full.count { #expect(abs(blocked[i] - reference[i]) < 1e-5) }

    let dout = FD.random([2, t, 16], &rng)
    for write in [GradientWrite.overwrite, .accumulate] {
      let (db, df) = (Tensor([2, t, 48], fill: 0.5), Tensor([2, t, 48], fill: 0.5))
      Attention.backward(dqkv: db, dout: dout, qkv: qkv, probs: pb, shape: s, causal: true, write: write)
      Attention.backward(dqkv: df, dout: dout, qkv: qkv, probs: pf, shape: s, causal: false, write: write)
      // Float rounding of sums over fewer (zero) terms in another kernel's order: a
      // gradient sums up to t = 96 products, k·ε = 96 · 2⁻²⁴ ≈ 6e-6 of its terms' size,
      // bounded here against the largest gradient with room for cancelling terms.
      let worst = relativeDifference(db.array, df.array)
      #expect(worst < 1e-4, "\(write): relative difference \(worst)")
    }
  }

  /// Every kernel with its own parallel loop gives the same bits with one thread as with
  /// the default count, at sizes large enough to be split: each element is computed by the
  /// same code over the same terms whichever thread runs it. Attention too: each (sample,
  /// head) product is one OpenBLAS call of the same shape at any thread count.
  ///
  /// Matrix products split across threads agree to rounding only: a part is an OpenBLAS
  /// call on fewer rows, and on most CPUs OpenBLAS's kernels for the rows left over after
  /// its register tiles (and the tile width itself) sum in another order (README,
  /// Determinism). Their bound: k·ε relative to the largest |value| (k ≤ 4100 terms here,
  /// ε = 2⁻²⁴: 2.4e-4), far below any wiring mistake, which moves values by O(1).
  @Test func sameBitsAtAnyThreadCount() {
    let one = Self.runKernels(threads: 1)
    let many = Self.runKernels(threads: .max)
    #expect(one.count == many.count)
    for (name, a) in one where !Self.splitProducts.contains(name) {
      #expect(Self.sameBits(a, many[name]!), "\(name)")
    }
    for name in Self.splitProducts {
      let d = relativeDifference(one[name]!, many[name]!)
      #expect(d <= 2.4e-4, "\(name): relative difference \(d)")
    }
  }

  /// The entries of `runKernels` that are matrix products split across threads.
  static let splitProducts = ["linear", "linear split"]

  /// And the same bits run after run.
  @Test func sameBitsRunAfterRun() {
    let first = Self.runKernels(threads: .max)
    let second = Self.runKernels(threads: .max)
    for (name, a) in first { #expect(Self.sameBits(a, second[name]!), "\(name)") }
  }

  /// `.overwrite` gives the values `.accumulate` gives into zeros, without reading the
  /// buffer first (it starts as NaN, which any read would carry into the result).
  @Test func overwriteEqualsAccumulateIntoZero() {
    var rng = RNG(seed: 15, stream: "overwrite")
    let x = FD.random([37, 24], &rng, scale: 3)
    let g = FD.random([37, 24], &rng)
    func both(_ name: String, _ n: Int, _ body: (Tensor, GradientWrite) -> Void) {
      let (added, written) = (Tensor([n]), Tensor([n], fill: .nan))
      body(added, .accumulate)
      body(written, .overwrite)
      #expect(added.array == written.array, "\(name)")  // == : NaN never equals
    }
    both("gelu", x.count) { GELU.backward(dx: $0, dout: g, x: x, write: $1) }
    both("gelu exact", x.count) { GELU.backwardExact(dx: $0, dout: g, x: x, write: $1) }
    both("relu", x.count) { ReLU.backward(dx: $0, dout: g, x: x, write: $1) }
    both("prelu", x.count) { PReLU.backward(dx: $0, dout: g, x: x, alpha: 0.2, write: $1) }
    let (w, dw) = (FD.random([16, 24], &rng), Tensor([16, 24]))
    let dy = FD.random([37, 16], &rng)
    both("linear dx", x.count) { Linear.backward(dx: $0, dw: dw, db: nil, dy: dy, x: x, w: w, dxWrite: $1) }
    let s = Attention.Shape(batch: 2, time: 9, channels: 8, heads: 2)
    let qkv = FD.random([2, 9, 24], &rng)
    let (att, probs, dout) = (Tensor([2, 9, 8]), Tensor([2, 2, 9, 9]), FD.random([2, 9, 8], &rng))
    Attention.forward(out: att, probs: probs, qkv: qkv, shape: s, causal: true, keyValid: nil)
    both("attention", qkv.count) {
      Attention.backward(dqkv: $0, dout: dout, qkv: qkv, probs: probs, shape: s, write: $1)
    }
    // In place: an element-wise backward may write its gradient over dout.
    let (inPlace, expected) = (Tensor(g.shape), Tensor(g.shape))
    inPlace.copy(from: g)
    GELU.backward(dx: inPlace, dout: inPlace, x: x, write: .overwrite)
    GELU.backward(dx: expected, dout: g, x: x)
    #expect(Self.sameBits(inPlace.array, expected.array))
  }

  static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.map(\.bitPattern) == b.map(\.bitPattern)
  }

  static func runKernels(threads: Int) -> [String: [Float]] {
    Parallel.$limit.withValue(threads) {
      var rng = RNG(seed: 14, stream: "threads")
      // Sizes above every grain (Elementwise.grain, LayerNorm's and Softmax's 2¹³ elements,
      // GEMM.splitWork, Attention.pairsPerPart), so each kernel really splits.
      let (rows, c, h) = (4100, 72, 136)
      let x = FD.random([rows, c], &rng)
      let w = FD.random([c], &rng)
      let b = FD.random([c], &rng)
      let g = FD.random([rows, c], &rng)
      let hx = FD.random([rows, h], &rng, scale: 3)
      let hg = FD.random([rows, h], &rng)
      var out: [String: [Float]] = [:]

      let (y, mean, rstd) = (Tensor([rows, c]), Tensor([rows]), Tensor([rows]))
      LayerNorm.forward(out: y, mean: mean, rstd: rstd, x: x, weight: w, bias: b)
      let (dx, dw, db) = (Tensor([rows, c], fill: 1), Tensor([c], fill: 1), Tensor([c], fill: 1))
      LayerNorm.backward(dx: dx, dweight: dw, dbias: db, dout: g, x: x, weight: w, mean: mean, rstd: rstd)
      out["layernorm"] = y.array + mean.array + rstd.array + dx.array + dw.array + db.array

      let (act, dact) = (Tensor([rows, h]), Tensor([rows, h], fill: 1))
      GELU.forward(out: act, x: hx)
      GELU.backward(dx: dact, dout: hg, x: hx)
      out["gelu"] = act.array + dact.array
      PReLU.forward(out: act, x: hx, alpha: 0.3)
      let dAlpha = PReLU.backward(dx: dact, dout: hg, x: hx, alpha: 0.3)
      out["prelu"] = act.array + dact.array + [dAlpha]

      let (probs, dsm) = (Tensor([rows, h]), Tensor([rows, h], fill: 1))
      Softmax.forward(out: probs, x: hx, columns: h)
      Softmax.backward(dx: dsm, dout: hg, out: probs, columns: h)
      out["softmax"] = probs.array + dsm.array
      let targets = (0..<rows).map { Int32($0 % (h + 1)) - 1 }  // some ignored
      let losses = Tensor([rows])
      let mean2 = CrossEntropy.forward(losses: losses, probs: probs, logits: hx, targets: targets)
      let dlogits = Tensor([rows, h])
      CrossEntropy.backward(dlogits: dlogits, probs: probs, targets: targets, scale: 0.01)
      out["cross-entropy"] = losses.array + [mean2] + dlogits.array

      let (lw, lb, dlw, dlb) = (FD.random([h, c], &rng), FD.random([h], &rng), Tensor([h, c]), Tensor([h], fill: 1))
      let ly = Tensor([rows, h])
      Linear.forward(y: ly, x: x, w: lw, b: lb)
      Linear.backward(dx: nil, dw: dlw, db: dlb, dy: hg, x: x, w: lw)
      out["linear"] = ly.array + dlw.array + dlb.array

      // GEMM splits by rows (forward, dx, dW) and, for a product wider than tall, by columns.
      let (bx, bw, bb) = (FD.random([4000, 64], &rng), FD.random([96, 64], &rng), FD.random([96], &rng))
      let (by, bdy) = (Tensor([4000, 96]), FD.random([4000, 96], &rng))
      let (bdx, bdw, bdb) = (Tensor([4000, 64], fill: 1), Tensor([96, 64], fill: 1), Tensor([96], fill: 1))
      Linear.forward(y: by, x: bx, w: bw, b: bb)
      Linear.backward(dx: bdx, dw: bdw, db: bdb, dy: bdy, x: bx, w: bw)
      let (wide, wa, wb) = (Tensor([40, 2000]), FD.random([256, 40], &rng), FD.random([256, 2000], &rng))
      GEMM.multiply(
        transA: true, transB: false, m: 40, n: 2000, k: 256, a: wa.data, lda: 40,
        b: wb.data, ldb: 2000, c: wide.data, ldc: 2000)
      out["linear split"] = by.array + bdx.array + bdw.array + bdb.array + wide.array

      let s = Attention.Shape(batch: 16, time: 64, channels: 64, heads: 4)
      let qkv = FD.random([16, 64, 192], &rng)
      let (att, ap, dqkv) = (Tensor([16, 64, 64]), Tensor([16, 4, 64, 64]), Tensor([16, 64, 192]))
      Attention.forward(out: att, probs: ap, qkv: qkv, shape: s, causal: true, keyValid: nil)
      Attention.backward(dqkv: dqkv, dout: FD.random([16, 64, 64], &rng), qkv: qkv, probs: ap, shape: s)
      out["attention"] = att.array + ap.array + dqkv.array

      // More than one piece of GradientClipping.pieceSize (2¹⁵) in a tensor, and a small one.
      let grads = [FD.random([70_001], &rng), FD.random([33], &rng), FD.random([40_000], &rng)]
      let norm = GradientClipping.clip(grads, maxNorm: 0.5)
      out["clip"] = [norm] + grads.flatMap(\.array)

      let sum = Tensor([rows, c])
      Elementwise.add(out: sum, x, g)
      Elementwise.accumulate(sum, x)
      out["add"] = sum.array
      return out
    }
  }
}
