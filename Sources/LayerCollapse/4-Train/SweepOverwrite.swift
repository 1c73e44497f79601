import Foundation

/// `train --overwrite` on a sweep replaces each point's earlier run when that point starts,
/// not before (a config or data error must not cost the earlier runs). Stopped midway, the
/// points it had not reached still hold the earlier sweep's runs, which `--resume` would
/// take for this sweep's (and refuse, their config differing). The points still to replace
/// are listed in a file of the sweep's directory until each has started; `--resume` starts
/// those from scratch.
public enum SweepOverwrite {
  /// The list, one point name a line, in the sweep's output.dir.
  public static let fileName = ".overwrite-pending"

  /// Records that every point of `points` is still to be replaced.
  public static func begin(root: String, points: [String]) throws {
    try OutputDirectory.create(root, what: "the sweep directory")
    try AtomicFile.write(Data((points.joined(separator: "\n") + "\n").utf8), to: root + "/" + fileName)
  }

  /// The points an interrupted `--overwrite` has not replaced yet (none without the file).
  public static func pending(root: String) -> Set<String> {
    guard let text = try? String(contentsOfFile: root + "/" + fileName, encoding: .utf8) else { return [] }
    return Set(text.split(separator: "\n").map(String.init))
  }

  /// `point` has started (its earlier run replaced): off the list, and the file gone with
  /// the last one.
  public static func started(root: String, point: String) throws {
    let rest = pending(root: root).subtracting([point])
    let path = root + "/" + fileName
    guard FileManager.default.fileExists(atPath: path) else { return }
    if rest.isEmpty {
      try Paths.remove(path, what: "the sweep's list of points to replace", hint: "Remove it by hand")
    } else {
      try AtomicFile.write(Data((rest.sorted().joined(separator: "\n") + "\n").utf8), to: path)
    }
  }
}
