import Foundation

/// The plot area of a chart, in pixels.
struct PlotBox {
  var left: Double
  var top: Double
  var width: Double
  var height: Double
  var right: Double { left + width }
  var bottom: Double { top + height }
}

/// A linear map from (possibly transformed) data values to pixels.
struct PixelMap {
  var lo: Double
  var hi: Double
  var pxLo: Double
  var pxHi: Double

  func px(_ v: Double) -> Double { pxLo + (v - lo) / (hi - lo) * (pxHi - pxLo) }
  func contains(_ v: Double) -> Bool { v >= min(lo, hi) - 1e-12 && v <= max(lo, hi) + 1e-12 }
}

struct Rect {
  var x: Double
  var y: Double
  var width: Double
  var height: Double

  func intersects(_ o: Rect) -> Bool {
    x < o.x + o.width && o.x < x + width && y < o.y + o.height && o.y < y + height
  }

  func contains(_ px: Double, _ py: Double) -> Bool { px >= x && px <= x + width && py >= y && py <= y + height }
}

/// Drawn data that labels should avoid: polylines in pixels, and filled rectangles.
struct Obstacles {
  var lines: [[(x: Double, y: Double)]] = []
  var rects: [Rect] = []

  /// How many line segments and rectangles touch `r`.
  func hits(_ r: Rect) -> Int {
    var n: Int = 0
    for line in lines {
      if line.count == 1 && r.contains(line[0].x, line[0].y) { n += 1 }
      for i in 1..<max(1, line.count) where Self.segment(line[i - 1], line[i], touches: r) { n += 1 }
    }
    for b in rects where b.intersects(r) { n += 1 }
    return n
  }

  /// Liang–Barsky: whether the segment a–b passes through r.
  static func segment(_ a: (x: Double, y: Double), _ b: (x: Double, y: Double), touches r: Rect) -> Bool {
    let dx: Double = b.x - a.x
    let dy: Double = b.y - a.y
    let p: [Double] = [-dx, dx, -dy, dy]
    let q: [Double] = [a.x - r.x, r.x + r.width - a.x, a.y - r.y, r.y + r.height - a.y]
    var t0: Double = 0
    var t1: Double = 1
    for i in 0..<4 {
      if p[i] == 0 {
        if q[i] < 0 { return false }
      } else {
        let t: Double = q[i] / p[i]
        if p[i] < 0 { t0 = max(t0, t) } else { t1 = min(t1, t) }
        if t0 > t1 { return false }
      }
    }
    return true
  }
}

struct LegendEntry {
  var name: String
  var color: String
  /// Marker shape, or nil for none.
  var shape: Int?
  var dashed: Bool
  /// A filled square swatch (bar charts) instead of a line sample.
  var isBar: Bool
}

/// Pieces shared by the line and bar charts: title, y axis, reference lines, legend.
enum ChartParts {
  static let legendRowHeight: Double = 18
  static let legendSwatch: Double = 26
  static let maxLegendText: Double = 200

  /// Title lines and the y coordinate where the content below them starts.
  static func title(_ title: String, width: Double) -> (svg: String, bottom: Double) {
    if title.isEmpty { return ("", 14) }
    let lines: [String] = SVG.wrap(title, width: width - 20, size: SVG.titleSize, bold: true)
    let svg: String = SVG.titleLines(lines, centerX: width / 2, top: 8)
    return (svg, 8 + Double(lines.count) * SVG.titleLineHeight + 12)
  }

  /// The range of the y axis: the data (and reference lines) with a 5% margin, a spread
  /// for a single value, and no margin below an exact zero baseline.
  static func yRange(values: [Double], zeroBaseline: Bool) -> (lo: Double, hi: Double) {
    let finite: [Double] = values.filter { (v: Double) -> Bool in v.isFinite }
    guard var lo: Double = finite.min(), var hi: Double = finite.max() else { return (0, 1) }
    if zeroBaseline {
      lo = min(lo, 0)
      hi = max(hi, 0)
    }
    if lo == hi {
      let pad: Double = lo == 0 ? 1 : abs(lo) * 0.1
      return (lo - pad, hi + pad)
    }
    let margin: Double = (hi - lo) * 0.05
    return (zeroBaseline && lo == 0 ? 0 : lo - margin, zeroBaseline && hi == 0 ? 0 : hi + margin)
  }

  static func yTicks(lo: Double, hi: Double, plotHeight: Double) -> (values: [Double], labels: [String]) {
    let count: Int = max(4, min(10, Int(plotHeight / 45)))
    let values: [Double] = AxisTicks.nice(from: lo, to: hi, maxCount: count)
    return (values, AxisTicks.labels(values))
  }

  /// Width taken by the y tick labels and the y axis label, left of the plot area.
  static func leftMargin(tickLabels: [String], axisLabel: String) -> Double {
    let widest: Double = tickLabels.map { (s: String) -> Double in SVG.textWidth(s, size: SVG.tickSize) }.max() ?? 0
    return 10 + (axisLabel.isEmpty ? 0 : SVG.labelSize + 10) + widest + 10
  }

  static func frame(_ box: PlotBox) -> String {
    "<rect x=\"\(SVG.num(box.left))\" y=\"\(SVG.num(box.top))\" width=\"\(SVG.num(box.width))\""
      + " height=\"\(SVG.num(box.height))\" fill=\"none\" stroke=\"\(SVG.axisColor)\" stroke-width=\"1\"/>\n"
  }

  /// Horizontal grid lines, tick marks and tick labels of the y axis.
  static func yAxis(ticks: [Double], labels: [String], map: PixelMap, box: PlotBox) -> String {
    var s: String = ""
    for (t, label) in zip(ticks, labels) where map.contains(t) {
      let y: Double = map.px(t)
      s += SVG.line(box.left, y, box.right, y, stroke: SVG.gridColor)
      s += SVG.line(box.left - 5, y, box.left, y, stroke: SVG.axisColor)
      s += SVG.text(label, x: box.left - 8, y: y + SVG.tickSize * 0.35, size: SVG.tickSize, anchor: "end")
    }
    return s
  }

  /// The y axis label, rotated, just left of the tick labels.
  static func yLabel(_ label: String, tickLabels: [String], box: PlotBox) -> String {
    if label.isEmpty { return "" }
    let widest: Double = tickLabels.map { (s: String) -> Double in SVG.textWidth(s, size: SVG.tickSize) }.max() ?? 0
    let x: Double = box.left - 10 - widest - 8 - SVG.labelSize * 0.25
    let y: Double = box.top + box.height / 2
    let fitted: String = SVG.truncate(label, width: box.height + 40, size: SVG.labelSize)
    return SVG.text(
      fitted, x: 0, y: 0, size: SVG.labelSize, anchor: "middle",
      extra: "transform=\"translate(\(SVG.num(x)),\(SVG.num(y))) rotate(-90)\"")
  }

  /// Dotted grey lines across the plot, drawn under the data.
  static func referenceLines(_ lines: [ReferenceLine], map: PixelMap, box: PlotBox) -> String {
    var s: String = ""
    for r in lines where r.y.isFinite && map.contains(r.y) {
      let y: Double = map.px(r.y)
      s += SVG.line(box.left, y, box.right, y, stroke: "#666666", width: 1.2, extra: "stroke-dasharray=\"2 3\"")
    }
    return s
  }

  /// The labels of the reference lines, drawn over the data with a white halo. Each goes
  /// above or below its line, at the right or left end, wherever it crosses the fewest
  /// `obstacles` (data lines and bars), preferring right and above.
  static func referenceLabels(_ lines: [ReferenceLine], map: PixelMap, box: PlotBox, obstacles: Obstacles) -> String {
    var s: String = ""
    for r in lines where r.y.isFinite && map.contains(r.y) && !r.label.isEmpty {
      let y: Double = map.px(r.y)
      let label: String = SVG.truncate(r.label, width: box.width * 0.6, size: SVG.tickSize)
      let w: Double = SVG.textWidth(label, size: SVG.tickSize)
      let h: Double = SVG.tickSize
      var best: (x: Double, baseline: Double, anchor: String) = (box.right - 5, y - 4, "end")
      var bestScore: Int = Int.max
      for below in [false, true] {
        let baseline: Double = below ? y + 4 + h : y - 4
        if baseline - h < box.top || baseline > box.bottom { continue }
        for atLeft in [false, true] {
          let x0: Double = atLeft ? box.left + 5 : box.right - 5 - w
          let rect: Rect = Rect(x: x0 - 2, y: baseline - h, width: w + 4, height: h + 3)
          let score: Int = obstacles.hits(rect)
          if score < bestScore {
            bestScore = score
            best = (atLeft ? box.left + 5 : box.right - 5, baseline, atLeft ? "start" : "end")
          }
        }
      }
      s += SVG.text(
        label, x: best.x, y: best.baseline, size: SVG.tickSize, anchor: best.anchor, fill: "#444444",
        extra: "stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"")
    }
    return s
  }

  /// Where the legend goes: nowhere without entries, and under the plot when a legend on
  /// the right would take more than 40% of the chart's width.
  static func placement(_ legend: SVGLegend, entries: [LegendEntry], width: Double) -> SVGLegend {
    if entries.isEmpty { return .none }
    if legend == .right && legendRightWidth(entries) + 32 > 0.4 * width { return .bottom }
    return legend
  }

  static func legendName(_ name: String) -> String {
    SVG.truncate(name, width: maxLegendText, size: SVG.legendSize)
  }

  static func legendEntryWidth(_ e: LegendEntry) -> Double {
    legendSwatch + 6 + SVG.textWidth(legendName(e.name), size: SVG.legendSize)
  }

  static func legendRightWidth(_ entries: [LegendEntry]) -> Double {
    entries.map { (e: LegendEntry) -> Double in legendEntryWidth(e) }.max() ?? 0
  }

  /// Rows of entry indices when entries flow left to right within `width`.
  static func legendRows(_ entries: [LegendEntry], width: Double) -> [[Int]] {
    var rows: [[Int]] = []
    var row: [Int] = []
    var used: Double = 0
    for (i, e) in entries.enumerated() {
      let w: Double = legendEntryWidth(e) + 18
      if !row.isEmpty && used + w > width {
        rows.append(row)
        row = []
        used = 0
      }
      row.append(i)
      used += w
    }
    if !row.isEmpty { rows.append(row) }
    return rows
  }

  static func legendEntry(_ e: LegendEntry, x: Double, y: Double) -> String {
    var s: String = ""
    let mid: Double = y - SVG.legendSize * 0.35
    if e.isBar {
      s += "<rect x=\"\(SVG.num(x + 6))\" y=\"\(SVG.num(mid - 6))\" width=\"14\" height=\"12\" fill=\"\(e.color)\"/>\n"
    } else {
      let dash: String = e.dashed ? "stroke-dasharray=\"7 4\"" : ""
      s += SVG.line(x, mid, x + legendSwatch - 2, mid, stroke: e.color, width: 2, extra: dash)
      if let shape: Int = e.shape {
        s += SVG.marker(shape: shape, x: x + (legendSwatch - 2) / 2, y: mid, color: e.color)
      }
    }
    s += SVG.text(legendName(e.name), x: x + legendSwatch + 6, y: y, size: SVG.legendSize)
    return s
  }

  static func legendRight(_ entries: [LegendEntry], x: Double, top: Double) -> String {
    var s: String = ""
    for (i, e) in entries.enumerated() {
      s += legendEntry(e, x: x, y: top + SVG.legendSize + Double(i) * legendRowHeight)
    }
    return s
  }

  /// Rows of entries, each row centred on `centerX`.
  static func legendBottom(_ entries: [LegendEntry], rows: [[Int]], centerX: Double, right: Double, top: Double)
    -> String
  {
    var s: String = ""
    for (r, row) in rows.enumerated() {
      let rowWidth: Double = row.map { (i: Int) -> Double in legendEntryWidth(entries[i]) + 18 }.reduce(0, +) - 18
      var x: Double = max(10, min(centerX - rowWidth / 2, right - rowWidth))
      for i in row {
        s += legendEntry(entries[i], x: x, y: top + SVG.legendSize + Double(r) * legendRowHeight)
        x += legendEntryWidth(entries[i]) + 18
      }
    }
    return s
  }

  static func noData(_ box: PlotBox) -> String {
    SVG.text(
      "no data", x: box.left + box.width / 2, y: box.top + box.height / 2, size: 14, anchor: "middle",
      fill: SVG.mutedText)
  }
}
