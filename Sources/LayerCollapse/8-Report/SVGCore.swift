import Foundation

/// A chart that can be drawn on its own (`svg()`) or as one panel of an `SVGGrid`.
public protocol SVGChart: Sendable {
  /// The chart's drawing at the origin. `idPrefix` makes element ids (clip paths) unique
  /// when several charts share one SVG document.
  func fragment(idPrefix: String) -> SVGFragment
}

extension SVGChart {
  /// The chart as a self-contained SVG document (no external fonts, styles or images).
  public func svg() -> String {
    let f: SVGFragment = fragment(idPrefix: "c")
    return SVG.document(width: f.width, height: f.height, body: f.body)
  }
}

/// SVG elements of one chart, drawn in the box (0, 0, width, height).
public struct SVGFragment: Sendable, Equatable {
  public var width: Double
  public var height: Double
  public var body: String

  public init(width: Double, height: Double, body: String) {
    self.width = width
    self.height = height
    self.body = body
  }
}

/// Where a chart puts its legend. The legend never covers the plot area.
public enum SVGLegend: Sendable, Equatable {
  /// To the right of the plot area, one entry per line; under it instead when the names
  /// would take more than 40% of the chart's width.
  case right
  /// Under the x axis, entries flowing left to right.
  case bottom
  case none
}

/// A labelled horizontal line across the plot, e.g. "chance" or "threshold 0.95".
public struct ReferenceLine: Sendable, Equatable {
  public var y: Double
  public var label: String

  public init(y: Double, label: String) {
    self.y = y
    self.label = label
  }
}

/// Small multiples: several charts laid out in a grid in one SVG document.
public enum SVGGrid {
  /// Lays `charts` out row by row, `columns` per row. Each column is as wide as its widest
  /// chart and each row as tall as its tallest; `title` goes on top of the whole grid.
  public static func svg(_ charts: [any SVGChart], columns: Int, title: String = "") -> String {
    let cols: Int = max(1, min(columns, max(1, charts.count)))
    let fragments: [SVGFragment] = charts.enumerated().map { (i: Int, c: any SVGChart) -> SVGFragment in
      c.fragment(idPrefix: "p\(i)")
    }
    let rows: Int = (fragments.count + cols - 1) / cols
    var colWidth: [Double] = Array(repeating: 0, count: cols)
    var rowHeight: [Double] = Array(repeating: 0, count: rows)
    for (i, f) in fragments.enumerated() {
      colWidth[i % cols] = max(colWidth[i % cols], f.width)
      rowHeight[i / cols] = max(rowHeight[i / cols], f.height)
    }
    let gridWidth: Double = max(colWidth.reduce(0, +), 320)
    var body: String = ""
    var top: Double = 0
    if !title.isEmpty {
      let lines: [String] = SVG.wrap(title, width: gridWidth - 20, size: SVG.titleSize, bold: true)
      body += SVG.titleLines(lines, centerX: gridWidth / 2, top: 10)
      top = 10 + Double(lines.count) * SVG.titleLineHeight + 4
    }
    if fragments.isEmpty {
      body += SVG.text("no data", x: gridWidth / 2, y: top + 40, size: 14, anchor: "middle", fill: SVG.mutedText)
      return SVG.document(width: gridWidth, height: top + 80, body: body)
    }
    var y: Double = top
    for r in 0..<rows {
      var x: Double = 0
      for c in 0..<cols {
        let i: Int = r * cols + c
        if i < fragments.count {
          body += "<g transform=\"translate(\(SVG.num(x)),\(SVG.num(y)))\">\n\(fragments[i].body)</g>\n"
        }
        x += colWidth[c]
      }
      y += rowHeight[r]
    }
    return SVG.document(width: gridWidth, height: y, body: body)
  }
}

/// Drawing helpers shared by the charts: escaping, number output, palette, text metrics.
enum SVG {
  static let titleSize: Double = 15
  static let titleLineHeight: Double = 19
  static let labelSize: Double = 13
  static let tickSize: Double = 11
  static let legendSize: Double = 12
  static let axisColor: String = "#555555"
  static let gridColor: String = "#e6e6e6"
  static let textColor: String = "#222222"
  static let mutedText: String = "#777777"
  /// Okabe–Ito's colour-blind-safe palette, with Tol's olive in place of the yellow that
  /// is hard to see on white.
  static let palette: [String] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933",
  ]

  static func color(_ index: Int) -> String { palette[index % palette.count] }

  /// Marker shape of series `index`: shapes change within and across colour cycles, so
  /// two series share colour and shape only beyond 32 series.
  static func shape(_ index: Int) -> Int { (index + index / palette.count) % 4 }

  static func document(width: Double, height: Double, body: String) -> String {
    let w: String = num(width.rounded(.up))
    let h: String = num(height.rounded(.up))
    var s: String = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\""
    s += " font-family=\"Helvetica, Arial, 'DejaVu Sans', sans-serif\" font-size=\"12\">\n"
    s += "<rect x=\"0\" y=\"0\" width=\"\(w)\" height=\"\(h)\" fill=\"#ffffff\"/>\n"
    s += body
    s += "</svg>\n"
    return s
  }

  /// Escapes text for element content and attribute values.
  static func escape(_ text: String) -> String {
    var out: String = ""
    out.reserveCapacity(text.count)
    for ch in text {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      case "\n", "\r", "\t": out += " "
      default:
        // Control characters are not allowed in XML 1.0.
        if let a: Unicode.Scalar = ch.unicodeScalars.first, ch.unicodeScalars.count == 1, a.value < 0x20 {
          out += " "
        } else {
          out.append(ch)
        }
      }
    }
    return out
  }

  /// A coordinate with at most two decimals and no trailing zeros.
  static func num(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    let r: Double = (v * 100).rounded() / 100
    if r == r.rounded() && abs(r) < 1e15 { return String(Int(r)) }
    var s: String = String(format: "%.2f", r)
    while s.hasSuffix("0") { s.removeLast() }
    return s
  }

  /// Estimated rendered width of `text`, from DejaVu Sans advance widths (wider than
  /// Helvetica or Arial), so that labels do not collide whichever font the viewer has.
  static func textWidth(_ text: String, size: Double, bold: Bool = false) -> Double {
    var units: Double = 0
    for ch in text {
      if "ijl.,:;'|!".contains(ch) {
        units += 0.3
      } else if "ftr ()-[]".contains(ch) {
        units += 0.4
      } else if "mwMW@%".contains(ch) {
        units += 0.95
      } else if ch.isUppercase {
        units += 0.72
      } else if ch.isNumber {
        units += 0.64
      } else {
        units += 0.61
      }
    }
    return units * size * (bold ? 1.12 : 1)
  }

  /// Shortens `text` with "…" so that it fits `width`.
  static func truncate(_ text: String, width: Double, size: Double) -> String {
    if textWidth(text, size: size) <= width { return text }
    var s: String = text
    while !s.isEmpty && textWidth(s + "…", size: size) > width { s.removeLast() }
    return s + "…"
  }

  /// Breaks `text` at spaces into lines no wider than `width` (a single long word stays whole).
  static func wrap(_ text: String, width: Double, size: Double, bold: Bool = false) -> [String] {
    var lines: [String] = []
    var line: String = ""
    for word in text.split(separator: " ", omittingEmptySubsequences: true) {
      let candidate: String = line.isEmpty ? String(word) : line + " " + word
      if textWidth(candidate, size: size, bold: bold) <= width || line.isEmpty {
        line = candidate
      } else {
        lines.append(line)
        line = String(word)
      }
    }
    if !line.isEmpty { lines.append(line) }
    return lines
  }

  static func text(
    _ content: String, x: Double, y: Double, size: Double, anchor: String = "start", fill: String = textColor,
    bold: Bool = false, extra: String = ""
  ) -> String {
    var s: String = "<text x=\"\(num(x))\" y=\"\(num(y))\" font-size=\"\(num(size))\" fill=\"\(fill)\""
    if anchor != "start" { s += " text-anchor=\"\(anchor)\"" }
    if bold { s += " font-weight=\"bold\"" }
    if !extra.isEmpty { s += " " + extra }
    s += ">\(escape(content))</text>\n"
    return s
  }

  static func titleLines(_ lines: [String], centerX: Double, top: Double) -> String {
    var s: String = ""
    for (i, line) in lines.enumerated() {
      let baseline: Double = top + titleSize + Double(i) * titleLineHeight
      s += text(line, x: centerX, y: baseline, size: titleSize, anchor: "middle", bold: true)
    }
    return s
  }

  static func line(
    _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
    extra: String = ""
  ) -> String {
    var s: String = "<line x1=\"\(num(x1))\" y1=\"\(num(y1))\" x2=\"\(num(x2))\" y2=\"\(num(y2))\""
    s += " stroke=\"\(stroke)\" stroke-width=\"\(num(width))\""
    if !extra.isEmpty { s += " " + extra }
    return s + "/>\n"
  }

  /// A filled marker of the given shape (0 circle, 1 square, 2 triangle, 3 diamond).
  static func marker(shape: Int, x: Double, y: Double, color: String) -> String {
    let r: Double = 3.6
    switch shape {
    case 1:
      let a: Double = r * 0.9
      return "<rect x=\"\(num(x - a))\" y=\"\(num(y - a))\" width=\"\(num(2 * a))\" height=\"\(num(2 * a))\""
        + " fill=\"\(color)\"/>\n"
    case 2:
      let h: Double = r * 1.15
      return polygon([(x, y - h), (x + h, y + h * 0.8), (x - h, y + h * 0.8)], fill: color)
    case 3:
      let h: Double = r * 1.3
      return polygon([(x, y - h), (x + h, y), (x, y + h), (x - h, y)], fill: color)
    default:
      return "<circle cx=\"\(num(x))\" cy=\"\(num(y))\" r=\"\(num(r))\" fill=\"\(color)\"/>\n"
    }
  }

  static func polygon(_ points: [(x: Double, y: Double)], fill: String) -> String {
    let coords: [String] = points.map { (p: (x: Double, y: Double)) -> String in num(p.x) + "," + num(p.y) }
    return "<polygon points=\"\(coords.joined(separator: " "))\" fill=\"\(fill)\"/>\n"
  }
}
