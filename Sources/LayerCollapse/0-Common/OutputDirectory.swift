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
    var existing = (path as NSString).deletingLastPathComponent
    while !existing.isEmpty && existing != "/" && !fm.fileExists(atPath: existing) {
      existing = (existing as NSString).deletingLastPathComponent
    }
    let parent = existing.isEmpty ? "." : existing
    if fm.fileExists(atPath: parent, isDirectory: &isDirectory) && !isDirectory.boolValue {
      throw failure(path, what: what, got: "`\(parent)` is a file, not a directory", hint: "Choose another directory")
    }
    if !fm.isWritableFile(atPath: parent) {
      throw failure(
        path, what: what, got: "`\(parent)` is not writable", hint: "Check its permissions or choose another directory")
    }
    do {
      try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
      throw failure(path, what: what, got: reason, hint: "")
    }
  }

  static func failure(_ path: String, what: String, got: String, hint: String) -> LCError {
    LCError.cannotCreate(ErrorDetail(what: "cannot create \(what)", location: path, got: got, hint: hint))
  }
}
