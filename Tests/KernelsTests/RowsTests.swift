import Kernels
import Testing

/// Row moves and the layer composition used by collapse, against plain loops.
@Suite struct RowsTests {
  static func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = RNG(seed: seed, stream: "rows")
    let t = Tensor(shape)
    rng.fillNormal(t)
    return t
  }

  /// Masked mean: each sequence's valid rows averaged, padding ignored, a sequence with
  /// none all zero; its backward spreads dout / count over the valid rows and leaves the
  /// padding's gradient alone. Exact: the loops divide each term as the kernel does.
  @Test func maskedMeanAndBackward() {
    let (b, t, c) = (3, 4, 5)
    let x = Self.random([b, t, c], seed: 1)
    let valid = [true, true, false, false, true, true, true, true, false, false, false, false]
    let out = Tensor([b, c])
    Rows.maskedMean(out: out, x: x, valid: valid, batch: b, time: t, width: c)
    for s in 0..<b {
      let rows = (0..<t).filter { valid[s * t + $0] }
      for j in 0..<c {
        var want: Float = 0
        for r in rows { want += x[(s * t + r) * c + j] / Float(rows.count) }
        #expect(out[s * c + j] == (rows.isEmpty ? 0 : want))
      }
    }
    let dout = Self.random([b, c], seed: 2)
    let dx = Tensor([b, t, c], fill: 7)
    Rows.maskedMeanBackward(dx: dx, dout: dout, valid: valid, batch: b, time: t, width: c)
    for s in 0..<b {
      let n = Float((0..<t).filter { valid[s * t + $0] }.count)
      for r in 0..<t {
        for j in 0..<c {
          #expect(dx[(s * t + r) * c + j] == (valid[s * t + r] ? dout[s * c + j] / n : 7))
        }
      }
    }
  }

  @Test func copyGatherAddArgmax() {
    let src = Tensor([3, 2], [1, 2, 3, 4, 5, 6])
    let dst = Tensor([4, 2])
    Rows.copy(2, width: 2, from: src, row: 1, to: dst, row: 2)
    #expect(dst.array == [0, 0, 0, 0, 3, 4, 5, 6])
    Rows.add(width: 2, from: src, row: 0, to: dst, row: 2)
    #expect(dst.array == [0, 0, 0, 0, 4, 6, 5, 6])
    let gathered = Tensor([3, 2])
    Rows.gather(src, blocks: [2, 0, 2], blockSize: 2, into: gathered)
    #expect(gathered.array == [5, 6, 1, 2, 5, 6])
    #expect(Rows.argmax(Tensor([2, 3], [0, 5, 5, 9, 1, 2])) == [1, 0])
    #expect(Rows.values(src, row: 2) == [5, 6])
  }

  /// The composed map equals the two layers applied in turn, up to the rounding of a
  /// reassociated product (k = 7 terms: within 1e-5 of the output's scale).
  @Test func composeEqualsTwoLayers() {
    let (d, h, o, n) = (5, 7, 3, 4)
    let (w1, b1, w2, b2) = (
      Self.random([h, d], seed: 3), Self.random([h], seed: 4), Self.random([o, h], seed: 5), Self.random([o], seed: 6)
    )
    let x = Self.random([n, d], seed: 7)
    let hidden = Tensor([n, h])
    let twice = Tensor([n, o])
    Linear.referenceForward(y: hidden, x: x, w: w1, b: b1)
    Linear.referenceForward(y: twice, x: hidden, w: w2, b: b2)
    let (w, b) = Linear.compose(w1: w1, b1: b1, w2: w2, b2: b2)
    let once = Tensor([n, o])
    Linear.referenceForward(y: once, x: x, w: w, b: b)
    #expect(relativeDifference(once, twice) < 1e-5)
  }
}

/// Bilinear resizing: the separable fast path against the 2-D reference, enlarging and
/// shrinking (antialiased); the same size is the identity and a constant stays constant
/// (the weights of every output pixel sum to one).
@Test func resizeMatchesReferenceAndKeepsInvariants() {
  var rng = RNG(seed: 5, stream: "resize")
  let x = Tensor([2, 3, 7, 9])
  for i in 0..<x.count { x.data[i] = rng.normal() }
  for (h, w) in [(16, 20), (3, 4), (7, 9), (5, 13)] {
    let fast = Resize.bilinear(x, height: h, width: w)
    let reference = Resize.bilinearReference(x, height: h, width: w)
    #expect(fast.shape == [2, 3, h, w])
    let worst = zip(fast.array, reference.array).map { abs($0 - $1) }.max() ?? .nan
    #expect(worst < 1e-5, "\(h)×\(w): differs from the reference by \(worst)")
  }
  #expect(Resize.bilinear(x, height: 7, width: 9).array == x.array)
  let flat = Tensor([1, 1, 5, 6], fill: 0.75)
  #expect(Resize.bilinear(flat, height: 11, width: 3).array.allSatisfy { abs($0 - 0.75) < 1e-6 })
}
