/// The kernels' parallel loops, matrix products included, on as many threads as
/// `BLASThreads.count` (the user's `OPENBLAS_NUM_THREADS`) allows; with one thread
/// everything runs inline on the caller.
///
/// Only for work whose result cannot depend on the split: each output element is written
/// by exactly one part, computed the same way whatever part it falls in (rows of a
/// row-wise op, columns of a column sum, (batch, head) pairs of attention). Reductions
/// are split over their outputs, never over the summed index, so results are the same
/// bits at every thread count.
public enum Parallel {
  /// Caps the parts of our loops within a scope, e.g. `Parallel.$limit.withValue(1) { ... }`
  /// (tests compare one thread with several).
  @TaskLocal public static var limit: Int = .max

  /// Number of parts our loops split into: `BLASThreads.count`, capped by `limit`.
  @inline(__always)
  public static var threads: Int { min(BLASThreads.count, limit) }

  /// Calls `body` on consecutive ranges covering `0..<count`, in parallel when there are
  /// at least two threads and each part gets at least `grain` items. Parts must not start
  /// parallel loops of their own (products inside use `GEMM.multiplyOnThisThread`).
  ///
  /// Grains are set so that a part holds at least some 10–20 µs of work: handing a part to
  /// `ThreadPool`'s spinning worker costs a few microseconds. (Measured: with these grains
  /// batch-1 inference at 2 threads runs 1.7× faster than with grains 4× larger, which
  /// left it on one thread; training and batch 256 do not change.)
  @inline(__always)
  public static func forRanges(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    let parts = min(threads, count / max(grain, 1))
    if parts <= 1 {
      if count > 0 { body(0..<count) }
      return
    }
    // The parts write disjoint memory (the caller's contract), so sharing `body` across
    // threads is safe although the compiler cannot prove it.
    ThreadPool.shared.run(parts: parts) { i in body((count * i / parts)..<(count * (i + 1) / parts)) }
  }

  /// Calls `body(i)` for every `i` in `0..<count`, parts as in `forRanges`.
  @inline(__always)
  public static func forEach(_ count: Int, grain: Int = 1, _ body: (Int) -> Void) {
    forRanges(count, grain: grain) { range in
      for i in range { body(i) }
    }
  }
}
