import Foundation

/// The records written beside a checkpoint, named by its stem: `eval run/best.h5` writes
/// `run/best.eval.json`, `collapse -o run/collapsed.h5` writes `run/collapsed.json`.
/// `report` finds them by these names; the commands that write them use the same.
public enum CheckpointFiles {
  /// The suffix of an evaluation record (`best.eval.json`).
  public static let evalSuffix = ".eval.json"
  /// A training run's final evaluation, in its directory.
  public static let runEvaluation = "eval.json"
  /// What `collapse` writes in the input's directory unless told otherwise.
  public static let defaultCollapsed = "collapsed.h5"

  /// The path without its `.h5` (any other name is kept whole).
  public static func stem(_ checkpoint: String) -> String {
    checkpoint.hasSuffix(".h5") ? String(checkpoint.dropLast(3)) : checkpoint
  }

  /// Where `eval` records `checkpoint`'s evaluation; `variant` marks a partial one
  /// (`train`, `limit64`), which is kept apart from what `report` shows.
  public static func evalRecord(_ checkpoint: String, variants: [String] = []) -> String {
    ([stem(checkpoint)] + variants).joined(separator: ".") + evalSuffix
  }

  /// Where `collapse` records what it merged, for the checkpoint it writes.
  public static func collapseRecord(_ output: String) -> String { stem(output) + ".json" }

  /// The suffix of the text `generate` samples that `report` shows (`last.sample.txt`).
  public static let sampleSuffix = ".sample.txt"

  /// What an earlier run left in `directory` that `report` would read as the new run's:
  /// its checkpoints (any of our `.h5` files: last, best, collapsed, or another `-o`), the
  /// collapse records beside them, evaluation records and samples. Names only; other files
  /// (the user's) are not listed. metrics.jsonl, summary.csv and config.yaml are rewritten
  /// by the run itself.
  public static func earlierRun(in directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var out: [String] = []
    for name in names.sorted() {
      let path = directory + "/" + name
      if name == runEvaluation || name.hasSuffix(evalSuffix) || name.hasSuffix(sampleSuffix) {
        out.append(name)
      } else if name.hasSuffix(".h5"), case .checkpoint = Checkpoint.occupant(of: path) {
        out.append(name)
        let record = collapseRecord(path)
        if CollapseRecord.isRecord(record) {
          out.append((record as NSString).lastPathComponent)
        }
      }
    }
    return out
  }
}
