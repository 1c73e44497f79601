/// Where a config value came from: `file:line` for a line of a config file, or a bare
/// description (an override, a default) when `line` is 0.
public struct ConfigLocation: Sendable, Hashable, CustomStringConvertible {
  public var file: String
  public var line: Int

  public init(file: String, line: Int = 0) {
    self.file = file
    self.line = line
  }

  public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// A value in a config file: a scalar or a flow list of scalars.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
  case int(Int)
  case double(Double)
  case bool(Bool)
  case string(String)
  /// A flow list `[a, b, 1e-3]`; its elements are never lists.
  case list([ConfigValue])

  /// The value as written in a config file; parsing it gives back the same value.
  public var description: String {
    switch self {
    case .int(let i): return String(i)
    case .double(let d): return d.description
    case .bool(let b): return b ? "true" : "false"
    case .string(let s): return ConfigValue.isSafeBare(s) ? s : ConfigValue.quoted(s)
    case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
    }
  }

  /// "an integer", "a number", ...: for error messages.
  public var typeName: String {
    switch self {
    case .int: return "an integer"
    case .double: return "a number"
    case .bool: return "a bool"
    case .string: return "a string"
    case .list: return "a list"
    }
  }

  /// Parses the text of a value as it appears after `key:` in a config file or after `=`
  /// in an override: a scalar or a one-line flow list, optionally followed by a comment.
  static func parse(_ text: String) throws(ConfigSyntaxError) -> ConfigValue {
    var scanner: LineScanner = LineScanner(text)
    scanner.skipSpaces()
    if scanner.atCommentOrEnd {
      throw ConfigSyntaxError(what: "missing value", expected: "a number, bool, string or [list]")
    }
    let value: ConfigValue = try scanner.value()
    return value
  }

  static func quoted(_ s: String) -> String {
    var out: String = "\""
    for c in s {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default: out.append(c)
      }
    }
    return out + "\""
  }

  /// True when `s` can be written without quotes and reads back as the same string.
  static func isSafeBare(_ s: String) -> Bool {
    guard let first = s.first, first != "-", first != "." else { return false }
    for c in s.unicodeScalars {
      let ok: Bool =
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
        || c == "_" || c == "." || c == "/" || c == "-" || c == "+"
      if !ok { return false }
    }
    if case .value(.string(let t)) = classifyBare(s) { return t == s }
    return false
  }

  /// What an unquoted scalar means.
  enum Bare: Equatable {
    case value(ConfigValue)
    /// `null` or `~`: the format has no null.
    case null
    /// Looks like a number but does not fit an Int or a finite Double.
    case numberOutOfRange
  }

  /// The value of an unquoted scalar: int, double, bool, or otherwise a string.
  static func classifyBare(_ s: String) -> Bare {
    switch s {
    case "true", "True", "TRUE": return .value(.bool(true))
    case "false", "False", "FALSE": return .value(.bool(false))
    case "null", "Null", "NULL", "~": return .null
    default: break
    }
    let bytes: [UInt8] = Array(s.utf8)
    var i: Int = 0
    if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
    var digits: Int = 0
    while i < bytes.count && isDigit(bytes[i]) {
      i += 1
      digits += 1
    }
    var isInteger: Bool = true
    if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
      isInteger = false
      i += 1
      while i < bytes.count && isDigit(bytes[i]) {
        i += 1
        digits += 1
      }
    }
    if digits == 0 { return .value(.string(s)) }
    if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
      isInteger = false
      i += 1
      if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
      var expDigits: Int = 0
      while i < bytes.count && isDigit(bytes[i]) {
        i += 1
        expDigits += 1
      }
      if expDigits == 0 { return .value(.string(s)) }
    }
    if i != bytes.count { return .value(.string(s)) }
    if isInteger {
      if let v = Int(s) { return .value(.int(v)) }
      return .numberOutOfRange
    }
    if let d = Double(s), d.isFinite { return .value(.double(d)) }
    return .numberOutOfRange
  }

  private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}

/// A syntax problem on one line, before the line number is known.
struct ConfigSyntaxError: Error, Sendable, Equatable {
  var what: String
  var expected: String
  var got: String
  var hint: String

  init(what: String, expected: String = "", got: String = "", hint: String = "") {
    self.what = what
    self.expected = expected
    self.got = got
    self.hint = hint
  }

  func detail(at location: ConfigLocation) -> ErrorDetail {
    ErrorDetail(what: what, location: location.description, expected: expected, got: got, hint: hint)
  }
}
