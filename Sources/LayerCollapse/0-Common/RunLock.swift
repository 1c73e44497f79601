import Foundation
import Synchronization

/// An exclusive lock on a run directory, so that two `train` processes (or a `--resume`
/// while the run is alive) never write into the same one. It is an `flock` on
/// `<dir>/.lock`: the kernel drops it when the holder exits, however it exits, so a
/// killed run never leaves a stale lock. The file holds the holder's pid, for the message.
public final class RunLock {
  public let path: String
  private let fd: Int32

  /// Takes the lock at once or throws `.cannotCreate` (exit 73) naming the holder.
  public init(directory: String) throws {
    path = directory + "/.lock"
    let fd: Int32 = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw AtomicFile.openError(path: path, errno: errno) }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      let code: Int32 = errno
      var buffer: [UInt8] = [UInt8](repeating: 0, count: 32)
      let n: Int = read(fd, &buffer, buffer.count)
      _ = Foundation.close(fd)
      let holder: String = String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
      guard code == EWOULDBLOCK else {
        throw LCError.cannotCreate(
          ErrorDetail(what: "cannot lock the run directory", location: path, got: AtomicFile.describe(code)))
      }
      throw LCError.cannotCreate(
        ErrorDetail(
          what: "another layercollapse process is training in this run directory", location: directory,
          got: holder.isEmpty ? "the lock \(path) is held" : "process \(holder) holds \(path)",
          hint: "Wait for it to finish (or stop it with Ctrl-C), or choose output.dir=NEW_DIR"))
    }
    self.fd = fd
    let pid: String = "\(getpid())\n"
    _ = ftruncate(fd, 0)
    _ = pid.withCString { write(fd, $0, strlen($0)) }
  }

  deinit { _ = Foundation.close(fd) }  // closing the descriptor drops the lock
}

/// Named points where a test can have the process killed (`SIGKILL`, as a crash or the
/// OOM killer would), to check that every file a run writes stays consistent whatever the
/// moment: `LAYERCOLLAPSE_CRASH_AT=before-rename:last.h5` kills this process just before
/// it renames a finished `last.h5.tmp` over `last.h5`; `…#2` at the second time it gets
/// there. Unset, it does nothing.
public enum CrashPoint {
  static let target: (name: String, occurrence: Int)? = {
    guard let t = ProcessInfo.processInfo.environment["LAYERCOLLAPSE_CRASH_AT"], !t.isEmpty else { return nil }
    let parts = t.split(separator: "#", maxSplits: 1)
    return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
  }()
  static let reached = Mutex<Int>(0)

  public static func reach(_ name: String) {
    guard let t = target, t.name == name else { return }
    let count = reached.withLock { n in
      n += 1
      return n
    }
    if count == t.occurrence { kill(getpid(), SIGKILL) }
  }
}
