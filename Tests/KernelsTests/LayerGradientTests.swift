import Kernels
import Testing

/// Every backward against central finite differences of L = Σ forward(·)·g, for inputs
/// AND parameters (tolerance: see `FD`).
@Suite struct LayerGradientTests {
  @Test func linear() {
    var rng = RNG(seed: 1, stream: "linear")
    let x = FD.random([2, 3, 7], &rng)
    let w = FD.random([5, 7], &rng, scale: 0.5)
    let b = FD.random([5], &rng)
    let g = FD.random([2, 3, 5], &rng)
    let y = Tensor([2, 3, 5])
    let loss: () -> Double = {
      Linear.forward(y: y, x: x, w: w, b: b)
      return FD.dot(y, g)
    }
    let dx = Tensor(x.shape)
    let dw = Tensor(w.shape)
    let db = Tensor(b.shape)
    _ = loss()
    Linear.backward(dx: dx, dw: dw, db: db, dy: g, x: x, w: w)
    FD.check("dx", analytic: dx, wrt: x, loss)
    FD.check("dw", analytic: dw, wrt: w, loss)
    FD.check("db", analytic: db, wrt: b, loss)
  }

  @Test func linearMatchesReference() {
    var rng = RNG(seed: 2, stream: "linear reference")
    let x = FD.random([9, 13], &rng)
    let w = FD.random([11, 13], &rng)
    let b = FD.random([11], &rng)
    let fast = Tensor([9, 11])
    let slow = Tensor([9, 11])
    Linear.forward(y: fast, x: x, w: w, b: b)
    Linear.referenceForward(y: slow, x: x, w: w, b: b)
    // Sums of 14 terms of size ~1: float32 accumulation error stays below 1e-5.
    for i in 0..<fast.count { #expect(abs(fast.data[i] - slow.data[i]) < 1e-5) }
  }

  @Test func backwardAccumulates() {
    var rng = RNG(seed: 3, stream: "accumulate")
    let x = FD.random([4, 3], &rng)
    let w = FD.random([2, 3], &rng)
    let g = FD.random([4, 2], &rng)
    let once = Tensor(w.shape)
    Linear.backward(dx: nil, dw: once, db: nil, dy: g, x: x, w: w)
    let twice = Tensor(w.shape)
    Linear.backward(dx: nil, dw: twice, db: nil, dy: g, x: x, w: w)
    Linear.backward(dx: nil, dw: twice, db: nil, dy: g, x: x, w: w)
    for i in 0..<once.count { #expect(abs(twice.data[i] - 2 * once.data[i]) <= 1e-6 * abs(once.data[i]) + 1e-7) }
  }

  @Test(arguments: [Activation.gelu, .geluExact, .relu])
  func elementwise(_ kind: Activation) {
    var rng = RNG(seed: 4, stream: "activation \(kind)")
    let x = FD.awayFromZero([3, 17], &rng)
    let g = FD.random(x.shape, &rng)
    let out = Tensor(x.shape)
    let loss: () -> Double = {
      switch kind {
      case .gelu: GELU.forward(out: out, x: x)
      case .geluExact: GELU.forwardExact(out: out, x: x)
      default: ReLU.forward(out: out, x: x)
      }
      return FD.dot(out, g)
    }
    let dx = Tensor(x.shape)
    switch kind {
    case .gelu: GELU.backward(dx: dx, dout: g, x: x)
    case .geluExact: GELU.backwardExact(dx: dx, dout: g, x: x)
    default: ReLU.backward(dx: dx, dout: g, x: x)
    }
    FD.check("d\(kind)", analytic: dx, wrt: x, loss)
  }

  /// Known values: GELU(1) = Φ(1) = 0.841345 exactly; the tanh form gives 0.841192.
  @Test func geluValues() {
    let x = Tensor([3], [1, 0, -1])
    let exact = Tensor([3])
    let approx = Tensor([3])
    GELU.forwardExact(out: exact, x: x)
    GELU.forward(out: approx, x: x)
    #expect(abs(exact[0] - 0.841_344_7) < 1e-6 && exact[1] == 0 && abs(exact[2] + 0.158_655_3) < 1e-6)
    #expect(abs(approx[0] - 0.841_192) < 1e-5 && abs(approx[2] + 0.158_808) < 1e-5)
  }

  /// PReLU's input gradient and its scalar dα, at the paper's init, midway, and at the
  /// collapse point, with inputs on both sides of zero (odd length exercises the tail loop).
  @Test(arguments: [Float(0.01), 0.5, 1.0])
  func prelu(alpha: Float) {
    var rng = RNG(seed: 5, stream: "prelu \(alpha)")
    let x = FD.awayFromZero([5, 13], &rng)
    #expect(x.array.contains { $0 < 0 } && x.array.contains { $0 > 0 })
    let g = FD.random(x.shape, &rng)
    let out = Tensor(x.shape)
    var a = alpha
    let loss: () -> Double = {
      PReLU.forward(out: out, x: x, alpha: a)
      return FD.dot(out, g)
    }
    let dx = Tensor(x.shape)
    let dAlpha = PReLU.backward(dx: dx, dout: g, x: x, alpha: alpha)
    FD.check("dx", analytic: dx, wrt: x, loss)
    FD.checkScalar("dα", analytic: dAlpha, value: &a) { value in
      PReLU.forward(out: out, x: x, alpha: value)
      return FD.dot(out, g)
    }
    // dα is exactly Σ_{x≤0} g·x: check it against a Double sum too.
    var expected: Double = 0
    for i in 0..<x.count where x.data[i] <= 0 { expected += Double(x.data[i]) * Double(g.data[i]) }
    #expect(abs(Double(dAlpha) - expected) < 1e-5)
  }

  @Test func layerNorm() {
    var rng = RNG(seed: 6, stream: "layernorm")
    let x = FD.random([4, 8], &rng, scale: 2)
    let w = FD.random([8], &rng)
    let b = FD.random([8], &rng)
    let g = FD.random(x.shape, &rng)
    let out = Tensor(x.shape)
    let mean = Tensor([4])
    let rstd = Tensor([4])
    let loss: () -> Double = {
      LayerNorm.forward(out: out, mean: mean, rstd: rstd, x: x, weight: w, bias: b)
      return FD.dot(out, g)
    }
    _ = loss()
    let dx = Tensor(x.shape)
    let dw = Tensor(w.shape)
    let db = Tensor(b.shape)
    LayerNorm.backward(dx: dx, dweight: dw, dbias: db, dout: g, x: x, weight: w, mean: mean, rstd: rstd)
    FD.check("dx", analytic: dx, wrt: x, loss)
    FD.check("dweight", analytic: dw, wrt: w, loss)
    FD.check("dbias", analytic: db, wrt: b, loss)
  }

  @Test func softmax() {
    var rng = RNG(seed: 7, stream: "softmax")
    let x = FD.random([3, 6], &rng, scale: 2)
    let g = FD.random(x.shape, &rng)
    let out = Tensor(x.shape)
    let loss: () -> Double = {
      Softmax.forward(out: out, x: x, columns: 6)
      return FD.dot(out, g)
    }
    _ = loss()
    let dx = Tensor(x.shape)
    Softmax.backward(dx: dx, dout: g, out: out, columns: 6)
    FD.check("dx", analytic: dx, wrt: x, loss)
  }

  @Test func crossEntropy() {
    var rng = RNG(seed: 8, stream: "cross-entropy")
    let logits = FD.random([5, 7], &rng, scale: 3)
    let targets: [Int32] = [3, 0, CrossEntropy.ignoreIndex, 6, 3]
    let probs = Tensor(logits.shape)
    let losses = Tensor([5])
    let loss: () -> Double = {
      Double(CrossEntropy.forward(losses: losses, probs: probs, logits: logits, targets: targets))
    }
    _ = loss()
    let d = Tensor(logits.shape)
    CrossEntropy.backward(
      dlogits: d, probs: probs, targets: targets, scale: 1 / Float(CrossEntropy.countedRows(targets)))
    FD.check("dlogits", analytic: d, wrt: logits, loss)
    // The ignored row contributes nothing.
    for j in 0..<7 { #expect(d.data[2 * 7 + j] == 0) }
  }

  @Test func embedding() {
    var rng = RNG(seed: 9, stream: "embedding")
    let table = FD.random([6, 4], &rng)
    let ids: [Int32] = [5, 0, 5, 2]
    let g = FD.random([4, 4], &rng)
    let out = Tensor([4, 4])
    let loss: () -> Double = {
      Embedding.forward(out: out, ids: ids, table: table)
      return FD.dot(out, g)
    }
    let d = Tensor(table.shape)
    Embedding.backward(dtable: d, dout: g, ids: ids)
    FD.check("dtable", analytic: d, wrt: table, loss)
    // Rows never looked up get no gradient; a row used twice gets both contributions.
    for j in 0..<4 {
      #expect(d.data[1 * 4 + j] == 0)
      #expect(d.data[5 * 4 + j] == g.data[j] + g.data[2 * 4 + j])
    }
  }

  @Test func dropout() {
    var rng = RNG(seed: 10, stream: "dropout")
    let x = FD.random([64], &rng)
    let g = FD.random([64], &rng)
    let out = Tensor([64])
    let mask = Tensor([64])
    let start = RNG(seed: 10, stream: "dropout mask")
    let loss: () -> Double = {
      var r = start  // the same mask for every evaluation
      Dropout.forward(out: out, mask: mask, x: x, p: 0.25, rng: &r)
      return FD.dot(out, g)
    }
    _ = loss()
    let dx = Tensor([64])
    Dropout.backward(dx: dx, dout: g, mask: mask)
    FD.check("dx", analytic: dx, wrt: x, loss)
    let kept = mask.array.filter { $0 != 0 }
    #expect(kept.allSatisfy { $0 == 1 / Float(0.75) })
    #expect(kept.count > 32 && kept.count < 64)  // p = 0.25 of 64: P(outside) < 1e-6
  }

  @Test(arguments: [false, true], [false, true])
  func attention(causal: Bool, padded: Bool) {
    var rng = RNG(seed: 11, stream: "attention \(causal) \(padded)")
    let s = Attention.Shape(batch: 2, time: 5, channels: 8, heads: 2)
    let qkv = FD.random([2, 5, 24], &rng)
    let g = FD.random([2, 5, 8], &rng)
    let valid: [Bool]? = padded ? [true, true, true, true, true, true, true, true, false, false] : nil
    let out = Tensor([2, 5, 8])
    let probs = Tensor([2, 2, 5, 5])
    let loss: () -> Double = {
      Attention.forward(out: out, probs: probs, qkv: qkv, shape: s, causal: causal, keyValid: valid)
      return FD.dot(out, g)
    }
    _ = loss()
    let reference = Tensor([2, 5, 8])
    Attention.referenceForward(out: reference, qkv: qkv, shape: s, causal: causal, keyValid: valid)
    for i in 0..<out.count { #expect(abs(out.data[i] - reference.data[i]) < 1e-5) }
    let d = Tensor(qkv.shape)
    Attention.backward(dqkv: d, dout: g, qkv: qkv, probs: probs, shape: s)
    FD.check("dqkv", analytic: d, wrt: qkv, loss)
  }

  /// Masked keys get exactly zero probability; with the causal mask, row i sees keys ≤ i.
  @Test func attentionMasks() {
    var rng = RNG(seed: 12, stream: "attention masks")
    let s = Attention.Shape(batch: 1, time: 4, channels: 4, heads: 1)
    let qkv = FD.random([1, 4, 12], &rng)
    let out = Tensor([1, 4, 4])
    let probs = Tensor([1, 1, 4, 4])
    Attention.forward(out: out, probs: probs, qkv: qkv, shape: s, causal: true, keyValid: [true, true, false, true])
    for i in 0..<4 {
      for j in 0..<4 where j > i || j == 2 { #expect(probs.data[i * 4 + j] == 0) }
      let rowSum = (0..<4).reduce(Float(0)) { $0 + probs.data[i * 4 + $1] }
      #expect(abs(rowSum - 1) < 1e-6)
    }
  }
}
