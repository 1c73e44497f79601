import Foundation
import Synchronization

/// Path arithmetic on strings, for the names users type (`-o c`, `output.dir=r/run1`).
public enum Paths {
  /// What may stand at a path instead of a regular file.
  public enum NotAFile: Sendable, Equatable, CustomStringConvertible {
    case directory
    case pipe
    case deviceOrSocket

    /// As messages name it: "a directory", "a pipe", "a device or socket".
    public var description: String {
      switch self {
      case .directory: "a directory"
      case .pipe: "a pipe"
      case .deviceOrSocket: "a device or socket"
      }
    }
  }

  /// What is at `path` when it is not a regular file; nil for a regular file (or a link
  /// to one) and for nothing at all.
  public static func notAFile(_ path: String) -> NotAFile? {
    var info: stat = stat()
    guard stat(path, &info) == 0 else { return nil }
    switch info.st_mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFDIR: return .directory
    case S_IFIFO: return .pipe
    default: return .deviceOrSocket
    }
  }

  /// The bytes of a regular file, or of a pipe (`kind` = `.pipe`, from `notAFile`) through
  /// `readPipe`.
  public static func read(_ path: String, kind: NotAFile?) throws -> Data {
    kind == .pipe ? try readPipe(path) : try Data(contentsOf: URL(fileURLWithPath: path))
  }

  /// Everything a pipe gives until its writer closes it (`train <(sed … config.yaml)`,
  /// which Foundation's `Data(contentsOf:)` refuses), read once per process and kept: a
  /// pipe opened again gives nothing (process substitution) or waits for a new writer (a
  /// FIFO), while a sweep reads its data once per point. Like `cat`, opening a FIFO waits
  /// for its writer.
  public static func readPipe(_ path: String) throws -> Data {
    if let kept = pipeContents.withLock({ $0[path] }) { return kept }
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    let data = try handle.readToEnd() ?? Data()
    pipeContents.withLock { $0[path] = data }
    return data
  }

  private static let pipeContents = Mutex<[String: Data]>([:])

  /// Removes the file at `path`; a failure is `cannotCreate` (73), saying `what` could not
  /// be removed and what to do (`hint`).
  public static func remove(_ path: String, what: String, hint: String) throws {
    do {
      try FileManager.default.removeItem(atPath: path)
    } catch {
      throw LCError.cannotCreate(
        ErrorDetail(what: "cannot remove \(what)", location: path, got: describe(error), hint: hint))
    }
  }

  /// A file-system error as the system says it ("Permission denied"), not Foundation's
  /// `Error Domain=NSCocoaErrorDomain Code=513 … UserInfo={…}`.
  public static func describe(_ error: Error) -> String {
    let ns = error as NSError
    if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(posix.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
  }

  /// `path` made absolute (against the current directory) and without `.` and `..`
  /// components: one spelling for one file, to compare paths given in different ways.
  public static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

  /// The directory part of `path`, as `NSString.deletingLastPathComponent` gives it
  /// ("a/b" → "a", "/a" → "/", "a/b/" → "a", "b" → ""), which traps on a one-character
  /// relative name ("c", ".", "c/") in the Foundation of Swift 6.x on Linux.
  public static func parent(_ path: String) -> String {
    var s: Substring = Substring(path)
    while s.count > 1 && s.hasSuffix("/") { s = s.dropLast() }
    guard let slash: String.Index = s.lastIndex(of: "/") else { return "" }
    var head: Substring = s[..<slash]
    while head.hasSuffix("/") { head = head.dropLast() }
    return head.isEmpty ? "/" : String(head)
  }
}
