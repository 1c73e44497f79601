import Foundation

/// The run directory's logs: `metrics.jsonl` (one JSON object per logged step, flushed as
/// written) and `summary.csv` (one row per evaluation). On resume both are cut back to the
/// checkpoint's step, so the resumed run's lines follow on without duplicates.
final class RunLogs {
  let metricsPath: String
  let summaryPath: String
  private let metrics: FileHandle
  private let summary: FileHandle
  private let encoder: JSONEncoder

  static let summaryHeader =
    "step,epoch,eval_loss,eval_accuracy,eval_accuracy_se,eval_perplexity,train_loss,train_accuracy,mean_alpha,alphas,is_best"

  init(dir: String, resumedAt: Int?) throws {
    metricsPath = dir + "/metrics.jsonl"
    summaryPath = dir + "/summary.csv"
    encoder = JSONFile.encoder()
    if let step = resumedAt {
      // Both read (and checked) before either is cut: a bad summary.csv must not cost
      // metrics.jsonl its lines.
      let (metricsText, summaryText) = (try RunLogs.read(metricsPath), try RunLogs.read(summaryPath))
      try RunLogs.truncate(metricsText, to: metricsPath, keepHeader: false) { RunLogs.step(ofJSONLine: $0) <= step }
      try RunLogs.truncate(summaryText, to: summaryPath, keepHeader: true) {
        Int($0.prefix { $0 != "," }) ?? Int.max <= step
      }
    } else {
      try writeText("", to: metricsPath)
      try writeText(RunLogs.summaryHeader + "\n", to: summaryPath)
    }
    metrics = try RunLogs.openForAppend(metricsPath)
    summary = try RunLogs.openForAppend(summaryPath)
  }

  deinit {
    try? metrics.close()
    try? summary.close()
  }

  func append(_ log: StepLog) throws {
    var line = try encoder.encode(log)
    line.append(0x0A)
    try RunLogs.append(line, to: metrics, path: metricsPath)
  }

  func append(_ e: EvaluationLog) throws {
    func f(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "" }
    let alphas = e.alphas.keys.sorted().map { "\($0):\(clean(e.alphas[$0]!))" }.joined(separator: " ")
    let mean = e.alphas.isEmpty ? nil : e.alphas.values.reduce(0.0) { $0 + Double($1) } / Double(e.alphas.count)
    let cells = [
      "\(e.step)", "\(e.epoch)", f(e.eval.loss), f(e.eval.accuracy), f(e.eval.accuracyStandardError),
      f(e.eval.perplexity), f(e.train?.loss), f(e.train?.accuracy), f(mean), alphas, e.isBest ? "1" : "0",
    ]
    try RunLogs.append(Data((cells.joined(separator: ",") + "\n").utf8), to: summary, path: summaryPath)
  }

  static func step(ofJSONLine line: Substring) -> Int {
    guard let r = line.range(of: "\"step\":") else { return Int.max }
    return Int(line[r.upperBound...].prefix { $0.isNumber }) ?? Int.max
  }

  /// The log at `path` as text: empty when it is missing; one that is there but cannot be
  /// read as text is an error, not an empty log to write over the run's history.
  static func read(_ path: String) throws -> String {
    guard FileManager.default.fileExists(atPath: path) else { return "" }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw LCError.io(
        ErrorDetail(
          what: "cannot read the run's log to resume it", location: path,
          hint: "Nothing was changed; check the file's permissions"))
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw LCError.badData(
        ErrorDetail(
          what: "the run's log is not UTF-8 text", location: path,
          hint: "Nothing was changed; move the file aside to resume with its log started again"))
    }
    return text
  }

  /// Writes `text` (the log read from `path`) back cut to the lines `keep` accepts.
  static func truncate(_ text: String, to path: String, keepHeader: Bool, keep: (Substring) -> Bool) throws {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
    var header: [Substring] = []
    if keepHeader {
      header = [Substring(summaryHeader)]
      if !lines.isEmpty { lines.removeFirst() }
    }
    let kept = header + lines.filter(keep)
    try writeText(kept.map { $0 + "\n" }.joined(), to: path)
  }

  static func openForAppend(_ path: String) throws -> FileHandle {
    guard let h = FileHandle(forWritingAtPath: path) else {
      throw LCError.cannotCreate(ErrorDetail(what: "cannot open log for writing", location: path))
    }
    h.seekToEndOfFile()
    return h
  }

  static func append(_ data: Data, to handle: FileHandle, path: String) throws {
    do {
      try handle.write(contentsOf: data)
    } catch {
      throw LCError.io(ErrorDetail(what: "cannot append to log", location: path, got: "\(error)"))
    }
  }
}
