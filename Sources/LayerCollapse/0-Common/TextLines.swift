/// Lines of a text file written anywhere: "\n", "\r\n" or "\r" ends a line, as Python's
/// universal newlines read them (`transformers` reads vocab.txt so). Swift's own splitting
/// on "\n" misses "\r\n", one Character: a Windows-saved vocab.txt read as one line.
public enum TextLines {
  /// The lines, without their endings; a final line ending gives no empty last line.
  public static func split(_ text: String) -> [String] {
    var lines: [String] = []
    var current: String.UnicodeScalarView = String.UnicodeScalarView()
    var afterReturn: Bool = false
    for u: Unicode.Scalar in text.unicodeScalars {
      if u == "\n" && afterReturn {
        afterReturn = false  // the "\n" of "\r\n": the line ended at "\r"
        continue
      }
      afterReturn = u == "\r"
      if u == "\n" || u == "\r" {
        lines.append(String(current))
        current = String.UnicodeScalarView()
      } else {
        current.append(u)
      }
    }
    if !current.isEmpty { lines.append(String(current)) }
    return lines
  }
}
