/// SplitMix64: a small, fast, seedable generator (Steele, Lea and Flood 2014).
///
/// Every random stream in a run is `RNG(seed:stream:)`: one config seed plus a
/// stream name ("init", "dropout", "shuffle", ...), so adding a new consumer of
/// randomness never shifts the numbers another consumer sees.
public struct RNG: Sendable, Equatable {
  /// The whole generator state; saving and restoring it resumes the stream exactly.
  public var state: UInt64

  public init(state: UInt64) { self.state = state }

  /// The stream `stream` of the run seeded with `seed`.
  public init(seed: UInt64, stream: String) {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the stream name
    for byte in stream.utf8 {
      h ^= UInt64(byte)
      h = h &* 0x0000_0100_0000_01b3
    }
    var mixer = RNG(state: seed ^ h)
    self.state = mixer.next() ^ RNG.mix(h)
  }

  /// A child stream, e.g. one per epoch or per block.
  public func derived(_ name: String) -> RNG { RNG(seed: state, stream: name) }

  static func mix(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  public mutating func next() -> UInt64 {
    state = state &+ 0x9e37_79b9_7f4a_7c15
    return RNG.mix(state)
  }

  /// Uniform in [0, 1) with 24 random bits.
  public mutating func uniform() -> Float {
    Float(next() >> 40) * (1.0 / 16_777_216.0)
  }

  /// Uniform in [0, 1) with 53 random bits.
  public mutating func uniformDouble() -> Double {
    Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
  }

  /// Uniform integer in 0..<bound (Lemire's multiply-shift with rejection, unbiased).
  public mutating func int(below bound: Int) -> Int {
    precondition(bound > 0, "int(below:) needs a positive bound, got \(bound)")
    let b = UInt64(bound)
    var product = next().multipliedFullWidth(by: b)
    if product.low < b {
      let threshold = (0 &- b) % b
      while product.low < threshold { product = next().multipliedFullWidth(by: b) }
    }
    return Int(product.high)
  }

  /// Standard normal sample (Box–Muller, one value per call).
  public mutating func normal() -> Float {
    let u1 = 1.0 - uniformDouble()  // (0, 1]: log stays finite
    let u2 = uniformDouble()
    let r = (-2.0 * _log(u1)).squareRoot()
    return Float(r * _cos(2.0 * Double.pi * u2))
  }

  /// Fills `t` with N(mean, std²) samples.
  public mutating func fillNormal(_ t: Tensor, mean: Float = 0, std: Float = 1) {
    for i in 0..<t.count { t.data[i] = mean + std * normal() }
  }

  /// Fills `t` with U(low, high) samples.
  public mutating func fillUniform(_ t: Tensor, low: Float, high: Float) {
    for i in 0..<t.count { t.data[i] = low + (high - low) * uniform() }
  }

  /// Fisher–Yates shuffle of `values` in place.
  public mutating func shuffle<T>(_ values: inout [T]) {
    guard values.count > 1 else { return }
    for i in stride(from: values.count - 1, to: 0, by: -1) {
      values.swapAt(i, int(below: i + 1))
    }
  }
}
