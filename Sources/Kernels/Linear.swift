/// Fully connected layer, `y = x·Wᵀ + b`, with W stored `(out, in)` as PyTorch does.
///
/// Backward passes ADD into every gradient they are given (inputs and parameters),
/// so residual branches and shared weights need no special casing; callers zero
/// gradients before a step.
public enum Linear {
  /// x: (N, in), w: (out, in), b: (out) -> y: (N, out). Leading dims of x are flattened.
  public static func forward(y: Tensor, x: Tensor, w: Tensor, b: Tensor?) {
    let outC = w.shape[0]
    let inC = w.shape[1]
    let rows = x.count / inC
    precondition(x.count == rows * inC, "linear: input \(x.shape) is not a multiple of in=\(inC)")
    precondition(y.count == rows * outC, "linear: output \(y.shape) does not hold (\(rows), \(outC))")
    precondition(b == nil || b!.count == outC, "linear: bias \(b!.shape) for out=\(outC)")
    GEMM.multiply(
      transA: false, transB: true, m: rows, n: outC, k: inC,
      a: x.data, lda: inC, b: w.data, ldb: inC,
      c: y.data, ldc: outC, rowBias: b.map { UnsafePointer($0.data) })
  }

  /// dy: (N, out) -> dx += dy·W (N, in) (or =, `dxWrite`); dw += dyᵀ·x (out, in);
  /// db += Σ_rows dy (out).
  public static func backward(
    dx: Tensor?, dw: Tensor, db: Tensor?, dy: Tensor, x: Tensor, w: Tensor,
    dxWrite: GradientWrite = .accumulate
  ) {
    let outC = w.shape[0]
    let inC = w.shape[1]
    let rows = x.count / inC
    precondition(dy.count == rows * outC, "linear backward: dy \(dy.shape) for (\(rows), \(outC))")
    if let dx = dx {
      GEMM.multiply(
        transA: false, transB: false, m: rows, n: inC, k: outC,
        a: dy.data, lda: outC, b: w.data, ldb: inC, beta: dxWrite == .accumulate ? 1 : 0,
        c: dx.data, ldc: inC)
    }
    GEMM.multiply(
      transA: true, transB: false, m: outC, n: inC, k: rows,
      a: dy.data, lda: outC, b: x.data, ldb: inC, beta: 1, c: dw.data, ldc: inC)
    if let db = db {
      precondition(db.count == outC, "linear backward: db \(db.shape) for out=\(outC)")
      Reduce.addColumnSums(db.data, dy.data, rows: rows, cols: outC, lda: outC)
    }
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
