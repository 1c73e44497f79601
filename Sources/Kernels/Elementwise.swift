/// Element-wise loops: eight lanes at a time, split over threads for large tensors.
/// Each element is computed the same way wherever it falls, so results do not depend
/// on the thread count.
///
/// A kernel writes
///
///     Elementwise.parts(n) { part in
///       @inline(__always) func vector(_ i: Int, _ lanes: Int) { ... }
///       part.vectors(vector)
///     }
///
/// The per-vector body must be a local `@inline(__always)` function: a closure literal
/// there (`part.vectors { i, lanes in ... }`) is not inlined by this compiler but called
/// once per vector, and the lane selects in it lose their vector form (measured: ReLU and
/// PReLU forward 15× slower, 1.6 instead of 0.1 ns per element).
public enum Elementwise {
  /// Smallest number of elements worth a thread of its own (see `Parallel.forRanges`).
  static let grain = 1 << 14

  /// The vectors of one part: blocks of 8 elements, the last one possibly shorter.
  struct Part {
    let n: Int
    let blocks: Range<Int>

    /// The part's first and one-past-last element.
    var start: Int { blocks.lowerBound * 8 }
    var end: Int { min(n, blocks.upperBound * 8) }

    /// Calls `body(i, lanes)` for i = 8·block, lanes = 8 except for the last block of `0..<n`.
    @inline(__always)
    func vectors(_ body: (_ i: Int, _ lanes: Int) -> Void) {
      vectorLoop(start, end, body)
    }
  }

  /// Splits `0..<n` into parts of whole vectors and calls `body` on each, in parallel.
  @inline(__always)
  static func parts(_ n: Int, _ body: (Part) -> Void) {
    Parallel.forRanges((n + 7) / 8, grain: grain / 8) { blocks in body(Part(n: n, blocks: blocks)) }
  }

  /// out = a + b (any shapes with the same count). `out` may alias `a` or `b`.
  public static func add(out: Tensor, _ a: Tensor, _ b: Tensor) {
    precondition(out.count == a.count && a.count == b.count, "add: \(out.shape) = \(a.shape) + \(b.shape)")
    let (o, x, y) = (out.data, UnsafePointer(a.data), UnsafePointer(b.data))
    parts(out.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        store8(load8(x + i, lanes) + load8(y + i, lanes), o + i, lanes)
      }
      part.vectors(vector)
    }
  }

  /// out += a.
  public static func accumulate(_ out: Tensor, _ a: Tensor) { add(out: out, out, a) }
}
