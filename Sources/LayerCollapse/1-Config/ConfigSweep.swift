/// One concrete config of a sweep.
public struct SweepPoint: Sendable, Equatable {
  /// Short and unique within the sweep, e.g. `lc.lambda=0.1` or `lc.lambda=0.1,model.layers=4`;
  /// "" when the tree has no sweep.
  public let name: String
  /// The swept keys and the values this point gives them, in sweep order.
  public let settings: [AppliedOverride]
  /// The config with those values set and the `sweep:` section removed.
  public let tree: ConfigTree

  /// The config this point trains: `tree` with each named point in a directory of its own
  /// below `output.dir` (`runs/sweep/lc.lambda=0.1`), as `train` runs it and `validate`
  /// shows it.
  public func runTree() throws -> ConfigTree {
    guard !name.isEmpty else { return tree }
    var out = tree
    var base = "runs/sweep"
    switch tree.value("output.dir") {
    case .string(let s)?: base = s
    case let other?: base = "\(other)"
    case nil: break
    }
    let dir = base + "/" + name
    try out.set("output.dir", to: .string(dir), at: ConfigLocation(file: "sweep point \(name)"))
    return out
  }
}

extension ConfigTree {
  /// The most runs one sweep may expand to.
  public static let maxSweepPoints: Int = 10_000

  /// Expands the top-level `sweep:` section, whose keys are dotted keys of this tree (or
  /// among `settingKeys`, the keys a config may set that this one leaves at their
  /// defaults) and whose values are flow lists, into the cartesian product of concrete
  /// trees. The first sweep key varies slowest. A tree without a sweep gives one point named "".
  ///
  /// Throws `.badConfig` listing every sweep key that names no such value (with a
  /// did-you-mean), every value that is not a non-empty list without repeats, and a `sweep`
  /// that is not a section.
  public func expandSweep(settingKeys: [String] = []) throws -> [SweepPoint] {
    guard let sweepEntry = entries.first(where: { $0.key == "sweep" }) else {
      return [SweepPoint(name: "", settings: [], tree: self)]
    }
    guard case .section(let sweep) = sweepEntry.content else {
      throw LCError.badConfig([
        ErrorDetail(
          what: "`sweep` must be a section", location: sweepEntry.location.description,
          expected: "indented `dotted.key: [value, ...]` lines below `sweep:`")
      ])
    }
    let base: ConfigTree = removing("sweep")
    let known: [String] = base.valuePaths + settingKeys.filter { base.value($0) == nil }
    var axes: [(key: String, values: [ConfigValue], location: ConfigLocation)] = []
    var errors: [ErrorDetail] = []
    for e in sweep.entries {
      let location: String = e.location.description
      guard case .value(let v) = e.content, case .list(let values) = v else {
        // `sweep: lc: lambda: [...]` nests the key; a sweep names it in one dotted line.
        var example = "\(e.key): [0, 0.1, 1]"
        if case .section(let sub) = e.content, let first = sub.valuePaths.first {
          example = "\(e.key).\(first): [...] (dotted, one line, directly under sweep:)"
        }
        errors.append(
          ErrorDetail(
            what: "sweep key `\(e.key)` needs a list of values", location: location,
            expected: "a flow list, e.g. `\(example)`"))
        continue
      }
      if !known.contains(e.key) {
        let what: String =
          base.section(e.key) != nil
          ? "sweep key `\(e.key)` names a section, not a value" : "sweep key `\(e.key)` is not a key of the config"
        let hint: String = DidYouMean.suggestion(for: e.key, among: known).map { "Did you mean `\($0)`?" } ?? ""
        errors.append(
          ErrorDetail(
            what: what, location: location,
            expected: settingKeys.isEmpty ? "a key set in the config file" : "a setting's key", hint: hint))
        continue
      }
      // Each point already gets a directory of its own below output.dir.
      if e.key == "output.dir" {
        errors.append(
          ErrorDetail(
            what: "sweep key `output.dir` is not swept", location: location,
            expected: "a training setting",
            hint: "Each point runs in output.dir/<point>, e.g. runs/sweep/lc.lambda=0.1: set output.dir once"))
        continue
      }
      if values.isEmpty {
        errors.append(
          ErrorDetail(what: "sweep key `\(e.key)` has no values", location: location, expected: "a non-empty list"))
        continue
      }
      // 1 and 1.0 are one value, as 0.1 and 1e-1 are.
      var seen: Set<String> = []
      for value in values where !seen.insert(Self.identity(value)).inserted {
        errors.append(
          ErrorDetail(
            what: "sweep key `\(e.key)` repeats the value `\(value)`", location: location,
            expected: "distinct values"))
      }
      axes.append((e.key, values, e.location))
    }
    if !errors.isEmpty { throw LCError.badConfig(errors) }
    // Counted before any tree is built: a typo'd list of thousands of values per key must
    // not spend minutes and gigabytes expanding runs no one meant.
    var count: Int = 1
    for axis in axes {
      let (product, overflow) = count.multipliedReportingOverflow(by: axis.values.count)
      count = overflow ? Int.max : product
    }
    if count > Self.maxSweepPoints {
      let sizes: String = axes.map { "\($0.values.count)" }.joined(separator: " × ")
      throw LCError.badConfig([
        ErrorDetail(
          what: "the sweep has too many points", location: sweepEntry.location.description,
          expected: "at most \(Self.maxSweepPoints) runs", got: count == Int.max ? sizes : "\(count) (\(sizes))",
          hint: "Each point is a training run: sweep fewer values, or split the sweep into several configs")
      ])
    }

    var points: [SweepPoint] = [SweepPoint(name: "", settings: [], tree: base)]
    for axis in axes {
      var next: [SweepPoint] = []
      for point in points {
        for value in axis.values {
          var tree: ConfigTree = point.tree
          let previous: ConfigValue? = try tree.set(axis.key, to: value, at: axis.location)
          let setting: AppliedOverride = AppliedOverride(key: axis.key, value: value, previous: previous)
          // A path's "/" would nest the point's directory (data.root=/data/x): spelled %2F.
          let part: String =
            "\(axis.key)="
            + "\(value)".replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
          let name: String = point.name.isEmpty ? part : point.name + "," + part
          next.append(SweepPoint(name: name, settings: point.settings + [setting], tree: tree))
        }
      }
      points = next
    }
    return points
  }

  /// Refuses (78) a command-line override of a key the sweep varies: every point would
  /// replace it, so it would change nothing, silently.
  public static func checkNotSwept(_ overrides: [AppliedOverride], points: [SweepPoint]) throws {
    let swept = Set(points.flatMap { $0.settings.map(\.key) })
    let ignored = overrides.filter { swept.contains($0.key) }
    guard !ignored.isEmpty else { return }
    throw LCError.badConfig(
      ignored.map {
        ErrorDetail(
          what: "override `\($0.key)=\($0.value)` sets a key the sweep varies: every point replaces it",
          location: "\($0.key)=\($0.value)", expected: "a key the sweep leaves alone",
          hint: "Give the values to the sweep instead: sweep.\($0.key)=[\($0.value)]")
      })
  }

  /// What makes two sweep values the same: numbers by value, the rest by their text.
  static func identity(_ value: ConfigValue) -> String {
    switch value {
    case .int(let i): "number \(Double(i))"
    case .double(let d): "number \(d)"
    default: value.description
    }
  }
}
