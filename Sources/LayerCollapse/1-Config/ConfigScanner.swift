/// Reads one line of a config file (or one override value) character by character.
struct LineScanner {
  let chars: [Character]
  var pos: Int = 0

  init(_ text: String) { chars = Array(text) }

  var atEnd: Bool { pos >= chars.count }
  var peek: Character? { pos < chars.count ? chars[pos] : nil }
  var rest: String { pos < chars.count ? String(chars[pos...]) : "" }

  /// True at the end of the line or at a `#` that starts a comment (at the start of the
  /// line or after whitespace; `a#b` is a plain string, as in YAML).
  var atCommentOrEnd: Bool { atEnd || (chars[pos] == "#" && (pos == 0 || isBlank(chars[pos - 1]))) }

  mutating func skipSpaces() {
    while pos < chars.count && isBlank(chars[pos]) { pos += 1 }
  }

  /// A scalar or a flow list, then nothing but an optional comment.
  mutating func value() throws(ConfigSyntaxError) -> ConfigValue {
    skipSpaces()
    let value: ConfigValue
    if peek == "[" {
      value = try flowList()
    } else {
      value = try scalar(inList: false)
    }
    try expectEnd()
    return value
  }

  /// Skips spaces; the line must end here or continue with a comment.
  mutating func expectEnd() throws(ConfigSyntaxError) {
    skipSpaces()
    if !atCommentOrEnd {
      throw ConfigSyntaxError(
        what: "unexpected text after the value", expected: "the end of the line or a `# comment`",
        got: "`\(rest)`")
    }
  }

  /// A quoted string, or a bare scalar up to the end of the line (or the next `,`/`]` in a list).
  mutating func scalar(inList: Bool) throws(ConfigSyntaxError) -> ConfigValue {
    skipSpaces()
    guard let c = peek else {
      throw ConfigSyntaxError(what: "missing value", expected: "a number, bool, string or [list]")
    }
    if c == "\"" || c == "'" { return .string(try quotedString()) }
    if inList && (c == "[" || c == "{") { throw nestedInList(c) }
    try rejectIndicator(c, inList: inList)
    let start: Int = pos
    while !atEnd && !atCommentOrEnd {
      let ch: Character = chars[pos]
      if inList && (ch == "," || ch == "]") { break }
      if inList && (ch == "[" || ch == "{" || ch == "}") { throw nestedInList(ch) }
      pos += 1
    }
    var end: Int = pos
    while end > start && isBlank(chars[end - 1]) { end -= 1 }
    let text: String = String(chars[start..<end])
    if text.isEmpty {
      if inList { throw ConfigSyntaxError(what: "empty list item", expected: "a value between commas") }
      throw ConfigSyntaxError(what: "missing value", expected: "a number, bool, string or [list]")
    }
    if !inList && (text.contains(": ") || text.hasSuffix(":")) {
      throw ConfigSyntaxError(
        what: "unexpected `:` in a value", expected: "one `key: value` per line", got: "`\(text)`",
        hint: "Quote the value if the colon is part of a string")
    }
    switch ConfigValue.classifyBare(text) {
    case .value(let v): return v
    case .null:
      throw ConfigSyntaxError(
        what: "null values are not supported", expected: "a number, bool, string or [list]", got: "`\(text)`",
        hint: "Leave the key out to use its default")
    case .numberOutOfRange:
      throw ConfigSyntaxError(
        what: "number out of range", expected: "a 64-bit integer or a finite number", got: "`\(text)`")
    }
  }

  /// A `"..."` string (escapes `\\ \" \n \t \r`) or a `'...'` string (`''` is a quote).
  mutating func quotedString() throws(ConfigSyntaxError) -> String {
    let quote: Character = chars[pos]
    pos += 1
    var out: String = ""
    while pos < chars.count {
      let c: Character = chars[pos]
      pos += 1
      if quote == "'" {
        if c == "'" {
          if peek == "'" {
            out.append("'")
            pos += 1
            continue
          }
          return out
        }
        out.append(c)
      } else {
        if c == "\"" { return out }
        if c == "\\" {
          guard let e = peek else { break }
          pos += 1
          switch e {
          case "\\": out.append("\\")
          case "\"": out.append("\"")
          case "n": out.append("\n")
          case "t": out.append("\t")
          case "r": out.append("\r")
          default:
            throw ConfigSyntaxError(
              what: "unknown escape `\\\(e)` in a double-quoted string", expected: "one of \\\\ \\\" \\n \\t \\r",
              hint: "Use single quotes for text with backslashes")
          }
          continue
        }
        out.append(c)
      }
    }
    throw ConfigSyntaxError(
      what: "unterminated string", expected: "a closing \(quote) on the same line",
      hint: "Multi-line strings are not supported")
  }

  /// `[a, b, 1e-3]` on one line; `[]` is the empty list.
  mutating func flowList() throws(ConfigSyntaxError) -> ConfigValue {
    pos += 1  // "["
    var items: [ConfigValue] = []
    skipSpaces()
    if peek == "]" {
      pos += 1
      return .list(items)
    }
    while true {
      skipSpaces()
      if atCommentOrEnd { throw unterminatedList() }
      if peek == "," { throw ConfigSyntaxError(what: "empty list item", expected: "a value between commas") }
      items.append(try scalar(inList: true))
      skipSpaces()
      if atCommentOrEnd { throw unterminatedList() }
      let c: Character = chars[pos]
      pos += 1
      if c == "]" { return .list(items) }
      if c != "," {
        throw ConfigSyntaxError(what: "unexpected `\(c)` in a flow list", expected: "`,` or `]`")
      }
      skipSpaces()
      if peek == "]" {
        throw ConfigSyntaxError(what: "empty list item", expected: "a value after the last `,`")
      }
    }
  }

  private func nestedInList(_ c: Character) -> ConfigSyntaxError {
    ConfigSyntaxError(
      what: "unexpected `\(c)` inside a flow list", expected: "a list of scalars, e.g. `[a, b, 1e-3]`",
      hint: "Nested lists and maps are not supported; quote the string if `\(c)` is part of it")
  }

  private func unterminatedList() -> ConfigSyntaxError {
    ConfigSyntaxError(
      what: "unterminated flow list", expected: "a closing `]` on the same line",
      hint: "Flow lists must fit on one line; block lists are not supported")
  }

  /// YAML features outside the subset, recognised by the first character of a value.
  private func rejectIndicator(_ c: Character, inList: Bool) throws(ConfigSyntaxError) {
    let next: Character? = pos + 1 < chars.count ? chars[pos + 1] : nil
    let nextBlank: Bool = next == nil || isBlank(next!)
    switch c {
    case "|", ">":
      throw ConfigSyntaxError(
        what: "multi-line strings (`\(c)`) are not supported", expected: "a quoted string on one line")
    case "&":
      throw ConfigSyntaxError(what: "anchors (`&name`) are not supported", expected: "a plain value")
    case "*":
      throw ConfigSyntaxError(what: "aliases (`*name`) are not supported", expected: "a plain value")
    case "!":
      throw ConfigSyntaxError(what: "tags (`!tag`) are not supported", expected: "a plain value")
    case "{":
      throw ConfigSyntaxError(
        what: "flow maps (`{...}`) are not supported", expected: "an indented section of `key: value` lines")
    case "-" where nextBlank && !inList:
      throw ConfigSyntaxError(
        what: "block lists (`- item`) are not supported", expected: "a flow list on one line, e.g. `[a, b]`")
    case "[", "]", "}", ",", "%", "@", "`":
      throw ConfigSyntaxError(
        what: "unexpected `\(c)` at the start of a value", expected: "a number, bool, string or [list]",
        hint: "Quote the string if `\(c)` is part of it")
    case "?" where nextBlank, ":" where nextBlank:
      throw ConfigSyntaxError(
        what: "unexpected `\(c)` at the start of a value", expected: "a number, bool, string or [list]")
    default:
      return
    }
  }
}

func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" }
