import Foundation

/// A result that `make reproduce` holds to a band.
public struct ResultValue: Sendable, Equatable {
  /// `experiment.name`, e.g. `sst2.collapse_cost`.
  public var key: String
  public var value: Double
  public var description: String
  /// For a comparison, the value that means no effect (0 for a difference, 1 for a ratio):
  /// across seeds, its mean is tested against it. nil for a plain measurement.
  public var noEffect: Double? = nil
}

/// One band from an expected-results file and how the result fared.
public struct CheckOutcome: Sendable, Equatable {
  public var key: String
  public var band: ClosedRange<Double>
  public var value: Double?
  public var location: String
  public var passed: Bool { value.map { band.contains($0) } ?? false }
}

/// Bands from a config-syntax file: `section:` then `name: [min, max]` per result.
public enum ExpectedBands {
  public static func load(_ path: String) throws -> [(key: String, band: ClosedRange<Double>, location: String)] {
    let tree = try ConfigTree.load(path: path)
    var out: [(String, ClosedRange<Double>, String)] = []
    var errors: [ErrorDetail] = []
    for key in tree.valuePaths {
      let location = tree.entry(key)?.location.description ?? path
      guard case .list(let items)? = tree.value(key), items.count == 2, let lo = number(items[0]),
        let hi = number(items[1]),
        lo <= hi
      else {
        errors.append(
          ErrorDetail(what: "bad band for \(key)", location: location, expected: "[min, max] with min ≤ max"))
        continue
      }
      out.append((key, lo...hi, location))
    }
    if !errors.isEmpty { throw LCError.badConfig(errors) }
    return out
  }

  static func number(_ v: ConfigValue) -> Double? {
    switch v {
    case .int(let i): Double(i)
    case .double(let d): d
    default: nil
    }
  }

  /// Every band against the results; a band whose result is missing fails.
  public static func check(_ results: [ResultValue], bandsFile path: String) throws -> [CheckOutcome] {
    let values = Dictionary(results.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    return try load(path).map { CheckOutcome(key: $0.key, band: $0.band, value: values[$0.key], location: $0.location) }
  }
}
