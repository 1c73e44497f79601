/// Element-wise loops: eight lanes at a time, split over threads for large tensors.
/// Each element is computed the same way wherever it falls, so results do not depend
/// on the thread count.
public enum Elementwise {
  /// Smallest number of elements worth a thread of its own.
  static let grain = 1 << 14

  /// Calls `body(i, lanes)` for i = 0, 8, 16, ... < n (per part), lanes = 8 except at the
  /// end of a part. Parts run in parallel.
  @inline(__always)
  static func map(_ n: Int, _ body: (_ i: Int, _ lanes: Int) -> Void) {
    Parallel.forRanges((n + 7) / 8, grain: grain / 8) { blocks in
      for blk in blocks {
        let i = blk * 8
        body(i, min(8, n - i))
      }
    }
  }

  /// out = a + b (any shapes with the same count). `out` may alias `a` or `b`.
  public static func add(out: Tensor, _ a: Tensor, _ b: Tensor) {
    precondition(out.count == a.count && a.count == b.count, "add: \(out.shape) = \(a.shape) + \(b.shape)")
    let (o, x, y) = (out.data, UnsafePointer(a.data), UnsafePointer(b.data))
    map(out.count) { i, lanes in store8(load8(x + i, lanes) + load8(y + i, lanes), o + i, lanes) }
  }

  /// out += a.
  public static func accumulate(_ out: Tensor, _ a: Tensor) { add(out: out, out, a) }
}
