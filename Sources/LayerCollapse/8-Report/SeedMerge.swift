import Foundation

/// Reports of the same experiments run with several seeds, merged into one: every table
/// cell that holds a number in each seed becomes "mean ± sample standard deviation", every
/// curve the mean with a shaded min–max band, every bar the mean with the standard
/// deviation as its error bar. Text that differs between seeds is the first seed's, marked.
public enum SeedMerge {
  /// `documents[i]` is the report of seed `seeds[i]`. Documents whose blocks do not line up
  /// (an experiment missing from one seed) merge up to the first block that differs; the
  /// rest is the first seed's, with a note.
  public static func merge(_ documents: [ReportDocument], seeds: [String]) -> ReportDocument {
    guard var merged = documents.first else { return ReportDocument(title: "") }
    let n = documents.count
    merged.figureNote = n == 1 ? "1 seed" : nil  // merged figures say it in their own titles
    guard n > 1 else { return merged }
    var parts: [ReportDocument.Part] = []
    let first = documents[0].parts
    for (i, part) in first.enumerated() {
      let others = documents.dropFirst().map { i < $0.parts.count ? $0.parts[i] : nil }
      if others.contains(where: { $0 == nil || !sameKind($0!, part) }) {
        parts.append(
          .text(
            "*The seeds' reports differ from here on (an experiment missing from one of them): what follows is seed "
              + "\(seeds[0])'s alone; each seed's report is in its seed directory.*"))
        parts += first[i...].map { mark($0, seed: seeds[0], of: n) }
        break
      }
      let all = [part] + others.map { $0! }
      parts.append(mergeParts(all, seeds: seeds))
    }
    merged.replaceParts(parts)
    return merged
  }

  static func sameKind(_ a: ReportDocument.Part, _ b: ReportDocument.Part) -> Bool {
    switch (a, b) {
    case (.text, .text): return true
    case (.table(let x), .table(let y)): return x.header == y.header && x.rows.count == y.rows.count
    case (.image(_, let f, _), .image(_, let g, _)): return f == g
    default: return false
    }
  }

  /// A part left as one seed's: its figure says which seed it shows.
  static func mark(_ part: ReportDocument.Part, seed: String, of n: Int) -> ReportDocument.Part {
    guard case .image(let chart, let file, let alt) = part else { return part }
    return .image(noted(chart, "seed \(seed) of \(n) shown"), file: file, alt: alt)
  }

  static func noted(_ chart: ReportDocument.Chart, _ note: String) -> ReportDocument.Chart {
    switch chart {
    case .plot(var p):
      p.title += " (\(note))"
      return .plot(p)
    case .bars(var b):
      b.title += " (\(note))"
      return .bars(b)
    case .svg: return chart
    }
  }

  static func mergeParts(_ all: [ReportDocument.Part], seeds: [String]) -> ReportDocument.Part {
    switch all[0] {
    case .text(let t):
      let same = all.allSatisfy { if case .text(let u) = $0 { return u == t } else { return false } }
      if same || t.hasPrefix("#") { return .text(t) }
      return .text(t + " *(seed \(seeds[0])'s run; the other seeds' text is in their reports)*")
    case .table(let table):
      var out = table
      let tables = all.compactMap { p -> MarkdownTable? in if case .table(let t) = p { return t } else { return nil } }
      for r in out.rows.indices {
        for c in out.rows[r].indices {
          out.rows[r][c] = cell(tables.map { c < $0.rows[r].count ? $0.rows[r][c] : "" })
        }
      }
      return .table(out)
    case .image(let chart, let file, let alt):
      let charts = all.compactMap { p -> ReportDocument.Chart? in
        if case .image(let c, _, _) = p { return c } else { return nil }
      }
      return .image(mergeCharts(charts) ?? noted(chart, "seed \(seeds[0]) of \(all.count) shown"), file: file, alt: alt)
    }
  }

  // MARK: cells

  /// A cell as a number: its value, the decimals written, whether a + sign was written,
  /// and the text after it (unit, "± SE" dropped).
  struct NumericCell: Equatable {
    var value: Double
    var decimals: Int
    var plus: Bool
    var suffix: String
  }

  static func parse(_ text: String) -> NumericCell? {
    var s = Substring(text.trimmingCharacters(in: .whitespaces))
    var sign = 1.0
    var plus = false
    if s.hasPrefix("−") || s.hasPrefix("-") {
      sign = -1
      s = s.dropFirst()
    } else if s.hasPrefix("+") {
      plus = true
      s = s.dropFirst()
    }
    var digits = ""
    var decimals = 0
    var afterPoint = false
    while let ch = s.first, ch.isASCII && (ch.isNumber || ch == "." || ch == ",") {
      if ch == "." {
        if afterPoint { return nil }
        afterPoint = true
      } else if ch != "," {
        digits.append(ch)
        if afterPoint { decimals += 1 }
      }
      s = s.dropFirst()
    }
    guard !digits.isEmpty, let raw = Double(digits) else { return nil }
    let value = sign * raw / pow(10, Double(decimals))
    // "84.2 ± 1.2 %": the ± part (a per-seed standard error) gives way to the spread.
    var rest = String(s)
    if rest.hasPrefix(" ± ") {
      var tail = rest.dropFirst(3)
      while let ch = tail.first, ch.isASCII && (ch.isNumber || ch == ".") { tail = tail.dropFirst() }
      rest = String(tail)
    }
    // A suffix with digits is more than a unit ("51.6, 51.4"): not one number.
    if rest.contains(where: { $0.isNumber }) { return nil }
    return NumericCell(value: value, decimals: decimals, plus: plus, suffix: rest)
  }

  /// The seeds' cells merged: equal cells stay, unless they carry a single run's "± SE"
  /// (that gives way to the spread, "± 0.0"); numbers with the same unit become
  /// "mean ± sd"; anything else lists the seeds' cells, "a / b / c".
  static func cell(_ cells: [String]) -> String {
    guard let first = cells.first else { return "" }
    if cells.allSatisfy({ $0 == first }) && !first.contains(" ± ") { return first }
    let parsed = cells.map(parse)
    guard let p0 = parsed[0], parsed.allSatisfy({ $0 != nil && $0!.suffix == p0.suffix }) else {
      return cells.joined(separator: " / ")
    }
    let values = parsed.map { $0!.value }
    let decimals = parsed.map { $0!.decimals }.max() ?? 0
    let (mean, sd) = meanAndDeviation(values)
    let head =
      parsed.contains(where: { $0!.plus })
      ? NumberFormat.delta(mean, decimals: decimals)
      : NumberFormat.fixed(mean, decimals: decimals)
    return head + " ± " + NumberFormat.fixed(sd, decimals: decimals) + p0.suffix
  }

  /// The mean and the sample standard deviation (n − 1; 0 for one value).
  public static func meanAndDeviation(_ values: [Double]) -> (mean: Double, deviation: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let n = Double(values.count)
    let mean = values.reduce(0, +) / n
    guard values.count > 1 else { return (mean, 0) }
    var sum = 0.0
    for v in values { sum += (v - mean) * (v - mean) }
    return (mean, (sum / (n - 1)).squareRoot())
  }

  /// The two-sided 95 % confidence interval of the mean of `values` (Student's t with n − 1
  /// degrees of freedom: with three seeds the normal 1.96 would claim more than three runs
  /// show). nil for fewer than two values.
  public static func confidenceInterval(_ values: [Double]) -> ClosedRange<Double>? {
    guard values.count > 1 else { return nil }
    let (mean, sd) = meanAndDeviation(values)
    let half = studentT975(degrees: values.count - 1) * sd / Double(values.count).squareRoot()
    return (mean - half)...(mean + half)
  }

  /// The 97.5 % quantile of Student's t distribution (statistical tables to 3 decimals;
  /// beyond 30 degrees of freedom 1.96 + 2.4/df, within 0.002 of the exact value).
  public static func studentT975(degrees: Int) -> Double {
    let table: [Double] = [
      12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
      2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ]
    guard degrees > table.count else { return table[max(degrees, 1) - 1] }
    return 1.96 + 2.4 / Double(degrees)
  }

  /// "−0.0312 to 0.0101: within the spread" for a comparison measured in every seed;
  /// "—" for a measurement or a comparison some seed lacks.
  public static func effect(_ values: [Double], noEffect: Double?, seeds: Int) -> String {
    guard let none = noEffect, values.count == seeds, let ci = confidenceInterval(values) else {
      return NumberFormat.missing
    }
    let range = NumberFormat.fixed(ci.lowerBound, decimals: 4) + " to " + NumberFormat.fixed(ci.upperBound, decimals: 4)
    return range + (ci.contains(none) ? ": within the spread" : ": beyond the spread")
  }

  // MARK: charts

  /// Plots with the same series (names and x values) become their mean with a min–max band;
  /// bar charts with the same bars, their mean with the standard deviation as error bars.
  /// nil when the charts do not line up.
  static func mergeCharts(_ charts: [ReportDocument.Chart]) -> ReportDocument.Chart? {
    switch charts[0] {
    case .plot(let p0):
      let plots = charts.compactMap { c -> SVGPlot? in if case .plot(let p) = c { return p } else { return nil } }
      guard plots.count == charts.count else { return nil }
      var out = p0
      for (k, s) in p0.series.enumerated() {
        guard plots.allSatisfy({ k < $0.series.count && $0.series[k].name == s.name && $0.series[k].x == s.x }) else {
          return nil
        }
        let count = plots.map { min($0.series[k].x.count, $0.series[k].y.count) }.min() ?? 0
        var ys: [Double] = []
        var low: [Double] = []
        var high: [Double] = []
        for j in 0..<count {
          let v = plots.map { $0.series[k].y[j] }
          if v.allSatisfy(\.isFinite) {
            ys.append(meanAndDeviation(v).mean)
            low.append(v.min()!)
            high.append(v.max()!)
          } else {
            ys.append(.nan)
            low.append(.nan)
            high.append(.nan)
          }
        }
        out.series[k] = SVGPlot.Series(
          name: s.name, x: Array(s.x.prefix(count)), y: ys, dashed: s.dashed, markers: s.markers,
          band: SVGPlot.Band(low: low, high: high))
      }
      out.title += " (mean of \(plots.count) seeds, shaded: min–max)"
      return .plot(out)
    case .bars(let b0):
      let bars = charts.compactMap { c -> SVGBarChart? in if case .bars(let b) = c { return b } else { return nil } }
      guard bars.count == charts.count,
        bars.allSatisfy({ $0.categories == b0.categories && $0.series.map(\.name) == b0.series.map(\.name) })
      else { return nil }
      var out = b0
      for (k, s) in b0.series.enumerated() {
        guard bars.allSatisfy({ $0.series[k].values.count == s.values.count }) else { return nil }
        let stats = s.values.indices.map { j in meanAndDeviation(bars.map { $0.series[k].values[j] }) }
        out.series[k] = SVGBarChart.Series(name: s.name, values: stats.map(\.mean), errors: stats.map(\.deviation))
      }
      out.title += " (mean ± sd of \(bars.count) seeds)"
      return .bars(out)
    case .svg: return nil
    }
  }
}
