import Foundation

extension ConfigTree {
  /// The tree in the config format: sections as indented blocks (2 spaces), keys in tree
  /// order, values as `ConfigValue.description`. Parsing the text gives back an equal tree.
  /// `header` lines, if any, become `#` comments at the top.
  public func serialized(header: [String] = []) -> String {
    var out: String = ""
    for line in header { out += line.isEmpty ? "#\n" : "# \(line)\n" }
    appendLines(to: &out, indent: "")
    return out
  }

  private func appendLines(to out: inout String, indent: String) {
    for e in entries {
      switch e.content {
      case .value(let v):
        out += "\(indent)\(e.key): \(v.description)\n"
      case .section(let sub):
        out += "\(indent)\(e.key):\n"
        sub.appendLines(to: &out, indent: indent + "  ")
      }
    }
  }

  /// Writes `serialized(header:)` to `path`, replacing the file atomically.
  /// Throws `.cannotCreate` when the file cannot be written.
  public func write(to path: String, header: [String] = []) throws {
    let data: Data = Data(serialized(header: header).utf8)
    do {
      try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw LCError.cannotCreate(
        ErrorDetail(what: "cannot write config file", location: path, got: error.localizedDescription))
    }
  }
}
