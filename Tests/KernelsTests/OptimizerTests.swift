import Kernels
import Testing

@Suite struct OptimizerTests {
  /// Two AdamW steps worked by hand (lr 0.1, β 0.9/0.999, ε 1e-8, wd 0.01, g = 0.5 twice):
  /// step 1: p = 1·(1 − 0.001) = 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25;
  ///         p −= 0.1·0.5/(0.5 + 1e-8) = 0.099999998  → 0.899000002
  /// step 2: p = 0.899000002·0.999 = 0.898101002; m = 0.095, v = 0.00049975;
  ///         m̂ = 0.095/0.19 = 0.5, v̂ = 0.00049975/0.001999 = 0.25 → p = 0.798101004
  /// The optimizer works in float32: its constants are rounded (0.9f = 0.89999998, so
  /// 1 − β1 = 0.10000002) and each step does ~6 rounded operations, so results may sit a
  /// few ulps (ulp = 6e-8 near 1) from the exact decimals: bounds are 8 ulps, relative.
  /// The bias correction's βᵗ by squaring equals t multiplications within 1e-12 relative
  /// (the loop itself rounds t times, 1.1e-16 each: up to 5.5e-13 at t = 5000).
  @Test func biasCorrectionPower() {
    let opt = AdamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0)
    for beta in [0.9, 0.999] {
      var loop: Double = 1
      for t in 1...5000 {
        loop *= beta
        let fast = opt.power(beta, t)
        #expect(abs(fast / loop - 1) < 1e-12, "β \(beta), t \(t)")
      }
    }
    #expect(opt.power(0.999, 0) == 1)
  }

  @Test func twoHandComputedSteps() {
    let ulp = Double(Float.ulpOfOne)
    let p = Tensor([2], [1, -2])
    let g = Tensor([2], [0.5, 0])
    let m = Tensor([2])
    let v = Tensor([2])
    let opt = AdamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
    opt.update(param: p, grad: g, m: m, v: v, lr: 0.1, step: 1)
    #expect(abs(Double(p[0]) - 0.899_000_002) < 8 * ulp)
    #expect(abs(Double(m[0]) / 0.05 - 1) < 8 * ulp && abs(Double(v[0]) / 0.000_25 - 1) < 8 * ulp)
    // A zero gradient leaves only the decay: −2·(1 − 0.001).
    #expect(abs(Double(p[1]) + 1.998) < 16 * ulp)
    opt.update(param: p, grad: g, m: m, v: v, lr: 0.1, step: 2)
    #expect(abs(Double(p[0]) - 0.798_101_004) < 8 * ulp)
    #expect(abs(Double(m[0]) / 0.095 - 1) < 8 * ulp && abs(Double(v[0]) / 0.000_499_75 - 1) < 8 * ulp)
    #expect(abs(Double(p[1]) + 1.998 * 0.999) < 16 * ulp)
  }

  @Test func decayCanBeSwitchedOff() {
    let p = Tensor([1], [3])
    let opt = AdamW(weightDecay: 0.5)
    opt.update(param: p, grad: Tensor([1]), m: Tensor([1]), v: Tensor([1]), lr: 0.1, step: 1, decay: false)
    #expect(p[0] == 3)
  }

  /// The trainer clips by handing `GradientClipping.factor` to AdamW: the same bits as
  /// scaling the gradients first and updating from them, on lengths with and without a
  /// tail of fewer than eight, and the gradient is left unscaled.
  @Test func clipFactorInAdamWEqualsClippingFirst() {
    var rng = RNG(seed: 8, stream: "clip-adamw")
    let opt = AdamW()
    for n in [1, 8, 13, 1000] {
      let g = Tensor([n])
      rng.fillNormal(g, std: 2)
      let p = Tensor([n])
      rng.fillNormal(p)
      let (m, v) = (Tensor([n]), Tensor([n]))
      rng.fillNormal(m, std: 0.1)
      for i in 0..<n { v[i] = abs(m[i]) }
      let (p2, m2, v2, g2) = (p.clone(), m.clone(), v.clone(), g.clone())
      let norm = GradientClipping.clip([g2], maxNorm: 1.5)
      let s = GradientClipping.factor(norm: norm, maxNorm: 1.5)
      #expect(s < 1 && s == 1.5 / norm)
      opt.update(param: p2, grad: g2, m: m2, v: v2, lr: 0.01, step: 3)
      let before = g.array
      opt.update(param: p, grad: g, m: m, v: v, lr: 0.01, step: 3, gradScale: s)
      #expect(p.array.map(\.bitPattern) == p2.array.map(\.bitPattern), "n \(n)")
      #expect(m.array.map(\.bitPattern) == m2.array.map(\.bitPattern), "n \(n)")
      #expect(v.array.map(\.bitPattern) == v2.array.map(\.bitPattern), "n \(n)")
      #expect(g.array == before)
    }
    #expect(GradientClipping.factor(norm: 0.5, maxNorm: 1) == 1)
    #expect(GradientClipping.factor(norm: 4, maxNorm: 0) == 1)  // train.grad_clip 0: off
    #expect(GradientClipping.factor(norm: 4, maxNorm: 1) == 0.25)
  }

  @Test func clippingScalesToMaxNorm() {
    let a = Tensor([2], [3, 0])
    let b = Tensor([1], [4])
    let norm = GradientClipping.clip([a, b], maxNorm: 1)
    #expect(norm == 5)
    #expect(abs(a[0] - 0.6) < 1e-7 && abs(b[0] - 0.8) < 1e-7)
    let small = Tensor([1], [0.5])
    #expect(GradientClipping.clip([small], maxNorm: 1) == 0.5 && small[0] == 0.5)
  }

  /// The global norm of tensors of many pieces equals the one-by-one Double sum to float
  /// rounding (the pieces only change the order of Double additions), and clipping scales
  /// every element by maxNorm / norm.
  @Test func clippingNormOverPiecesMatchesSequentialSum() {
    var rng = RNG(seed: 21, stream: "clip")
    let grads = [Tensor([100_003]), Tensor([7]), Tensor([65_536])]
    for g in grads { rng.fillNormal(g, std: 0.3) }
    let before = grads.map(\.array)
    var sum: Double = 0
    for g in before { for x in g { sum += Double(x) * Double(x) } }
    let expected = Float(sum.squareRoot())
    let norm = GradientClipping.clip(grads, maxNorm: 2)
    #expect(abs(norm - expected) <= expected.ulp, "\(norm) vs \(expected)")
    let s = 2 / norm
    for (g, old) in zip(grads, before) { #expect(g.array == old.map { $0 * s }) }
  }

  @Test func scheduleWarmsUpThenFollowsCosine() {
    let s = LearningRateSchedule(peak: 1, minimum: 0.1, warmupSteps: 4, totalSteps: 14)
    #expect(s.rate(at: 0) == 0.25 && s.rate(at: 3) == 1)
    #expect(s.rate(at: 4) == 1)  // start of the cosine
    #expect(abs(s.rate(at: 9) - 0.55) < 1e-6)  // halfway: min + (peak − min)/2
    #expect(s.rate(at: 14) == 0.1 && s.rate(at: 100) == 0.1)
    let rates = (4...14).map { s.rate(at: $0) }
    #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 })
  }
}
