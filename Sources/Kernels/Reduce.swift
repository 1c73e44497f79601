/// Column sums, split over columns: each column is summed over the rows in order, so the
/// result does not depend on the thread count.
enum Reduce {
  /// out[j] += Σ_r a[r·lda + j] for j < cols. a: (rows, ≥ cols), out: (cols).
  /// Columns go in blocks of 32 whose four 8-lane sums stay in registers while the rows
  /// stream past (one pass over `a`, no partial sums in memory).
  static func addColumnSums(
    _ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, rows: Int, cols: Int, lda: Int
  ) {
    Parallel.forRanges((cols + 31) / 32, grain: max(1, (1 << 16) / max(rows * 32, 1))) { blocks in
      for block in blocks {
        let j0 = block * 32
        let width = min(32, cols - j0)
        if width == 32 {
          var (s0, s1, s2, s3) = (Float8(), Float8(), Float8(), Float8())
          for r in 0..<rows {
            let row = a + r * lda + j0
            s0 += load8(row)
            s1 += load8(row + 8)
            s2 += load8(row + 16)
            s3 += load8(row + 24)
          }
          for (v, s) in [s0, s1, s2, s3].enumerated() {
            for l in 0..<8 { out[j0 + 8 * v + l] += s[l] }
          }
          continue
        }
        @inline(__always) func vector(_ j: Int, _ lanes: Int) {
          var s = Float8()
          for r in 0..<rows { s += load8(a + r * lda + j, lanes) }
          for l in 0..<lanes { out[j + l] += s[l] }
        }
        vectorLoop(j0, j0 + width, vector)
      }
    }
  }
}
