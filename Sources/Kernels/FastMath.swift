// Vectorized math for the element-wise kernels: plain SIMD8<Float> multiplies and adds
// (no FMA: on the default x86-64 target `addProduct` becomes calls to `fmaf`).

typealias Float8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Float8 {
  UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
  UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// The eight lanes added in a fixed order (so the same lanes always give the same bits).
@inline(__always)
func sum8(_ v: Float8) -> Float {
  let a = v.lowHalf + v.highHalf
  let b = a.lowHalf + a.highHalf
  return b[0] + b[1]
}

/// Σ of `count` values at p in eight lanes, then the lanes in `sum8`'s order: a fixed
/// order, so the same bits at any thread count.
@inline(__always)
func laneSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
  var lanes = Float8()
  @inline(__always) func add(_ i: Int, _ width: Int) { lanes += load8(p + i, width) }
  vectorLoop(0, count, add)
  return sum8(lanes)
}

@inline(__always)
func max8(_ v: Float8) -> Float {
  var m = v[0]
  for i in 1..<8 { m = Swift.max(m, v[i]) }
  return m
}

/// a·b + c, fused into one rounding where the kernels are compiled for a CPU with FMA
/// (Package.swift defines `LC_FMA` with `-target-cpu haswell`; every arm64 CPU has it).
/// Elsewhere the two operations: `addingProduct` without the instruction becomes a call
/// to `fmaf` per lane, about 100× slower. The last bits of results differ between the two.
@inline(__always)
func muladd(_ a: Float8, _ b: Float8, _ c: Float8) -> Float8 {
  #if LC_FMA || arch(arm64)
    return c.addingProduct(a, b)
  #else
    return a * b + c
  #endif
}

@inline(__always)
func muladd(_ a: Float8, _ b: Float, _ c: Float8) -> Float8 { muladd(a, Float8(repeating: b), c) }

@inline(__always)
func muladd(_ a: Float8, _ b: Float8, _ c: Float) -> Float8 { muladd(a, b, Float8(repeating: c)) }

public enum FastMath {
  /// e^x in eight lanes: Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, Cephes's degree-6
  /// polynomial for e^r (`muladd`: fused, 1.7× faster than separate operations, which the
  /// compiler does not fuse by itself), and 2^n put into the exponent bits. Within 2 ulp of `expf` for
  /// finite results; x < −87.3 (including −∞) gives exactly 0, x > 88.7 gives 3.3e38.
  /// `@_transparent`: `@inline(__always)` left it a call inside the softmax rows (perf);
  /// inlined there, softmax runs 1.4× faster. (GELU's `sigmoid2u` stays a hint: forced
  /// inline, GELU ran 2× slower.)
  @_transparent
  static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let underflow = x .< -87.3
    let xc = x.replacing(with: -87.3, where: underflow).replacing(with: 88.7, where: x .> 88.7)
    let magic = Float8(repeating: 12_582_912)  // 1.5·2^23: adding it rounds to an integer
    let t = muladd(xc, 1.442_695_04, magic)
    let n = t - magic
    let r = muladd(n, 2.121_944_4e-4, muladd(n, -0.693_359_375, xc))
    var p = Float8(repeating: 1.987_569_15e-4)
    p = muladd(p, r, 1.398_199_95e-3)
    p = muladd(p, r, 8.333_451_9e-3)
    p = muladd(p, r, 4.166_579_59e-2)
    p = muladd(p, r, 1.666_666_55e-1)
    p = muladd(p, r, 5.000_000_12e-1)
    let e = muladd(p, r * r, r + 1)
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let scaled = unsafeBitCast(unsafeBitCast(e, to: SIMD8<Int32>.self) &+ (ni &<< 23), to: Float8.self)
    return scaled.replacing(with: 0, where: underflow)
  }

  /// `exp` of one value (the same arithmetic as one lane).
  @inline(__always)
  public static func exp(_ x: Float) -> Float { exp(Float8(repeating: x))[0] }

  /// out[i] = exp(x[i]) for n values (tests and element-wise kernels).
  public static func exp(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n {
      store8(exp(load8(x + i)), out + i)
      i += 8
    }
    while i < n {
      out[i] = exp(x[i])
      i += 1
    }
  }
}

/// Calls `body(i, lanes)` for i = start, start + 8, ... < end: first every whole vector
/// with `lanes` the constant 8, then the shorter last one, if any. Inlined, the whole
/// vectors' `load8(p, lanes)` and `store8(v, p, lanes)` become single vector moves; with a
/// variable `lanes` the compiler merged both paths and split divisions into scalars
/// (GELU forward ran 2.3× slower, PReLU forward 6×). Pass the body as a local
/// `@inline(__always) func`, not a closure literal, which the compiler calls out of line
/// (see `Elementwise`); a body too large to inline even so (one with an `exp`) is written
/// out as its own loop (`Softmax.row`).
@inline(__always)
func vectorLoop(_ start: Int, _ end: Int, _ body: (_ i: Int, _ lanes: Int) -> Void) {
  var i = start
  while i + 8 <= end {
    body(i, 8)
    i += 8
  }
  if i < end { body(i, end - i) }
}

/// The first `lanes` (1...8) values at p, the rest zero.
@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ lanes: Int) -> Float8 {
  if lanes == 8 { return load8(p) }
  var v = Float8(repeating: 0)
  for l in 0..<lanes { v[l] = p[l] }
  return v
}

/// Stores the first `lanes` (1...8) values of v at p.
@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
  if lanes == 8 { return store8(v, p) }
  for l in 0..<lanes { p[l] = v[l] }
}
