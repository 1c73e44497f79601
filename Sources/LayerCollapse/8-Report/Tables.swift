import Foundation

/// A GitHub-flavoured markdown table whose raw text also lines up: every cell is padded
/// to its column's width. Columns of numbers are right-aligned (`---:`), others left (`:---`).
public struct MarkdownTable: Sendable, Equatable {
  public enum Alignment: Sendable, Equatable {
    case left, right, center
  }

  public var header: [String]
  public var rows: [[String]]
  /// Alignment per column; a nil or missing entry is inferred: right when every cell of
  /// the column that is not empty or "—" looks like a number ("1,234", "−15.0 %",
  /// "84.2 ± 1.2"), left otherwise.
  public var alignments: [Alignment?]

  public init(header: [String], rows: [[String]] = [], alignments: [Alignment?] = []) {
    self.header = header
    self.rows = rows
    self.alignments = alignments
  }

  public mutating func append(_ row: [String]) { rows.append(row) }

  /// The table, one line per row, ending in a newline. Rows may be shorter or longer than
  /// the header: the table gets as many columns as its longest row, empty cells filling in.
  /// "|" in cells is escaped and line breaks become `<br>`.
  public var markdown: String {
    let columns: Int = max(header.count, rows.map { (r: [String]) -> Int in r.count }.max() ?? 0)
    if columns == 0 { return "" }
    let head: [String] = Self.padded(header, to: columns).map(Self.escape)
    let body: [[String]] = rows.map { (r: [String]) -> [String] in Self.padded(r, to: columns).map(Self.escape) }
    var widths: [Int] = Array(repeating: 3, count: columns)
    var aligns: [Alignment] = []
    for c in 0..<columns {
      widths[c] = max(widths[c], head[c].count)
      for r in body { widths[c] = max(widths[c], r[c].count) }
      let given: Alignment? = c < alignments.count ? alignments[c] : nil
      aligns.append(given ?? Self.inferAlignment(body.map { (r: [String]) -> String in r[c] }))
    }
    var lines: [String] = [Self.line(head, widths: widths, aligns: aligns)]
    var rule: [String] = []
    for c in 0..<columns {
      let w: Int = widths[c]
      switch aligns[c] {
      case .left: rule.append(":" + String(repeating: "-", count: w - 1))
      case .right: rule.append(String(repeating: "-", count: w - 1) + ":")
      case .center: rule.append(":" + String(repeating: "-", count: w - 2) + ":")
      }
    }
    lines.append("| " + rule.joined(separator: " | ") + " |")
    for r in body { lines.append(Self.line(r, widths: widths, aligns: aligns)) }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Whether a cell reads as a number: digits with optional sign, separators, exponent,
  /// "±", "%" or "×".
  public static func looksNumeric(_ cell: String) -> Bool {
    let s: String = cell.trimmingCharacters(in: .whitespaces)
    guard let first: Character = s.first, s.contains(where: { (c: Character) -> Bool in c.isASCII && c.isNumber })
    else { return false }
    guard first.isNumber || "+-−±.".contains(first) else { return false }
    return s.allSatisfy { (c: Character) -> Bool in (c.isASCII && c.isNumber) || "., +-−±%eE×x".contains(c) }
  }

  static func inferAlignment(_ cells: [String]) -> Alignment {
    var numbers: Int = 0
    for cell in cells {
      let s: String = cell.trimmingCharacters(in: .whitespaces)
      if s.isEmpty || s == NumberFormat.missing { continue }
      if !looksNumeric(s) { return .left }
      numbers += 1
    }
    return numbers > 0 ? .right : .left
  }

  static func padded(_ row: [String], to count: Int) -> [String] {
    row.count >= count ? row : row + Array(repeating: "", count: count - row.count)
  }

  static func escape(_ cell: String) -> String {
    var out: String = ""
    for ch in cell {
      switch ch {
      case "|": out += "\\|"
      case "\r\n", "\n", "\r": out += "<br>"
      default: out.append(ch)
      }
    }
    return out
  }

  static func line(_ cells: [String], widths: [Int], aligns: [Alignment]) -> String {
    var parts: [String] = []
    for (c, cell) in cells.enumerated() {
      let pad: Int = widths[c] - cell.count
      switch aligns[c] {
      case .left: parts.append(cell + String(repeating: " ", count: pad))
      case .right: parts.append(String(repeating: " ", count: pad) + cell)
      case .center:
        parts.append(String(repeating: " ", count: pad / 2) + cell + String(repeating: " ", count: pad - pad / 2))
      }
    }
    return "| " + parts.joined(separator: " | ") + " |"
  }
}

/// A CSV table with RFC 4180 quoting: a field containing a comma, double quote, line break
/// or leading/trailing space is enclosed in double quotes, with inner quotes doubled.
/// Records end with "\n" (RFC 4180 names CRLF; every CSV reader accepts LF, and it keeps
/// files diff-friendly in git).
public struct CSVTable: Sendable, Equatable {
  public var header: [String]
  public var rows: [[String]]

  public init(header: [String], rows: [[String]] = []) {
    self.header = header
    self.rows = rows
  }

  public mutating func append(_ row: [String]) { rows.append(row) }

  /// Header and rows, one record per line. Rows are written as given (no padding).
  public var csv: String {
    var out: String = ""
    for record in [header] + rows {
      out += record.map(Self.field).joined(separator: ",")
      out += "\n"
    }
    return out
  }

  /// One field, quoted when needed.
  public static func field(_ text: String) -> String {
    let needsQuotes: Bool =
      text.contains { (c: Character) -> Bool in c == "," || c == "\"" || c == "\n" || c == "\r" || c == "\r\n" }
      || text.hasPrefix(" ") || text.hasSuffix(" ")
    if !needsQuotes { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }
}
