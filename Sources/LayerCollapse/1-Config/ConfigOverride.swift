/// A `key=value` setting from the command line, applied after the config file.
public struct ConfigOverride: Sendable, Equatable {
  /// A dotted key, e.g. `lc.lambda`.
  public let key: String
  public let value: ConfigValue
  /// The argument as given, e.g. `lc.lambda=0.1`.
  public let text: String

  public init(key: String, value: ConfigValue, text: String) {
    self.key = key
    self.value = value
    self.text = text
  }

  /// Where values set by this override are said to come from: "override `lc.lambda=0.1`".
  public var location: ConfigLocation { ConfigLocation(file: "override `\(text)`") }

  /// Parses `key=value`; the value is a scalar or a flow list, as in a config file.
  public static func parse(_ text: String) throws -> ConfigOverride {
    try parse([text])[0]
  }

  /// Parses every argument, then throws `.badConfig` listing all malformed ones.
  public static func parse(_ texts: [String]) throws -> [ConfigOverride] {
    var out: [ConfigOverride] = []
    var errors: [ErrorDetail] = []
    for text in texts {
      let location: String = "override `\(text)`"
      guard let eq = text.firstIndex(of: "=") else {
        errors.append(
          ErrorDetail(what: "not a `key=value` override", location: location, expected: "e.g. `lc.lambda=0.1`"))
        continue
      }
      let key: String = trimBlanks(String(text[..<eq]))
      if let problem = ConfigTree.keyProblem(key) {
        errors.append(problem.detail(at: ConfigLocation(file: location)))
        continue
      }
      do {
        let value: ConfigValue = try ConfigValue.parse(String(text[text.index(after: eq)...]))
        out.append(ConfigOverride(key: key, value: value, text: text))
      } catch {
        errors.append(error.detail(at: ConfigLocation(file: location)))
      }
    }
    if !errors.isEmpty { throw LCError.badConfig(errors) }
    return out
  }
}

/// An override as applied: the value it replaced, for the CLI to echo.
public struct AppliedOverride: Sendable, Equatable, CustomStringConvertible {
  public let key: String
  public let value: ConfigValue
  /// The value before the override; nil when the key was not set.
  public let previous: ConfigValue?

  public init(key: String, value: ConfigValue, previous: ConfigValue?) {
    self.key = key
    self.value = value
    self.previous = previous
  }

  /// `lc.lambda = 0.1 (was 0.01)` or `lc.lambda = 0.1 (not set before)`.
  public var description: String {
    let was: String = previous.map { "was \($0.description)" } ?? "not set before"
    return "\(key) = \(value.description) (\(was))"
  }
}

extension ConfigTree {
  /// Applies overrides in order and returns what each changed. Keys that are not in the
  /// tree are added (the schema check happens in `ConfigReader`, which reports unknown keys
  /// with a did-you-mean). Throws `.badConfig` listing every override that conflicts with
  /// the tree's structure (a value where a section is, or the reverse).
  public mutating func apply(_ overrides: [ConfigOverride]) throws -> [AppliedOverride] {
    var applied: [AppliedOverride] = []
    var errors: [ErrorDetail] = []
    for o in overrides {
      do {
        let previous: ConfigValue? = try set(o.key, to: o.value, at: o.location)
        applied.append(AppliedOverride(key: o.key, value: o.value, previous: previous))
      } catch let e as LCError {
        errors += e.details
      }
    }
    if !errors.isEmpty { throw LCError.badConfig(errors) }
    return applied
  }
}

private func trimBlanks(_ text: String) -> String {
  var s: Substring = Substring(text)
  while let f = s.first, isBlank(f) { s = s.dropFirst() }
  while let l = s.last, isBlank(l) { s = s.dropLast() }
  return String(s)
}
