/// One `key: value` line or one `section:` with the lines indented below it.
public struct ConfigEntry: Sendable, Equatable {
  public enum Content: Sendable, Equatable {
    case value(ConfigValue)
    case section(ConfigTree)
  }

  /// One key; dotted only directly under the top-level `sweep:` section.
  public var key: String
  public var content: Content
  /// Where the line is, e.g. `configs/tiny.yaml:12`. Not part of equality.
  public var location: ConfigLocation

  public init(key: String, content: Content, location: ConfigLocation) {
    self.key = key
    self.content = content
    self.location = location
  }

  /// Keys and contents only: a tree re-parsed from its serialization equals the original.
  public static func == (a: ConfigEntry, b: ConfigEntry) -> Bool { a.key == b.key && a.content == b.content }
}

/// A parsed config file: an ordered map of keys to values and sections. Access nested keys
/// with dotted paths, e.g. `tree.value("lc.lambda")`.
///
/// Equality compares keys, their order and values; locations and `source` are ignored.
public struct ConfigTree: Sendable, Equatable, CustomStringConvertible {
  /// The entries in file order; keys added later come last.
  public private(set) var entries: [ConfigEntry] = []
  /// The file the tree was read from, for messages about keys it lacks ("" if none).
  public var source: String

  public init(source: String = "") { self.source = source }

  public static func == (a: ConfigTree, b: ConfigTree) -> Bool { a.entries == b.entries }

  public var isEmpty: Bool { entries.isEmpty }

  /// The config text, as `serialized()`.
  public var description: String { serialized() }

  /// The entry at a dotted path such as `lc.lambda` (or `sweep.lc.lambda`).
  public func entry(_ key: String) -> ConfigEntry? {
    for e in entries where e.key == key { return e }
    for e in entries where key.hasPrefix(e.key + ".") {
      if case .section(let sub) = e.content, let found = sub.entry(String(key.dropFirst(e.key.count + 1))) {
        return found
      }
    }
    return nil
  }

  /// The value at a dotted path; nil if absent or a section.
  public func value(_ key: String) -> ConfigValue? {
    guard let e = entry(key), case .value(let v) = e.content else { return nil }
    return v
  }

  /// The section at a dotted path; nil if absent or a value.
  public func section(_ key: String) -> ConfigTree? {
    guard let e = entry(key), case .section(let s) = e.content else { return nil }
    return s
  }

  /// The dotted path of every value, in file order.
  public var valuePaths: [String] {
    var out: [String] = []
    for e in entries {
      switch e.content {
      case .value: out.append(e.key)
      case .section(let sub): out += sub.valuePaths.map { e.key + "." + $0 }
      }
    }
    return out
  }

  /// The values that differ between two configs, one `key: before → after` each (`unset`
  /// for a key only one of them has), in this config's order and then the other's.
  public func differences(to other: ConfigTree) -> [String] {
    var keys = valuePaths
    for k in other.valuePaths where !keys.contains(k) { keys.append(k) }
    return keys.compactMap { k in
      let (a, b) = (value(k), other.value(k))
      guard a != b else { return nil }
      return "\(k): \(a?.description ?? "unset") → \(b?.description ?? "unset")"
    }
  }

  /// Sets the value at a dotted path, creating sections on the way; a new key goes after the
  /// existing ones. Returns the previous value. Throws `.badConfig` when the path runs
  /// through a value or ends at a section.
  @discardableResult
  public mutating func set(_ key: String, to value: ConfigValue, at location: ConfigLocation) throws -> ConfigValue? {
    if let problem = ConfigTree.keyProblem(key) {
      throw LCError.badConfig([problem.detail(at: location)])
    }
    return try setPath(key, prefix: "", value: value, location: location, flat: false)
  }

  private mutating func setPath(
    _ rest: String, prefix: String, value: ConfigValue, location: ConfigLocation, flat: Bool
  ) throws -> ConfigValue? {
    if let i = entries.firstIndex(where: { $0.key == rest }) {
      guard case .value(let old) = entries[i].content else {
        throw LCError.badConfig([
          ErrorDetail(
            what: "`\(prefix + rest)` is a section, not a value", location: location.description,
            expected: "a key that holds a value", hint: "Section defined at \(entries[i].location)")
        ])
      }
      entries[i].content = .value(value)
      entries[i].location = location
      return old
    }
    guard !flat, let dot = rest.firstIndex(of: ".") else {
      entries.append(ConfigEntry(key: rest, content: .value(value), location: location))
      return nil
    }
    let head: String = String(rest[..<dot])
    let tail: String = String(rest[rest.index(after: dot)...])
    let flatBelow: Bool = prefix.isEmpty && head == "sweep"
    if let i = entries.firstIndex(where: { $0.key == head }) {
      guard case .section(var sub) = entries[i].content else {
        throw LCError.badConfig([
          ErrorDetail(
            what: "`\(prefix + head)` is a value, not a section", location: location.description,
            expected: "a section containing `\(tail)`", hint: "Value defined at \(entries[i].location)")
        ])
      }
      let old: ConfigValue? = try sub.setPath(
        tail, prefix: prefix + head + ".", value: value, location: location, flat: flatBelow)
      entries[i].content = .section(sub)
      return old
    }
    var sub: ConfigTree = ConfigTree(source: source)
    _ = try sub.setPath(tail, prefix: prefix + head + ".", value: value, location: location, flat: flatBelow)
    entries.append(ConfigEntry(key: head, content: .section(sub), location: location))
    return nil
  }

  /// The tree without the entry at a dotted path; sections left empty are removed too.
  public func removing(_ key: String) -> ConfigTree {
    var out: ConfigTree = self
    out.entries = []
    for e in entries {
      if e.key == key { continue }
      if key.hasPrefix(e.key + "."), case .section(let sub) = e.content {
        let pruned: ConfigTree = sub.removing(String(key.dropFirst(e.key.count + 1)))
        if pruned.isEmpty { continue }
        var copy: ConfigEntry = e
        copy.content = .section(pruned)
        out.entries.append(copy)
        continue
      }
      out.entries.append(e)
    }
    return out
  }

  /// Adds an entry after the existing ones; the parser checks for duplicates first.
  mutating func append(_ entry: ConfigEntry) { entries.append(entry) }

  /// Why `key` cannot be a dotted path of keys, or nil if it can.
  static func keyProblem(_ key: String) -> ConfigSyntaxError? {
    let parts: [Substring] = key.split(separator: ".", omittingEmptySubsequences: false)
    for part in parts where !isValidKey(part) {
      return ConfigSyntaxError(
        what: "invalid key `\(key)`", expected: "dotted keys of letters, digits, `_` or `-`, e.g. `lc.lambda`")
    }
    return nil
  }

  /// Letters, digits, `_` and `-`, not empty.
  static func isValidKey(_ key: Substring) -> Bool {
    guard !key.isEmpty else { return false }
    return key.unicodeScalars.allSatisfy { c in
      (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_" || c == "-"
    }
  }
}
