// The only file that imports OpenBLAS.
import COpenBLAS

/// Row-major general matrix multiply:
/// `C (m, n) = alpha · op(A) (m, k) · op(B) (k, n) + beta · C`,
/// where `op(X)` is `X` or `Xᵀ`. Leading dimensions are the row strides of the
/// matrices as stored (so a transposed A of shape (k, m) has `lda ≥ m`).
public enum GEMM {
  public static func multiply(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    checkArguments(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
    if m == 0 || n == 0 { return }
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
      beta, c, blasint(ldc))
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

  /// OpenBLAS runs a product on the calling thread alone when m·n·k ≤ 2¹⁸ (65536 ×
  /// GEMM_MULTITHREAD_THRESHOLD = 4, its default build).
  static let singleThreadWork = 1 << 18

  /// `multiply` in blocks of rows of C small enough that OpenBLAS runs each on the calling
  /// thread: for the small products inside our own parallel loops (attention), so no
  /// OpenBLAS threads are started inside our threads and nothing global is changed.
  /// Every element of C is computed as by one call, so the result does not depend on
  /// which thread runs it.
  static func multiplyOnThisThread(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    let rowsPerBlock = max(1, singleThreadWork / max(n * k, 1))
    var i0 = 0
    while i0 < m {
      let rows = min(rowsPerBlock, m - i0)
      multiply(
        transA: transA, transB: transB, m: rows, n: n, k: k, alpha: alpha,
        a: transA ? a + i0 : a + i0 * lda, lda: lda, b: b, ldb: ldb,
        beta: beta, c: c + i0 * ldc, ldc: ldc)
      i0 += rows
    }
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

/// OpenBLAS's thread pool. Its size comes from `OPENBLAS_NUM_THREADS` at start-up.
public enum BLASThreads {
  public static var count: Int { Int(openblas_get_num_threads()) }
  public static func set(_ n: Int) { openblas_set_num_threads(Int32(n)) }
  /// OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
  public static var configuration: String {
    guard let c = openblas_get_config() else { return "unknown" }
    return String(cString: c)
  }
}
