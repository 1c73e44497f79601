import Kernels
import Testing

/// Least squares for an affine map: an exactly affine relation is recovered (ridge 0), a
/// ridge shrinks W toward 0, and a rank-deficient system without ridge reports itself.
@Suite struct LeastSquaresTests {
  @Test func recoversAnAffineMap() {
    var rng = RNG(seed: 1, stream: "lstsq")
    let (inputs, outputs, rows) = (5, 3, 40)
    let w = FD.random([outputs, inputs], &rng)
    let b = FD.random([outputs], &rng)
    var fit = LeastSquaresFit(inputs: inputs, outputs: outputs)
    for _ in 0..<2 {  // two batches: the sums accumulate
      let x = FD.random([rows / 2, inputs], &rng)
      let y = Tensor([rows / 2, outputs])
      Linear.referenceForward(y: y, x: x, w: w, b: b)
      fit.add(x: x, y: y)
    }
    #expect(fit.rows == rows)
    let solved = fit.solve(ridge: 0)
    #expect(solved != nil)
    if let (fw, fb) = solved {
      #expect(relativeDifference(fw, w) < 1e-5 && relativeDifference(fb, b) < 1e-5)
    }
    // A ridge pulls the weights toward 0 (and not the bias toward anything).
    if let (rw, _) = fit.solve(ridge: 1e3) {
      let norm = { (t: Tensor) in t.array.map { Double($0 * $0) }.reduce(0, +) }
      #expect(norm(rw) < norm(w))
    }
    // Fewer rows than unknowns, no ridge: singular.
    var small = LeastSquaresFit(inputs: inputs, outputs: outputs)
    small.add(x: FD.random([3, inputs], &rng), y: FD.random([3, outputs], &rng))
    #expect(small.solve(ridge: 0) == nil)
  }
}
