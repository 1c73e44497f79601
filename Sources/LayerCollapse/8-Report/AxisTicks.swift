import Foundation

/// Tick values and labels for chart axes.
public enum AxisTicks {
  /// "Nice" ticks inside [lo, hi]: the multiples of the smallest step 1, 2 or 5 × 10ᵏ that
  /// gives at most `maxCount` ticks. Values are the closest doubles to the decimal
  /// numbers (0.3, not 0.30000000000000004). Equal bounds give one tick; non-finite
  /// bounds give none.
  public static func nice(from lo: Double, to hi: Double, maxCount: Int) -> [Double] {
    guard lo.isFinite && hi.isFinite else { return [] }
    let a: Double = min(lo, hi)
    let b: Double = max(lo, hi)
    if a == b { return [a] }
    if !(b - a).isFinite { return [a, b] }
    let limit: Int = max(2, maxCount)
    var e: Int = Int((log10((b - a) / Double(limit))).rounded(.down)) - 1
    while true {
      for m in [1, 2, 5] {
        let step: Double = decimal(m, e)
        let kLo: Double = (a / step - 1e-9).rounded(.up)
        let kHi: Double = (b / step + 1e-9).rounded(.down)
        if abs(kLo) > 1e15 || abs(kHi) > 1e15 { return [a, b] }
        if kHi - kLo + 1 <= Double(limit) {
          var ticks: [Double] = []
          var k: Int = Int(kLo)
          while k <= Int(kHi) {
            ticks.append(decimal(k * m, e))
            k += 1
          }
          return ticks
        }
      }
      e += 1
    }
  }

  /// Labels for evenly spaced ticks, all with the same number of decimals: the fewest that
  /// show every tick exactly ("0.0", "0.5", "1.0"). Whole numbers from a million on get
  /// thousands separators ("2,500,000"); beyond a billion, or below 0.0001, exponent
  /// notation ("2.5e6", "1e−5"). Negative numbers use a true minus sign.
  public static func labels(_ ticks: [Double]) -> [String] {
    let finite: [Double] = ticks.filter { (t: Double) -> Bool in t.isFinite }
    let biggest: Double = finite.map { (t: Double) -> Double in abs(t) }.max() ?? 0
    let whole: Bool = finite.allSatisfy { (t: Double) -> Bool in t == t.rounded() }
    if biggest >= 1e6 && biggest < 1e9 && whole {
      return ticks.map { (t: Double) -> String in t.isFinite ? NumberFormat.count(Int(t)) : "" }
    }
    if biggest >= 1e6 || (biggest > 0 && biggest < 1e-4) {
      return ticks.map { (t: Double) -> String in scientific(t) }
    }
    var decimals: Int = 0
    while decimals < 10 && !finite.allSatisfy({ (t: Double) -> Bool in isExact(t, decimals: decimals) }) {
      decimals += 1
    }
    return ticks.map { (t: Double) -> String in fixed(t, decimals: decimals) }
  }

  /// One tick label with the fewest decimals that show it exactly ("0.01", "10").
  public static func label(_ value: Double) -> String { labels([value])[0] }

  /// m × 10ᵉ as the double closest to that decimal number.
  static func decimal(_ m: Int, _ e: Int) -> Double {
    e >= 0 ? Double(m) * pow(10, Double(e)) : Double(m) / pow(10, Double(-e))
  }

  static func isExact(_ t: Double, decimals: Int) -> Bool {
    let scaled: Double = t * pow(10, Double(decimals))
    return abs(scaled - scaled.rounded()) <= 1e-6 * max(1, abs(scaled))
  }

  static func fixed(_ t: Double, decimals: Int) -> String {
    guard t.isFinite else { return "" }
    var s: String = String(format: "%.\(decimals)f", t)
    if s.hasPrefix("-") {
      s.removeFirst()
      if s.contains(where: { (c: Character) -> Bool in c != "0" && c != "." }) { s = "\u{2212}" + s }
    }
    return s
  }

  static func scientific(_ t: Double) -> String {
    guard t.isFinite else { return "" }
    if t == 0 { return "0" }
    let exponent: Int = Int(log10(abs(t)).rounded(.down))
    var mantissa: Double = t / pow(10, Double(exponent))
    mantissa = (mantissa * 1000).rounded() / 1000
    var decimals: Int = 0
    while decimals < 3 && !isExact(mantissa, decimals: decimals) { decimals += 1 }
    let m: String = fixed(mantissa, decimals: decimals)
    let ex: String = exponent < 0 ? "\u{2212}\(-exponent)" : "\(exponent)"
    return "\(m)e\(ex)"
  }

  /// Labels for log-axis ticks: each with its own fewest decimals ("0.01", "1", "100"), or,
  /// when some tick is below 0.001 or from 10⁵ on, powers of ten for every tick ("10⁻⁵").
  static func logLabels(_ ticks: [Double]) -> [String] {
    let wide: Bool = ticks.contains { (v: Double) -> Bool in v > 0 && (v < 1e-3 || v >= 1e5) }
    if !wide { return ticks.map { (v: Double) -> String in label(v) } }
    return ticks.map { (v: Double) -> String in
      let k: Double = log10(v).rounded()
      guard v > 0, abs(v - pow(10, k)) <= 1e-9 * v else { return scientific(v) }
      return "10" + superscript(Int(k))
    }
  }

  static func superscript(_ n: Int) -> String {
    let digits: [Character] = ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"]
    var s: String = n < 0 ? "⁻" : ""
    for ch in String(n.magnitude) { s.append(digits[Int(String(ch)) ?? 0]) }
    return s
  }

  /// Ticks for a log axis whose data spans 10^tLo ... 10^tHi: whole decades (every n-th
  /// decade when there are more than `maxCount`), with 2× and 5× ticks added when fewer
  /// than two decades fall inside.
  static func logTicks(tLo: Double, tHi: Double, maxCount: Int) -> [Double] {
    let kLo: Int = Int((tLo - 1e-9).rounded(.up))
    let kHi: Int = Int((tHi + 1e-9).rounded(.down))
    let decades: Int = kHi - kLo + 1
    if decades >= 2 {
      let stride: Int = (decades + max(2, maxCount) - 1) / max(2, maxCount)
      var ticks: [Double] = []
      var k: Int = kLo
      while k <= kHi {
        ticks.append(decimal(1, k))
        k += stride
      }
      return ticks
    }
    var ticks: [Double] = []
    for k in (kLo - 1)...(kHi + 1) {
      for m in [1, 2, 5] {
        let v: Double = decimal(m, k)
        let t: Double = log10(v)
        if t >= tLo - 1e-9 && t <= tHi + 1e-9 { ticks.append(v) }
      }
    }
    if ticks.count >= 2 && ticks.count <= max(2, maxCount) { return ticks }
    return nice(from: pow(10, tLo), to: pow(10, tHi), maxCount: maxCount).filter { (v: Double) -> Bool in v > 0 }
  }
}
