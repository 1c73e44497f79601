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
  /// For a band whose result is missing, the result key nearest its spelling.
  public var suggestion: String? = nil
  public var passed: Bool { value.map { band.contains($0) } ?? false }
}

/// Bands from a config-syntax file: `section:` then `name: [min, max]` per result.
public enum ExpectedBands {
  static let role = ConfigTree.FileRole(
    noun: "bands file", expected: "a file of `section:` then `name: [min, max]` lines",
    hint: "configs/expected.yaml is make reproduce's; results.csv (written by report) lists every result key")

  public static func load(_ path: String) throws -> [(key: String, band: ClosedRange<Double>, location: String)] {
    let tree = try ConfigTree.load(path: path, pipes: true, role: role)
    var out: [(String, ClosedRange<Double>, String)] = []
    var errors: [ErrorDetail] = []
    for key in tree.valuePaths {
      let location = tree.entry(key)?.location.description ?? path
      guard case .list(let items)? = tree.value(key), items.count == 2, let lo = number(items[0]),
        let hi = number(items[1]),
        lo <= hi
      else {
        errors.append(
          ErrorDetail(
            what: "bad band for \(key)", location: location, expected: "[min, max] with min ≤ max",
            got: tree.value(key)?.description ?? "nothing"))
        continue
      }
      out.append((key, lo...hi, location))
    }
    if !errors.isEmpty { throw LCError.badConfig(errors) }
    // A gate that checks nothing would pass whatever the runs did.
    guard !out.isEmpty else {
      throw LCError.badConfig([
        ErrorDetail(
          what: "the bands file holds no band", location: path, expected: "section: then name: [min, max] lines",
          hint: "results.csv (written by report) lists every result key, e.g. run.NAME.final_accuracy")
      ])
    }
    return out
  }

  static func number(_ v: ConfigValue) -> Double? {
    switch v {
    case .int(let i): Double(i)
    case .double(let d): d
    default: nil
    }
  }

  /// Every band (as `load` read them) against the results; a band whose result is
  /// missing fails.
  public static func check(
    _ results: [ResultValue], bands: [(key: String, band: ClosedRange<Double>, location: String)]
  ) -> [CheckOutcome] {
    let values = Dictionary(results.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    return bands.map {
      let value = values[$0.key]
      return CheckOutcome(
        key: $0.key, band: $0.band, value: value, location: $0.location,
        suggestion: value == nil ? DidYouMean.suggestion(for: $0.key, among: results.map(\.key)) : nil)
    }
  }
}
