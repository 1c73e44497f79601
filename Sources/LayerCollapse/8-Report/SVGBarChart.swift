import Foundation

/// A grouped bar chart written as self-contained SVG: one group per category, one bar per
/// series in each group, optional error bars, labelled reference lines (e.g. "chance").
/// Bars start at zero unless a `yRange` that excludes zero is given, in which case they
/// start at the bottom of the axis. Non-finite values draw no bar.
public struct SVGBarChart: SVGChart, Equatable {
  public struct Series: Sendable, Equatable {
    public var name: String
    /// One value per category; missing trailing values draw no bar.
    public var values: [Double]
    /// ± half-lengths of the error bars, one per category.
    public var errors: [Double]?

    public init(name: String, values: [Double], errors: [Double]? = nil) {
      self.name = name
      self.values = values
      self.errors = errors
    }
  }

  public var title: String
  public var yLabel: String
  public var categories: [String]
  public var series: [Series]
  public var yRange: ClosedRange<Double>?
  public var referenceLines: [ReferenceLine]
  public var legend: SVGLegend
  public var width: Double
  public var height: Double

  public init(
    title: String = "", yLabel: String = "", categories: [String] = [], series: [Series] = [],
    yRange: ClosedRange<Double>? = nil, referenceLines: [ReferenceLine] = [], legend: SVGLegend = .right,
    width: Double = 640, height: Double = 400
  ) {
    self.title = title
    self.yLabel = yLabel
    self.categories = categories
    self.series = series
    self.yRange = yRange
    self.referenceLines = referenceLines
    self.legend = legend
    self.width = width
    self.height = height
  }

  public func fragment(idPrefix: String) -> SVGFragment {
    let totalWidth: Double = max(width, 200)
    var body: String = ""
    let head: (svg: String, bottom: Double) = ChartParts.title(title, width: totalWidth)
    body += head.svg
    let top: Double = head.bottom

    var entries: [LegendEntry] = []
    if legend != .none && (series.count > 1 || series.contains { (s: Series) -> Bool in !s.name.isEmpty }) {
      for (i, s) in series.enumerated() where !s.name.isEmpty {
        entries.append(LegendEntry(name: s.name, color: SVG.color(i), shape: nil, dashed: false, isBar: true))
      }
    }
    var values: [Double] = []
    for s in series {
      for (j, v) in s.values.prefix(categories.count).enumerated() where v.isFinite {
        values.append(v)
        if let errors: [Double] = s.errors, j < errors.count, errors[j].isFinite {
          values.append(v - abs(errors[j]))
          values.append(v + abs(errors[j]))
        }
      }
    }
    let hasData: Bool = !values.isEmpty

    let placement: SVGLegend = ChartParts.placement(legend, entries: entries, width: totalWidth)
    // Category labels: one line if they fit under their group, else wrapped at spaces
    // (up to three lines), else rotated. Decided on a provisional plot width.
    let rightMargin: Double =
      placement == .right ? 22 + ChartParts.legendRightWidth(entries) + 10 : 20
    let slotGuess: Double = (totalWidth - 70 - rightMargin) / Double(max(1, categories.count))
    let maxLabel: Double = 150
    let labels: [String] = categories.map { (c: String) -> String in
      SVG.truncate(c, width: maxLabel, size: SVG.tickSize)
    }
    let widths: [Double] = labels.map { (c: String) -> Double in SVG.textWidth(c, size: SVG.tickSize) }
    let widest: Double = widths.max() ?? 0
    let wrapped: [[String]] = labels.map { (c: String) -> [String] in
      SVG.wrap(c, width: slotGuess - 8, size: SVG.tickSize)
    }
    let wrapFits: Bool = wrapped.allSatisfy { (lines: [String]) -> Bool in
      lines.count <= 3
        && lines.allSatisfy { (l: String) -> Bool in SVG.textWidth(l, size: SVG.tickSize) <= slotGuess - 8 }
    }
    let mode: Int = widest <= slotGuess - 8 ? 0 : (wrapFits ? 1 : 2)  // 0 one line, 1 wrapped, 2 rotated
    let lineCount: Int = wrapped.map { (lines: [String]) -> Int in lines.count }.max() ?? 1
    let labelDepth: Double
    switch mode {
    case 0: labelDepth = SVG.tickSize
    case 1: labelDepth = SVG.tickSize + Double(lineCount - 1) * (SVG.tickSize + 2)
    default: labelDepth = widest * 0.5 + SVG.tickSize * 0.87
    }

    var bottom: Double = 5 + 5 + labelDepth + 6
    var legendRows: [[Int]] = []
    if placement == .bottom {
      legendRows = ChartParts.legendRows(entries, width: totalWidth - 20)
      bottom += 10 + Double(legendRows.count) * ChartParts.legendRowHeight
    }
    bottom += 6
    // A tall legend below the plot makes the chart taller rather than the plot flat.
    let plotHeight: Double = max(60, height * 0.6, height - top - bottom)

    var yLo: Double
    var yHi: Double
    if let r: ClosedRange<Double> = yRange, r.lowerBound.isFinite, r.upperBound.isFinite, r.lowerBound < r.upperBound {
      yLo = r.lowerBound
      yHi = r.upperBound
    } else {
      let refs: [Double] = hasData ? referenceLines.map { (r: ReferenceLine) -> Double in r.y } : []
      (yLo, yHi) = ChartParts.yRange(values: values + refs, zeroBaseline: true)
    }
    let yTicks: (values: [Double], labels: [String]) =
      hasData ? ChartParts.yTicks(lo: yLo, hi: yHi, plotHeight: plotHeight) : ([], [])
    var left: Double = ChartParts.leftMargin(tickLabels: yTicks.labels, axisLabel: yLabel)
    if mode == 2, let first: Double = widths.first {
      // The first rotated label reaches 0.87 × its width left of its group's centre.
      left = max(left, first * 0.87 - slotGuess / 2 + 8)
    }
    let plotWidth: Double = max(80, totalWidth - left - rightMargin)
    let box: PlotBox = PlotBox(left: left, top: top, width: plotWidth, height: plotHeight)
    let yMap: PixelMap = PixelMap(lo: yLo, hi: yHi, pxLo: box.bottom, pxHi: box.top)

    if hasData {
      body += ChartParts.yAxis(ticks: yTicks.values, labels: yTicks.labels, map: yMap, box: box)
      let drawn: (svg: String, obstacles: Obstacles) = bars(box: box, yMap: yMap, idPrefix: idPrefix)
      body += drawn.svg
      body += ChartParts.referenceLines(referenceLines, map: yMap, box: box)  // over the bars: still visible
      body += ChartParts.referenceLabels(referenceLines, map: yMap, box: box, obstacles: drawn.obstacles)
    }
    body += ChartParts.frame(box)
    if !hasData { body += ChartParts.noData(box) }

    let slot: Double = box.width / Double(max(1, categories.count))
    for (i, label) in labels.enumerated() {
      let cx: Double = box.left + slot * (Double(i) + 0.5)
      body += SVG.line(cx, box.bottom, cx, box.bottom + 5, stroke: SVG.axisColor)
      let baseline: Double = box.bottom + 8 + SVG.tickSize
      switch mode {
      case 0:
        body += SVG.text(label, x: cx, y: baseline, size: SVG.tickSize, anchor: "middle")
      case 1:
        for (k, line) in wrapped[i].enumerated() {
          let y: Double = baseline + Double(k) * (SVG.tickSize + 2)
          body += SVG.text(line, x: cx, y: y, size: SVG.tickSize, anchor: "middle")
        }
      default:
        body += SVG.text(
          label, x: 0, y: 0, size: SVG.tickSize, anchor: "end",
          extra: "transform=\"translate(\(SVG.num(cx + 3)),\(SVG.num(box.bottom + 14))) rotate(-30)\"")
      }
    }
    body += ChartParts.yLabel(yLabel, tickLabels: yTicks.labels, box: box)

    var chartHeight: Double = box.bottom + bottom
    if placement == .right {
      body += ChartParts.legendRight(entries, x: box.right + 22, top: box.top)
      chartHeight = max(chartHeight, box.top + Double(entries.count) * ChartParts.legendRowHeight + 10)
    } else if placement == .bottom {
      let legendTop: Double = box.bottom + 10 + labelDepth + 6
      body += ChartParts.legendBottom(
        entries, rows: legendRows, centerX: box.left + box.width / 2, right: totalWidth - 10, top: legendTop)
    }
    return SVGFragment(width: box.right + rightMargin, height: chartHeight, body: body)
  }

  /// The bars and error bars, clipped to the plot, and their outlines for label placement.
  func bars(box: PlotBox, yMap: PixelMap, idPrefix: String) -> (svg: String, obstacles: Obstacles) {
    var obstacles: Obstacles = Obstacles()
    var s: String = "<defs><clipPath id=\"\(idPrefix)-clip\"><rect x=\"\(SVG.num(box.left))\""
    s += " y=\"\(SVG.num(box.top - 6))\" width=\"\(SVG.num(box.width))\" height=\"\(SVG.num(box.height + 6))\"/>"
    s += "</clipPath></defs>\n<g clip-path=\"url(#\(idPrefix)-clip)\">\n"
    let slot: Double = box.width / Double(max(1, categories.count))
    let groupWidth: Double = slot * 0.8
    let barWidth: Double = groupWidth / Double(max(1, series.count))
    let baseline: Double = min(max(0, min(yMap.lo, yMap.hi)), max(yMap.lo, yMap.hi))
    let basePx: Double = yMap.px(baseline)
    for (i, ser) in series.enumerated() {
      let color: String = SVG.color(i)
      s += "<g class=\"series\">\n"
      for (j, v) in ser.values.prefix(categories.count).enumerated() where v.isFinite {
        let x0: Double = box.left + slot * Double(j) + (slot - groupWidth) / 2 + barWidth * Double(i)
        let py: Double = yMap.px(v)
        let inset: Double = barWidth > 8 ? 1 : 0
        s += "<rect x=\"\(SVG.num(x0 + inset))\" y=\"\(SVG.num(min(py, basePx)))\""
        s += " width=\"\(SVG.num(max(1, barWidth - 2 * inset)))\" height=\"\(SVG.num(abs(basePx - py)))\""
        s += " fill=\"\(color)\"/>\n"
        obstacles.rects.append(Rect(x: x0, y: min(py, basePx), width: barWidth, height: abs(basePx - py)))
        if let errors: [Double] = ser.errors, j < errors.count, errors[j].isFinite, errors[j] != 0 {
          let e: Double = abs(errors[j])
          let cx: Double = x0 + barWidth / 2
          let lo: Double = yMap.px(v - e)
          let hi: Double = yMap.px(v + e)
          let cap: Double = min(4, barWidth / 3)
          s += SVG.line(cx, lo, cx, hi, stroke: "#222222", width: 1.2)
          obstacles.lines.append([(cx, lo), (cx, hi)])
          s += SVG.line(cx - cap, lo, cx + cap, lo, stroke: "#222222", width: 1.2)
          s += SVG.line(cx - cap, hi, cx + cap, hi, stroke: "#222222", width: 1.2)
        }
      }
      s += "</g>\n"
    }
    s += "</g>\n"
    return (s, obstacles)
  }
}
