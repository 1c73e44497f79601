import Kernels
import Testing

@Suite struct GEMMTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var m: Int
    var n: Int
    var k: Int
    var testDescription: String { "\(m)×\(k) · \(k)×\(n)" }
  }

  static let shapes: [Case] = [
    Case(m: 1, n: 1, k: 1), Case(m: 7, n: 13, k: 5), Case(m: 257, n: 129, k: 33), Case(m: 33, n: 257, k: 129),
  ]

  /// BLAS and the Double-accumulating reference agree within the classical bound for a
  /// float32 dot product of length k: |error| ≤ γ_k·Σ|a·b| with γ_k ≈ k·u (u = 2⁻²⁴);
  /// we allow 2·k·u·Σ|a||b| for the alpha/beta scaling on top.
  @Test(arguments: shapes, [(false, false), (false, true), (true, false), (true, true)])
  func matchesReference(shape: Case, transposes: (Bool, Bool)) {
    let (tA, tB) = transposes
    let (m, n, k) = (shape.m, shape.n, shape.k)
    var rng = RNG(seed: 7, stream: "gemm \(shape.testDescription) \(tA) \(tB)")
    // Padded leading dimensions, so strides are exercised too.
    let lda = (tA ? m : k) + 3
    let ldb = (tB ? k : n) + 2
    let ldc = n + 1
    let a = FD.random([tA ? k : m, lda], &rng)
    let b = FD.random([tB ? n : k, ldb], &rng)
    let c0 = FD.random([m, ldc], &rng)
    let fast = c0.clone()
    let slow = c0.clone()
    GEMM.multiply(
      transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.75, a: a.data, lda: lda, b: b.data, ldb: ldb,
      beta: 0.5, c: fast.data, ldc: ldc)
    GEMM.reference(
      transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.75, a: a.data, lda: lda, b: b.data, ldb: ldb,
      beta: 0.5, c: slow.data, ldc: ldc)
    let u = Double(Float.ulpOfOne) / 2
    var failures = 0
    for i in 0..<m {
      for j in 0..<n {
        var magnitude = 0.5 * abs(Double(c0.data[i * ldc + j]))
        for p in 0..<k {
          let av = tA ? a.data[p * lda + i] : a.data[i * lda + p]
          let bv = tB ? b.data[j * ldb + p] : b.data[p * ldb + j]
          magnitude += 0.75 * abs(Double(av) * Double(bv))
        }
        let bound = 2 * Double(k + 2) * u * magnitude
        if abs(Double(fast.data[i * ldc + j]) - Double(slow.data[i * ldc + j])) > bound { failures += 1 }
      }
      // The padding column of C is never written.
      #expect(fast.data[i * ldc + n] == c0.data[i * ldc + n])
    }
    #expect(failures == 0, "\(failures) elements outside the error bound")
  }

  /// Strides: slice i of the batched product equals the reference product of slice i.
  @Test func batchedMatchesReferencePerSlice() {
    var rng = RNG(seed: 1, stream: "batched")
    let (count, m, n, k) = (3, 4, 5, 6)
    let a = FD.random([count, m, k], &rng)
    let b = FD.random([count, n, k], &rng)
    let batched = Tensor([count, m, n])
    GEMM.multiplyBatched(
      count: count, transA: false, transB: true, m: m, n: n, k: k,
      a: a.data, lda: k, strideA: m * k, b: b.data, ldb: k, strideB: n * k, c: batched.data, ldc: n, strideC: m * n)
    for i in 0..<count {
      let one = Tensor([m, n])
      GEMM.reference(
        transA: false, transB: true, m: m, n: n, k: k, a: a.data + i * m * k, lda: k, b: b.data + i * n * k, ldb: k,
        c: one.data, ldc: n)
      // Entries are sums of 6 products of N(0,1) values: 1e-5 is ~100 float32 ulps of their size.
      for j in 0..<(m * n) { #expect(abs(batched.data[i * m * n + j] - one.data[j]) < 1e-5) }
    }
  }
}
