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

  /// Writes `serialized(header:)` to `path`, replacing the file atomically (`AtomicFile`).
  public func write(to path: String, header: [String] = []) throws {
    try AtomicFile.write(Data(serialized(header: header).utf8), to: path)
  }
}
