import Foundation

/// Writes whole files so that a crash, a kill or a full disk never leaves a partial file in
/// place of a good one: the bytes go to `path.tmp`, are synced to disk, and the temporary
/// file is renamed over `path`. On any failure the temporary file is removed and `path`
/// still holds what it held before.
///
/// Errors name the file: a directory that does not exist or cannot be written is
/// `.cannotCreate` (exit 73); a write that fails part-way (disk full, quota, I/O error) is
/// `.io` (exit 74).
public enum AtomicFile {
  /// The temporary name a file is written under before it is renamed into place.
  public static func temporaryPath(for path: String) -> String { path + ".tmp" }

  public static func write(_ data: Data, to path: String) throws {
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in try write(raw, to: path) }
  }

  /// Checks, before any work, that `path` can be written later: a directory in its place
  /// is refused, its own directory is made if missing (`eval -o results/x.json`).
  public static func prepare(_ path: String) throws {
    guard !path.isEmpty else {
      throw LCError.usage(ErrorDetail(what: "the output path is empty", location: "-o", expected: "a file path"))
    }
    try refuseNonFile(path)
    let parent: String = Paths.parent(path)
    if !parent.isEmpty { try OutputDirectory.create(parent, what: "the directory for \(path)") }
    try probeWritable(path)
  }

  /// Creates and removes a file beside `path`: a directory that cannot be written (read
  /// only, `/proc`, a full quota) fails now, before the work, as the write would later.
  /// (Permission bits alone would not tell: root passes every access check.)
  public static func probeWritable(_ path: String) throws {
    let probe: String = path + ".probe\(getpid()).tmp"  // *.tmp: removed if left behind
    let fd: Int32 = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      if errno == EEXIST { return }  // another probe of this process's pid: writable
      throw openError(path: path, errno: errno)
    }
    _ = Foundation.close(fd)
    _ = unlink(probe)
  }

  /// A directory, pipe, device or socket at `path` is refused: the rename would replace
  /// it (`-o /dev/null` took the device node's place).
  static func refuseNonFile(_ path: String) throws {
    switch Paths.notAFile(path) {
    case nil: return  // a file, or nothing there (or unreadable: open says)
    case .directory?:
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "is a directory, not a file", location: path, expected: "a file path to write",
          hint: "Name a file inside it"))
    case let other?:
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "is not a regular file (\(other))", location: path, expected: "a file path to write",
          hint: "Name a file to write"))
    }
  }

  public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
    try refuseNonFile(path)
    let temporary: String = temporaryPath(for: path)
    let fd: Int32 = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw openError(path: path, errno: errno) }
    do {
      var offset: Int = 0
      while offset < bytes.count {
        let n: Int = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw writeError(path: path, errno: n < 0 ? errno : EIO) }
        offset += n
      }
      guard fsync(fd) == 0 else { throw writeError(path: path, errno: errno) }
      let closed: Int32 = Foundation.close(fd)
      guard closed == 0 else { throw writeError(path: path, errno: errno) }
    } catch {
      _ = Foundation.close(fd)
      _ = unlink(temporary)
      throw error
    }
    CrashPoint.reach("before-rename:" + (path as NSString).lastPathComponent)
    guard rename(temporary, path) == 0 else {
      let code: Int32 = errno
      _ = unlink(temporary)
      throw LCError.io(
        ErrorDetail(what: "cannot move the new file into place", location: path, got: describe(code)))
    }
    syncDirectory(of: path)  // makes the rename itself durable; a failure here loses nothing
  }

  /// Removes the temporary files that a killed writer left in `directory` (`*.tmp`).
  /// Only for a directory this process owns (a run directory under its lock).
  public static func removeStaleTemporaries(in directory: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
    for name in names where name.hasSuffix(".tmp") { _ = unlink(directory + "/" + name) }
  }

  static func syncDirectory(of path: String) {
    let dir: String = Paths.parent(path)
    let fd: Int32 = open(dir.isEmpty ? "." : dir, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    _ = Foundation.close(fd)
  }

  static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

  static func openError(path: String, errno code: Int32) -> LCError {
    if code == ENOSPC || code == EDQUOT || code == EIO { return writeError(path: path, errno: code) }
    let dir: String = Paths.parent(path)
    var isDirectory: ObjCBool = false
    let dirExists: Bool = FileManager.default.fileExists(atPath: dir.isEmpty ? "." : dir, isDirectory: &isDirectory)
    let hint: String =
      !dirExists
      ? "The directory `\(dir)` does not exist"
      : !isDirectory.boolValue ? "`\(dir)` is not a directory" : "Check the permissions of `\(dir.isEmpty ? "." : dir)`"
    return LCError.cannotCreate(
      ErrorDetail(what: "cannot create file", location: path, got: describe(code), hint: hint))
  }

  static func writeError(path: String, errno code: Int32) -> LCError {
    let full: Bool = code == ENOSPC || code == EDQUOT
    return LCError.io(
      ErrorDetail(
        what: full
          ? "disk full while writing; the previous file is intact" : "write failed; the previous file is intact",
        location: path, got: describe(code),
        hint: full ? "Free space on that file system (or choose another output directory) and run again" : ""))
  }
}
