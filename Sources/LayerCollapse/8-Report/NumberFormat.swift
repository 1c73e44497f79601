import Foundation

/// Number formatting for report tables. Missing (nil) and non-finite values print as "—";
/// negative numbers use a true minus sign (U+2212); a value that rounds to zero never
/// prints as "−0.0". These strings are for reading: CSV files should hold `plain` values.
public enum NumberFormat {
  public static let missing: String = "—"
  public static let minus: String = "\u{2212}"

  /// Fixed decimals: `fixed(3.14159, decimals: 2)` is "3.14".
  public static func fixed(_ value: Double?, decimals: Int) -> String {
    guard let v: Double = value, v.isFinite else { return missing }
    let digits: String = String(format: "%.\(max(0, decimals))f", abs(v))
    return isZero(digits) || v >= 0 ? digits : minus + digits
  }

  /// A fraction as a percentage: `percent(0.8421)` is "84.2 %".
  public static func percent(_ fraction: Double?, decimals: Int = 1) -> String {
    guard let f: Double = fraction, f.isFinite else { return missing }
    return fixed(f * 100, decimals: decimals) + " %"
  }

  /// A value with its uncertainty: `plusMinus(84.21, 1.234)` is "84.2 ± 1.2"; without an
  /// uncertainty just the value.
  public static func plusMinus(_ value: Double?, _ error: Double?, decimals: Int = 1) -> String {
    guard let v: Double = value, v.isFinite else { return missing }
    guard let e: Double = error, e.isFinite else { return fixed(v, decimals: decimals) }
    return fixed(v, decimals: decimals) + " ± " + fixed(abs(e), decimals: decimals)
  }

  /// A count with thousands separators: `count(1234567)` is "1,234,567".
  public static func count(_ value: Int?) -> String {
    guard let n: Int = value else { return missing }
    let digits: [Character] = Array(String(n.magnitude))
    var out: String = ""
    for (i, ch) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
      out.append(ch)
    }
    return n < 0 ? minus + out : out
  }

  /// A signed change: `delta(-15, unit: " %")` is "−15.0 %", `delta(2.5)` is "+2.5";
  /// a change that rounds to zero has no sign ("0.0").
  public static func delta(_ value: Double?, decimals: Int = 1, unit: String = "") -> String {
    guard let v: Double = value, v.isFinite else { return missing }
    let digits: String = String(format: "%.\(max(0, decimals))f", abs(v))
    if isZero(digits) { return digits + unit }
    return (v < 0 ? minus : "+") + digits + unit
  }

  /// A relative change as a signed percentage: `percentDelta(-0.15)` is "−15.0 %".
  public static func percentDelta(_ fraction: Double?, decimals: Int = 1) -> String {
    guard let f: Double = fraction, f.isFinite else { return missing }
    return delta(f * 100, decimals: decimals, unit: " %")
  }

  /// The shortest text that reads back as the same Double ("0.1", "1e-05", "nan" → ""),
  /// with ASCII signs, for CSV files and other machine-read output.
  public static func plain(_ value: Double?) -> String {
    guard let v: Double = value, v.isFinite else { return "" }
    if v == v.rounded() && abs(v) < 1e15 { return String(Int(v)) }
    return "\(v)"
  }

  static func isZero(_ digits: String) -> Bool {
    digits.allSatisfy { (c: Character) -> Bool in c == "0" || c == "." }
  }
}
