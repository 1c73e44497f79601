import Foundation

/// A line chart written as self-contained SVG: named series with colour-blind-safe colours
/// and marker shapes, optional dashes and error bars, nice ticks, a linear or log x axis,
/// labelled reference lines, and a legend outside the plot area.
///
/// Points with a non-finite x, y are skipped, and the line breaks there. A chart without
/// any drawable point shows "no data".
///
/// On a log x axis, x = 0 (the "no regularization" end of a λ sweep) gets its own position,
/// labelled "0", one decade (less when the data spans under three decades) left of the
/// smallest positive x, with a break mark on the axis between the two. Negative x values
/// cannot be placed on a log axis and are skipped.
public struct SVGPlot: SVGChart, Equatable {
  public enum XScale: Sendable, Equatable {
    case linear
    /// log₁₀, with a separate position for x = 0.
    case log
    /// Linear, for a count (blocks collapsed, seeds): ticks at whole numbers only.
    case integer
  }

  public struct Series: Sendable, Equatable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// Half-length of the error bar at each point (± around y), e.g. a standard error;
    /// non-finite or missing entries draw no bar.
    public var errors: [Double]?
    public var dashed: Bool
    /// Markers at the points; nil means: when the series has at most 30 points.
    /// An isolated point (no finite neighbour) always gets a marker.
    public var markers: Bool?
    /// A shaded band around the line (e.g. the min–max over seeds), low and high per point.
    public var band: Band?

    /// Points are (x[i], y[i]) for i below the shorter array's count.
    public init(
      name: String, x: [Double], y: [Double], errors: [Double]? = nil, dashed: Bool = false,
      markers: Bool? = nil, band: Band? = nil
    ) {
      self.name = name
      self.x = x
      self.y = y
      self.errors = errors
      self.dashed = dashed
      self.markers = markers
      self.band = band
    }
  }

  /// The low and high ends of a series' band at each point.
  public struct Band: Sendable, Equatable {
    public var low: [Double]
    public var high: [Double]

    public init(low: [Double], high: [Double]) {
      self.low = low
      self.high = high
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var xScale: XScale
  public var series: [Series]
  /// Fixed y axis range; nil fits the data, error bars and reference lines.
  public var yRange: ClosedRange<Double>?
  public var referenceLines: [ReferenceLine]
  public var legend: SVGLegend
  /// Size of the whole chart in pixels (the chart grows if the legend needs more height).
  public var width: Double
  public var height: Double

  public init(
    title: String = "", xLabel: String = "", yLabel: String = "", xScale: XScale = .linear, series: [Series] = [],
    yRange: ClosedRange<Double>? = nil, referenceLines: [ReferenceLine] = [], legend: SVGLegend = .right,
    width: Double = 640, height: Double = 400
  ) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.xScale = xScale
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
    if legend != .none {
      for (i, s) in series.enumerated() where !s.name.isEmpty {
        let marks: Bool = s.markers ?? (validCount(s) <= 30)
        entries.append(
          LegendEntry(
            name: s.name, color: SVG.color(i), shape: marks ? SVG.shape(i) : nil, dashed: s.dashed,
            isBar: false))
      }
    }

    let placement: SVGLegend = ChartParts.placement(legend, entries: entries, width: totalWidth)
    var bottom: Double = 5 + 5 + SVG.tickSize + 6
    if !xLabel.isEmpty { bottom += 6 + SVG.labelSize }
    var legendRows: [[Int]] = []
    if placement == .bottom {
      legendRows = ChartParts.legendRows(entries, width: totalWidth - 20)
      bottom += 10 + Double(legendRows.count) * ChartParts.legendRowHeight
    }
    bottom += 6
    // A tall legend below the plot makes the chart taller rather than the plot flat.
    let plotHeight: Double = max(60, height * 0.6, height - top - bottom)

    let x: XAxisData = xAxisData()
    let ys: [Double] = yValues(x)
    let hasData: Bool = !ys.isEmpty
    var yLo: Double
    var yHi: Double
    if let r: ClosedRange<Double> = yRange, r.lowerBound.isFinite, r.upperBound.isFinite, r.lowerBound < r.upperBound {
      yLo = r.lowerBound
      yHi = r.upperBound
    } else {
      let refs: [Double] = hasData ? referenceLines.map { (r: ReferenceLine) -> Double in r.y } : []
      (yLo, yHi) = ChartParts.yRange(values: ys + refs, zeroBaseline: false)
    }
    let yTicks: (values: [Double], labels: [String]) =
      hasData ? ChartParts.yTicks(lo: yLo, hi: yHi, plotHeight: plotHeight) : ([], [])
    let left: Double = ChartParts.leftMargin(tickLabels: yTicks.labels, axisLabel: yLabel)
    let right: Double = placement == .right ? 22 + ChartParts.legendRightWidth(entries) + 10 : 24
    let plotWidth: Double = max(80, totalWidth - left - right)
    let box: PlotBox = PlotBox(left: left, top: top, width: plotWidth, height: plotHeight)
    let yMap: PixelMap = PixelMap(lo: yLo, hi: yHi, pxLo: box.bottom, pxHi: box.top)
    let xMap: PixelMap = PixelMap(lo: x.lo, hi: x.hi, pxLo: box.left, pxHi: box.right)

    if hasData {
      body += ChartParts.yAxis(ticks: yTicks.values, labels: yTicks.labels, map: yMap, box: box)
      body += xAxis(x, map: xMap, box: box)
      body += ChartParts.referenceLines(referenceLines, map: yMap, box: box)
    }
    body += ChartParts.frame(box)
    if let t: Double = x.breakAt {
      body += breakMark(at: xMap.px(t), y: box.bottom)
    }
    if hasData {
      body += "<defs><clipPath id=\"\(idPrefix)-clip\"><rect x=\"\(SVG.num(box.left - 6))\""
      body += " y=\"\(SVG.num(box.top - 6))\" width=\"\(SVG.num(box.width + 12))\""
      body += " height=\"\(SVG.num(box.height + 12))\"/></clipPath></defs>\n"
      body += "<g clip-path=\"url(#\(idPrefix)-clip)\">\n"
      var obstacles: Obstacles = Obstacles()
      for (i, s) in series.enumerated() {
        let segments: [[PixelPoint]] = pixelSegments(s, x: x, xMap: xMap, yMap: yMap)
        body += drawSeries(s, index: i, segments: segments)
        for seg in segments {
          obstacles.lines.append(seg.map { (p: PixelPoint) -> (x: Double, y: Double) in (p.x, p.y) })
        }
      }
      body += "</g>\n"
      body += ChartParts.referenceLabels(referenceLines, map: yMap, box: box, obstacles: obstacles)
    } else {
      body += ChartParts.noData(box)
    }

    body += ChartParts.yLabel(yLabel, tickLabels: yTicks.labels, box: box)
    let labelTop: Double = box.bottom + 10 + SVG.tickSize + 6
    if !xLabel.isEmpty {
      let fitted: String = SVG.truncate(xLabel, width: totalWidth - 20, size: SVG.labelSize)
      body += SVG.text(
        fitted, x: box.left + box.width / 2, y: labelTop + SVG.labelSize, size: SVG.labelSize, anchor: "middle")
    }
    var chartHeight: Double = box.bottom + bottom
    if placement == .right {
      body += ChartParts.legendRight(entries, x: box.right + 22, top: box.top)
      chartHeight = max(chartHeight, box.top + Double(entries.count) * ChartParts.legendRowHeight + 10)
    } else if placement == .bottom {
      let legendTop: Double = labelTop + (xLabel.isEmpty ? 0 : 6 + SVG.labelSize) + 6
      body += ChartParts.legendBottom(
        entries, rows: legendRows, centerX: box.left + box.width / 2, right: totalWidth - 10, top: legendTop)
    }
    return SVGFragment(width: box.right + right, height: chartHeight, body: body)
  }

  // MARK: - Data

  /// The x axis in transformed coordinates (log₁₀ x on a log axis).
  struct XAxisData {
    var log: Bool
    var lo: Double
    var hi: Double
    /// Position of x = 0 on a log axis, when some point has x = 0.
    var zeroAt: Double?
    /// Where the axis break between the zero position and the decades goes.
    var breakAt: Double?
    /// Smallest transformed value of a regular tick.
    var tickLo: Double

    func t(_ x: Double) -> Double? {
      guard x.isFinite else { return nil }
      if !log { return x }
      if x > 0 { return log10(x) }
      if x == 0 { return zeroAt }
      return nil
    }
  }

  func validCount(_ s: Series) -> Int {
    var n: Int = 0
    for j in 0..<min(s.x.count, s.y.count) where s.x[j].isFinite && s.y[j].isFinite { n += 1 }
    return n
  }

  func xAxisData() -> XAxisData {
    var xs: [Double] = []
    for s in series {
      for j in 0..<min(s.x.count, s.y.count) where s.x[j].isFinite && s.y[j].isFinite { xs.append(s.x[j]) }
    }
    let positive: [Double] = xs.filter { (v: Double) -> Bool in v > 0 }
    if xScale == .log, let pMin: Double = positive.min(), let pMax: Double = positive.max() {
      let tMin: Double = log10(pMin)
      let tMax: Double = log10(pMax)
      var lo: Double = tMin
      var zeroAt: Double? = nil
      var breakAt: Double? = nil
      var tickLo: Double = tMin
      if xs.contains(0) {
        let gap: Double = min(1, max(0.3, (tMax - tMin) / 3))
        zeroAt = tMin - gap
        breakAt = tMin - gap / 2
        tickLo = tMin - gap / 2 + 0.05
        lo = tMin - gap
      }
      if lo == tMax { return XAxisData(log: true, lo: lo - 0.5, hi: tMax + 0.5, tickLo: lo - 0.5) }
      let margin: Double = (tMax - lo) * 0.04
      return XAxisData(
        log: true, lo: lo - margin, hi: tMax + margin, zeroAt: zeroAt, breakAt: breakAt,
        tickLo: zeroAt == nil ? lo - margin : tickLo)
    }
    let finite: [Double] = xScale == .log ? xs.filter { (v: Double) -> Bool in v >= 0 } : xs
    guard let lo: Double = finite.min(), let hi: Double = finite.max() else {
      return XAxisData(log: false, lo: 0, hi: 1, tickLo: 0)
    }
    if lo == hi {
      let pad: Double = lo == 0 ? 1 : abs(lo) * 0.1
      return XAxisData(log: false, lo: lo - pad, hi: hi + pad, tickLo: lo - pad)
    }
    let margin: Double = (hi - lo) * 0.03
    return XAxisData(log: false, lo: lo - margin, hi: hi + margin, tickLo: lo - margin)
  }

  /// Every drawable y, with its error bar ends.
  func yValues(_ x: XAxisData) -> [Double] {
    var ys: [Double] = []
    for s in series {
      for j in 0..<min(s.x.count, s.y.count) where s.y[j].isFinite && x.t(s.x[j]) != nil {
        ys.append(s.y[j])
        if let errors: [Double] = s.errors, j < errors.count, errors[j].isFinite {
          ys.append(s.y[j] - abs(errors[j]))
          ys.append(s.y[j] + abs(errors[j]))
        }
        if let b: Band = s.band, j < b.low.count, j < b.high.count, b.low[j].isFinite, b.high[j].isFinite {
          ys.append(b.low[j])
          ys.append(b.high[j])
        }
      }
    }
    return ys
  }

  // MARK: - Drawing

  /// Vertical grid lines, tick marks and labels, with the fewest-needed thinning so that
  /// labels do not overlap.
  func xAxis(_ x: XAxisData, map: PixelMap, box: PlotBox) -> String {
    var chosen: [(t: Double, label: String)] = []
    var count: Int = max(2, min(11, Int(box.width / 55)))
    while count >= 2 {
      var ticks: [(t: Double, label: String)] = []
      if x.log {
        let values: [Double] = AxisTicks.logTicks(tLo: x.tickLo, tHi: x.hi, maxCount: count)
        let labels: [String] = AxisTicks.logLabels(values)
        ticks = zip(values, labels).map { (p: (Double, String)) -> (t: Double, label: String) in (log10(p.0), p.1) }
        if let z: Double = x.zeroAt { ticks.insert((z, "0"), at: 0) }
      } else {
        var values: [Double] = AxisTicks.nice(from: x.lo, to: x.hi, maxCount: count)
        if xScale == .integer { values = values.filter { $0 == $0.rounded() } }
        ticks = Array(zip(values, AxisTicks.labels(values))).map {
          (p: (Double, String)) -> (t: Double, label: String) in
          (p.0, p.1)
        }
      }
      chosen = ticks
      if labelsFit(ticks, map: map) { break }
      count -= 1
    }
    var s: String = ""
    for tick in chosen where map.contains(tick.t) {
      let px: Double = map.px(tick.t)
      s += SVG.line(px, box.top, px, box.bottom, stroke: SVG.gridColor)
      s += SVG.line(px, box.bottom, px, box.bottom + 5, stroke: SVG.axisColor)
      s += SVG.text(tick.label, x: px, y: box.bottom + 8 + SVG.tickSize, size: SVG.tickSize, anchor: "middle")
    }
    return s
  }

  func labelsFit(_ ticks: [(t: Double, label: String)], map: PixelMap) -> Bool {
    for i in 1..<max(1, ticks.count) {
      let gap: Double = abs(map.px(ticks[i].t) - map.px(ticks[i - 1].t))
      let need: Double =
        (SVG.textWidth(ticks[i].label, size: SVG.tickSize) + SVG.textWidth(ticks[i - 1].label, size: SVG.tickSize))
        / 2 + 10
      if gap < need { return false }
    }
    return true
  }

  /// Two slanted strokes across a gap in the x axis.
  func breakMark(at px: Double, y: Double) -> String {
    var s: String =
      "<rect x=\"\(SVG.num(px - 4))\" y=\"\(SVG.num(y - 3))\" width=\"8\" height=\"6\" fill=\"#ffffff\"/>\n"
    s += SVG.line(px - 6, y + 5, px - 2, y - 5, stroke: SVG.axisColor)
    s += SVG.line(px + 2, y + 5, px + 6, y - 5, stroke: SVG.axisColor)
    return s
  }

  struct PixelPoint {
    var x: Double
    var y: Double
    /// Error bar half-length in pixels.
    var err: Double?
    /// The band's ends in pixels.
    var band: (low: Double, high: Double)?
  }

  /// The drawable points of `s` in pixels, split where a point cannot be drawn.
  func pixelSegments(_ s: Series, x: XAxisData, xMap: PixelMap, yMap: PixelMap) -> [[PixelPoint]] {
    var segments: [[PixelPoint]] = []
    var current: [PixelPoint] = []
    for j in 0..<min(s.x.count, s.y.count) {
      guard s.y[j].isFinite, let t: Double = x.t(s.x[j]) else {
        if !current.isEmpty { segments.append(current) }
        current = []
        continue
      }
      let py: Double = yMap.px(s.y[j])
      var err: Double? = nil
      if let errors: [Double] = s.errors, j < errors.count, errors[j].isFinite, errors[j] != 0 {
        err = abs(yMap.px(s.y[j] + abs(errors[j])) - py)
      }
      var band: (low: Double, high: Double)? = nil
      if let b: Band = s.band, j < b.low.count, j < b.high.count, b.low[j].isFinite, b.high[j].isFinite {
        band = (yMap.px(b.low[j]), yMap.px(b.high[j]))
      }
      current.append(PixelPoint(x: xMap.px(t), y: py, err: err, band: band))
    }
    if !current.isEmpty { segments.append(current) }
    return segments
  }

  func drawSeries(_ s: Series, index: Int, segments: [[PixelPoint]]) -> String {
    let color: String = SVG.color(index)
    var d: String = ""
    for seg in segments {
      for (k, p) in seg.enumerated() {
        d += (k == 0 ? "M" : "L") + SVG.num(p.x) + " " + SVG.num(p.y)
      }
    }
    var out: String = "<g>\n"
    // The band first, under the line: high ends left to right, low ends back.
    for seg in segments {
      let banded: [(x: Double, low: Double, high: Double)] = seg.compactMap { (p: PixelPoint) in
        p.band.map { (p.x, $0.low, $0.high) }
      }
      guard banded.count >= 2 else { continue }
      var area: String = ""
      for (k, b) in banded.enumerated() { area += (k == 0 ? "M" : "L") + SVG.num(b.x) + " " + SVG.num(b.high) }
      for b in banded.reversed() { area += "L" + SVG.num(b.x) + " " + SVG.num(b.low) }
      out += "<path class=\"band\" d=\"\(area)Z\" fill=\"\(color)\" fill-opacity=\"0.18\" stroke=\"none\"/>\n"
    }
    for seg in segments {
      for p in seg {
        guard let e: Double = p.err else { continue }
        out += SVG.line(p.x, p.y - e, p.x, p.y + e, stroke: color, width: 1.2)
        out += SVG.line(p.x - 3.5, p.y - e, p.x + 3.5, p.y - e, stroke: color, width: 1.2)
        out += SVG.line(p.x - 3.5, p.y + e, p.x + 3.5, p.y + e, stroke: color, width: 1.2)
      }
    }
    let dash: String = s.dashed ? " stroke-dasharray=\"7 4\"" : ""
    out += "<path class=\"line\" d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\""
    out += " stroke-linejoin=\"round\" stroke-linecap=\"round\"\(dash)/>\n"
    let marks: Bool = s.markers ?? (validCount(s) <= 30)
    for seg in segments where marks || seg.count == 1 {
      for p in seg { out += SVG.marker(shape: SVG.shape(index), x: p.x, y: p.y, color: color) }
    }
    out += "</g>\n"
    return out
  }
}
