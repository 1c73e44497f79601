/// Column sums, split over columns: each column is summed over the rows in order, so the
/// result does not depend on the thread count.
enum Reduce {
  /// out[j] += Σ_r a[r·lda + j] for j < cols. a: (rows, ≥ cols), out: (cols).
  static func addColumnSums(
    _ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, rows: Int, cols: Int, lda: Int
  ) {
    Parallel.forRanges((cols + 7) / 8, grain: max(1, (1 << 14) / max(rows * 8, 1))) { blocks in
      let j0 = blocks.lowerBound * 8
      let width = min(cols, blocks.upperBound * 8) - j0
      let acc = UnsafeMutablePointer<Float>.allocate(capacity: width)
      defer { acc.deallocate() }
      acc.initialize(repeating: 0, count: width)
      for r in 0..<rows {
        let row = a + r * lda + j0
        var i = 0
        while i < width {
          let n = min(8, width - i)
          store8(load8(acc + i, n) + load8(row + i, n), acc + i, n)
          i += 8
        }
      }
      for i in 0..<width { out[j0 + i] += acc[i] }
    }
  }
}
