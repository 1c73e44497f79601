import Foundation

/// One row of a run's summary.csv.
public struct SummaryRow: Sendable, Equatable {
  public var step: Int
  public var epoch: Int
  public var evalLoss: Double
  public var evalAccuracy: Double
  public var evalAccuracySE: Double
  public var evalPerplexity: Double?
  public var trainLoss: Double?
  public var trainAccuracy: Double?
  public var meanAlpha: Double?
  public var alphas: [Int: Double]
  public var isBest: Bool
}

/// Everything a run directory holds, read back for reports.
public struct RunDirectory: Sendable {
  public let path: String
  public var name: String { URL(fileURLWithPath: path).lastPathComponent }
  public let settings: RunSettings?
  /// config.yaml as written (every key resolved), nil when unreadable.
  public let config: ConfigTree?
  /// metrics.jsonl, in step order.
  public let steps: [StepLog]
  /// summary.csv, one row per evaluation.
  public let evaluations: [SummaryRow]
  /// `<stem>.eval.json` files by stem ("best", "last", "collapsed"), and "final" for eval.json.
  public let evals: [String: EvalRecord]
  /// collapsed.json, written by `layercollapse collapse`.
  public let collapse: CollapseRecord?
  /// `<stem>.sample.txt` files by stem.
  public let samples: [String: String]
  /// The model's parameters: the final evaluation's count, or for a run stopped before it
  /// (no eval.json) its last.h5's (nil without either, or when last.h5 is unreadable).
  public let parameters: Int?

  public var bestRow: SummaryRow? { evaluations.max { $0.evalAccuracyScore < $1.evalAccuracyScore } }

  /// Reads `path`; a directory without summary.csv is not a run.
  public static func read(_ path: String) throws -> RunDirectory {
    let fm = FileManager.default
    guard fm.fileExists(atPath: path + "/summary.csv") else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "not a run directory", location: path, expected: "summary.csv written by `layercollapse train`"))
    }
    let config = try? ConfigTree.load(path: path + "/config.yaml")
    let settings = config.flatMap { try? RunSettings.decode($0).settings }
    let decoder = JSONFile.decoder()
    var steps: [StepLog] = []
    let metrics = fm.fileExists(atPath: path + "/metrics.jsonl") ? try readText(path + "/metrics.jsonl") : ""
    for (i, line) in metrics.split(separator: "\n").enumerated() {
      do {
        steps.append(try decoder.decode(StepLog.self, from: Data(line.utf8)))
      } catch {
        throw LCError.badData(
          ErrorDetail(what: "unreadable metrics line", location: "\(path)/metrics.jsonl:\(i + 1)", got: "\(error)"))
      }
    }
    let rows = try readSummary(path + "/summary.csv")
    var evals: [String: EvalRecord] = [:]
    var samples: [String: String] = [:]
    // A record counts for the checkpoint its name says (X.eval.json for X.h5, eval.json
    // for the run's last.h5) only if it describes that checkpoint: one `eval -o` wrote for
    // another would show that model's figures as this one's.
    for file in (try? fm.contentsOfDirectory(atPath: path)) ?? [] {
      if file == CheckpointFiles.runEvaluation {
        let record = try EvalRecord.read(path + "/" + file)
        if record.describes(checkpointNamed: "last.h5") { evals["final"] = record }
      } else if file.hasSuffix(CheckpointFiles.evalSuffix) {
        let stem = String(file.dropLast(CheckpointFiles.evalSuffix.count))
        let record = try EvalRecord.read(path + "/" + file)
        if record.describes(checkpointNamed: stem + ".h5") { evals[stem] = record }
      } else if file.hasSuffix(CheckpointFiles.sampleSuffix) {
        samples[String(file.dropLast(CheckpointFiles.sampleSuffix.count))] = try? String(
          contentsOfFile: path + "/" + file, encoding: .utf8)
      }
    }
    let collapseRecord = CheckpointFiles.collapseRecord(path + "/" + CheckpointFiles.defaultCollapsed)
    let collapse =
      fm.fileExists(atPath: collapseRecord) ? try CollapseRecord.read(collapseRecord) : nil
    let parameters =
      evals["final"]?.parameters
      ?? (try? Checkpoint.architecture(path + "/last.h5"))?.parameterCount
    return RunDirectory(
      path: path, settings: settings, config: config, steps: steps, evaluations: rows, evals: evals, collapse: collapse,
      samples: samples, parameters: parameters)
  }

  /// A run file's text; a file that is not UTF-8 text (binary, damaged) is bad data naming it.
  static func readText(_ file: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: file) else {
      throw LCError.io(ErrorDetail(what: "cannot read file", location: file))
    }
    guard let text = String(data: data, encoding: .utf8), !text.contains("\u{0}") else {
      throw LCError.badData(
        ErrorDetail(
          what: "not a text file", location: file, expected: "UTF-8 text written by `layercollapse train`",
          got: "\(data.count) bytes of binary data"))
    }
    return text
  }

  static func readSummary(_ file: String) throws -> [SummaryRow] {
    let text = try readText(file)
    var rows: [SummaryRow] = []
    for (i, line) in text.split(separator: "\n").enumerated().dropFirst() {
      let c = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      guard c.count == 11, let step = Int(c[0]), let epoch = Int(c[1]), let loss = Double(c[2]), let acc = Double(c[3]),
        let se = Double(c[4])
      else {
        throw LCError.badData(
          ErrorDetail(
            what: "malformed summary row", location: "\(file):\(i + 1)", expected: RunLogs.summaryHeader,
            got: String(line)))
      }
      var alphas: [Int: Double] = [:]
      for pair in c[9].split(separator: " ") {
        let kv = pair.split(separator: ":")
        if kv.count == 2, let b = Int(kv[0]), let a = Double(kv[1]) { alphas[b] = a }
      }
      rows.append(
        SummaryRow(
          step: step, epoch: epoch, evalLoss: loss, evalAccuracy: acc, evalAccuracySE: se, evalPerplexity: Double(c[5]),
          trainLoss: Double(c[6]), trainAccuracy: Double(c[7]), meanAlpha: Double(c[8]), alphas: alphas,
          isBest: c[10] == "1"))
    }
    return rows
  }
}

extension SummaryRow {
  /// Higher is better: accuracy, or −perplexity for language models.
  public var evalAccuracyScore: Double { evalPerplexity.map { -$0 } ?? evalAccuracy }
}
