import Foundation

extension ConfigTree {
  /// Parses config text. `file` names the source in locations (`file:line`).
  /// Throws `.badConfig` listing every syntax error found.
  public static func parse(_ text: String, file: String) throws -> ConfigTree {
    var parser: ConfigParser = ConfigParser(file: file)
    let tree: ConfigTree = parser.run(text)
    if !parser.errors.isEmpty { throw LCError.badConfig(parser.errors) }
    return tree
  }

  /// What a file in config syntax is to the user, for the messages about it.
  public struct FileRole: Sendable {
    /// "config file", "bands file".
    public var noun: String
    /// What the file should hold, said when it is something else.
    public var expected: String
    /// Where such files are found.
    public var hint: String

    public init(noun: String, expected: String, hint: String) {
      self.noun = noun
      self.expected = expected
      self.hint = hint
    }

    public static let config = FileRole(
      noun: "config file", expected: "a YAML file", hint: "Configs live in configs/*.yaml")
  }

  /// Reads and parses a file in config syntax (`role` names it in messages). Throws
  /// `.missingInput` if it does not exist, `.io` if it cannot be read, `.badConfig` for
  /// syntax errors. `pipes`: a pipe is read as the file would be, for the file a user names
  /// (`validate <(sed … c.yaml)`); elsewhere (a run directory's config.yaml) it is refused,
  /// since opening a FIFO waits for a writer.
  public static func load(path: String, pipes: Bool = false, role: FileRole = .config) throws -> ConfigTree {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw LCError.missingInput(ErrorDetail(what: "\(role.noun) not found", location: path, hint: role.hint))
    }
    guard !isDirectory.boolValue else {
      let runConfig = path + "/config.yaml"
      let isRun = role.noun == FileRole.config.noun && FileManager.default.fileExists(atPath: runConfig)
      throw LCError.missingInput(
        ErrorDetail(
          what: "not a \(role.noun)", location: path, expected: role.expected, got: "a directory",
          hint: isRun ? "A run directory's resolved config is \(runConfig)" : role.hint))
    }
    let kind = Paths.notAFile(path)
    if let other = kind, other != .pipe || !pipes {
      throw LCError.missingInput(
        ErrorDetail(what: "not a \(role.noun)", location: path, expected: role.expected, got: "\(other)"))
    }
    let data: Data
    do {
      data = try Paths.read(path, kind: kind)
    } catch {
      throw LCError.io(ErrorDetail(what: "cannot read \(role.noun)", location: path, got: "\(error)"))
    }
    // A checkpoint given where the config goes (`train runs/x/last.h5`): HDF5's signature.
    if data.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) {
      throw LCError.badConfig([
        ErrorDetail(
          what: "this is an HDF5 file (a checkpoint?), not a config", location: path, expected: "a YAML config",
          hint: "To train from a checkpoint, set train.init_from=\(path) on a config (configs/*.yaml)")
      ])
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw LCError.badConfig([ErrorDetail(what: "\(role.noun) is not UTF-8 text", location: path)])
    }
    return try parse(text, file: path)
  }
}

/// Turns the lines of a config file into a tree, collecting every error with its line.
struct ConfigParser {
  /// A section being filled: the root, or a `key:` line whose indented lines follow.
  private struct Frame {
    var key: String
    var path: String
    var location: ConfigLocation
    /// Indentation of this section's keys.
    var childIndent: Int
    var tree: ConfigTree
    /// A duplicate section: parsed for its errors, then dropped.
    var discard: Bool
  }

  /// A `key:` line with nothing after it, waiting for its first indented line.
  private struct Opener {
    var key: String
    var indent: Int
    var location: ConfigLocation
    var discard: Bool
    /// A line below it was skipped (a tab in its indentation): not reported as empty.
    var sawSkippedLine: Bool = false
  }

  let file: String
  /// Errors with their line numbers, in the order found.
  private var found: [(line: Int, detail: ErrorDetail)] = []
  private var stack: [Frame]
  private var opener: Opener? = nil
  private var previousWasValue: Bool = false

  init(file: String) {
    self.file = file
    let root: Frame = Frame(
      key: "", path: "", location: ConfigLocation(file: file), childIndent: 0, tree: ConfigTree(source: file),
      discard: false)
    stack = [root]
  }

  mutating func run(_ text: String) -> ConfigTree {
    var body: Substring = Substring(text)
    if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
    // "\r\n" is a single Character in Swift.
    let lines: [Substring] = body.split(
      omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    for (i, line) in lines.enumerated() {
      process(Array(line), location: ConfigLocation(file: file, line: i + 1))
    }
    if let o = opener { reportEmpty(o) }
    while stack.count > 1 { popFrame() }
    return stack[0].tree
  }

  /// Every error found, by line number.
  var errors: [ErrorDetail] {
    found.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element.detail)
  }

  private mutating func fail(_ e: ConfigSyntaxError, _ location: ConfigLocation) {
    found.append((location.line, e.detail(at: location)))
  }

  private mutating func process(_ chars: [Character], location: ConfigLocation) {
    var indent: Int = 0
    var sawTab: Bool = false
    while indent < chars.count && isBlank(chars[indent]) {
      if chars[indent] == "\t" { sawTab = true }
      indent += 1
    }
    if indent == chars.count || chars[indent] == "#" { return }  // blank or comment line
    if sawTab {
      opener?.sawSkippedLine = true
      fail(
        ConfigSyntaxError(
          what: "tab in indentation", expected: "spaces only", hint: "YAML forbids tabs for indentation"),
        location)
      previousWasValue = false
      return
    }
    placeLine(indent: indent, location: location)
    do {
      try parseContent(chars, indent: indent, location: location)
    } catch {
      fail(error, location)
      previousWasValue = false
    }
  }

  /// Opens a pending section or closes finished ones so that the top frame owns the line.
  private mutating func placeLine(indent: Int, location: ConfigLocation) {
    if let o = opener {
      opener = nil
      let parent: Frame = stack[stack.count - 1]
      if indent > o.indent {
        let path: String = parent.path.isEmpty ? o.key : parent.path + "." + o.key
        stack.append(
          Frame(
            key: o.key, path: path, location: o.location, childIndent: indent, tree: ConfigTree(source: file),
            discard: o.discard))
        return
      }
      reportEmpty(o)
    }
    let levels: [Int] = stack.map(\.childIndent)
    while stack.count > 1 && indent < stack[stack.count - 1].childIndent { popFrame() }
    if !levels.contains(indent) {
      let expected: String =
        levels.count == 1
        ? "\(levels[0]) spaces" : "one of " + levels.map(String.init).joined(separator: ", ") + " spaces"
      let hint: String =
        previousWasValue && indent > levels[levels.count - 1]
        ? "A value must fit on its line; indented keys belong under a `section:` line" : ""
      fail(
        ConfigSyntaxError(what: "bad indentation", expected: expected, got: "\(indent) spaces", hint: hint),
        location)
    }
  }

  private mutating func reportEmpty(_ o: Opener) {
    if o.sawSkippedLine { return }
    let parent: String = stack[stack.count - 1].path
    let path: String = parent.isEmpty ? o.key : parent + "." + o.key
    fail(
      ConfigSyntaxError(
        what: "`\(path):` has no value and no indented keys below it",
        expected: "`\(o.key): value` or a section of more-indented `key: value` lines"),
      o.location)
  }

  private mutating func popFrame() {
    let frame: Frame = stack.removeLast()
    if frame.discard { return }
    stack[stack.count - 1].tree.append(
      ConfigEntry(key: frame.key, content: .section(frame.tree), location: frame.location))
  }

  private mutating func parseContent(
    _ chars: [Character], indent: Int, location: ConfigLocation
  ) throws(ConfigSyntaxError) {
    let first: Character = chars[indent]
    let next: Character? = indent + 1 < chars.count ? chars[indent + 1] : nil
    if first == "-" && (next == nil || isBlank(next!)) {
      throw ConfigSyntaxError(
        what: "block lists (`- item`) are not supported", expected: "a flow list on one line, e.g. `key: [a, b]`")
    }
    let content: String = String(chars[indent...])
    if content.hasPrefix("---") || content.hasPrefix("...") {
      throw ConfigSyntaxError(what: "document markers (`---`, `...`) are not supported", expected: "`key: value`")
    }
    if first == "\"" || first == "'" {
      throw ConfigSyntaxError(what: "quoted keys are not supported", expected: "a bare key, e.g. `lambda: 0.1`")
    }
    var colon: Int? = nil
    var j: Int = indent
    while j < chars.count {
      if chars[j] == "#" && isBlank(chars[j - 1]) { break }
      if chars[j] == ":" && (j + 1 == chars.count || isBlank(chars[j + 1])) {
        colon = j
        break
      }
      j += 1
    }
    guard let c = colon else {
      let hint: String = content.contains(":") ? "Put a space after the colon" : ""
      throw ConfigSyntaxError(
        what: "not a `key: value` line", expected: "`key: value` or `section:`", got: "`\(content)`", hint: hint)
    }
    var keyEnd: Int = c
    while keyEnd > indent && isBlank(chars[keyEnd - 1]) { keyEnd -= 1 }
    let key: String = String(chars[indent..<keyEnd])
    let top: Frame = stack[stack.count - 1]
    let inSweep: Bool = stack.count == 2 && top.key == "sweep"
    try checkKey(key, inSweep: inSweep)
    let path: String = top.path.isEmpty ? key : top.path + "." + key
    var duplicate: Bool = false
    if let prior = top.tree.entries.first(where: { $0.key == key }) {
      duplicate = true
      fail(
        ConfigSyntaxError(
          what: "duplicate key `\(path)`", expected: "each key once per section",
          hint: "First defined at \(prior.location)"),
        location)
    }
    var scanner: LineScanner = LineScanner(String(chars))
    scanner.pos = c + 1
    scanner.skipSpaces()
    if scanner.atCommentOrEnd {
      opener = Opener(key: key, indent: indent, location: location, discard: duplicate || top.discard)
      previousWasValue = false
      return
    }
    let value: ConfigValue = try scanner.value()
    previousWasValue = true
    if !duplicate {
      stack[stack.count - 1].tree.append(ConfigEntry(key: key, content: .value(value), location: location))
    }
  }

  private func checkKey(_ key: String, inSweep: Bool) throws(ConfigSyntaxError) {
    if inSweep {
      if ConfigTree.keyProblem(key) == nil { return }
      throw ConfigSyntaxError(
        what: "invalid sweep key `\(key)`", expected: "a dotted key such as `lc.lambda`")
    }
    if ConfigTree.isValidKey(Substring(key)) { return }
    let hint: String =
      key.contains(".") && ConfigTree.keyProblem(key) == nil
      ? "Write nested sections instead of dotted keys; dotted keys are allowed only under `sweep:`" : ""
    throw ConfigSyntaxError(
      what: "invalid key `\(key)`", expected: "letters, digits, `_` or `-`", hint: hint)
  }
}
