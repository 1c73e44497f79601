import Kernels
import Testing

@Suite struct NumericsTests {
  /// Logits of ±1e4 overflow a naive exp; the fused loss stays finite and exact.
  @Test func crossEntropyIsStableForHugeLogits() {
    let logits = Tensor([2, 3], [1e4, -1e4, 0, -1e4, 1e4, 1e4])
    let probs = Tensor([2, 3])
    let losses = Tensor([2])
    let mean = CrossEntropy.forward(losses: losses, probs: probs, logits: logits, targets: [0, 0])
    #expect(losses[0] == 0)  // the target holds all the mass
    #expect(losses[1] == 2e4 + Float(0.693_147_2))  // log(2) + 2e4, rounded to float32
    #expect(mean.isFinite && probs.array.allSatisfy { $0.isFinite })
    #expect(probs[0] == 1 && probs[4] == 0.5 && probs[5] == 0.5)
  }

  @Test func softmaxIsStableForHugeLogits() {
    let x = Tensor([1, 4], [1e4, 1e4 - 1, -1e4, 1e4])
    let out = Tensor([1, 4])
    Softmax.forward(out: out, x: x, columns: 4)
    let e1 = Float(0.367_879_44)  // e^-1
    let z = 2 + e1
    #expect(abs(out[0] - 1 / z) < 1e-6 && abs(out[1] - e1 / z) < 1e-6 && out[2] == 0)
  }

  /// A constant row has zero variance: x̂ = 0 everywhere, so the output is the bias and
  /// nothing is NaN; the input gradient of a constant row is finite too.
  @Test func layerNormConstantRow() {
    let x = Tensor([2, 4], [3, 3, 3, 3, 1, 2, 3, 4])
    let w = Tensor([4], [1, 2, 3, 4])
    let b = Tensor([4], [0.5, -0.5, 0, 1])
    let out = Tensor([2, 4])
    let mean = Tensor([2])
    let rstd = Tensor([2])
    LayerNorm.forward(out: out, mean: mean, rstd: rstd, x: x, weight: w, bias: b)
    #expect(Array(out.array[0..<4]) == b.array)
    #expect(mean[0] == 3 && rstd[0].isFinite)
    // Row 2: mean 2.5, variance 1.25.
    let s = 1 / (Float(1.25) + LayerNorm.epsilon).squareRoot()
    #expect(abs(out[4] - (-1.5 * s * 1 + 0.5)) < 1e-6)
    let dx = Tensor([2, 4])
    let dw = Tensor([4])
    let db = Tensor([4])
    LayerNorm.backward(
      dx: dx, dweight: dw, dbias: db, dout: Tensor([2, 4], fill: 1), x: x, weight: w, mean: mean, rstd: rstd)
    #expect(dx.array.allSatisfy { $0.isFinite })
  }

  /// The residual of a first-rows-only block and its gradient, by hand: x is (2, 3, 2),
  /// its first rows are x[0] and x[3].
  @Test func firstRowsAddAndScatter() {
    let x = Tensor([2, 3, 2], (0..<12).map { Float($0) })
    let y = Tensor([2, 2], [100, 200, 300, 400])
    let out = Tensor([2, 2], fill: .nan)
    Elementwise.addFirstRows(out: out, x: x, y)
    #expect(out.array == [100, 201, 306, 407])
    let dx = Tensor([2, 3, 2], fill: .nan)
    Elementwise.scatterFirstRows(into: dx, from: y)
    #expect(dx.array == [100, 200, 0, 0, 0, 0, 300, 400, 0, 0, 0, 0])
  }
}

/// LayerNorm's ε is the layer's: against a Double reference at ε = 1e-5 (PyTorch's
/// default) and 0.5 (large enough to move every output), to float32 rounding; and with a
/// rows' variance of 0 the output is the shift whatever ε.
@Test func layerNormEpsilonPerLayer() {
  var rng = RNG(seed: 31, stream: "layernorm eps")
  let (rows, c) = (5, 12)
  let x = FD.random([rows, c], &rng, scale: 0.5)
  for j in 0..<c { x[j] = 0.25 }  // row 0 constant
  let (w, b) = (FD.random([c], &rng), FD.random([c], &rng))
  for eps: Float in [1e-5, 0.5] {
    let (out, mean, rstd) = (Tensor([rows, c]), Tensor([rows]), Tensor([rows]))
    LayerNorm.forward(out: out, mean: mean, rstd: rstd, x: x, weight: w, bias: b, epsilon: eps)
    for r in 0..<rows {
      var m = 0.0
      for j in 0..<c { m += Double(x[r * c + j]) }
      m /= Double(c)
      var v = 0.0
      for j in 0..<c { v += (Double(x[r * c + j]) - m) * (Double(x[r * c + j]) - m) }
      v /= Double(c)
      for j in 0..<c {
        let expected = (Double(x[r * c + j]) - m) / (v + Double(eps)).squareRoot() * Double(w[j]) + Double(b[j])
        #expect(abs(Double(out[r * c + j]) - expected) <= 1e-5 * max(1, abs(expected)), "ε \(eps) row \(r)")
      }
    }
    for j in 0..<c { #expect(abs(out[j] - b[j]) <= 1e-6) }
  }
}
