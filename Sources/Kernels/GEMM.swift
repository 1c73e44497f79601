// The only file that imports OpenBLAS.
import COpenBLAS
import Synchronization

/// Row-major general matrix multiply:
/// `C (m, n) = alpha · op(A) (m, k) · op(B) (k, n) + beta · C`,
/// where `op(X)` is `X` or `Xᵀ`. Leading dimensions are the row strides of the
/// matrices as stored (so a transposed A of shape (k, m) has `lda ≥ m`).
public enum GEMM {
  /// Splits a product across `Parallel.threads` when each part would still hold at least
  /// this much work (~12 µs on one core): below it a part costs more to hand out than it
  /// saves, and OpenBLAS switches small products to other kernels (other summation
  /// orders). Work is m·n·k multiply-adds plus 16 for each value of A, B and C, the time
  /// to bring it from memory: a product of a few rows is bound by reading B (a VGG head's
  /// 1024 × 1024 weight at batch 1: 1 M multiply-adds, 0.4 ms on one core), and splits.
  static let splitWork = 1 << 20

  /// The work `multiply` compares with `splitWork`.
  static func work(m: Int, n: Int, k: Int) -> Int { m * n * k + 16 * (m * k + k * n + m * n) }

  /// The product on `Parallel.threads` threads: C is cut into blocks of whole rows (or of
  /// whole columns, when it is wider than tall), and each block is one single-threaded
  /// OpenBLAS call on a thread of our own pool. Every element of C is summed by the same
  /// kernel over the same k, so the result does not depend on the thread count.
  /// `rowBias` (n values, with beta 0) makes it `C = op(A)·op(B) + bias` in every row: a
  /// Linear layer's forward.
  public static func multiply(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
    rowBias: UnsafePointer<Float>? = nil
  ) {
    checkArguments(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
    precondition(rowBias == nil || beta == 0, "gemm: rowBias replaces beta·C, so beta must be 0")
    // The bias goes into each part's block of C just before its product adds to it: on the
    // part's own thread, while the block is in its cache.
    let productBeta: Float = rowBias == nil ? beta : 1
    let byRows = m >= n
    let along = byRows ? m : n
    // Parts are multiples of 16 rows or columns (OpenBLAS's register blocks), so a split
    // does not leave ragged edges in the middle of C.
    let parts = min(Parallel.threads, work(m: m, n: n, k: k) / splitWork, along / 16)
    if parts <= 1 {
      if let bias = rowBias { fillRows(c, ldc: ldc, rows: 0..<m, columns: 0..<n, bias: bias) }
      multiplyOnThisThread(
        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
        b: b, ldb: ldb, beta: productBeta, c: c, ldc: ldc)
      return
    }
    let blocks = (along + 15) / 16
    Parallel.forRanges(blocks, grain: max(1, blocks / parts)) { range in
      let start = range.lowerBound * 16
      let size = min(along, range.upperBound * 16) - start
      if byRows {
        // rows of C and of op(A)
        if let bias = rowBias { fillRows(c, ldc: ldc, rows: start..<(start + size), columns: 0..<n, bias: bias) }
        multiplyOnThisThread(
          transA: transA, transB: transB, m: size, n: n, k: k, alpha: alpha,
          a: transA ? a + start : a + start * lda, lda: lda, b: b, ldb: ldb,
          beta: productBeta, c: c + start * ldc, ldc: ldc)
      } else {
        // columns of C and of op(B)
        if let bias = rowBias { fillRows(c, ldc: ldc, rows: 0..<m, columns: start..<(start + size), bias: bias) }
        multiplyOnThisThread(
          transA: transA, transB: transB, m: m, n: size, k: k, alpha: alpha, a: a, lda: lda,
          b: transB ? b + start * ldb : b + start, ldb: ldb,
          beta: productBeta, c: c + start, ldc: ldc)
      }
    }
  }

  /// C[r][j] = bias[j] for the given rows and columns.
  @inline(__always)
  static func fillRows(
    _ c: UnsafeMutablePointer<Float>, ldc: Int, rows: Range<Int>, columns: Range<Int>, bias: UnsafePointer<Float>
  ) {
    for r in rows {
      (c + r * ldc + columns.lowerBound).update(from: bias + columns.lowerBound, count: columns.count)
    }
  }

  /// `count` independent multiplies whose operands sit at fixed strides apart.
  public static func multiplyBatched(
    count: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
    b: UnsafePointer<Float>, ldb: Int, strideB: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int
  ) {
    for i in 0..<count {
      multiply(
        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
        a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
        beta: beta, c: c + i * strideC, ldc: ldc)
    }
  }

  /// One OpenBLAS call on the calling thread (OpenBLAS itself always runs one thread, see
  /// `BLASThreads`): for the small products inside our own parallel loops (attention).
  static func multiplyOnThisThread(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    if m == 0 || n == 0 { return }
    _ = BLASThreads.count  // switches OpenBLAS to one thread before its first call
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
      beta, c, blasint(ldc))
  }

  /// The naive triple loop, accumulated in Double: the reference the tests hold BLAS to.
  public static func reference(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    checkArguments(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
    for i in 0..<m {
      for j in 0..<n {
        var sum: Double = 0
        for p in 0..<k {
          let av = transA ? a[p * lda + i] : a[i * lda + p]
          let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
          sum += Double(av) * Double(bv)
        }
        let old: Double = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
        c[i * ldc + j] = Float(Double(alpha) * sum + old)
      }
    }
  }

  static func checkArguments(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
  ) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
    precondition(lda >= max(1, transA ? m : k), "gemm: lda=\(lda) too small")
    precondition(ldb >= max(1, transB ? k : n), "gemm: ldb=\(ldb) too small")
    precondition(ldc >= max(1, n), "gemm: ldc=\(ldc) too small")
  }
}

/// The number of threads the kernels use: OpenBLAS's count at start-up (from
/// `OPENBLAS_NUM_THREADS`, else the number of cores), until `set` changes it.
///
/// OpenBLAS itself is switched to one thread and every parallel loop, matrix products
/// included, runs on our own pool (`Parallel`). With two pools, OpenBLAS's idle threads
/// spin and yield on the cores our loops need between products: at 2 threads that cost
/// about 15 % of a training step in the scheduler.
public enum BLASThreads {
  /// Set once, on first use, from OpenBLAS's own count.
  static let setting: Atomic<Int> = {
    let n = Int(openblas_get_num_threads())
    openblas_set_num_threads(1)
    return Atomic(max(n, 1))
  }()

  public static var count: Int { setting.load(ordering: .relaxed) }
  public static func set(_ n: Int) { setting.store(max(n, 1), ordering: .relaxed) }
  /// The kernels OpenBLAS chose for this CPU (or `OPENBLAS_CORETYPE`), e.g. "Haswell".
  public static var coreName: String {
    guard let c = openblas_get_corename() else { return "unknown" }
    return String(cString: c)
  }

  /// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
  public static var configuration: String {
    guard let c = openblas_get_config() else { return "unknown" }
    return String(cString: c)
  }
}
