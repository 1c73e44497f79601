import Foundation
import LayerCollapse
import Testing

/// Several seeds' reports merged into one (issue: results a reviewer would trust).
@Suite struct SeedMergeTests {
  static func document(_ accuracy: String, _ gap: String, _ count: String, ys: [Double], text: String) -> ReportDocument
  {
    var d = ReportDocument(title: "results")
    d.heading("2. CIFAR")
    d.paragraph(text)
    var t = MarkdownTable(header: ["run", "accuracy %", "gap", "parameters", "α per block"])
    t.append(["plain", accuracy, gap, count, "0.99, 0.98"])
    d.table(t)
    d.image(
      SVGPlot(title: "Accuracy", series: [.init(name: "plain", x: [1, 2, 3], y: ys, errors: [1, 1, 1])]),
      file: "figures/a.svg", alt: "accuracy")
    return d
  }

  @Test func tablesBecomeMeanAndSampleDeviationAndCurvesGetABand() throws {
    let docs = [
      Self.document("50.0 ± 1.6", "+2.0", "29,482", ys: [10, 20, 30], text: "same"),
      Self.document("52.0 ± 1.6", "−1.0", "29,482", ys: [12, 22, 33], text: "same"),
      Self.document("54.5 ± 1.6", "+5.5", "29,482", ys: [14, 18, 36], text: "same"),
    ]
    // Seeds that agree to the digit: the single run's binomial ± 1.3 gives way to the
    // spread, 0.
    let same = SeedMerge.merge(
      (0..<3).map { _ in Self.document("81.7 ± 1.3", "+2.0", "10", ys: [1, 2, 3], text: "same") },
      seeds: ["1", "2", "3"])
    if case .table(let t) = same.parts[2] {
      #expect(t.rows[0][1] == "81.7 ± 0.0" && t.rows[0][2] == "+2.0")
    } else {
      Issue.record("no table at part 2")
    }
    let merged = SeedMerge.merge(docs, seeds: ["1", "2", "3"])
    guard case .table(let t) = merged.parts[2] else {
      Issue.record("no table at part 2")
      return
    }
    // mean 52.1667, sample sd √((2.1667² + 0.1667² + 2.3333²)/2) = 2.2546
    #expect(t.rows[0][1] == "52.2 ± 2.3")
    // mean +2.1667, sd 3.2532: signed, because the seeds' cells were signed
    #expect(t.rows[0][2] == "+2.2 ± 3.3")
    #expect(t.rows[0][3] == "29,482")  // equal in every seed: kept as written
    #expect(t.rows[0][4] == "0.99, 0.98")
    guard case .image(.plot(let p), _, _) = merged.parts[3] else {
      Issue.record("no plot at part 3")
      return
    }
    #expect(p.series[0].y == [12, 20, 33])
    #expect(p.series[0].band == SVGPlot.Band(low: [10, 18, 30], high: [14, 22, 36]))
    #expect(p.series[0].errors == nil)
    #expect(p.title == "Accuracy (mean of 3 seeds, shaded: min–max)")
    let svg = try #require(merged.files.first { $0.path == "figures/a.svg" }).contents
    #expect(svg.contains("class=\"band\"") && svg.contains("mean of 3 seeds"))
  }

  @Test func cellsOfDifferentKindsAreListedAndTextThatDiffersIsMarked() {
    let a = Self.document("50.0", "+1.0", "10", ys: [1, 2, 3], text: "seed one's sentence")
    let b = Self.document("n/a", "+1.0", "10 %", ys: [1, 2, 3], text: "seed two's sentence")
    let merged = SeedMerge.merge([a, b], seeds: ["1", "2"])
    guard case .table(let t) = merged.parts[2], case .text(let p) = merged.parts[1] else {
      Issue.record("unexpected parts")
      return
    }
    #expect(t.rows[0][1] == "50.0 / n/a")
    #expect(t.rows[0][3] == "10 / 10 %")  // different units are not averaged
    #expect(p.hasPrefix("seed one's sentence") && p.contains("seed 1's run"))
    // One seed: nothing to merge, but every figure says it shows one seed.
    let one = SeedMerge.merge([a], seeds: ["1"])
    let svg = one.files.first { $0.path == "figures/a.svg" }?.contents ?? ""
    #expect(svg.contains("Accuracy (1 seed)"))
  }

  @Test func reportsThatDoNotLineUpFallBackToTheFirstSeedAndSaySo() {
    let a = Self.document("50.0", "+1.0", "10", ys: [1, 2, 3], text: "x")
    var b = ReportDocument(title: "results")
    b.heading("2. CIFAR")
    let merged = SeedMerge.merge([a, b], seeds: ["1", "2"])
    #expect(merged.blocks.count == a.blocks.count + 1)
    #expect(merged.blocks[1].contains("differ from here on"))
    let svg = merged.files.first { $0.path == "figures/a.svg" }?.contents ?? ""
    #expect(svg.contains("seed 1 of 2 shown"))
  }

  @Test func meanAndSampleDeviation() {
    let (m, s) = SeedMerge.meanAndDeviation([1, 2, 3, 4])
    #expect(m == 2.5 && abs(s - (5.0 / 3).squareRoot()) < 1e-12)
    #expect(SeedMerge.meanAndDeviation([7]) == (7, 0))
  }

  /// Whether a comparison exceeds the seeds' spread: the 95 % interval of its mean, with
  /// Student's t (4.303 for three seeds, not the normal 1.96).
  @Test func effectsAreJudgedByTheIntervalOfTheirMean() throws {
    let ci = try #require(SeedMerge.confidenceInterval([0.01, 0.02, 0.03]))
    let half = 4.303 * 0.01 / 3.0.squareRoot()
    #expect(abs(ci.lowerBound - (0.02 - half)) < 1e-12 && abs(ci.upperBound - (0.02 + half)) < 1e-12)
    #expect(SeedMerge.confidenceInterval([0.5]) == nil)
    #expect(SeedMerge.studentT975(degrees: 1) == 12.706 && SeedMerge.studentT975(degrees: 30) == 2.042)
    // Past the table the approximation stays within 0.002 of t(40) = 2.021 and t(120) = 1.980.
    #expect(abs(SeedMerge.studentT975(degrees: 40) - 2.021) < 0.002)
    #expect(abs(SeedMerge.studentT975(degrees: 120) - 1.980) < 0.002)
    #expect(SeedMerge.effect([0.01, 0.02, 0.03], noEffect: 0, seeds: 3) == "−0.0048 to 0.0448: within the spread")
    #expect(SeedMerge.effect([0.020, 0.021, 0.022], noEffect: 0, seeds: 3) == "0.0185 to 0.0235: beyond the spread")
    // A ratio is judged against 1.
    #expect(SeedMerge.effect([0.90, 0.95, 1.00], noEffect: 1, seeds: 3).hasSuffix(": within the spread"))
    #expect(SeedMerge.effect([0.31, 0.32, 0.33], noEffect: 1, seeds: 3).hasSuffix(": beyond the spread"))
    // A measurement, or a comparison one seed lacks, has no verdict.
    #expect(SeedMerge.effect([0.01, 0.02, 0.03], noEffect: nil, seeds: 3) == "—")
    #expect(SeedMerge.effect([0.01, 0.02], noEffect: 0, seeds: 3) == "—")
  }
}

/// `report` on a root of seed directories: the bands are judged on the means and every
/// seed's values are in results.csv.
@Suite(.serialized) struct SeedReportCommandTests {
  @Test func seedsAreMergedAndBandsUseTheMean() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    for seed in [1, 2] {
      let root = ws.dir + "/runs/seed\(seed)"
      try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
      try "scripts/reproduce.sh full, seed \(seed)\n".write(
        toFile: root + "/" + ExperimentReport.rootMarker, atomically: true, encoding: .utf8)
      #expect(
        try CLI.run([
          "train", config, "seed=\(seed)", "output.dir=\(root)/cifar/plain", "lc.lambda=0", "lc.blocks=0",
        ]).code == 0)
      #expect(
        try CLI.run([
          "train", config, "seed=\(seed)", "output.dir=\(root)/cifar/lc", "lc.mode=decoupled", "lc.lambda=400",
        ]).code == 0)
      #expect(try CLI.run(["collapse", "\(root)/cifar/lc/last.h5"]).code == 0)
      for c in ["plain/best.h5", "lc/last.h5", "lc/collapsed.h5"] {
        #expect(try CLI.run(["eval", "\(root)/cifar/\(c)"]).code == 0)
      }
    }
    // Each seed's plain accuracy, from its own report.
    var accuracies: [Double] = []
    for seed in [1, 2] {
      let r = try CLI.run(["report", ws.dir + "/runs/seed\(seed)", "-o", ws.dir + "/single\(seed)"])
      #expect(r.code == 0, "\(r.stderr)")
      let csv = try String(contentsOfFile: ws.dir + "/single\(seed)/results.csv", encoding: .utf8)
      let row = try #require(csv.split(separator: "\n").first { $0.hasPrefix("cifar,plain,best_accuracy,") })
      accuracies.append(try #require(Double(row.split(separator: ",")[3])))
    }
    let mean = (accuracies[0] + accuracies[1]) / 2
    // A band around the mean passes; one that only a single seed's value fits fails.
    let bands = try ws.config(
      "bands.yaml",
      """
      cifar:
        plain_best_accuracy: [\(mean - 1e-9), \(mean + 1e-9)]
        collapsed_blocks: [1, 1]

      """)
    // Wall times, as scripts/reproduce.sh records them: a malformed line names its file and
    // line (65); good ones become a table merged like any other (mean ± sd across seeds).
    let times = ws.dir + "/runs/seed2/times.tsv"
    try "2\t240\n9\t4 min\n".write(toFile: times, atomically: true, encoding: .utf8)
    let bad = try CLI.run(["report", ws.dir + "/runs", "-o", ws.dir + "/bad"])
    #expect(bad.code == 65 && bad.stderr.contains("seed2/times.tsv:2: malformed wall-time line"), "\(bad.stderr)")
    try "2\t240\n".write(toFile: times, atomically: true, encoding: .utf8)
    try "2\t120\n".write(toFile: ws.dir + "/runs/seed1/times.tsv", atomically: true, encoding: .utf8)
    let r = try CLI.run(["report", ws.dir + "/runs", "-o", ws.dir + "/out", "--check", bands])
    #expect(r.code == 0, "\(r.stdout) \(r.stderr)")
    let timed = try String(contentsOfFile: ws.dir + "/out/results.md", encoding: .utf8)
    #expect(timed.contains("## Wall time"))
    func row(_ md: String, _ first: String) -> String? {
      md.split(separator: "\n").first { $0.hasPrefix("| " + first) }.map {
        String($0.split(separator: "|")[1...].joined(separator: "|"))
      }
    }
    #expect(row(timed, "2. CIFAR-10 small set, ViT")?.hasSuffix(" 3.0 ± 1.4 ") == true, "\(timed)")
    #expect(row(timed, "all of the above")?.hasSuffix(" 3.0 ± 1.4 ") == true)
    let seed1 = try String(contentsOfFile: ws.dir + "/out/seed1/results.md", encoding: .utf8)
    #expect(row(seed1, "2. CIFAR-10 small set, ViT")?.hasSuffix(" 2.0 ") == true, "\(seed1)")
    let md = try String(contentsOfFile: ws.dir + "/out/results.md", encoding: .utf8)
    #expect(md.contains("2 seeds (1, 2)") && md.contains("## 2. CIFAR-10 small set, ViT"))
    // A comparison gets a verdict on its seeds' interval (t = 12.706 for 2 seeds); a
    // measurement none. Cells after the key: what, mean ± sd, effect, seed 1, seed 2.
    let cells = try #require(row(md, "cifar.lc_minus_plain")).split(separator: "|").map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    #expect(cells.count == 5, "\(cells)")
    let seedValues = try cells[3...4].map { try #require(Double($0.replacingOccurrences(of: "−", with: "-"))) }
    let ci = try #require(SeedMerge.confidenceInterval(seedValues))
    #expect(cells[2].hasSuffix(ci.contains(0) ? ": within the spread" : ": beyond the spread"), "\(cells)")
    let measurement = try #require(row(md, "cifar.plain_best_accuracy")).split(separator: "|")
    #expect(measurement.count == 5 && measurement[2].trimmingCharacters(in: .whitespaces) == "—", "\(measurement)")
    // The footer names both seeds' settings, each seed's own report its own.
    #expect(md.contains("Seeds: 1, 2;") && seed1.contains("Seeds: 1;"), "\(md.suffix(400))")
    for f in ["seed1/results.md", "seed2/results.md", "figures/cifar-accuracy.svg"] {
      #expect(FileManager.default.fileExists(atPath: ws.dir + "/out/" + f), "\(f)")
    }
    let csv = try String(contentsOfFile: ws.dir + "/out/results.csv", encoding: .utf8)
    #expect(csv.hasPrefix("seed,experiment,row,metric,value,standard_error\n"))
    #expect(csv.contains("\n1,cifar,plain,best_accuracy,") && csv.contains("\n2,cifar,plain,best_accuracy,"))
    #expect(csv.contains("\nmean,cifar,plain,best_accuracy,") && csv.contains("\nsd,cifar,plain,best_accuracy,"))
    #expect(csv.contains("\n2,time,2,wall_minutes,4,") && csv.contains("\nmean,time,all,wall_minutes,3,"), "\(csv)")
  }
}
