/// Column sums, split over columns: each column is summed over the rows in order, so the
/// result does not depend on the thread count.
public enum Reduce {
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

extension Reduce {
  /// The mean of each group of `rows` consecutive rows: x (groups·rows, cols) -> out
  /// (groups, cols), written. Global average pooling over a sequence of patches.
  public static func meanRows(out: Tensor, x: Tensor, groups: Int, rows: Int, cols: Int) {
    precondition(x.count == groups * rows * cols && out.count == groups * cols, "meanRows: \(x.shape) -> \(out.shape)")
    let scale = 1 / Float(rows)
    Parallel.forEach(groups, grain: max(1, Elementwise.grain / max(rows * cols, 1))) { g in
      let o = out.data + g * cols
      o.update(repeating: 0, count: cols)
      for r in 0..<rows {
        let row = x.data + (g * rows + r) * cols
        for j in 0..<cols { o[j] += row[j] }
      }
      for j in 0..<cols { o[j] *= scale }
    }
  }

  /// The backward of `meanRows`: dout (groups, cols) -> dx (groups·rows, cols), written:
  /// every row of a group gets dout / rows.
  public static func meanRowsBackward(dx: Tensor, dout: Tensor, groups: Int, rows: Int, cols: Int) {
    precondition(dx.count == groups * rows * cols && dout.count == groups * cols, "meanRows backward")
    let scale = 1 / Float(rows)
    Parallel.forEach(groups, grain: max(1, Elementwise.grain / max(rows * cols, 1))) { g in
      let d = dout.data + g * cols
      for r in 0..<rows {
        let row = dx.data + (g * rows + r) * cols
        for j in 0..<cols { row[j] = d[j] * scale }
      }
    }
  }
}
