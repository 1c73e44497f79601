import Foundation

/// Creates an output directory (and its parents) for a command, or says in plain words why
/// it cannot: which part of the path is a file, which existing directory is not writable.
/// Exit 73 either way; `what` names the directory's purpose ("the run directory").
public enum OutputDirectory {
  public static func create(_ path: String, what: String) throws {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
      if isDirectory.boolValue { return }
      throw failure(path, what: what, got: "an existing file", hint: "Choose another directory or remove the file")
    }
    // The deepest part of the path that exists: a file there blocks it, an unwritable
    // directory denies it.
    var existing = Paths.parent(path)
    while !existing.isEmpty && existing != "/" && !fm.fileExists(atPath: existing) {
      existing = Paths.parent(existing)
    }
    let parent = existing.isEmpty ? "." : existing
    if fm.fileExists(atPath: parent, isDirectory: &isDirectory) && !isDirectory.boolValue {
      throw failure(path, what: what, got: "`\(parent)` is a file, not a directory", hint: "Choose another directory")
    }
    if access(parent, W_OK) != 0 {
      // The system's reason: "Permission denied", "Read-only file system".
      throw failure(
        path, what: what, got: "`\(parent)`: \(String(cString: strerror(errno)))",
        hint: "Check its permissions or choose another directory")
    }
    // Each missing level with mkdir(2), so that a failure gives the system's own reason
    // ("Read-only file system"), which Foundation's error hides.
    var levels: [String] = []
    var level = path
    while !level.isEmpty && level != "/" && !fm.fileExists(atPath: level) {
      levels.insert(level, at: 0)
      level = Paths.parent(level)
    }
    for l in levels {
      guard mkdir(l, 0o777) == 0 || errno == EEXIST else {
        throw failure(
          path, what: what, got: String(cString: strerror(errno)), hint: "Check the path, or choose another directory")
      }
    }
  }

  static func failure(_ path: String, what: String, got: String, hint: String) -> LCError {
    LCError.cannotCreate(ErrorDetail(what: "cannot create \(what)", location: path, got: got, hint: hint))
  }
}
