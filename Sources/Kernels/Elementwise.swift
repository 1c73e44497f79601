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

  /// out += s·a (gradient accumulation, weighted by each micro-batch's counted rows).
  /// A multiply and an add, never fused, so the result is the same on every CPU.
  public static func accumulate(_ out: Tensor, _ a: Tensor, scale s: Float) {
    precondition(out.count == a.count, "accumulate: \(out.shape) += s·\(a.shape)")
    let (o, x) = (out.data, UnsafePointer(a.data))
    let factor = SIMD8<Float>(repeating: s)
    parts(out.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        let scaled = load8(x + i, lanes) * factor
        store8(load8(o + i, lanes) + scaled, o + i, lanes)
      }
      part.vectors(vector)
    }
  }

  /// out ·= s.
  public static func scale(_ out: Tensor, by s: Float) {
    let o = out.data
    let factor = SIMD8<Float>(repeating: s)
    parts(out.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) { store8(load8(o + i, lanes) * factor, o + i, lanes) }
      part.vectors(vector)
    }
  }

  /// out (B, C) = the first row of each sequence of x (B, T, C) + y (B, C): the residual
  /// of a block that runs on the first rows only.
  public static func addFirstRows(out: Tensor, x: Tensor, _ y: Tensor) {
    let (b, c) = (out.shape[0], out.lastDim)
    precondition(y.count == b * c && x.count % (b * c) == 0, "addFirstRows: \(x.shape) + \(y.shape)")
    let t = x.count / (b * c)
    for r in 0..<b {
      let (o, xr, yr) = (out.data + r * c, x.data + r * t * c, y.data + r * c)
      for j in 0..<c { o[j] = xr[j] + yr[j] }
    }
  }

  /// dx (B, T, C) = zero except each sequence's first row, which is src (B, C): the
  /// gradient of `addFirstRows` with respect to x.
  public static func scatterFirstRows(into dx: Tensor, from src: Tensor) {
    let (b, c) = (src.shape[0], src.lastDim)
    precondition(dx.count % (b * c) == 0, "scatterFirstRows: \(src.shape) into \(dx.shape)")
    let t = dx.count / (b * c)
    dx.zero()
    for r in 0..<b { (dx.data + r * t * c).update(from: src.data + r * c, count: c) }
  }

  /// dx (B, T, C): each sequence's first row += src (B, C), the other rows kept: the
  /// gradient of `addFirstRows` with respect to x, added to what dx holds.
  public static func accumulateFirstRows(into dx: Tensor, from src: Tensor) {
    let (b, c) = (src.shape[0], src.lastDim)
    precondition(dx.count % (b * c) == 0, "accumulateFirstRows: \(src.shape) into \(dx.shape)")
    let t = dx.count / (b * c)
    for r in 0..<b {
      let (d, s) = (dx.data + r * t * c, src.data + r * c)
      for j in 0..<c { d[j] += s[j] }
    }
  }
}
