import Foundation

/// When and where a report was made, for its footer.
public struct ReportEnvironment: Sendable {
  public var date: Date
  public var blasThreads: Int
  public var blasConfiguration: String
  public var elapsedSeconds: Int?

  public init(date: Date = Date(), blasThreads: Int, blasConfiguration: String, elapsedSeconds: Int? = nil) {
    self.date = date
    self.blasThreads = blasThreads
    self.blasConfiguration = blasConfiguration
    self.elapsedSeconds = elapsedSeconds
  }
}

/// The reproduce report: one section per experiment found under a runs root laid out as
/// `scripts/reproduce.sh` lays it out, then a table of every run. Plain run directories
/// (a user's own) get the runs table and curves only.
public struct ExperimentReport {
  /// The report's title, its results.md's first line: what tells an earlier report from a
  /// file of the user's.
  public static let title = "LayerCollapse at CPU scale: results"
  public private(set) var document = ReportDocument(title: Self.title)

  /// Refuses (73), unless `overwrite`, an output directory whose results.md is not an
  /// earlier report's (`-o docs` over a user's own results.md): an earlier report is
  /// replaced, as `make reproduce` replaces results/.
  public static func checkDestination(_ directory: String, overwrite: Bool) throws {
    let path = directory + "/results.md"
    guard !overwrite, FileManager.default.fileExists(atPath: path) else { return }
    let firstLine = (try? String(contentsOfFile: path, encoding: .utf8))?.prefix { $0 != "\n" } ?? ""
    guard firstLine != "# " + title else { return }
    throw LCError.cannotCreate(
      ErrorDetail(
        what: "refusing to replace a results.md that no report wrote", location: path,
        expected: "a new directory, or an earlier report's",
        got: "a file whose first line is \"\(firstLine.prefix(60))\"",
        hint: "Choose another -o, or add --overwrite to replace it"))
  }
  public private(set) var results: [ResultValue] = []
  private var csv = CSVTable(header: ["experiment", "row", "metric", "value", "standard_error"])
  private var seeds: Set<UInt64> = []
  /// A root of several seeds' runs (`seed1/`, `seed2/`, ...): each seed's own report.
  public private(set) var perSeed: [(name: String, report: ExperimentReport)] = []

  static let experimentDirectories = [
    "sst2", "cifar", "text", "sensitivity", "sweep", "mixer", "minilm", "vgg", "overfit",
  ]

  /// The file `scripts/reproduce.sh` writes into each seed's root: what marks a directory as
  /// one (a user's own runs may well sit in a `sweep/` or `text/` directory too). Roots
  /// from before it are known by the experiments' wall times (`times.tsv`), which only
  /// that script writes.
  public static let rootMarker = "reproduce.txt"

  static func isReproduceRoot(_ path: String) -> Bool {
    let fm = FileManager.default
    return (fm.fileExists(atPath: path + "/" + rootMarker) || fm.fileExists(atPath: path + "/times.tsv"))
      && experimentDirectories.contains { fm.fileExists(atPath: path + "/" + $0) }
  }

  /// The `seed<N>` directories below `root` that hold a reproduce run, in seed order.
  static func seedRoots(_ root: String) -> [(name: String, path: String)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    let seeds = names.compactMap { n -> (Int, String)? in
      guard n.hasPrefix("seed"), let k = Int(n.dropFirst(4)), isReproduceRoot(root + "/" + n) else { return nil }
      return (k, n)
    }
    return seeds.sorted { $0.0 < $1.0 }.map { (String($0.0), root + "/" + $0.1) }
  }

  /// Builds the report for `paths`: a reproduce root (with sst2/, cifar/, text/,
  /// sensitivity/, sweep/ below it), a root of several seeds' reproduce roots (`seed1/`,
  /// `seed2/`, ...: merged, mean ± sample standard deviation across seeds), or any run
  /// directories or folders holding them.
  public static func build(paths: [String], environment: ReportEnvironment) throws -> ExperimentReport {
    if paths.count == 1 {
      let seeds = seedRoots(paths[0])
      if !seeds.isEmpty { return try buildSeeds(root: paths[0], seeds: seeds, environment: environment) }
    }
    var r = ExperimentReport()
    let isRoot = paths.count == 1 && isReproduceRoot(paths[0])
    if isRoot {
      let root = paths[0]
      r.document.paragraph(
        "Made by `layercollapse report \(root)`. Each experiment below is a run of "
          + "`scripts/reproduce.sh`; accuracies carry ± one binomial standard error over the evaluation examples. "
          + "Reference numbers are the LayerCollapse paper's (arXiv 2311.17943) and its public notebooks, at far "
          + "larger scale: they show the direction of an effect, not a number to match.")
      try r.sst2(root + "/sst2")
      try r.cifar(root + "/cifar")
      try r.text(root + "/text")
      try r.sensitivity(root + "/sensitivity", base: root + "/cifar/plain")
      try r.sweep(root + "/sweep")
      try r.mixer(root + "/mixer")
      try r.minilm(root + "/minilm")
      try r.vgg(root + "/vgg")
      try r.overfit(root + "/overfit")
      try r.timing(root + "/times.tsv")
      r.document.figureNote = "1 seed"
    }
    // Each path given must hold a run: one that holds none (a checkpoint file, an import's
    // directory) would drop out of the table without a word.
    var runs: [RunDirectory] = []
    var empty: [String] = []
    for path in paths {
      let found = try RunDirectory.find(under: path)
      if found.isEmpty { empty.append(path) }
      runs += found
    }
    guard empty.isEmpty else {
      let file = empty.first { path in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
      }
      throw LCError.missingInput(
        ErrorDetail(
          what: "no run directories found", location: empty.joined(separator: ", "),
          expected: "directories with the summary.csv that `layercollapse train` writes",
          hint: file.map {
            "\($0) is a file: give its run's directory (\(Paths.parent($0))); a checkpoint made by import or "
              + "collapse alone is measured with `layercollapse eval`"
          } ?? ""))
    }
    try r.allRuns(runs, curves: !isRoot)
    r.document.attach(file: "results.csv", contents: r.csv.csv)
    r.footer(environment)
    return r
  }

  /// Writes results.md, results.csv and the SVG figures into `directory` (and each seed's
  /// report into `directory/seed<N>/`).
  @discardableResult
  public func write(to directory: String) throws -> [String] {
    let earlier = Self.earlierFiles(in: directory)
    var written: [String] = []
    for (name, r) in perSeed { written += try r.write(to: directory + "/seed" + name) }
    written += try document.write(to: directory, markdownFile: "results.md")
    // The figures and tables an earlier report here linked and this one did not write
    // (a run fewer, another experiment) would sit beside it, stale, as CI artifacts.
    let kept = Set(written)
    for path in earlier where !kept.contains(path) && FileManager.default.fileExists(atPath: path) {
      try Paths.remove(
        path, what: "an earlier report's \((path as NSString).lastPathComponent)", hint: "Remove it by hand")
    }
    return written
  }

  /// The .svg and .csv files an earlier report's results.md in `directory` links to
  /// (relative paths inside it), when its first line says a report wrote it.
  static func earlierFiles(in directory: String) -> [String] {
    guard let text = try? String(contentsOfFile: directory + "/results.md", encoding: .utf8),
      text.hasPrefix("# " + title + "\n")
    else { return [] }
    var out: [String] = []
    var rest = text[...]
    while let open = rest.range(of: "](") {
      rest = rest[open.upperBound...]
      guard let close = rest.firstIndex(of: ")") else { break }
      let target = String(rest[..<close]).removingPercentEncoding ?? ""
      rest = rest[close...]
      let parts = target.split(separator: "/", omittingEmptySubsequences: false)
      guard target.hasSuffix(".svg") || target.hasSuffix(".csv"), !target.hasPrefix("/"), !target.contains("://"),
        !parts.contains(".."), !parts.contains("")
      else { continue }
      out.append(ReportDocument.join(directory, target))
    }
    return out
  }

  /// Several seeds' reports merged: every table cell mean ± sample standard deviation across
  /// seeds, curves as their mean with a min–max band, the results (and so the bands) their
  /// means; results.csv holds every seed's values and the mean and deviation.
  static func buildSeeds(root: String, seeds: [(name: String, path: String)], environment: ReportEnvironment) throws
    -> ExperimentReport
  {
    let reports = try seeds.map { try build(paths: [$0.path], environment: environment) }
    let names = seeds.map(\.name)
    var r = ExperimentReport()
    r.perSeed = Array(zip(names, reports))
    let n = seeds.count
    var merged = SeedMerge.merge(reports.map(\.document), seeds: names)
    let interval = n > 1 ? ["effect: 95 % interval of the mean"] : []
    var summary = MarkdownTable(
      header: ["result", "what", n > 1 ? "mean ± sd" : "value"] + interval + names.map { "seed \($0)" })
    var keys: [String] = []
    for rep in reports { for v in rep.results where !keys.contains(v.key) { keys.append(v.key) } }
    var csv = CSVTable(header: ["seed", "experiment", "row", "metric", "value", "standard_error"])
    for (name, rep) in zip(names, reports) { for row in rep.csv.rows { csv.append([name] + row) } }
    // The mean and deviation of every (experiment, row, metric) all seeds recorded.
    var groups: [String: [Double]] = [:]
    var order: [[String]] = []
    for rep in reports {
      for row in rep.csv.rows {
        let id = row[0...2].joined(separator: "\u{1}")
        if groups[id] == nil { order.append(Array(row[0...2])) }
        if let v = Double(row[3]) { groups[id, default: []].append(v) }
      }
    }
    for id in order {
      let values = groups[id.joined(separator: "\u{1}")] ?? []
      guard values.count == n else { continue }
      let (mean, sd) = SeedMerge.meanAndDeviation(values)
      csv.append(["mean"] + id + [NumberFormat.plain(mean), ""])
      csv.append(["sd"] + id + [NumberFormat.plain(sd), ""])
    }
    for key in keys {
      let values = reports.map { rep in rep.results.first { $0.key == key }?.value }
      let present = values.compactMap { $0 }
      let (mean, sd) = SeedMerge.meanAndDeviation(present)
      let first = reports.lazy.compactMap { rep in rep.results.first { $0.key == key } }.first
      let what = first?.description ?? ""
      let spread = n > 1 ? [SeedMerge.effect(present, noEffect: first?.noEffect, seeds: n)] : []
      summary.append(
        [key, what, NumberFormat.fixed(mean, decimals: 4) + (n > 1 ? " ± " + NumberFormat.fixed(sd, decimals: 4) : "")]
          + spread + values.map { NumberFormat.fixed($0, decimals: 4) })
      r.results.append(ResultValue(key: key, value: mean, description: what + " (mean of \(present.count) seeds)"))
    }
    let intro = ReportDocument.Part.text(
      "\(n) seed\(n == 1 ? "" : "s") (\(names.joined(separator: ", "))), each a whole run of `scripts/reproduce.sh` "
        + "(below `\(root)/seed<N>`). "
        + (n > 1
          ? "In every table below a number is the mean ± the sample standard deviation across the seeds (a single "
            + "seed's ± standard error gives way to the spread); cells that differ in kind list each seed's, a / b / c. "
            + "Curves are the mean, shaded from the lowest to the highest seed. "
            + "For a comparison (a difference, or a ratio), the table gives the 95 % confidence interval of its mean "
            + "across the seeds (Student's t, n − 1 degrees of freedom) and whether it excludes no effect (0, or 1 for "
            + "a ratio): only then does the effect exceed the seeds' spread. "
          : "")
        + "Each seed's own report is in `seed<N>/results.md`; every value of every seed is in results.csv. "
        + "The bands of `--check` are judged on the means in this table:")
    merged.replaceParts([intro, .table(summary)] + merged.parts)
    merged.attach(file: "results.csv", contents: csv.csv)
    r.document = merged
    r.csv = csv
    // The footer names every seed the merged runs used, not only the first report's.
    for rep in reports { r.seeds.formUnion(rep.seeds) }
    r.document.footerLines = []
    r.footer(environment)
    return r
  }

  // MARK: recording

  private mutating func record(
    _ experiment: String, _ row: String, _ metric: String, _ value: Double?, se: Double? = nil
  ) {
    guard let v = value else { return }
    csv.append([experiment, row, metric, NumberFormat.plain(v), se.map { NumberFormat.plain($0) } ?? ""])
  }

  /// `noEffect`: for a comparison, what the value would be with no effect (0 for a
  /// difference, 1 for a ratio), so that merged seeds can say whether the effect exceeds
  /// their spread.
  private mutating func result(_ key: String, _ value: Double?, _ description: String, noEffect: Double? = nil) {
    guard let v = value else { return }
    results.append(ResultValue(key: key, value: v, description: description, noEffect: noEffect))
  }

  private func accuracy(_ e: EvalRecord?) -> String {
    guard let e = e else { return NumberFormat.missing }
    return NumberFormat.plusMinus(100 * e.metrics.accuracy, 100 * e.metrics.accuracyStandardError, decimals: 1)
  }

  // MARK: experiment 1

  private mutating func sst2(_ dir: String) throws {
    guard let gelu = try? RunDirectory.read(dir + "/gelu"), let lc = try? RunDirectory.read(dir + "/lc") else { return }
    document.heading(Self.heading("1"))
    seeds.formUnion([gelu.settings?.seed, lc.settings?.seed].compactMap { $0 })
    let rows: [(String, String, EvalRecord?)] = [
      ("gelu", "GELU encoder (trained from scratch)", gelu.evals["best"]),
      ("lc", "after LayerCollapse fine-tune (PReLU, before collapse)", lc.evals["last"]),
      ("collapsed", "collapsed", lc.evals["collapsed"]),
    ]
    var t = MarkdownTable(header: [
      "model", "dev accuracy %", "parameters", "MACs / example", "examples/s", "latency ms",
    ])
    for (key, label, e) in rows {
      t.append([
        label, accuracy(e), NumberFormat.count(e?.parameters), NumberFormat.count(e?.macsPerExample),
        NumberFormat.fixed(e?.metrics.examplesPerSecond, decimals: 0),
        NumberFormat.fixed(e?.latencyMilliseconds, decimals: 2),
      ])
      record("sst2", key, "accuracy", e?.metrics.accuracy, se: e?.metrics.accuracyStandardError)
      record("sst2", key, "parameters", e.map { Double($0.parameters) })
      record("sst2", key, "macs_per_example", e.map { Double($0.macsPerExample) })
      record("sst2", key, "latency_ms", e?.latencyMilliseconds)
    }
    document.table(t)
    let c = lc.collapse
    document.paragraph(collapseSentence(c, model: "encoder"))
    document.paragraph(
      "Reference implementation: BERT-base on SST-2 dev 92.66 → 91.17 % with its last 4 FFNs collapsed (−15 % "
        + "parameters); BERT-large 93.46 → 93.00 % (−8.8 %).")
    result("sst2.gelu_accuracy", gelu.evals["best"]?.metrics.accuracy, "dev accuracy of the GELU encoder")
    result("sst2.lc_accuracy", lc.evals["last"]?.metrics.accuracy, "dev accuracy after the LC fine-tune")
    if let before = lc.evals["last"], let after = lc.evals["collapsed"] {
      result(
        "sst2.collapse_cost", before.metrics.accuracy - after.metrics.accuracy, "accuracy lost by collapsing",
        noEffect: 0)
    }
    result("sst2.collapsed_blocks", c.map { Double($0.blocks.filter(\.merged).count) }, "blocks collapsed")
    postTrainingBaselines(dir, experiment: "sst2", base: gelu, lc: lc, metric: "dev accuracy %")
  }

  /// The baselines that separate "LayerCollapse works" from "fine-tuning works", beside a
  /// post-training LayerCollapse fine-tune (`lc/`, from `base`'s best.h5), each one
  /// override or flag of scripts/reproduce.sh: the same MLPs collapsed with no fine-tune
  /// (`base/zero-shot.h5`, `collapse --force`) or replaced by their least-squares fit
  /// (`base/fit.h5`, `collapse --force --fit`), and the same fine-tune without λ
  /// (`prelu-no-lambda/`, `lc.lambda=0`) or without the PReLU swap (`gelu-ft/`, `lc.blocks=0`).
  private mutating func postTrainingBaselines(
    _ dir: String, experiment: String, base: RunDirectory, lc: RunDirectory, metric: String, perplexity: Bool = false
  ) {
    let noLambda = try? RunDirectory.read(dir + "/prelu-no-lambda")
    let geluFT = try? RunDirectory.read(dir + "/gelu-ft")
    let rows: [(String, String, String, EvalRecord?, CollapseRecord?)] = [
      ("lc_collapsed", "LayerCollapse fine-tune, then collapse", "the method", lc.evals["collapsed"], lc.collapse),
      ("gelu_ft", "GELU fine-tune, the same steps", "what fine-tuning alone gives", geluFT?.evals["last"], nil),
      (
        "prelu_no_lambda", "PReLU fine-tune without λ, then collapse", "what the regularizer adds",
        noLambda?.evals["collapsed"] ?? noLambda?.evals["last"], noLambda?.collapse
      ),
      ("zero_shot", "collapse the same MLPs, no fine-tune", "why a fine-tune is needed", base.evals["zero-shot"], nil),
      (
        "fit", "least-squares linear fit of the same MLPs, no fine-tune (ReplaceMe)", "the training-free rival",
        base.evals["fit"], nil
      ),
    ]
    guard rows.dropFirst().contains(where: { $0.3 != nil }) else { return }
    func value(_ e: EvalRecord?) -> Double? { perplexity ? e?.metrics.perplexity : e?.metrics.accuracy }
    var t = MarkdownTable(header: ["baseline", "separates", metric, "parameters", "α after fine-tune"])
    for (key, label, separates, e, c) in rows {
      let alphas = c?.blocks.compactMap { $0.alpha }.map { NumberFormat.fixed(Double($0), decimals: 3) }
      t.append([
        label, separates, perplexity ? NumberFormat.fixed(value(e), decimals: 3) : accuracy(e),
        NumberFormat.count(e?.parameters),
        alphas.map { $0.isEmpty ? NumberFormat.missing : $0.joined(separator: ", ") } ?? NumberFormat.missing,
      ])
      record(
        experiment, "baseline_" + key, perplexity ? "perplexity" : "accuracy", value(e),
        se: perplexity ? nil : e?.metrics.accuracyStandardError)
      record(experiment, "baseline_" + key, "parameters", e.map { Double($0.parameters) })
    }
    document.paragraph(
      "Baselines, each one override or flag of the same commands (`scripts/reproduce.sh`): the same number of "
        + "fine-tuning steps, the same MLPs.")
    document.table(t)
    // Accuracy: the LayerCollapse model minus the baseline (points); perplexity: its ratio.
    let method = value(lc.evals["collapsed"])
    let compared: [(String, String, EvalRecord?)] = [
      ("gelu_ft", "the GELU fine-tune", geluFT?.evals["last"]),
      ("zero_shot", "the zero-shot collapse", base.evals["zero-shot"]),
      ("fit", "the least-squares fit", base.evals["fit"]),
    ]
    for (key, label, e) in compared {
      guard let a = method, let b = value(e) else { continue }
      if perplexity {
        result(
          "\(experiment).lc_over_\(key)", a / b, "perplexity of the collapsed LayerCollapse model / \(label)'s",
          noEffect: 1)
      } else {
        result("\(experiment).lc_minus_\(key)", a - b, "collapsed LayerCollapse model minus \(label)", noEffect: 0)
      }
    }
    if let c = noLambda?.collapse {
      result(
        "\(experiment).no_lambda_collapsed", Double(c.blocks.filter(\.merged).count),
        "units that collapse after the PReLU fine-tune without λ")
    }
  }

  private func collapseSentence(_ c: CollapseRecord?, model: String) -> String {
    guard let c = c else { return "No collapse record." }
    let merged = c.blocks.filter(\.merged)
    // A transformer's units are its blocks; other families' are named by module path.
    let byBlock = c.blocks.allSatisfy { $0.unit == nil || $0.unit == "blocks.\($0.block).mlp" }
    let alphas = c.blocks.compactMap { b in
      b.alpha.map {
        "\(byBlock ? "block \(b.block)" : b.unit ?? "unit \(b.block)"): α = \(NumberFormat.fixed($0, decimals: 4))"
      }
    }
    var s =
      "Collapse at |α − 1| < \(NumberFormat.plain(c.threshold)): \(merged.count) of \(c.blocks.count) "
      + (byBlock ? "blocks merged" : "MLPs merged")
    if !alphas.isEmpty { s += " (" + alphas.joined(separator: ", ") + ")" }
    s += "; parameters \(NumberFormat.count(c.parametersBefore)) → \(NumberFormat.count(c.parametersAfter)) "
    s += "(\(NumberFormat.percentDelta(Double(c.parametersAfter - c.parametersBefore) / Double(c.parametersBefore))))"
    s += ", MACs \(NumberFormat.percentDelta(Double(c.macsAfter - c.macsBefore) / Double(c.macsBefore)))"
    if let d = c.logitDeviation {
      s += "; the \(model)'s logits moved by at most \(String(format: "%.1e", d)) of their scale"
    }
    return s + (c.approximate ? " (approximate: some merged units were not linear)." : ".")
  }

  // MARK: experiment 7

  /// The pretrained model: GELU fine-tune of the imported all-MiniLM-L6-v2, then the
  /// LayerCollapse fine-tune of its last 2 and last 4 FFNs, each collapsed.
  private mutating func minilm(_ dir: String) throws {
    guard let gelu = try? RunDirectory.read(dir + "/gelu") else { return }
    document.heading(Self.heading("7"))
    seeds.formUnion([gelu.settings?.seed].compactMap { $0 })
    let base = gelu.evals["best"]
    var t = MarkdownTable(header: ["model", "dev accuracy %", "parameters", "MACs / example", "examples/s"])
    func row(_ key: String, _ label: String, _ e: EvalRecord?) {
      t.append([
        label, accuracy(e), NumberFormat.count(e?.parameters), NumberFormat.count(e?.macsPerExample),
        NumberFormat.fixed(e?.metrics.examplesPerSecond, decimals: 0),
      ])
      record("minilm", key, "accuracy", e?.metrics.accuracy, se: e?.metrics.accuracyStandardError)
      record("minilm", key, "parameters", e.map { Double($0.parameters) })
    }
    row("gelu", "imported, GELU fine-tune", base)
    var sentences: [String] = []
    for k in [2, 4] {
      guard let lc = try? RunDirectory.read(dir + "/lc\(k)") else { continue }
      row("lc\(k)", "last \(k) FFNs: LayerCollapse fine-tune (PReLU)", lc.evals["last"])
      row("collapsed\(k)", "last \(k) FFNs: collapsed", lc.evals["collapsed"])
      sentences.append("Last \(k) FFNs. " + collapseSentence(lc.collapse, model: "MiniLM"))
      if let b = base, let last = lc.evals["last"] {
        result(
          "minilm.lc\(k)_cost", b.metrics.accuracy - last.metrics.accuracy,
          "accuracy the LC fine-tune of \(k) FFNs cost", noEffect: 0)
      }
      if let before = lc.evals["last"], let after = lc.evals["collapsed"] {
        result(
          "minilm.collapse\(k)_cost", before.metrics.accuracy - after.metrics.accuracy,
          "accuracy lost by collapsing \(k) FFNs", noEffect: 0)
      }
      result(
        "minilm.collapsed\(k)_blocks", lc.collapse.map { Double($0.blocks.filter(\.merged).count) },
        "FFNs collapsed of \(k)")
    }
    result("minilm.gelu_accuracy", base?.metrics.accuracy, "dev accuracy of the fine-tuned MiniLM")
    document.table(t)
    for s in sentences { document.paragraph(s) }
    document.paragraph(
      "The model is sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, d 384, 22.7 M parameters with the "
        + "2-class head), imported with `layercollapse import` and encoded with its own WordPiece vocabulary. "
        + "Reference implementation: BERT-base on SST-2 dev 92.66 → 91.17 % with its last 4 FFNs collapsed "
        + "(−15 % parameters).")
    if let lc2 = try? RunDirectory.read(dir + "/lc2") {
      postTrainingBaselines(dir, experiment: "minilm", base: gelu, lc: lc2, metric: "dev accuracy % (last 2 FFNs)")
    }
  }

  // MARK: experiment 8

  /// VGG: the base (ReLU head), the LayerCollapse fine-tune of its head and the collapse,
  /// and the knowledge-distillation student of the collapsed size.
  private mutating func vgg(_ dir: String) throws {
    guard let base = try? RunDirectory.read(dir + "/base") else { return }
    document.heading(Self.heading("8"))
    let lc = try? RunDirectory.read(dir + "/lc")
    let kd = try? RunDirectory.read(dir + "/kd")
    seeds.formUnion([base.settings?.seed, lc?.settings?.seed, kd?.settings?.seed].compactMap { $0 })
    let baseEpochs = base.settings?.train.epochs
    let lcEpochs = lc?.settings.map { $0.train.epochs + (baseEpochs ?? 0) }
    var t = MarkdownTable(header: [
      "model", "val. accuracy %", "parameters", "MACs / example", "epochs spent", "examples/s",
    ])
    func row(_ key: String, _ label: String, _ e: EvalRecord?, epochs: Int?) {
      t.append([
        label, accuracy(e), NumberFormat.count(e?.parameters), NumberFormat.count(e?.macsPerExample),
        epochs.map(String.init) ?? NumberFormat.missing, NumberFormat.fixed(e?.metrics.examplesPerSecond, decimals: 0),
      ])
      record("vgg", key, "accuracy", e?.metrics.accuracy, se: e?.metrics.accuracyStandardError)
      record("vgg", key, "parameters", e.map { Double($0.parameters) })
      record("vgg", key, "epochs", epochs.map(Double.init))
    }
    row("base", "VGG, ReLU head (trained from scratch)", base.evals["best"], epochs: baseEpochs)
    row("lc", "LayerCollapse fine-tune of the head (PReLU, before collapse)", lc?.evals["last"], epochs: lcEpochs)
    row("collapsed", "collapsed: one linear head", lc?.evals["collapsed"], epochs: lcEpochs)
    row(
      "kd", "KD student: same trunk, one linear head, from scratch", kd?.evals["best"],
      epochs: kd?.settings?.train.epochs)
    document.table(t)
    if let c = lc?.collapse, let head = c.blocks.first?.parametersBefore, c.parametersBefore > 0 {
      let share = Double(head) / Double(c.parametersBefore)
      let reduction = Double(c.parametersBefore - c.parametersAfter) / Double(c.parametersBefore)
      result("vgg.head_share", share, "the head's share of the parameters before the collapse")
      result("vgg.parameter_reduction", reduction, "parameters removed by the collapse")
      result("vgg.collapsed_units", Double(c.blocks.filter(\.merged).count), "head activations merged, of 2")
      document.paragraph(
        "The head held " + NumberFormat.fixed(100 * share, decimals: 1) + " % of the parameters. "
          + collapseSentence(c, model: "VGG"))
    }
    if let before = lc?.evals["last"], let after = lc?.evals["collapsed"] {
      result(
        "vgg.collapse_cost", before.metrics.accuracy - after.metrics.accuracy, "accuracy lost by collapsing",
        noEffect: 0)
    }
    if let b = base.evals["best"] { result("vgg.base_accuracy", b.metrics.accuracy, "base VGG accuracy") }
    if let a = lc?.evals["collapsed"], let k = kd?.evals["best"] {
      result("vgg.kd_gap", a.metrics.accuracy - k.metrics.accuracy, "collapsed minus KD student accuracy", noEffect: 0)
    }
    document.paragraph(
      "The base and the KD student are scored at their best evaluation, the LayerCollapse models at the "
        + "fine-tune's last step (where α is at 1); epochs spent count the base's for LayerCollapse, and the "
        + "student's own for KD (its teacher, the base, is not counted).")
    document.paragraph(
      "Reference implementation: VGG-16 on CIFAR-10 68.74 → 63.60 % with the head collapsed (−71 % parameters); "
        + "a knowledge-distillation student with the same trunk and a single linear head reached 56.58 % after "
        + "about 140–190 epochs, against about 40 for LayerCollapse. The paper's \"up to 74 %\" is the head's "
        + "share of torchvision's VGG-11/13.")
  }

  // MARK: experiment 2

  private mutating func cifar(_ dir: String) throws {
    try smallSetRegularizer(
      dir, key: "cifar", heading: Self.heading("2"), model: "ViT",
      reference: "Reference implementation (best validation accuracy, CIFAR-10 small set ≈ 5k images): ViT 44.6 % "
        + "plain → 51.5 % with LayerCollapse; on full CIFAR-10 (depth 6) 69.80 → 71.87 % with the train accuracy "
        + "falling from 99.8 to 97.9 %. The paper's evidence is mixed across settings.")
  }

  // MARK: experiment 9

  private mutating func overfit(_ dir: String) throws {
    try smallSetRegularizer(
      dir, key: "overfit",
      heading: Self.heading("9"),
      model: "ViT",
      reference: "Reference implementation, the regime of the paper's regularization claim: on every 10th CIFAR-10 "
        + "training image a depth-6, width-768 ViT reached 99.8 % train and 44.6 % validation accuracy; with "
        + "LayerCollapse (λ·Σ(α−1)² on its last blocks, SGD with momentum) 96.6 % train and 51.5 % validation. Ours: "
        + "depth 6, width 128, 16 patches of 8×8, AdamW, λ = 1 on the last 3 blocks' MLPs, the same epochs for "
        + "every run.")
  }

  // MARK: wall time

  /// Each experiment's section heading (`scripts/reproduce.sh` numbers them in the order it
  /// runs them); the wall-time table names its rows with them too.
  static func heading(_ id: String) -> String {
    let title: String
    switch id {
    case "1": title = "SST-2 sentiment, transformer encoder"
    case "2": title = "CIFAR-10 small set, ViT: LayerCollapse as a regularizer"
    case "3": title = "Text generation, character-level GPT"
    case "4": title = "Sensitivity: collapsing the ViT's blocks from the output end (`compress`)"
    case "5": title = "λ sweep (experiment 2 (b), shorter)"
    case "6": title = "CIFAR-10 small set, MLP-Mixer: LayerCollapse as a regularizer"
    case "7": title = "SST-2 with a pretrained transformer: all-MiniLM-L6-v2"
    case "8": title = "CIFAR-10, VGG: collapsing the classifier head, against knowledge distillation"
    case "9": title = "CIFAR-10 small set, a ViT that memorises it: LayerCollapse as the only regularizer"
    default: return id
    }
    return "\(id). \(title)"
  }

  /// The wall time of each experiment, from the `times.tsv` that `scripts/reproduce.sh`
  /// writes (one `experiment<TAB>seconds` line per experiment); none when it is missing.
  private mutating func timing(_ path: String) throws {
    guard FileManager.default.fileExists(atPath: path) else { return }
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
      throw LCError.io(ErrorDetail(what: "cannot read the experiments' wall times", location: path, got: "\(error)"))
    }
    var table = MarkdownTable(header: ["experiment", "wall time, min"])
    var total = 0
    for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
      let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
      guard fields.count == 2, let seconds = Int(fields[1]), seconds >= 0 else {
        throw LCError.badData(
          ErrorDetail(
            what: "malformed wall-time line", location: "\(path):\(i + 1)",
            expected: "an experiment number, a tab and whole seconds", got: "\"\(line)\"",
            hint: "scripts/reproduce.sh writes this file; rerun it or delete the file"))
      }
      let id = String(fields[0])
      total += seconds
      let minutes = Double(seconds) / 60
      record("time", id, "wall_minutes", minutes)
      table.rows.append([
        Self.heading(id), NumberFormat.fixed(minutes, decimals: 1),
      ])
    }
    guard !table.rows.isEmpty else { return }
    let totalMinutes = Double(total) / 60
    table.rows.append(["all of the above", NumberFormat.fixed(totalMinutes, decimals: 1)])
    document.heading("Wall time")
    document.paragraph(
      "How long each experiment took on the machine that made this report (the footer names its BLAS), "
        + "as `scripts/reproduce.sh` measured it, every step of the experiment included.")
    document.table(table)
    record("time", "all", "wall_minutes", totalMinutes)
    result("time.total_minutes", totalMinutes, "wall time of all experiments of one seed, minutes")
  }

  // MARK: experiment 6

  private mutating func mixer(_ dir: String) throws {
    try smallSetRegularizer(
      dir, key: "mixer", heading: Self.heading("6"),
      model: "Mixer",
      reference: "Reference implementation (best validation accuracy, CIFAR-10 small set): MLP-Mixer 58.0 % plain → "
        + "58.8 % with LayerCollapse; Mixer-B/16 on ImageNet, its last block's two MLPs collapsed: 76.47 → 76.11 %, "
        + "−7.1 % parameters.")
  }

  /// Experiments 2 and 6: one model trained plain and with PReLU + the LayerCollapse
  /// penalty from the start on the small CIFAR-10 set (runs `plain/` and `lc/` under
  /// `dir`), then collapsed; results under `key`.
  private mutating func smallSetRegularizer(
    _ dir: String, key experiment: String, heading: String, model: String, reference: String
  ) throws {
    guard let plain = try? RunDirectory.read(dir + "/plain"), let lc = try? RunDirectory.read(dir + "/lc") else {
      return
    }
    document.heading(heading)
    seeds.formUnion([plain.settings?.seed, lc.settings?.seed].compactMap { $0 })
    let train = plain.settings.map { "\(NumberFormat.count($0.data.trainLimit ?? 4660)) training images" } ?? ""
    let regime = plain.settings.map { s in
      [
        s.data.augment ? "augmented" : "not augmented",
        s.model.dropout > 0 ? "dropout \(s.model.dropout)" : "no dropout",
        s.train.optimizer.weightDecay > 0
          ? "weight decay \(NumberFormat.plain(s.train.optimizer.weightDecay))" : "no weight decay",
      ].joined(separator: ", ")
    }
    document.paragraph(
      "The same \(model) (\(train), \(regime ?? "")) trained plain (GELU) and with PReLU + LayerCollapse penalty "
        + "from the start.")
    var t = MarkdownTable(header: [
      "run", "best val. accuracy %", "final val. accuracy %", "final train accuracy %", "train − val gap", "parameters",
    ])
    // Experiment 9's usual regularizers, one override each of the plain run, beside LayerCollapse.
    var runs: [(String, String, RunDirectory)] = [("plain", "plain (GELU)", plain)]
    if let d = try? RunDirectory.read(dir + "/plain-dropout") {
      runs.append(
        ("dropout", "plain + dropout \(d.settings.map { NumberFormat.plain(clean($0.model.dropout)) } ?? "")", d))
    }
    if let w = try? RunDirectory.read(dir + "/plain-wd") {
      runs.append(
        (
          "wd",
          "plain + weight decay \(w.settings.map { NumberFormat.plain($0.train.optimizer.weightDecay) } ?? "")", w
        ))
    }
    runs.append(("lc", "LayerCollapse (PReLU + λ·Σ(α−1)²)", lc))
    for (key, label, run) in runs {
      let best = run.bestRow
      let final = run.evaluations.last
      let gap = final.flatMap { f in f.trainAccuracy.map { 100 * ($0 - f.evalAccuracy) } }
      t.append([
        label, NumberFormat.plusMinus(best.map { 100 * $0.evalAccuracy }, best.map { 100 * $0.evalAccuracySE }),
        NumberFormat.plusMinus(final.map { 100 * $0.evalAccuracy }, final.map { 100 * $0.evalAccuracySE }),
        NumberFormat.fixed(final?.trainAccuracy.map { 100 * $0 }, decimals: 1), NumberFormat.delta(gap, decimals: 1),
        NumberFormat.count(run.evals["final"]?.parameters),
      ])
      record(experiment, key, "best_accuracy", best?.evalAccuracy, se: best?.evalAccuracySE)
      record(experiment, key, "final_accuracy", final?.evalAccuracy, se: final?.evalAccuracySE)
      record(experiment, key, "train_accuracy", final?.trainAccuracy)
      result("\(experiment).\(key)_best_accuracy", best?.evalAccuracy, "best validation accuracy, \(label)")
      result("\(experiment).\(key)_gap", gap.map { $0 / 100 }, "train − validation accuracy, \(label)")
    }
    if let a = lc.bestRow?.evalAccuracy, let b = plain.bestRow?.evalAccuracy {
      result("\(experiment).lc_minus_plain", a - b, "best validation accuracy, LayerCollapse minus plain", noEffect: 0)
    }
    let collapsed = lc.evals["collapsed"]
    t.append([
      "LayerCollapse, collapsed", NumberFormat.missing, accuracy(collapsed), NumberFormat.missing, NumberFormat.missing,
      NumberFormat.count(collapsed?.parameters),
    ])
    record(
      experiment, "collapsed", "accuracy", collapsed?.metrics.accuracy, se: collapsed?.metrics.accuracyStandardError)
    document.table(t)
    document.paragraph(collapseSentence(lc.collapse, model: model))
    document.paragraph(reference)
    if let before = lc.evals["last"], let after = collapsed {
      result(
        "\(experiment).collapse_cost", before.metrics.accuracy - after.metrics.accuracy, "accuracy lost by collapsing",
        noEffect: 0)
    }
    result(
      "\(experiment).collapsed_blocks", lc.collapse.map { Double($0.blocks.filter(\.merged).count) },
      "units (MLPs) collapsed")
    document.image(
      curves([("plain", plain), ("LayerCollapse", lc)], title: "Training loss (CIFAR-10 \(model))", y: "cross-entropy")
      {
        $0.loss
      },
      file: "figures/\(experiment)-loss.svg", alt: "training loss")
    document.image(
      accuracyCurves([("plain", plain), ("LayerCollapse", lc)]), file: "figures/\(experiment)-accuracy.svg",
      alt: "accuracy")
    document.image(
      alphaCurves(lc, title: "α per unit (CIFAR-10 \(model), LayerCollapse)"), file: "figures/\(experiment)-alpha.svg",
      alt: "alpha")
  }

  // MARK: experiment 3

  private mutating func text(_ dir: String) throws {
    guard let plain = try? RunDirectory.read(dir + "/plain"), let lc = try? RunDirectory.read(dir + "/lc") else {
      return
    }
    document.heading(Self.heading("3"))
    seeds.formUnion([plain.settings?.seed, lc.settings?.seed].compactMap { $0 })
    var t = MarkdownTable(header: [
      "model", "validation perplexity", "token accuracy %", "parameters", "MACs / example",
    ])
    let rows: [(String, String, EvalRecord?)] = [
      ("plain", "GPT (GELU)", plain.evals["best"]), ("lc", "after LayerCollapse fine-tune", lc.evals["last"]),
      ("collapsed", "collapsed", lc.evals["collapsed"]),
    ]
    for (key, label, e) in rows {
      t.append([
        label, NumberFormat.fixed(e?.metrics.perplexity, decimals: 3),
        NumberFormat.fixed(e.map { 100 * $0.metrics.accuracy }, decimals: 1),
        NumberFormat.count(e?.parameters), NumberFormat.count(e?.macsPerExample),
      ])
      record("text", key, "perplexity", e?.metrics.perplexity)
      record("text", key, "token_accuracy", e?.metrics.accuracy)
    }
    document.table(t)
    document.paragraph(collapseSentence(lc.collapse, model: "GPT"))
    document.paragraph(
      "Reference implementation: GPT-2 (124 M) WikiText-103 perplexity 18.87 → 19.47 with block h.11 collapsed "
        + "(−3.3 % parameters); swapping GELU for PReLU without the fine-tune gives 302.9.")
    postTrainingBaselines(
      dir, experiment: "text", base: plain, lc: lc, metric: "validation perplexity", perplexity: true)
    result("text.plain_perplexity", plain.evals["best"]?.metrics.perplexity, "validation perplexity of the GPT")
    if let before = lc.evals["last"]?.metrics.perplexity, let after = lc.evals["collapsed"]?.metrics.perplexity {
      result("text.collapse_ppl_ratio", after / before, "perplexity after / before collapsing", noEffect: 1)
    }
    for (stem, label, run) in [("best", "GPT", plain), ("collapsed", "collapsed GPT", lc)] {
      if let s = run.samples[stem] {
        document.paragraph("Sample from the \(label) (temperature 0.8, top-k 40, seed 1):")
        document.code(s.trimmingCharacters(in: .whitespacesAndNewlines))
      }
    }
    document.image(
      curves(
        [("GPT", plain), ("LayerCollapse fine-tune", lc)], title: "Training loss (character GPT)", y: "cross-entropy"
      ) {
        $0.loss
      }, file: "figures/text-loss.svg", alt: "text loss")
  }

  // MARK: experiment 4

  /// Experiment 4 is a `compress` search that collapses every unit (--max-drop 100): its
  /// rounds are the curve, and the table says where a tighter --max-drop would stop.
  private mutating func sensitivity(_ dir: String, base: String) throws {
    let path = dir + "/compress.json"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
    let state = try JSONFile.decode(CompressState.self, text, location: path)
    guard let start = state.rounds.first else { return }
    document.heading(Self.heading("4"))
    document.paragraph(
      "`layercollapse compress` from the plain ViT of experiment 2: each round converts one more block (from the "
        + "output end) to PReLU, fine-tunes it with the decoupled pull (\(state.options.roundSteps) steps a stage, λ "
        + "raised while α misses the threshold) and collapses it. Held-out: the last \(state.options.holdout) "
        + "training images, which the fine-tunes never see and on which `compress` decides; validation: the "
        + "evaluation split, never read by the search. One seed.")
    var t = MarkdownTable(header: [
      "blocks collapsed", "α before collapse", "held-out accuracy %", "val. accuracy %", "parameters",
      "MACs / example", "latency ms (batch 1)",
    ])
    var xs: [Double] = []
    var ys: [Double] = []
    var es: [Double] = []
    var hs: [Double] = []
    var hes: [Double] = []
    for r in state.rounds {
      let k = r.collapsedUnits.count
      t.append([
        "\(k)", NumberFormat.fixed(r.stages.last?.alpha, decimals: 4),
        NumberFormat.plusMinus(r.holdout.value, r.holdout.error), NumberFormat.plusMinus(r.eval.value, r.eval.error),
        NumberFormat.count(r.parameters), NumberFormat.count(r.macsPerExample),
        NumberFormat.fixed(r.latencyMilliseconds, decimals: 2),
      ])
      xs.append(Double(k))
      ys.append(r.eval.value)
      es.append(r.eval.error)
      hs.append(r.holdout.value)
      hes.append(r.holdout.error)
      record("sensitivity", "k\(k)", "accuracy", r.eval.value / 100, se: r.eval.error / 100)
      record("sensitivity", "k\(k)", "holdout_accuracy", r.holdout.value / 100, se: r.holdout.error / 100)
      record("sensitivity", "k\(k)", "collapsed_blocks", Double(k))
      record("sensitivity", "k\(k)", "parameters", Double(r.parameters))
    }
    document.table(t)
    // Where a user's budget would stop: the last round before the first that drops more.
    let budgets: [Double] = [0.5, 1, 2, 5]
    let stops = budgets.map { d -> String in
      let first = state.rounds.firstIndex { start.holdout.value - $0.holdout.value > d } ?? state.rounds.count
      let kept = state.rounds[max(0, first - 1)]
      return "\(NumberFormat.plain(d)) point\(d == 1 ? "" : "s"): \(kept.collapsedUnits.count) blocks"
    }
    document.paragraph(
      "Blocks `compress --max-drop D` would keep collapsed on this model (held-out accuracy): "
        + stops.joined(separator: "; ") + ".")
    document.paragraph(
      "Reference implementation, ViT-Ti on ImageNet (top-1 % vs MLPs collapsed from the end, 5-epoch fine-tune per "
        + "step): 0: 75.35, 1: 75.79, 2: 75.34, 3: 74.42, 4: 73.13, 5: 71.35, 6: 68.77, 7: 66.93, 8: 63.54.")
    document.image(
      SVGPlot(
        title: "Accuracy as blocks collapse (CIFAR-10 ViT, 1 seed)", xLabel: "blocks collapsed",
        yLabel: "accuracy %", xScale: .integer,
        series: [
          .init(name: "validation ± SE", x: xs, y: ys, errors: es),
          .init(name: "held-out training images ± SE", x: xs, y: hs, errors: hes, dashed: true),
        ]),
      file: "figures/sensitivity.svg", alt: "sensitivity curve")
    if let last = state.rounds.last, state.rounds.count > 1 {
      result(
        "sensitivity.final_collapsed_blocks", Double(last.collapsedUnits.count), "blocks collapsed after the last round"
      )
      result("sensitivity.final_accuracy", last.eval.value / 100, "accuracy with every round's block collapsed")
    }
  }

  // MARK: experiment 5

  private mutating func sweep(_ dir: String) throws {
    let points = ((try? RunDirectory.find(under: dir)) ?? []).compactMap { run -> (Double, RunDirectory)? in
      guard let l = run.settings?.lc.lambda else { return nil }
      return (l, run)
    }.sorted { $0.0 < $1.0 }
    guard !points.isEmpty else { return }
    document.heading(Self.heading("5"))
    var t = MarkdownTable(header: [
      "λ", "final α per block", "blocks collapsed", "parameters after", "val. accuracy % before", "after collapse",
    ])
    var before: [Double] = []
    var after: [Double] = []
    var beforeSE: [Double] = []
    var afterSE: [Double] = []
    var kept: [Double] = []
    for (lambda, run) in points {
      let last = run.evaluations.last
      let alphas = (last?.alphas ?? [:]).sorted { $0.key < $1.key }.map { NumberFormat.fixed($0.value, decimals: 3) }
      let c = run.collapse
      let collapsed = run.evals["collapsed"]
      t.append([
        NumberFormat.plain(lambda), alphas.joined(separator: ", "),
        c.map { "\($0.blocks.filter(\.merged).count)" } ?? "—",
        NumberFormat.count(c?.parametersAfter),
        NumberFormat.plusMinus(last.map { 100 * $0.evalAccuracy }, last.map { 100 * $0.evalAccuracySE }),
        accuracy(collapsed),
      ])
      before.append(100 * (last?.evalAccuracy ?? .nan))
      beforeSE.append(100 * (last?.evalAccuracySE ?? .nan))
      after.append(100 * (collapsed?.metrics.accuracy ?? .nan))
      afterSE.append(100 * (collapsed?.metrics.accuracyStandardError ?? .nan))
      kept.append(c.map { 100 * Double($0.parametersAfter) / Double($0.parametersBefore) } ?? .nan)
      let row = "lambda=\(NumberFormat.plain(lambda))"
      record("sweep", row, "accuracy_before", last?.evalAccuracy, se: last?.evalAccuracySE)
      record("sweep", row, "accuracy_after", collapsed?.metrics.accuracy, se: collapsed?.metrics.accuracyStandardError)
      record("sweep", row, "parameters_after", c.map { Double($0.parametersAfter) })
    }
    document.table(t)
    let x = points.map(\.0)
    document.image(
      SVGPlot(
        title: "Accuracy against λ", xLabel: "λ (log scale)", yLabel: "validation accuracy %", xScale: .log,
        series: [
          .init(name: "before collapse", x: x, y: before, errors: beforeSE),
          .init(name: "after collapse", x: x, y: after, errors: afterSE, dashed: true),
        ], legend: .bottom),
      file: "figures/sweep-accuracy.svg", alt: "accuracy against lambda")
    document.image(
      SVGPlot(
        title: "Model size after collapse against λ", xLabel: "λ (log scale)", yLabel: "parameters kept %",
        xScale: .log,
        series: [.init(name: "parameters kept", x: x, y: kept)], legend: .none),
      file: "figures/sweep-size.svg", alt: "compression against lambda")
    if let top = points.last?.1.collapse {
      result(
        "sweep.largest_lambda_collapsed_blocks", Double(top.blocks.filter(\.merged).count),
        "blocks collapsed at the largest λ")
    }
    if let first = points.first?.1.collapse {
      result(
        "sweep.smallest_lambda_collapsed_blocks", Double(first.blocks.filter(\.merged).count),
        "blocks collapsed at the smallest λ")
    }
  }

  // MARK: all runs

  private mutating func allRuns(_ runs: [RunDirectory], curves showCurves: Bool) throws {
    document.heading(showCurves ? "Runs" : "Appendix: every run")
    // Settings that tell the user's runs apart besides λ (lc.mode, train.lr, ... of a
    // sweep): one column, `key=value` for each key not the same in every run (the first
    // four). The keys of the task, model and λ columns are left out: runs of other tasks or
    // models would otherwise fill it with what those columns say.
    let ignored: Set<String> = [
      "output.dir", "lc.lambda", "data.root", "data.task", "model.kind", "model.d_model", "model.layers",
    ]
    let configs = runs.map(\.config)
    let keys = configs.compactMap { $0?.valuePaths }.reduce(into: [String]()) { all, paths in
      for k in paths where !all.contains(k) && !ignored.contains(k) { all.append(k) }
    }
    // What a run started from (its weights, its teacher) first: it defines the comparison.
    let first = ["train.init_from", "train.distill_from"]
    let differing =
      showCurves && runs.count > 1
      ? (first.filter(keys.contains) + keys.filter { !first.contains($0) }).filter { k in
        Set(configs.map { $0?.value(k)?.description ?? "unset" }).count > 1
      } : []
    var header = ["run", "task", "model", "λ"]
    if !differing.isEmpty { header.append("other settings") }
    header += ["parameters", "steps", "best", "final", "final α", "collapsed", "after collapse"]
    var t = MarkdownTable(header: header)
    var stopped = false
    let names = ExperimentReport.shortNames(runs.map(\.path))
    if showCurves {
      // Result keys must name one run each (`a.b` and `a_b` would share one).
      var seen: [String: String] = [:]
      for (run, name) in zip(runs, names) {
        let key = Self.resultKey(name)
        if let other = seen[key] {
          throw LCError.usage(
            ErrorDetail(
              what: "two runs share the result key run.\(key)", location: "\(other), \(run.path)",
              hint: "Rename one of the directories (keys keep letters, digits and -, the rest become _)"))
        }
        seen[key] = run.path
      }
    }
    for (run, name) in zip(runs, names) {
      let s = run.settings
      let best = run.bestRow
      let final = run.evaluations.last
      func score(_ r: SummaryRow?) -> String {
        guard let r = r else { return NumberFormat.missing }
        if let p = r.evalPerplexity { return "ppl " + NumberFormat.fixed(p, decimals: 3) }
        return NumberFormat.plusMinus(100 * r.evalAccuracy, 100 * r.evalAccuracySE) + " %"
      }
      let alphas = (final?.alphas ?? [:]).sorted { $0.key < $1.key }.map { NumberFormat.fixed($0.value, decimals: 3) }
      let collapsedEval = run.evals["collapsed"]
      // λ where the run's regularizer pulled a unit, nil where it pulled none.
      let lambda = s.flatMap { Self.pulls($0, run) ? $0.lc.lambda : nil }
      var row = [
        run.path, s?.data.task.rawValue ?? "?", s.map(Self.modelCell) ?? "?",
        s == nil ? "?" : lambda.map { String(format: "%g", $0) } ?? NumberFormat.missing,
      ]
      if !differing.isEmpty {
        let shown = differing.prefix(4).map { "\($0)=\(run.config?.value($0)?.description ?? "unset")" }
        row.append(shown.joined(separator: ", ") + (differing.count > 4 ? ", … (\(differing.count) differ)" : ""))
      }
      // A run writes eval.json when it ends: without it, it was stopped (Ctrl-C,
      // --stop-after) and its last row is not a final result.
      // One stopped before its first evaluation has logged steps and no row yet.
      let finished = run.evals["final"] != nil || (final == nil && run.steps.isEmpty)
      if !finished { stopped = true }
      let lastStep = max(final?.step ?? 0, run.steps.last?.step ?? 0)
      t.append(
        row + [
          NumberFormat.count(run.parameters), "\(lastStep)" + (finished ? "" : " (stopped)"),
          score(best), score(final),
          alphas.isEmpty ? NumberFormat.missing : alphas.joined(separator: ", "), collapseSummary(run.collapse),
          collapsedEval.map { e in
            e.metrics.perplexity.map { "ppl " + NumberFormat.fixed($0, decimals: 3) } ?? accuracy(e) + " %"
          } ?? NumberFormat.missing,
        ])
      if let s = s { seeds.insert(s.seed) }
      // The user's own runs (not a reproduce root's appendix): every figure also in
      // results.csv and as a result `--check` can hold to a band, under the run's name.
      if showCurves {
        recordRun(run, key: Self.resultKey(name), lambda: lambda)
      }
    }
    document.table(t)
    document.paragraph(
      "best: the highest of a run's evaluations, on the evaluation split best.h5 is chosen on, so an optimistic "
        + "figure; final: its last step's. λ is \(NumberFormat.missing) for a run whose regularizer pulls no unit.")
    if stopped {
      document.paragraph(
        "(stopped): the run has no eval.json, so it did not reach its last step (stopped by Ctrl-C or --stop-after;"
          + " `layercollapse train` with the same config and --resume finishes it). Its \"final\" column is its last"
          + " evaluation so far, and it gives no `final_*` result to `--check`.")
    }
    if showCurves {
      let named = Array(zip(names, runs))
      document.image(
        curves(
          named, title: "Training loss",
          // A distillation run's training loss is its mixed objective, not a cross-entropy.
          y: runs.contains { !($0.settings?.train.distillFrom ?? "").isEmpty }
            ? "training objective (KD runs: (1 − w)·CE + w·T²·KL)" : "cross-entropy"
        ) { $0.loss }, file: "figures/loss.svg", alt: "loss")
      document.image(accuracyCurves(named), file: "figures/accuracy.svg", alt: "accuracy")
      for (i, run) in runs.enumerated() where run.steps.contains(where: { !$0.alphas.isEmpty }) {
        document.image(
          alphaCurves(run, title: "α per block: \(run.path)"), file: "figures/alpha-\(i).svg", alt: "alpha")
      }
    }
  }

  /// "2 of 4 units, 1.2 M → 0.9 M parameters (0.75×)" from collapsed.json; "approximate" when
  /// forced; the checkpoint it collapsed and its threshold where they are not last.h5 and 0.05
  /// (the row's α are last.h5's).
  private func collapseSummary(_ c: CollapseRecord?) -> String {
    guard let c = c else { return NumberFormat.missing }
    let merged = c.blocks.filter(\.merged).count
    let ratio = c.parametersBefore > 0 ? Double(c.parametersAfter) / Double(c.parametersBefore) : nil
    let source = URL(fileURLWithPath: c.input).lastPathComponent
    return "\(merged) of \(c.blocks.count) units, \(NumberFormat.count(c.parametersBefore)) → "
      + "\(NumberFormat.count(c.parametersAfter)) parameters (\(NumberFormat.fixed(ratio, decimals: 3))×)"
      + (c.approximate ? ", approximate" : "") + (source != "last.h5" ? ", of \(source)" : "")
      + (c.threshold != 0.05 ? ", threshold \(NumberFormat.plain(c.threshold))" : "")
  }

  /// A run's figures as CSV rows (experiment "run", row = its name) and results
  /// `run.<name>.<metric>`: best and final accuracy (or perplexity), parameters, λ; with
  /// collapsed.json the units merged and the parameter and MAC ratios; with
  /// collapsed.eval.json its accuracy (or perplexity) and the cost of the collapse against
  /// the run's final evaluation.
  private mutating func recordRun(_ run: RunDirectory, key: String, lambda: Double?) {
    func both(_ metric: String, _ value: Double?, _ what: String, se: Double? = nil) {
      record("run", key, metric, value, se: se)
      result("run.\(key).\(metric)", value, "\(run.path): \(what)")
    }
    let lm = run.evaluations.contains { $0.evalPerplexity != nil }
    // A stopped run (no eval.json) has no final result: a band on it fails as missing.
    let finished = run.evals["final"] != nil
    if let best = run.bestRow, let final = run.evaluations.last {
      if lm {
        both("best_perplexity", best.evalPerplexity, "best validation perplexity")
        if finished { both("final_perplexity", final.evalPerplexity, "final validation perplexity") }
      } else {
        both("best_accuracy", best.evalAccuracy, "best validation accuracy", se: best.evalAccuracySE)
        // eval.json holds the final evaluation unrounded (summary.csv keeps 6 digits).
        if let exact = run.evals["final"]?.metrics {
          both("final_accuracy", exact.accuracy, "final validation accuracy", se: exact.accuracyStandardError)
        }
      }
      both("steps", Double(final.step), "steps trained")
    }
    both("lambda", lambda, "lc.lambda")
    both("parameters", run.parameters.map(Double.init), "parameters")
    if let c = run.collapse {
      both("collapsed_units", Double(c.blocks.filter(\.merged).count), "units merged by collapse")
      both(
        "parameter_ratio", Double(c.parametersAfter) / Double(max(c.parametersBefore, 1)), "parameters after ÷ before")
      both("mac_ratio", Double(c.macsAfter) / Double(max(c.macsBefore, 1)), "MACs per example after ÷ before")
    }
    if let e = run.evals["collapsed"] {
      // Against the checkpoint the collapse read: its own eval (`last.eval.json`, …), else
      // the training's evaluation of those weights (the last row for last.h5, the best for best.h5).
      let stem = run.collapse.map { URL(fileURLWithPath: $0.input).deletingPathExtension().lastPathComponent }
      // last.h5's is the run's final one, in eval.json unrounded (summary.csv keeps 6 digits:
      // a collapse that changed nothing cost -3e-7 against it).
      let input: (accuracy: Double, perplexity: Double?)? =
        stem.flatMap { run.evals[$0].map { ($0.metrics.accuracy, $0.metrics.perplexity) } }
        ?? (stem == "last" ? run.evals["final"] : nil).map { ($0.metrics.accuracy, $0.metrics.perplexity) }
        ?? (stem == "last" ? run.evaluations.last : stem == "best" ? run.bestRow : nil).map {
          // summary.csv's 6 digits back to the count they round (k of the n examples the
          // collapsed model was measured on, the same split): exact for n below 10⁵.
          let n = Double(e.metrics.examples)
          return (n > 0 ? ($0.evalAccuracy * n).rounded() / n : $0.evalAccuracy, $0.evalPerplexity)
        }
      if lm {
        both("collapsed_perplexity", e.metrics.perplexity, "perplexity after collapse")
        if let p = e.metrics.perplexity, let q = input?.perplexity {
          both("collapse_ppl_ratio", p / q, "perplexity after collapse ÷ before")
        }
      } else {
        both("collapsed_accuracy", e.metrics.accuracy, "accuracy after collapse", se: e.metrics.accuracyStandardError)
        if let i = input { both("collapse_cost", i.accuracy - e.metrics.accuracy, "accuracy before − after collapse") }
      }
    }
  }

  /// A run's name as one key of a bands file: letters, digits, `_` and `-` (others become `_`).
  public static func resultKey(_ name: String) -> String {
    String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") ? $0 : "_" })
  }

  /// A run's model in a few words: a transformer's width × depth, a VGG's convolutions
  /// and head; "KD" when it trained against a teacher.
  static func modelCell(_ s: RunSettings) -> String {
    let c = s.architecture.config
    let size =
      c.kind == .vgg
      ? "\(c.convLayers.filter { $0 > 0 }.count) conv, head \(c.headLinears == 1 ? "1 linear" : "\(c.mlpHidden)")"
      : "d\(c.dModel)×\(c.layers)"
    return "\(c.kind.rawValue) \(size)" + (s.train.distillFrom.isEmpty ? "" : ", KD")
  }

  /// Whether the run's regularizer pulled any unit (its λ means something): its logged
  /// steps carry the α of the units it pulled (none where init_from had collapsed every
  /// selected unit already); a run that logged nothing, as its config selects.
  static func pulls(_ s: RunSettings, _ run: RunDirectory) -> Bool {
    guard s.lc.lambda > 0 else { return false }
    if let step = run.steps.first { return !step.alphas.isEmpty }
    return !s.lc.selectedUnits(s.architecture).isEmpty
  }

  /// Paths without the directories they all share: runs/a/x, runs/b/y -> a/x, b/y.
  static func shortNames(_ paths: [String]) -> [String] {
    // Absolute, without `.` and `..`: the same runs give the same names (and result keys)
    // however their paths were typed (`runs/x`, `./runs/x`, `/home/me/runs/x`).
    let parts = paths.map { Paths.absolute($0).split(separator: "/").map(String.init) }
    guard parts.count > 1, let shortest = parts.map(\.count).min() else { return parts.map { $0.last ?? "" } }
    var common = 0
    while common < shortest - 1 && parts.allSatisfy({ $0[common] == parts[0][common] }) { common += 1 }
    return parts.map { $0.dropFirst(common).joined(separator: "/") }
  }

  // MARK: charts

  private func curves(_ runs: [(String, RunDirectory)], title: String, y: String, _ value: (StepLog) -> Double)
    -> SVGPlot
  {
    SVGPlot(
      title: title, xLabel: "step", yLabel: y,
      series: runs.map { name, run in
        .init(name: name, x: run.steps.map { Double($0.step) }, y: run.steps.map(value), markers: false)
      }, legend: .bottom)
  }

  private func accuracyCurves(_ runs: [(String, RunDirectory)]) -> SVGPlot {
    var series: [SVGPlot.Series] = []
    let lm = runs.contains { $0.1.evaluations.contains { $0.evalPerplexity != nil } }
    for (name, run) in runs {
      let x = run.evaluations.map { Double($0.step) }
      if lm {
        series.append(.init(name: name, x: x, y: run.evaluations.map { $0.evalPerplexity ?? .nan }))
      } else {
        series.append(.init(name: "\(name): validation", x: x, y: run.evaluations.map { 100 * $0.evalAccuracy }))
        if run.evaluations.contains(where: { $0.trainAccuracy != nil }) {
          series.append(
            .init(
              name: "\(name): train", x: x, y: run.evaluations.map { 100 * ($0.trainAccuracy ?? .nan) }, dashed: true))
        }
      }
    }
    return SVGPlot(
      title: lm ? "Validation perplexity" : "Accuracy", xLabel: "step", yLabel: lm ? "perplexity" : "accuracy %",
      series: series, legend: .bottom)
  }

  private func alphaCurves(_ run: RunDirectory, title: String) -> SVGPlot {
    let units = Set(run.steps.flatMap { $0.alphas.keys }).sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
    let arch = run.settings?.architecture
    let series = units.map { b in
      // A transformer's unit is its block; a Mixer's is named by module path.
      let name = arch.flatMap { a in a.family.unitsPerBlock == 1 ? nil : Int(b).map { a.unitName($0) } } ?? "block \(b)"
      return SVGPlot.Series(
        name: name, x: run.steps.map { Double($0.step) }, y: run.steps.map { $0.alphas[b] ?? .nan },
        markers: false)
    }
    // The threshold as the config wrote it: Float's shortest form ("0.05"), not its
    // Double widening ("0.05000000074505806").
    let threshold: Float = run.settings?.lc.threshold ?? 0.05
    return SVGPlot(
      title: title, xLabel: "step", yLabel: "α", series: series,
      referenceLines: [
        ReferenceLine(
          y: 1 - clean(threshold), label: "collapse threshold 1 − \(threshold)")
      ],
      legend: .bottom)
  }

  // MARK: footer

  private mutating func footer(_ env: ReportEnvironment) {
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
    f.timeZone = TimeZone(identifier: "UTC")
    document.footer("Made \(f.string(from: env.date)) by layercollapse \(layercollapseVersion).")
    document.footer(
      "Seeds: \(seeds.sorted().map(String.init).joined(separator: ", ")); where this report was made: BLAS threads \(env.blasThreads), \(env.blasConfiguration)."
    )
    if let s = env.elapsedSeconds { document.footer("Wall time of the whole run: \(s / 60) min \(s % 60) s.") }
  }
}

extension RunDirectory {
  /// Names in the order a reader expects of a sweep: numbers by value, wherever they are
  /// (`lc.lambda=0.1`, `=50`, `=300`; text order would put 300 before 50), text as text.
  public static func naturalOrder(_ a: String, _ b: String) -> Bool {
    let (x, y) = (parts(a), parts(b))
    for (p, q) in zip(x, y) where p != q {
      switch (p, q) {
      case (.number(let m), .number(let n)): return m < n
      case (.number, .text): return true
      case (.text, .number): return false
      case (.text(let s), .text(let t)): return s < t
      }
    }
    return x.count != y.count ? x.count < y.count : a < b
  }

  private enum Part: Equatable {
    case number(Double)
    case text(String)
  }

  /// Runs of digits (with one decimal point and an exponent: `0.5`, `1e-3`) and of other text.
  private static func parts(_ s: String) -> [Part] {
    var out: [Part] = []
    let chars = Array(s)
    var i = 0
    while i < chars.count {
      var j = i
      if chars[i].isASCII && chars[i].isNumber {
        while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
        if j + 1 < chars.count && chars[j] == "." && chars[j + 1].isASCII && chars[j + 1].isNumber {
          j += 1
          while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
        }
        if j + 1 < chars.count && (chars[j] == "e" || chars[j] == "E") {
          var k = j + 1
          if k < chars.count && (chars[k] == "-" || chars[k] == "+") { k += 1 }
          if k < chars.count && chars[k].isASCII && chars[k].isNumber {
            j = k
            while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
          }
        }
        out.append(.number(Double(String(chars[i..<j])) ?? 0))
      } else {
        while j < chars.count && !(chars[j].isASCII && chars[j].isNumber) { j += 1 }
        out.append(.text(String(chars[i..<j])))
      }
      i = j
    }
    return out
  }

  /// `path` if it is a run directory, else every run directory below it (sorted, numbers
  /// by value, up to three levels deep).
  public static func find(under path: String) throws -> [RunDirectory] {
    let fm = FileManager.default
    if fm.fileExists(atPath: path + "/summary.csv") { return [try read(path)] }
    guard fm.fileExists(atPath: path) else {
      throw LCError.missingInput(ErrorDetail(what: "no such directory", location: path))
    }
    var found: [RunDirectory] = []
    func walk(_ dir: String, _ depth: Int) throws {
      guard depth <= 3 else { return }
      for name in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted(by: naturalOrder) {
        let sub = dir + "/" + name
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: sub, isDirectory: &isDir), isDir.boolValue else { continue }
        if fm.fileExists(atPath: sub + "/summary.csv") { found.append(try read(sub)) } else { try walk(sub, depth + 1) }
      }
    }
    try walk(path, 1)
    return found
  }
}
