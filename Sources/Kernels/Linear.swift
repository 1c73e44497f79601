/// Fully connected layer, `y = x·Wᵀ + b`, with W stored `(out, in)` as PyTorch does.
///
/// Backward passes ADD into every gradient they are given (inputs and parameters),
/// so residual branches and shared weights need no special casing; callers zero
/// gradients before a step.
public enum Linear {
  /// x: (N, in), w: (out, in), b: (out) -> y: (N, out). Leading dims of x are flattened.
  public static func forward(y: Tensor, x: Tensor, w: Tensor, b: Tensor?) {
    forward(y: y, x: x, w: w, b: b, outputs: 0..<w.shape[0])
  }

  /// Part of the layer: output features `outputs` (rows of W and entries of b), written to
  /// those columns of y (N, out), for rows 0, s, 2s, … of x and y (s = `rowStride`; N a
  /// multiple of it). The other columns and rows of y are left alone. A packed projection
  /// uses it to compute some of its outputs for some rows (the keys and values of every
  /// position, the query of the first).
  public static func forward(
    y: Tensor, x: Tensor, w: Tensor, b: Tensor?, outputs: Range<Int>, rowStride: Int = 1
  ) {
    let outC = w.shape[0]
    let inC = w.shape[1]
    let rows = x.count / inC
    precondition(x.count == rows * inC, "linear: input \(x.shape) is not a multiple of in=\(inC)")
    precondition(y.count == rows * outC, "linear: output \(y.shape) does not hold (\(rows), \(outC))")
    precondition(b == nil || b!.count == outC, "linear: bias \(b!.shape) for out=\(outC)")
    precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outC, "linear: outputs \(outputs) of \(outC)")
    precondition(rowStride > 0 && rows % rowStride == 0, "linear: row stride \(rowStride) for \(rows) rows")
    let o = outputs.lowerBound
    GEMM.multiply(
      transA: false, transB: true, m: rows / rowStride, n: outputs.count, k: inC,
      a: x.data, lda: inC * rowStride, b: w.data + o * inC, ldb: inC,
      c: y.data + o, ldc: outC * rowStride, rowBias: b.map { UnsafePointer($0.data + o) })
  }

  /// dy: (N, out) -> dx += dy·W (N, in) (or =, `dxWrite`); dw += dyᵀ·x (out, in);
  /// db += Σ_rows dy (out).
  public static func backward(
    dx: Tensor?, dw: Tensor, db: Tensor?, dy: Tensor, x: Tensor, w: Tensor,
    dxWrite: GradientWrite = .accumulate
  ) {
    backward(dx: dx, dw: dw, db: db, dy: dy, x: x, w: w, outputs: 0..<w.shape[0], dxWrite: dxWrite)
  }

  /// The backward of `forward(…, outputs:, rowStride:)`: reads columns `outputs` of dy at
  /// rows 0, s, 2s, …; writes those rows of dx, rows `outputs` of dw and entries of db.
  public static func backward(
    dx: Tensor?, dw: Tensor, db: Tensor?, dy: Tensor, x: Tensor, w: Tensor, outputs: Range<Int>,
    rowStride: Int = 1, dxWrite: GradientWrite = .accumulate
  ) {
    let outC = w.shape[0]
    let inC = w.shape[1]
    let rows = x.count / inC
    precondition(dy.count == rows * outC, "linear backward: dy \(dy.shape) for (\(rows), \(outC))")
    precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outC, "linear: outputs \(outputs) of \(outC)")
    precondition(rowStride > 0 && rows % rowStride == 0, "linear: row stride \(rowStride) for \(rows) rows")
    let (o, m) = (outputs.lowerBound, rows / rowStride)
    let (dyp, ldy, ldx) = (UnsafePointer(dy.data + o), outC * rowStride, inC * rowStride)
    if let dx = dx {
      precondition(dx.count == x.count, "linear backward: dx \(dx.shape) for x \(x.shape)")
      GEMM.multiply(
        transA: false, transB: false, m: m, n: inC, k: outputs.count,
        a: dyp, lda: ldy, b: w.data + o * inC, ldb: inC, beta: dxWrite == .accumulate ? 1 : 0,
        c: dx.data, ldc: ldx)
    }
    GEMM.multiply(
      transA: true, transB: false, m: outputs.count, n: inC, k: m,
      a: dyp, lda: ldy, b: x.data, ldb: ldx, beta: 1, c: dw.data + o * inC, ldc: inC)
    if let db = db {
      precondition(db.count == outC, "linear backward: db \(db.shape) for out=\(outC)")
      Reduce.addColumnSums(db.data + o, dyp, rows: m, cols: outputs.count, lda: ldy)
    }
  }

  /// The affine map `x ↦ second(first(x))` of two layers: W = W2·W1 (out₂, in₁),
  /// b = W2·b1 + b2 (LayerCollapse's merge).
  public static func compose(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> (weight: Tensor, bias: Tensor) {
    let (o, h, d) = (w2.shape[0], w2.shape[1], w1.shape[1])
    precondition(w1.shape[0] == h && b1.count == h && b2.count == o, "cannot compose \(w1.shape) then \(w2.shape)")
    let w = Tensor([o, d])
    GEMM.multiply(
      transA: false, transB: false, m: o, n: d, k: h, a: w2.data, lda: h, b: w1.data, ldb: d, c: w.data, ldc: d)
    let b = b2.clone()
    GEMM.multiply(
      transA: false, transB: false, m: o, n: 1, k: h, a: w2.data, lda: h, b: b1.data, ldb: 1, beta: 1, c: b.data,
      ldc: 1)
    return (w, b)
  }

  /// Naive reference forward for tests.
  public static func referenceForward(y: Tensor, x: Tensor, w: Tensor, b: Tensor?) {
    let outC = w.shape[0]
    let inC = w.shape[1]
    let rows = x.count / inC
    for r in 0..<rows {
      for o in 0..<outC {
        var sum: Double = b.map { Double($0.data[o]) } ?? 0
        for i in 0..<inC { sum += Double(x.data[r * inC + i]) * Double(w.data[o * inC + i]) }
        y.data[r * outC + o] = Float(sum)
      }
    }
  }
}
