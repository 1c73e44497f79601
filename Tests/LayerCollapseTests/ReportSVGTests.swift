import Foundation
import LayerCollapse
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Elements and texts of an SVG document, read with Foundation's XMLParser, which (unlike
/// XMLDocument on Linux) reports malformed input.
final class SVGReader: NSObject, XMLParserDelegate {
  var elements: [(name: String, attributes: [String: String])] = []
  var texts: [String] = []
  var current: String = ""

  func parser(
    _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
    attributes: [String: String] = [:]
  ) {
    elements.append((elementName, attributes))
    current = ""
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }

  func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
    if elementName == "text" { texts.append(current) }
    current = ""
  }

  /// The parsed document, or nil when it is not well-formed XML.
  static func read(_ svg: String) -> SVGReader? {
    let parser: XMLParser = XMLParser(data: Data(svg.utf8))
    let reader: SVGReader = SVGReader()
    parser.delegate = reader
    guard parser.parse(), parser.parserError == nil else { return nil }
    return reader
  }

  func count(_ name: String, where test: ([String: String]) -> Bool = { (_: [String: String]) -> Bool in true }) -> Int
  {
    elements.filter { (e: (name: String, attributes: [String: String])) -> Bool in e.name == name && test(e.attributes)
    }
    .count
  }

  /// The `d` attributes of the series lines.
  var linePaths: [String] {
    elements.compactMap { (e: (name: String, attributes: [String: String])) -> String? in
      e.name == "path" && e.attributes["class"] == "line" ? e.attributes["d"] ?? "" : nil
    }
  }
}

/// (x, y) pairs of an SVG path made of M and L commands, with the number of subpaths.
func pathPoints(_ d: String) -> (points: [(x: Double, y: Double)], subpaths: Int) {
  var numbers: [Double] = []
  var subpaths: Int = 0
  var token: String = ""
  for ch in d + " " {
    if ch == "M" || ch == "L" || ch == " " {
      if let v: Double = Double(token) { numbers.append(v) }
      token = ""
      if ch == "M" { subpaths += 1 }
    } else {
      token.append(ch)
    }
  }
  var points: [(x: Double, y: Double)] = []
  var i: Int = 0
  while i + 1 < numbers.count {
    points.append((numbers[i], numbers[i + 1]))
    i += 2
  }
  return (points, subpaths)
}

@Suite struct ReportSVGTests {
  static let steps: [Double] = [0, 100, 200, 300, 400]

  static func plot(series: [SVGPlot.Series], xScale: SVGPlot.XScale = .linear) -> SVGPlot {
    SVGPlot(
      title: "α per block", xLabel: "step", yLabel: "α", xScale: xScale, series: series,
      referenceLines: [ReferenceLine(y: 0.95, label: "threshold 0.95")])
  }

  @Test func lineChartIsWellFormedWithOnePathPerSeries() throws {
    let series: [SVGPlot.Series] = (0..<5).map { (b: Int) -> SVGPlot.Series in
      SVGPlot.Series(
        name: "block \(b)", x: Self.steps, y: Self.steps.map { (s: Double) -> Double in 1 - 0.5 / (1 + s / 100) },
        errors: [0.01, 0.01, 0.02, 0.01, 0.01], dashed: b % 2 == 1)
    }
    let svg: String = Self.plot(series: series).svg()
    let doc: SVGReader = try #require(SVGReader.read(svg))
    #expect(doc.elements.first?.name == "svg")
    #expect(doc.elements.first?.attributes["viewBox"] != nil)
    #expect(doc.linePaths.count == 5)
    #expect(doc.count("path") { (a: [String: String]) -> Bool in a["stroke-dasharray"] == "7 4" } == 2)
    // Legend names, axis labels, reference label and title are all there, once.
    for name in ["block 0", "block 4", "step", "α", "threshold 0.95", "α per block"] {
      #expect(doc.texts.filter { (t: String) -> Bool in t == name }.count == 1, "\(name)")
    }
    #expect(!svg.contains("<link") && !svg.contains("@import") && !svg.contains("href"))
  }

  @Test func ticksAreNiceDecimalValues() {
    #expect(AxisTicks.nice(from: 0, to: 1, maxCount: 6) == [0, 0.2, 0.4, 0.6, 0.8, 1])
    #expect(AxisTicks.nice(from: 0, to: 0.3, maxCount: 4) == [0, 0.1, 0.2, 0.3])
    #expect(AxisTicks.nice(from: 0.81, to: 0.835, maxCount: 6) == [0.81, 0.815, 0.82, 0.825, 0.83, 0.835])
    #expect(AxisTicks.nice(from: -7, to: 13, maxCount: 5) == [-5, 0, 5, 10])
    #expect(AxisTicks.nice(from: 0, to: 10_000, maxCount: 6) == [0, 2000, 4000, 6000, 8000, 10_000])
    #expect(AxisTicks.nice(from: 1e-4, to: 5e-4, maxCount: 5) == [1e-4, 2e-4, 3e-4, 4e-4, 5e-4])
    #expect(AxisTicks.nice(from: 3, to: 3, maxCount: 5) == [3])
    #expect(AxisTicks.nice(from: .nan, to: 1, maxCount: 5) == [])
    #expect(AxisTicks.nice(from: -1e308, to: 1e308, maxCount: 5) == [-1e308, 1e308])
  }

  @Test func tickLabelsShareTheFewestExactDecimals() {
    #expect(AxisTicks.labels([0, 0.1, 0.2, 0.30000000000000004]) == ["0.0", "0.1", "0.2", "0.3"])
    #expect(AxisTicks.labels([0.81, 0.815, 0.82]) == ["0.810", "0.815", "0.820"])
    #expect(AxisTicks.labels([-1, 0, 1]) == ["\u{2212}1", "0", "1"])
    #expect(AxisTicks.labels([0, 2_000_000, 4_000_000]) == ["0", "2,000,000", "4,000,000"])
    #expect(AxisTicks.labels([0, 2e9, 4e9]) == ["0", "2e9", "4e9"])
    #expect(AxisTicks.labels([1e6, 1.5e6, 2e6]) == ["1,000,000", "1,500,000", "2,000,000"])
    #expect(AxisTicks.labels([1e-5, 2.5e-5]) == ["1e\u{2212}5", "2.5e\u{2212}5"])
    #expect(AxisTicks.label(0.01) == "0.01")
    #expect(AxisTicks.label(10) == "10")
  }

  /// A λ sweep with λ = 0 on a log axis: x positions increase, decades are evenly spaced,
  /// and the ticks are labelled 0, 0.01, 0.1, 1, 10.
  @Test func logAxisPlacesZeroLeftOfTheDecades() throws {
    let lambdas: [Double] = [0, 0.01, 0.1, 1, 10]
    let plot: SVGPlot = Self.plot(
      series: [SVGPlot.Series(name: "after collapse", x: lambdas, y: [0.5, 0.6, 0.8, 0.8, 0.7])], xScale: .log)
    let doc: SVGReader = try #require(SVGReader.read(plot.svg()))
    let d: String = try #require(doc.linePaths.first)
    let xs: [Double] = pathPoints(d).points.map { (p: (x: Double, y: Double)) -> Double in p.x }
    #expect(xs.count == 5)
    for i in 1..<xs.count { #expect(xs[i] > xs[i - 1]) }
    let decade: Double = xs[2] - xs[1]
    #expect(abs((xs[3] - xs[2]) - decade) < 0.05 && abs((xs[4] - xs[3]) - decade) < 0.05)
    #expect(xs[1] - xs[0] > 0.25 * decade)
    for label in ["0", "0.01", "0.1", "1", "10"] { #expect(doc.texts.contains(label), "\(label)") }
  }

  @Test func wideLogAxisUsesPowersOfTen() throws {
    let xs: [Double] = [1e-5, 1e-3, 0.1, 10, 1000]
    let plot: SVGPlot = SVGPlot(xScale: .log, series: [SVGPlot.Series(name: "s", x: xs, y: [1, 2, 3, 4, 5])])
    let doc: SVGReader = try #require(SVGReader.read(plot.svg()))
    #expect(doc.texts.contains("10⁻⁵") && doc.texts.contains("10³"))
    #expect(!doc.texts.contains("0.001"))
  }

  /// A count on the x axis (blocks collapsed) gets whole-number ticks only; the same data
  /// on a linear axis gets halves (0.5, 1.5, …), which is why the scale exists.
  @Test func integerAxisTicksAreWholeNumbers() throws {
    let series = [SVGPlot.Series(name: "s", x: [0, 1, 2, 3, 4], y: [5, 4, 3, 2, 1])]
    let integer: SVGReader = try #require(SVGReader.read(SVGPlot(xScale: .integer, series: series).svg()))
    let linear: SVGReader = try #require(SVGReader.read(SVGPlot(xScale: .linear, series: series).svg()))
    #expect(linear.texts.contains("0.5"), "\(linear.texts)")
    for label in ["0", "1", "2", "3", "4"] { #expect(integer.texts.contains(label), "\(label)") }
    #expect(!integer.texts.contains { $0.contains(".") && Double($0) != nil }, "\(integer.texts)")
  }

  @Test func logAxisSkipsNegativeX() throws {
    let plot: SVGPlot = Self.plot(
      series: [SVGPlot.Series(name: "s", x: [-1, 1, 10, 100], y: [1, 2, 3, 4])], xScale: .log)
    let doc: SVGReader = try #require(SVGReader.read(plot.svg()))
    #expect(pathPoints(try #require(doc.linePaths.first)).points.count == 3)
  }

  /// Non-finite points are skipped and break the line; they never reach the output.
  @Test func nonFinitePointsAreSkipped() throws {
    let series: SVGPlot.Series = SVGPlot.Series(
      name: "loss", x: [0, 1, 2, 3, 4, .nan], y: [1, .nan, 3, .infinity, 5, 6], errors: [.nan, 1, 0.5, 1, .infinity, 1])
    let svg: String = Self.plot(series: [series]).svg()
    let doc: SVGReader = try #require(SVGReader.read(svg))
    let path: (points: [(x: Double, y: Double)], subpaths: Int) = pathPoints(try #require(doc.linePaths.first))
    #expect(path.points.count == 3 && path.subpaths == 3)
    #expect(!svg.lowercased().contains("nan") && !svg.contains("inf"))
    // Three isolated points each get a marker although markers are per-series automatic.
    #expect(doc.count("circle") == 3 + 1)  // + the legend sample
  }

  @Test func degenerateDataStillDraws() throws {
    let cases: [[SVGPlot.Series]] = [
      [],
      [SVGPlot.Series(name: "empty", x: [], y: [])],
      [SVGPlot.Series(name: "all NaN", x: [1, 2], y: [.nan, .nan])],
    ]
    for series in cases {
      let doc: SVGReader = try #require(SVGReader.read(Self.plot(series: series).svg()))
      #expect(doc.texts.contains("no data"))
      #expect(doc.linePaths.isEmpty)
    }
    let single: SVGPlot = SVGPlot(series: [SVGPlot.Series(name: "one", x: [3], y: [0.5], markers: false)])
    let one: SVGReader = try #require(SVGReader.read(single.svg()))
    #expect(!one.texts.contains("no data"))
    #expect(one.count("circle") == 1)  // the isolated point; no legend marker since markers are off
    #expect(one.texts.contains("0.50"))
    let huge: SVGPlot = SVGPlot(series: [SVGPlot.Series(name: "huge", x: [0, 1], y: [-1e308, 1e308])])
    #expect(SVGReader.read(huge.svg()) != nil)
    let flat: SVGPlot = SVGPlot(series: [SVGPlot.Series(name: "flat", x: [1, 2, 3], y: [2, 2, 2])])
    let f: SVGReader = try #require(SVGReader.read(flat.svg()))
    #expect(f.texts.contains("2.0") && f.texts.contains("1.9") && f.texts.contains("2.1"), "\(f.texts)")
  }

  @Test func escapesMarkupInTitlesLabelsAndNames() throws {
    var plot: SVGPlot = Self.plot(series: [SVGPlot.Series(name: "a<b> & \"c\"", x: [0, 1], y: [0, 1])])
    plot.title = "loss < 1 & acc > 0.9"
    plot.xLabel = "x & y"
    plot.referenceLines = [ReferenceLine(y: 0.5, label: "<chance>")]
    let svg: String = plot.svg()
    #expect(svg.contains("loss &lt; 1 &amp; acc &gt; 0.9"))
    let doc: SVGReader = try #require(SVGReader.read(svg))
    for text in ["loss < 1 & acc > 0.9", "x & y", "a<b> & \"c\"", "<chance>"] {
      #expect(doc.texts.contains(text), "\(text)")
    }
  }

  @Test func barChartDrawsOneBarPerFiniteValue() throws {
    let chart: SVGBarChart = SVGBarChart(
      title: "Accuracy", yLabel: "accuracy (%)", categories: ["ViT & CIFAR", "BERT", "GPT"],
      series: [
        SVGBarChart.Series(name: "original", values: [84.2, 81, 61.5], errors: [1.2, 0.9, 1.5]),
        SVGBarChart.Series(name: "collapsed", values: [83.9, .nan, 60.2]),
      ], referenceLines: [ReferenceLine(y: 50, label: "chance")])
    let doc: SVGReader = try #require(SVGReader.read(chart.svg()))
    let bars: Int = doc.count("rect") { (a: [String: String]) -> Bool in
      a["fill"] == "#0072B2" || a["fill"] == "#D55E00"
    }
    #expect(bars == 5 + 2)  // five bars and two legend swatches
    #expect(doc.texts.contains("ViT & CIFAR") && doc.texts.contains("chance") && doc.texts.contains("0"))
    let empty: SVGReader = try #require(SVGReader.read(SVGBarChart(title: "none").svg()))
    #expect(empty.texts.contains("no data"))
  }

  @Test func gridLaysOutChartsWithUniqueClipIds() throws {
    let a: SVGPlot = Self.plot(series: [SVGPlot.Series(name: "a", x: [0, 1], y: [0, 1])])
    let b: SVGBarChart = SVGBarChart(categories: ["x"], series: [SVGBarChart.Series(name: "b", values: [1])])
    let svg: String = SVGGrid.svg([a, b, a], columns: 2, title: "runs")
    let doc: SVGReader = try #require(SVGReader.read(svg))
    #expect(doc.count("svg") == 1)
    #expect(
      doc.count("g") { (attr: [String: String]) -> Bool in attr["transform"]?.hasPrefix("translate") == true } == 3)
    let ids: [String] = doc.elements.compactMap { (e: (name: String, attributes: [String: String])) -> String? in
      e.name == "clipPath" ? e.attributes["id"] : nil
    }
    #expect(ids.count == 3 && Set(ids).count == 3)
    #expect(doc.texts.first == "runs")
  }
}
