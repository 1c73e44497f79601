import Kernels
import Testing

/// The convolutional kernels: Conv2d's im2col + GEMM path against the direct definition,
/// every backward against central differences (tolerance: see `FD`), BatchNorm's
/// statistics against the definition in Double, and the same bits at one thread as at
/// several where the work splits over outputs.
@Suite struct ConvolutionTests {
  static let shapes: [Conv2d.Shape] = [
    Conv2d.Shape(batch: 2, channels: 3, height: 6, width: 5, outChannels: 4),  // 3×3, stride 1, padding 1
    Conv2d.Shape(batch: 1, channels: 2, height: 7, width: 7, outChannels: 3, kernel: 3, stride: 2, padding: 0),
    Conv2d.Shape(batch: 2, channels: 1, height: 5, width: 6, outChannels: 2, kernel: 4, stride: 2, padding: 2),
    Conv2d.Shape(batch: 3, channels: 2, height: 4, width: 4, outChannels: 5, kernel: 1, stride: 1, padding: 0),
    // stride 1 without the size kept: the per-row path
    Conv2d.Shape(batch: 1, channels: 2, height: 5, width: 4, outChannels: 3, kernel: 3, stride: 1, padding: 0),
    // size kept: one block per tap and image (72 positions; a single row; taps shifted by
    // more than the image), and below `Conv2d.smallPlane` with `smallPlaneBatch` images
    // the images-innermost im2col
    Conv2d.Shape(batch: 2, channels: 2, height: 9, width: 8, outChannels: 3),
    Conv2d.Shape(batch: Conv2d.smallPlaneBatch, channels: 2, height: 3, width: 2, outChannels: 3),
    Conv2d.Shape(batch: 2, channels: 3, height: 1, width: 3, outChannels: 2),
    Conv2d.Shape(batch: 2, channels: 2, height: 2, width: 2, outChannels: 3, kernel: 5, stride: 1, padding: 2),
  ]

  static func buffers(_ s: Conv2d.Shape) -> (y: Tensor, cols: Tensor, rows: Tensor) {
    (
      Tensor([s.batch, s.outChannels, s.outHeight, s.outWidth]), Tensor([s.patch, s.rows]),
      Tensor([s.outChannels, s.rows])
    )
  }

  @Test(arguments: shapes)
  func conv2dMatchesDefinition(_ s: Conv2d.Shape) {
    var rng = RNG(seed: 1, stream: "conv \(s)")
    let x = FD.random([s.batch, s.channels, s.height, s.width], &rng)
    let w = FD.random([s.outChannels, s.channels, s.kernel, s.kernel], &rng, scale: 0.5)
    let b = FD.random([s.outChannels], &rng)
    let (y, cols, rows) = Self.buffers(s)
    Conv2d.forward(y: y, x: x, w: w, b: b, cols: cols, rows: rows, s)
    let reference = Tensor(y.shape)
    Conv2d.referenceForward(y: reference, x: x, w: w, b: b, s)
    let worst = zip(y.array, reference.array).map { abs($0 - $1) }.max() ?? .nan
    // float32 sums of ≤ 18 products of O(1) terms: ~1e-6; a wrong index is O(1).
    #expect(worst < 1e-5, "\(s): differs from the definition by \(worst)")
  }

  @Test(arguments: shapes)
  func conv2dGradients(_ s: Conv2d.Shape) {
    var rng = RNG(seed: 2, stream: "conv grad \(s)")
    let x = FD.random([s.batch, s.channels, s.height, s.width], &rng)
    let w = FD.random([s.outChannels, s.channels, s.kernel, s.kernel], &rng, scale: 0.5)
    let b = FD.random([s.outChannels], &rng)
    let (y, cols, rows) = Self.buffers(s)
    let g = FD.random(y.shape, &rng)
    let loss: () -> Double = {
      Conv2d.forward(y: y, x: x, w: w, b: b, cols: cols, rows: rows, s)
      return FD.dot(y, g)
    }
    _ = loss()
    let (dx, dw, db) = (Tensor(x.shape), Tensor(w.shape), Tensor(b.shape))
    Conv2d.backward(
      dx: dx, dw: dw, db: db, dy: g, cols: cols, w: w, dyRows: Tensor(rows.shape), dcols: Tensor(cols.shape), s)
    FD.check("dx", analytic: dx, wrt: x, loss)
    FD.check("dw", analytic: dw, wrt: w, loss)
    FD.check("db", analytic: db, wrt: b, loss)
  }

  /// The backward's dx, computed a block of images at a time (3 + 1 here), equals dcols of
  /// the whole batch from the reference product (in Double) scattered by col2im: the
  /// product sums O = 4 terms, so float rounding moves dx by a few ε of its scale; a block
  /// at the wrong images or a dropped one moves it by O(1).
  @Test func backwardBlocksEqualTheWholeBatch() {
    let s = Conv2d.Shape(batch: 4, channels: 8, height: 32, width: 32, outChannels: 4)
    #expect(Conv2d.blockImages(s) == 3)
    var rng = RNG(seed: 9, stream: "conv blocks")
    let x = FD.random([s.batch, s.channels, s.height, s.width], &rng)
    let w = FD.random([s.outChannels, s.channels, 3, 3], &rng, scale: 0.3)
    let g = FD.random([s.batch, s.outChannels, s.outHeight, s.outWidth], &rng)
    let (y, cols, rows) = Self.buffers(s)
    Conv2d.forward(y: y, x: x, w: w, b: nil, cols: cols, rows: rows, s)
    let dx = Tensor(x.shape)
    Conv2d.backward(
      dx: dx, dw: Tensor(w.shape), db: nil, dy: g, cols: cols, w: w, dyRows: Tensor(rows.shape),
      dcols: Tensor(Conv2d.dcolsShape(s)), s)
    // dY (O, N·P) from dy (N, O, P), then dcols = Wᵀ·dY for the whole batch.
    let dY = Tensor([s.outChannels, s.rows])
    for n in 0..<s.batch {
      for o in 0..<s.outChannels {
        for j in 0..<s.positions { dY[o * s.rows + n * s.positions + j] = g[(n * s.outChannels + o) * s.positions + j] }
      }
    }
    let dcols = Tensor([s.patch, s.rows])
    GEMM.reference(
      transA: true, transB: false, m: s.patch, n: s.rows, k: s.outChannels, a: w.data, lda: s.patch, b: dY.data,
      ldb: s.rows, c: dcols.data, ldc: s.rows)
    let expected = Tensor(x.shape)
    Conv2d.col2im(dx: expected, dcols: dcols, s)
    #expect(relativeDifference(dx, expected) < 1e-6)
    // `.overwrite` writes what accumulating into zeros gives, whatever dx held.
    let written = Tensor(x.shape, fill: .nan)
    Conv2d.backward(
      dx: written, dw: Tensor(w.shape), db: nil, dy: g, cols: cols, w: w, dyRows: Tensor(rows.shape),
      dcols: Tensor(Conv2d.dcolsShape(s)), dxWrite: .overwrite, s)
    #expect(written.array.map(\.bitPattern) == dx.array.map(\.bitPattern))
  }

  @Test func batchNormTrainingMatchesDefinitionAndMovesRunningStatistics() {
    let s = BatchNorm.Shape(batch: 4, channels: 3, spatial: 5)
    var rng = RNG(seed: 3, stream: "bn")
    let x = FD.random([4, 3, 5], &rng, scale: 2)
    let (gamma, beta) = (FD.random([3], &rng), FD.random([3], &rng))
    let (y, mean, invStd) = (Tensor(x.shape), Tensor([3]), Tensor([3]))
    let (runningMean, runningVariance) = (Tensor([3], fill: 0.5), Tensor([3], fill: 2))
    BatchNorm.forwardTraining(
      y: y, x: x, gamma: gamma, beta: beta, mean: mean, invStd: invStd, runningMean: runningMean,
      runningVariance: runningVariance, momentum: 0.1, epsilon: 1e-5, s)
    let reference = Tensor(x.shape)
    let stats = BatchNorm.referenceForwardTraining(y: reference, x: x, gamma: gamma, beta: beta, epsilon: 1e-5, s)
    #expect(relativeDifference(y, reference) < 1e-6)
    for c in 0..<3 {
      // PyTorch: running = 0.9·running + 0.1·batch, the variance unbiased (n = 20).
      #expect(abs(Double(runningMean[c]) - (0.9 * 0.5 + 0.1 * stats.mean[c])) < 1e-6)
      #expect(abs(Double(runningVariance[c]) - (0.9 * 2 + 0.1 * stats.variance[c] * 20 / 19)) < 1e-5)
    }
    // Evaluation mode with the running statistics is the per-channel affine map.
    let evaluated = Tensor(x.shape)
    BatchNorm.forwardInference(
      y: evaluated, x: x, gamma: gamma, beta: beta, runningMean: runningMean, runningVariance: runningVariance,
      epsilon: 1e-5, s)
    for i in [0, 7, 22, 59] {
      let c = (i / 5) % 3
      let expected =
        Double(gamma[c]) * (Double(x[i]) - Double(runningMean[c])) / (Double(runningVariance[c]) + 1e-5).squareRoot()
        + Double(beta[c])
      #expect(abs(Double(evaluated[i]) - expected) < 1e-5)
    }
  }

  /// Spatial 1 (BatchNorm1d), 6 (a run shorter than the eight lanes) and 11 (lanes and a tail).
  @Test(arguments: [1, 6, 11])
  func batchNormGradients(spatial: Int) {
    let s = BatchNorm.Shape(batch: 3, channels: 2, spatial: spatial)
    var rng = RNG(seed: 4, stream: "bn grad \(spatial)")
    let x = FD.random([3, 2, spatial], &rng)
    let (gamma, beta) = (FD.random([2], &rng), FD.random([2], &rng))
    let g = FD.random(x.shape, &rng)
    let (y, mean, invStd) = (Tensor(x.shape), Tensor([2]), Tensor([2]))
    let loss: () -> Double = {
      BatchNorm.forwardTraining(
        y: y, x: x, gamma: gamma, beta: beta, mean: mean, invStd: invStd, runningMean: Tensor([2]),
        runningVariance: Tensor([2]), momentum: 0.1, epsilon: 1e-5, s)
      return FD.dot(y, g)
    }
    _ = loss()
    let (dx, dgamma, dbeta) = (Tensor(x.shape), Tensor([2]), Tensor([2]))
    BatchNorm.backward(dx: dx, dgamma: dgamma, dbeta: dbeta, dy: g, x: x, gamma: gamma, mean: mean, invStd: invStd, s)
    FD.check("dx", analytic: dx, wrt: x, step: 1e-3, loss)
    FD.check("dgamma", analytic: dgamma, wrt: gamma, loss)
    FD.check("dbeta", analytic: dbeta, wrt: beta, loss)
    // `.overwrite` writes what `.accumulate` adds to zeros, whatever dx held.
    let written = Tensor(x.shape, fill: .nan)
    BatchNorm.backward(
      dx: written, dgamma: Tensor([2]), dbeta: Tensor([2]), dy: g, x: x, gamma: gamma, mean: mean, invStd: invStd,
      write: .overwrite, s)
    #expect(written.array == dx.array)
  }

  /// BatchNorm with its ReLU fused (forward `relu: true`, backward gated by that output)
  /// gives the bits of the two kernels one after the other: the same operations on the
  /// same values, the gate passing exactly dy or 0 as `ReLU.backward` does.
  @Test func batchNormWithReLUEqualsTheTwoKernels() {
    let s = BatchNorm.Shape(batch: 3, channels: 4, spatial: 13)
    var rng = RNG(seed: 10, stream: "bn relu")
    let x = FD.random([3, 4, 13], &rng, scale: 2)
    let (gamma, beta, g) = (FD.random([4], &rng), FD.random([4], &rng), FD.random(x.shape, &rng))
    func forward(_ y: Tensor, relu: Bool) -> (mean: Tensor, invStd: Tensor) {
      let (mean, invStd) = (Tensor([4]), Tensor([4]))
      BatchNorm.forwardTraining(
        y: y, x: x, gamma: gamma, beta: beta, mean: mean, invStd: invStd, runningMean: Tensor([4]),
        runningVariance: Tensor([4], fill: 1), momentum: 0.1, epsilon: 1e-5, relu: relu, s)
      return (mean, invStd)
    }
    let (normed, fused, activated) = (Tensor(x.shape), Tensor(x.shape), Tensor(x.shape))
    let stats = forward(normed, relu: false)
    _ = forward(fused, relu: true)
    ReLU.forward(out: activated, x: normed)
    #expect(fused.array.map(\.bitPattern) == activated.array.map(\.bitPattern))
    #expect(fused.array.contains(0) && fused.array.contains { $0 > 0 })
    let gated = Tensor(x.shape)
    ReLU.backward(dx: gated, dout: g, x: normed, write: .overwrite)
    let (expected, got) = (Tensor(x.shape), Tensor(x.shape))
    let (dg1, db1, dg2, db2) = (Tensor([4]), Tensor([4]), Tensor([4]), Tensor([4]))
    BatchNorm.backward(
      dx: expected, dgamma: dg1, dbeta: db1, dy: gated, x: x, gamma: gamma, mean: stats.mean, invStd: stats.invStd, s)
    BatchNorm.backward(
      dx: got, dgamma: dg2, dbeta: db2, dy: g, x: x, gamma: gamma, mean: stats.mean, invStd: stats.invStd,
      reluOutput: fused, s)
    #expect(got.array.map(\.bitPattern) == expected.array.map(\.bitPattern))
    #expect(dg2.array == dg1.array && db2.array == db1.array)
  }

  @Test func maxPoolPicksTheFirstLargestAndRoutesItsGradient() {
    // One 4×5 plane (the odd last column is dropped, as PyTorch floors), a tie in the
    // first window: the first of the equal values wins.
    let x = Tensor(
      [1, 1, 4, 5],
      [
        3, 1, 0, 2, 9,
        3, 2, 5, 1, 9,
        0, -1, 4, 4, 9,
        -2, 7, 4, 1, 9,
      ])
    let y = Tensor([1, 1, 2, 2])
    var indices: [Int32] = []
    MaxPool2d.forward(y: y, indices: &indices, x: x, planes: 1, height: 4, width: 5, k: 2)
    #expect(y.array == [3, 5, 7, 4])
    #expect(indices == [0, 7, 16, 12])
    let dx = Tensor(x.shape)
    MaxPool2d.backward(
      dx: dx, dy: Tensor([1, 1, 2, 2], [1, 2, 3, 4]), indices: indices, planes: 1, height: 4, width: 5, k: 2)
    #expect(dx[0] == 1 && dx[7] == 2 && dx[16] == 3 && dx[12] == 4 && dx.array.reduce(0, +) == 10)
  }

  /// The 2×2 path, eight windows at a time where a row holds them, against the rule
  /// written out: ties (values drawn from five integers) go to the first of the window in
  /// row-major order, and a NaN wins over any number (the last NaN over an earlier one),
  /// as the scalar windows of the row's end decide too.
  @Test func maxPoolVectorWindowsFollowTheScalarRule() {
    let (planes, height, width): (Int, Int, Int) = (3, 6, 38)  // 19 windows a row: 8 + 8 + 3
    var rng = RNG(seed: 6, stream: "maxpool ties")
    let x = Tensor([1, planes, height, width])
    for i in 0..<x.count { x[i] = Float(rng.int(below: 5)) }
    for i in stride(from: 3, to: x.count, by: 29) { x[i] = .nan }
    let (oh, ow) = (height / 2, width / 2)
    let y = Tensor([1, planes, oh, ow])
    var indices: [Int32] = []
    MaxPool2d.forward(y: y, indices: &indices, x: x, planes: planes, height: height, width: width, k: 2)
    for p in 0..<planes {
      for oy in 0..<oh {
        for ox in 0..<ow {
          var best = 2 * oy * width + 2 * ox
          for at in [best + 1, best + width, best + width + 1] {
            let (v, b) = (x[p * height * width + at], x[p * height * width + best])
            if v > b || v.isNaN { best = at }
          }
          let o = (p * oh + oy) * ow + ox
          #expect(indices[o] == Int32(best), "plane \(p) window (\(oy), \(ox))")
          #expect(y[o].bitPattern == x[p * height * width + best].bitPattern)
        }
      }
    }
  }

  @Test func maxPoolGradients() {
    var rng = RNG(seed: 5, stream: "maxpool")
    let x = FD.random([2, 3, 6, 4], &rng)  // continuous values: no ties, no window changes within h
    let y = Tensor([2, 3, 3, 2])
    let g = FD.random(y.shape, &rng)
    var indices: [Int32] = []
    let loss: () -> Double = {
      MaxPool2d.forward(y: y, indices: &indices, x: x, planes: 6, height: 6, width: 4, k: 2)
      return FD.dot(y, g)
    }
    _ = loss()
    let dx = Tensor(x.shape)
    MaxPool2d.backward(dx: dx, dy: g, indices: indices, planes: 6, height: 6, width: 4, k: 2)
    FD.check("dx", analytic: dx, wrt: x, step: 1e-3, loss)
    let written = Tensor(x.shape, fill: .nan)
    MaxPool2d.backward(
      dx: written, dy: g, indices: indices, planes: 6, height: 6, width: 4, k: 2, write: .overwrite)
    #expect(written.array == dx.array)
  }

  /// Windows as PyTorch's adaptive pooling draws them: 5 → 2 overlaps (rows 0..<3 and 2..<5).
  @Test func adaptiveAveragePoolWindowsAndGradients() {
    let x = Tensor([1, 1, 5, 3], (0..<15).map { Float($0) })
    let y = Tensor([1, 1, 2, 1])
    AdaptiveAvgPool2d.forward(y: y, x: x, planes: 1, height: 5, width: 3, outHeight: 2, outWidth: 1)
    #expect(y.array == [Float((0..<9).reduce(0, +)) / 9, Float((6..<15).reduce(0, +)) / 9])
    var rng = RNG(seed: 6, stream: "avgpool")
    let x2 = FD.random([2, 2, 7, 5], &rng)
    let y2 = Tensor([2, 2, 2, 3])
    let g = FD.random(y2.shape, &rng)
    let loss: () -> Double = {
      AdaptiveAvgPool2d.forward(y: y2, x: x2, planes: 4, height: 7, width: 5, outHeight: 2, outWidth: 3)
      return FD.dot(y2, g)
    }
    _ = loss()
    let dx = Tensor(x2.shape)
    AdaptiveAvgPool2d.backward(dx: dx, dy: g, planes: 4, height: 7, width: 5, outHeight: 2, outWidth: 3)
    FD.check("dx", analytic: dx, wrt: x2, loss)
  }

  /// Work split over output planes, channels or rows (im2col, col2im, BatchNorm, the
  /// pools) is the same bits at one thread as at several; the convolution's GEMM is equal
  /// up to rounding only, as every split matrix product (FastPathTests: k·ε of the
  /// largest value, here k = 72).
  @Test func threadCounts() {
    let s = Conv2d.Shape(batch: 4, channels: 8, height: 16, width: 16, outChannels: 32)
    var rng = RNG(seed: 7, stream: "threads")
    let x = FD.random([s.batch, s.channels, s.height, s.width], &rng)
    let w = FD.random([s.outChannels, s.channels, 3, 3], &rng, scale: 0.2)
    let b = FD.random([s.outChannels], &rng)
    let g = FD.random([s.batch, s.outChannels, s.outHeight, s.outWidth], &rng)
    let dcols = FD.random([s.patch, s.rows], &rng)
    func run() -> (exact: [[Float]], rounded: [[Float]]) {
      let (y, cols, rows) = Self.buffers(s)
      Conv2d.forward(y: y, x: x, w: w, b: b, cols: cols, rows: rows, s)
      let scattered = Tensor(x.shape)
      Conv2d.col2im(dx: scattered, dcols: dcols, s)
      let (dx, dw, db) = (Tensor(x.shape), Tensor(w.shape), Tensor(b.shape))
      Conv2d.backward(
        dx: dx, dw: dw, db: db, dy: g, cols: cols, w: w, dyRows: Tensor(rows.shape), dcols: Tensor(cols.shape), s)
      let bs = BatchNorm.Shape(batch: s.batch, channels: s.outChannels, spatial: s.positions)
      let (normed, mean, invStd) = (Tensor(g.shape), Tensor([32]), Tensor([32]))
      BatchNorm.forwardTraining(
        y: normed, x: g, gamma: Tensor([32], fill: 1), beta: Tensor([32]), mean: mean, invStd: invStd,
        runningMean: Tensor([32]), runningVariance: Tensor([32], fill: 1), momentum: 0.1, epsilon: 1e-5, bs)
      let (dnormed, dgamma, dbeta) = (Tensor(g.shape), Tensor([32]), Tensor([32]))
      BatchNorm.backward(
        dx: dnormed, dgamma: dgamma, dbeta: dbeta, dy: normed, x: g, gamma: Tensor([32], fill: 1.5), mean: mean,
        invStd: invStd, bs)
      let pooled = Tensor([4, 32, 8, 8])
      var indices: [Int32] = []
      MaxPool2d.forward(y: pooled, indices: &indices, x: normed, planes: 128, height: 16, width: 16, k: 2)
      let averaged = Tensor([4, 32, 3, 3])
      AdaptiveAvgPool2d.forward(y: averaged, x: normed, planes: 128, height: 16, width: 16, outHeight: 3, outWidth: 3)
      return (
        [cols.array, scattered.array, normed.array, dnormed.array, dgamma.array, pooled.array, averaged.array],
        [y.array, dx.array, dw.array, db.array]
      )
    }
    let one = Parallel.$limit.withValue(1) { run() }
    let many = run()
    #expect(one.exact == many.exact)
    for (a, b) in zip(one.rounded, many.rounded) { #expect(relativeDifference(a, b) <= 72 * 6e-8) }
  }
}
