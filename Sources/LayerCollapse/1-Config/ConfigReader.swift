/// Reads typed settings out of a config tree, collecting every problem instead of stopping
/// at the first.
///
/// Ask for each key once with its type, default and allowed values; each getter returns the
/// value, the default, or (after recording an error) a placeholder. Then call `finish()`,
/// which also reports every key in the tree that nobody asked for, with a did-you-mean,
/// and throws `.badConfig` with all problems. Use the values only after `finish()` returns.
///
/// Expand a `sweep:` section (`expandSweep()`) before reading: its keys are not settings.
public final class ConfigReader {
  public let tree: ConfigTree
  /// Problems recorded so far, in the order found.
  public private(set) var errors: [ErrorDetail] = []
  /// The tree with every default that was used filled in: write it into a run directory
  /// to record the complete configuration of the run.
  public private(set) var resolved: ConfigTree
  private var asked: [String] = []
  private var askedSet: Set<String> = []
  /// Values already reported (e.g. a value where a section was expected).
  private var reported: Set<String> = []

  public init(_ tree: ConfigTree) {
    self.tree = tree
    self.resolved = tree
  }

  /// An integer. A number with no fractional part (`1e4`) is accepted.
  public func int(_ key: String, default defaultValue: Int? = nil, range: ClosedRange<Int>? = nil) -> Int {
    read(
      key, defaultValue, expected: "an integer", placeholder: 0, wrap: { ConfigValue.int($0) },
      convert: ConfigReader.asInt,
      check: { v in
        guard let r = range, !r.contains(v) else { return nil }
        return Rejection(expected: ConfigReader.describe(r))
      })
  }

  /// A number; integers are accepted.
  public func double(
    _ key: String, default defaultValue: Double? = nil, range: ClosedRange<Double>? = nil
  ) -> Double {
    read(
      key, defaultValue, expected: "a number", placeholder: 0, wrap: { ConfigValue.double($0) },
      convert: ConfigReader.asDouble,
      check: { v in
        guard let r = range, !r.contains(v) else { return nil }
        return Rejection(expected: ConfigReader.describe(r))
      })
  }

  /// `true` or `false`.
  public func bool(_ key: String, default defaultValue: Bool? = nil) -> Bool {
    read(
      key, defaultValue, expected: "true or false", placeholder: false, wrap: { ConfigValue.bool($0) },
      convert: { v in if case .bool(let b) = v { return b } else { return nil } }, check: { _ -> Rejection? in nil })
  }

  /// A string, optionally one of `oneOf`.
  public func string(_ key: String, default defaultValue: String? = nil, oneOf allowed: [String]? = nil) -> String {
    read(
      key, defaultValue, expected: "a string", placeholder: "", wrap: { ConfigValue.string($0) },
      convert: ConfigReader.asString,
      check: { v in
        guard let a = allowed, !a.contains(v) else { return nil }
        return Rejection(expected: ConfigReader.describe(oneOf: a), options: a)
      })
  }

  /// A flow list of numbers, each optionally within `range`.
  public func doubles(
    _ key: String, default defaultValue: [Double]? = nil, range: ClosedRange<Double>? = nil
  ) -> [Double] {
    read(
      key, defaultValue, expected: "a list of numbers", placeholder: [],
      wrap: { ConfigValue.list($0.map { ConfigValue.double($0) }) },
      convert: { v in ConfigReader.asList(v, ConfigReader.asDouble) },
      check: { vs in
        guard let r = range, vs.contains(where: { !r.contains($0) }) else { return nil }
        return Rejection(expected: "every element " + ConfigReader.describe(r))
      })
  }

  /// A flow list of integers, each optionally within `range`.
  public func ints(_ key: String, default defaultValue: [Int]? = nil, range: ClosedRange<Int>? = nil) -> [Int] {
    read(
      key, defaultValue, expected: "a list of integers", placeholder: [],
      wrap: { ConfigValue.list($0.map { ConfigValue.int($0) }) },
      convert: { v in ConfigReader.asList(v, ConfigReader.asInt) },
      check: { vs in
        guard let r = range, vs.contains(where: { !r.contains($0) }) else { return nil }
        return Rejection(expected: "every element " + ConfigReader.describe(r))
      })
  }

  /// A flow list of strings, each optionally one of `oneOf`.
  public func strings(
    _ key: String, default defaultValue: [String]? = nil, oneOf allowed: [String]? = nil
  ) -> [String] {
    read(
      key, defaultValue, expected: "a list of strings", placeholder: [],
      wrap: { ConfigValue.list($0.map { ConfigValue.string($0) }) },
      convert: { v in ConfigReader.asList(v, ConfigReader.asString) },
      check: { vs in
        guard let a = allowed, vs.contains(where: { !a.contains($0) }) else { return nil }
        return Rejection(expected: "every element " + ConfigReader.describe(oneOf: a))
      })
  }

  /// A flow list whose elements are whole numbers or bare words (`[64, M, 128, M]`), each
  /// as its text.
  public func words(_ key: String, default defaultValue: [String]? = nil) -> [String] {
    read(
      key, defaultValue, expected: "a list of numbers and words", placeholder: [],
      wrap: { ConfigValue.list($0.map { Int($0).map(ConfigValue.int) ?? ConfigValue.string($0) }) },
      convert: { v in
        ConfigReader.asList(v) { item in ConfigReader.asString(item) ?? ConfigReader.asInt(item).map { "\($0)" } }
      },
      check: { _ in nil })
  }

  /// True when the tree sets `key` (to a value). Does not count as asking for it.
  public func contains(_ key: String) -> Bool { tree.value(key) != nil }

  /// `file:line` of the key, or of the closest enclosing section that exists, or the file.
  public func location(of key: String) -> String {
    var path: String = key
    while true {
      if let e = tree.entry(path) { return e.location.description }
      guard let dot = path.lastIndex(of: ".") else { break }
      path = String(path[..<dot])
    }
    return tree.source
  }

  /// Records a problem found by the caller (e.g. a cross-field check) at `key`'s location.
  public func addError(at key: String, _ what: String, expected: String = "", got: String = "", hint: String = "") {
    errors.append(ErrorDetail(what: what, location: location(of: key), expected: expected, got: got, hint: hint))
  }

  /// Records `what` at `key` unless `condition` holds.
  public func require(
    _ condition: Bool, at key: String, _ what: @autoclosure () -> String, expected: String = "", got: String = ""
  ) {
    if !condition { addError(at: key, what(), expected: expected, got: got) }
  }

  /// Reports the keys nobody asked for, then throws `.badConfig` with every problem
  /// recorded, if any.
  public func finish() throws {
    var all: [ErrorDetail] = errors
    for path in tree.valuePaths where !askedSet.contains(path) && !reported.contains(path) {
      all.append(unknownKey(path))
    }
    if !all.isEmpty { throw LCError.badConfig(all) }
  }

  private func unknownKey(_ path: String) -> ErrorDetail {
    let location: String = location(of: path)
    var prefix: String = ""
    var leaf: String = path
    if let dot = path.lastIndex(of: ".") {
      prefix = String(path[..<dot])
      leaf = String(path[path.index(after: dot)...])
    }
    let siblings: [String] = asked.compactMap { k -> String? in
      if prefix.isEmpty { return k.contains(".") ? nil : k }
      guard k.hasPrefix(prefix + "."), !k.dropFirst(prefix.count + 1).contains(".") else { return nil }
      return String(k.dropFirst(prefix.count + 1))
    }
    var guess: String? = DidYouMean.suggestion(for: leaf, among: siblings).map {
      prefix.isEmpty ? $0 : prefix + "." + $0
    }
    if guess == nil {
      // Elsewhere: the same key in another section, else a close spelling of the whole path.
      let elsewhere: [String] = asked.filter { k in
        guard let dot = k.lastIndex(of: ".") else { return !prefix.isEmpty }
        return String(k[..<dot]) != prefix
      }
      guess = elsewhere.first { $0.hasSuffix("." + leaf) || $0 == leaf }
      if guess == nil { guess = DidYouMean.suggestion(for: path, among: elsewhere) }
    }
    if let g = guess {
      return ErrorDetail(what: "unknown key `\(path)`; did you mean `\(g)`?", location: location)
    }
    let scope: String = prefix.isEmpty ? "at the top level" : "in `\(prefix)`"
    let expected: String =
      !siblings.isEmpty && siblings.count <= 12
      ? "one of the keys known \(scope): " + siblings.map { "`\($0)`" }.joined(separator: ", ") : ""
    return ErrorDetail(what: "unknown key `\(path)`", location: location, expected: expected)
  }

  // MARK: - The one reading routine

  /// Looks `key` up, converts and checks it, records any problem and returns a usable value.
  /// `check` describes the allowed values when the value is not allowed.
  private func read<T>(
    _ key: String, _ defaultValue: T?, expected: String, placeholder: T, wrap: (T) -> ConfigValue,
    convert: (ConfigValue) -> T?, check: (T) -> Rejection?
  ) -> T {
    if !askedSet.contains(key) {
      asked.append(key)
      askedSet.insert(key)
    }
    guard let entry = tree.entry(key) else {
      if let blocker = valuePrefix(of: key) {
        // Said once per blocking value (`lc=1` blocks every lc.* key the settings read).
        if reported.insert(blocker).inserted {
          addError(
            at: blocker, "`\(blocker)` is a value, but `\(key)` needs it to be a section",
            expected: "`\(blocker):` followed by indented keys")
        }
        return defaultValue ?? placeholder
      }
      if let d = defaultValue {
        _ = try? resolved.set(key, to: wrap(d), at: ConfigLocation(file: "default"))
        return d
      }
      addError(at: key, "missing key `\(key)`", expected: expected)
      return placeholder
    }
    guard case .value(let raw) = entry.content else {
      for p in tree.section(key)?.valuePaths ?? [] { reported.insert(key + "." + p) }
      addError(at: key, "`\(key)` is a section", expected: expected)
      return defaultValue ?? placeholder
    }
    guard let v = convert(raw) else {
      addError(at: key, "wrong type for `\(key)`", expected: expected, got: "`\(raw)` (\(raw.typeName))")
      return defaultValue ?? placeholder
    }
    if let rejection = check(v) {
      var hint: String = ""
      if case .string(let s) = raw {
        hint = DidYouMean.suggestion(for: s, among: rejection.options).map { "Did you mean `\($0)`?" } ?? ""
      }
      addError(at: key, "value of `\(key)` not allowed", expected: rejection.expected, got: "`\(raw)`", hint: hint)
      return defaultValue ?? placeholder
    }
    return v
  }

  /// The first proper prefix of `key` that holds a value, e.g. `model` for `model.layers`.
  private func valuePrefix(of key: String) -> String? {
    var path: String = ""
    for part in key.split(separator: ".").dropLast() {
      path = path.isEmpty ? String(part) : path + "." + part
      if tree.value(path) != nil { return path }
    }
    return nil
  }

  /// Why a value of the right type is not allowed.
  private struct Rejection {
    var expected: String
    /// The allowed strings, for a did-you-mean.
    var options: [String] = []
  }

  // MARK: - Conversions and descriptions

  private static func asInt(_ v: ConfigValue) -> Int? {
    switch v {
    case .int(let i): return i
    case .double(let d):
      guard d == d.rounded(), abs(d) < 9.2e18 else { return nil }
      return Int(d)
    default: return nil
    }
  }

  private static func asDouble(_ v: ConfigValue) -> Double? {
    switch v {
    case .int(let i): return Double(i)
    case .double(let d): return d
    default: return nil
    }
  }

  private static func asString(_ v: ConfigValue) -> String? {
    if case .string(let s) = v { return s }
    return nil
  }

  private static func asList<T>(_ v: ConfigValue, _ element: (ConfigValue) -> T?) -> [T]? {
    guard case .list(let items) = v else { return nil }
    var out: [T] = []
    for item in items {
      guard let x = element(item) else { return nil }
      out.append(x)
    }
    return out
  }

  private static func describe(_ r: ClosedRange<Int>) -> String {
    if r.upperBound == Int.max { return "at least \(r.lowerBound)" }
    if r.lowerBound == Int.min { return "at most \(r.upperBound)" }
    return "in \(r.lowerBound)...\(r.upperBound)"
  }

  private static func describe(_ r: ClosedRange<Double>) -> String {
    if r.upperBound == .infinity || r.upperBound == .greatestFiniteMagnitude { return "at least \(r.lowerBound)" }
    if r.lowerBound == -.infinity || r.lowerBound == -.greatestFiniteMagnitude { return "at most \(r.upperBound)" }
    return "in \(r.lowerBound)...\(r.upperBound)"
  }

  private static func describe(oneOf options: [String]) -> String {
    "one of " + options.map { "`\($0)`" }.joined(separator: ", ")
  }
}
