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
  }

  /// Every kernel with its own parallel loop gives the same bits with one thread as with
  /// the default count, at sizes large enough to be split.
  @Test func sameBitsAtAnyThreadCount() {
    let one = Self.runKernels(threads: 1)
    let many = Self.runKernels(threads: .max)
    #expect(one.count == many.count)
    for (name, a) in one { #expect(Self.sameBits(a, many[name]!), "\(name)") }
  }

  /// And the same bits run after run.
  @Test func sameBitsRunAfterRun() {
    let first = Self.runKernels(threads: .max)
    let second = Self.runKernels(threads: .max)
    for (name, a) in first { #expect(Self.sameBits(a, second[name]!), "\(name)") }
  }

  static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.map(\.bitPattern) == b.map(\.bitPattern)
  }

  static func runKernels(threads: Int) -> [String: [Float]] {
    Parallel.$limit.withValue(threads) {
      var rng = RNG(seed: 14, stream: "threads")
      let (rows, c, h) = (520, 40, 72)
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

      let s = Attention.Shape(batch: 4, time: 13, channels: 16, heads: 2)
      let qkv = FD.random([4, 13, 48], &rng)
      let (att, ap, dqkv) = (Tensor([4, 13, 16]), Tensor([4, 2, 13, 13]), Tensor([4, 13, 48]))
      Attention.forward(out: att, probs: ap, qkv: qkv, shape: s, causal: true, keyValid: nil)
      Attention.backward(dqkv: dqkv, dout: FD.random([4, 13, 16], &rng), qkv: qkv, probs: ap, shape: s)
      out["attention"] = att.array + ap.array + dqkv.array

      let sum = Tensor([rows, c])
      Elementwise.add(out: sum, x, g)
      Elementwise.accumulate(sum, x)
      out["add"] = sum.array
      return out
    }
  }
}
