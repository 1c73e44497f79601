import Foundation
import Kernels

/// The environment variable that names the data root when the config does not.
public let dataRootEnvironmentVariable: String = "LAYERCOLLAPSE_DATA"

/// The directory that holds the datasets (`sst2/`, `cifar10/`, `text/`, ...), as an absolute path.
///
/// The first of these that is set and non-empty wins: `configured` (the config's value),
/// the environment variable `LAYERCOLLAPSE_DATA`, and finally `../shared/datasets`.
/// A relative path is taken relative to `currentDirectory`. The directory is not checked
/// here; the loaders report a missing file or directory with its full path.
public func resolveDataRoot(
  configured: String? = nil,
  environment: [String: String] = ProcessInfo.processInfo.environment,
  currentDirectory: String = FileManager.default.currentDirectoryPath
) -> String {
  var chosen: String = "../shared/datasets"
  if let value = environment[dataRootEnvironmentVariable], !value.isEmpty { chosen = value }
  if let value = configured, !value.isEmpty { chosen = value }
  if !chosen.hasPrefix("/") {
    chosen = (currentDirectory.hasSuffix("/") ? currentDirectory : currentDirectory + "/") + chosen
  }
  return Paths.absolute(chosen)
}

/// Orders of example indices for one pass over a split.
public enum BatchOrder {
  /// The generator that shuffles epoch `epoch` of a run seeded with `seed`.
  public static func shuffleRNG(seed: UInt64, epoch: Int) -> RNG {
    RNG(seed: seed, stream: "shuffle").derived("epoch-\(epoch)")
  }

  /// 0..<count in order, cut into batches of `batchSize` (the last one may be smaller).
  public static func sequential(count: Int, batchSize: Int) throws -> [[Int]] {
    try checkBatchSize(batchSize)
    return chunk(Array(0..<count), size: batchSize, dropLast: false)
  }

  /// A seeded permutation of 0..<count cut into batches; bit-identical for the same seed and epoch.
  /// With `dropLast`, a final batch smaller than `batchSize` is left out.
  public static func shuffled(count: Int, batchSize: Int, seed: UInt64, epoch: Int, dropLast: Bool = false) throws
    -> [[Int]]
  {
    try checkBatchSize(batchSize)
    var order: [Int] = Array(0..<count)
    var rng: RNG = shuffleRNG(seed: seed, epoch: epoch)
    rng.shuffle(&order)
    return chunk(order, size: batchSize, dropLast: dropLast)
  }

  static func checkBatchSize(_ batchSize: Int) throws {
    if batchSize < 1 {
      throw LCError.badConfig([
        ErrorDetail(
          what: "invalid batch size", location: "batch_size", expected: "a positive integer", got: "\(batchSize)")
      ])
    }
  }

  static func chunk(_ values: [Int], size: Int, dropLast: Bool) -> [[Int]] {
    var batches: [[Int]] = []
    var start: Int = 0
    while start < values.count {
      let end: Int = min(start + size, values.count)
      if dropLast && end - start < size { break }
      batches.append(Array(values[start..<end]))
      start = end
    }
    return batches
  }
}

// MARK: - Files

let dataHint: String =
  "Set the data root in the config or with \(dataRootEnvironmentVariable), or fetch the datasets with scripts/fetch_datasets.sh"

/// What is at `path` where a file (or a directory) was expected, and what to do: the
/// fetch hint when nothing is there, a look at data.path when the other kind is (a task
/// given another task's data: sst2 reads a directory, text one corpus file).
///
/// `inDataPath`: the file is one of those the directory data.path names must hold (a
/// CIFAR-10 batch, an SST-2 TSV), so a directory of other files there is likely another
/// task's data; not so for data.path's own file (a corpus) or directory.
func missingDataDetail(_ path: String, kind: String, expectedDirectory: Bool, inDataPath: Bool) -> (
  got: String, hint: String
) {
  var isDirectory: ObjCBool = false
  let fm = FileManager.default
  if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
    let found = isDirectory.boolValue ? "a directory" : "a file"
    return (
      found, "Check data.path: it names \(found) where the task reads \(expectedDirectory ? "a directory" : "a file")"
    )
  }
  // A file where a directory of the path should be (data.path naming a corpus for sst2).
  var parent = Paths.parent(path)
  while !parent.isEmpty && parent != "/" && !fm.fileExists(atPath: parent, isDirectory: &isDirectory) {
    parent = Paths.parent(parent)
  }
  if !parent.isEmpty && fm.fileExists(atPath: parent, isDirectory: &isDirectory) && !isDirectory.boolValue {
    return (
      "`\(parent)` is a file, not a directory",
      "Check data.path: the task reads \(kind) inside a directory, not a file"
    )
  }
  // The directory is there but holds other files: data.path names another task's data
  // (eval data.path=<the sst2 directory> on a CIFAR-10 model), not a dataset left unfetched.
  if inDataPath, parent == Paths.parent(path), isDirectory.boolValue,
    let entries = try? fm.contentsOfDirectory(atPath: parent).filter({ !$0.hasPrefix(".") }).sorted(),
    !entries.isEmpty
  {
    let shown = entries.prefix(4).joined(separator: ", ") + (entries.count > 4 ? ", … (\(entries.count) in all)" : "")
    return (
      "nothing at this path; `\(parent)` holds \(shown)",
      "Check data.path (and data.root): it names a directory that holds no \(kind), perhaps another task's data. "
        + dataHint
    )
  }
  return ("nothing at this path", dataHint)
}

/// Throws `.missingInput` unless `path` is an existing directory.
func requireDirectory(_ path: String, describing kind: String) throws {
  var isDirectory: ObjCBool = false
  let exists: Bool = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
  if !exists || !isDirectory.boolValue {
    let (got, hint) = missingDataDetail(path, kind: kind, expectedDirectory: true, inDataPath: false)
    throw LCError.missingInput(
      ErrorDetail(
        what: "\(kind) directory not found", location: path, expected: "an existing directory", got: got, hint: hint))
  }
}

/// The bytes of the file at `path`; `.missingInput` when it does not exist, `.io` when it
/// cannot be read. `inDataPath`: a file inside the directory data.path names.
func readDataFile(_ path: String, describing kind: String, inDataPath: Bool) throws -> [UInt8] {
  var isDirectory: ObjCBool = false
  let exists: Bool = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
  if !exists || isDirectory.boolValue {
    let (got, hint) = missingDataDetail(path, kind: kind, expectedDirectory: false, inDataPath: inDataPath)
    throw LCError.missingInput(
      ErrorDetail(what: "\(kind) not found", location: path, expected: "an existing file", got: got, hint: hint))
  }
  let type = Paths.notAFile(path)
  if let other = type, other != .pipe {
    throw LCError.missingInput(
      ErrorDetail(what: "\(kind) is not a file", location: path, expected: "a regular file", got: "\(other)"))
  }
  do {
    return [UInt8](try Paths.read(path, kind: type))
  } catch {
    throw LCError.io(
      ErrorDetail(what: "cannot read \(kind)", location: path, expected: "a readable file", got: "\(error)"))
  }
}

/// Offset of the first byte that does not start a well-formed UTF-8 sequence, or nil when all of `bytes` is valid.
func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
  let n: Int = bytes.count
  var i: Int = 0
  while i < n {
    let lead: UInt8 = bytes[i]
    if lead < 0x80 {
      i += 1
      continue
    }
    var need: Int = 0
    var low: UInt8 = 0x80
    var high: UInt8 = 0xBF
    switch lead {
    case 0xC2...0xDF: need = 1
    case 0xE0:
      need = 2
      low = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: need = 2
    case 0xED:
      need = 2
      high = 0x9F
    case 0xF0:
      need = 3
      low = 0x90
    case 0xF1...0xF3: need = 3
    case 0xF4:
      need = 3
      high = 0x8F
    default: return i
    }
    if i + need >= n { return i }
    if bytes[i + 1] < low || bytes[i + 1] > high { return i }
    if need >= 2 {
      for k in 2...need where bytes[i + k] < 0x80 || bytes[i + k] > 0xBF { return i }
    }
    i += need + 1
  }
  return nil
}

/// 1-based line and column (in bytes) of byte `offset`.
func lineAndColumn(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
  var line: Int = 1
  var lineStart: Int = 0
  for i in 0..<min(offset, bytes.count) where bytes[i] == 0x0A {
    line += 1
    lineStart = i + 1
  }
  return (line, offset - lineStart + 1)
}

/// Throws `.badData` naming the line and column of the first invalid UTF-8 byte, if any.
func validateUTF8(_ bytes: [UInt8], file: String) throws {
  guard let offset = firstInvalidUTF8Offset(bytes) else { return }
  let (line, column): (Int, Int) = lineAndColumn(of: offset, in: bytes)
  let hex: String = String(bytes[offset], radix: 16, uppercase: true)
  throw LCError.badData(
    ErrorDetail(
      what: "invalid UTF-8", location: "\(file):\(line)", expected: "UTF-8 text",
      got: "byte 0x\(hex) at column \(column) (byte offset \(offset)) that does not start a valid UTF-8 sequence",
      hint: "Convert the file to UTF-8, e.g. with iconv"))
}

/// A short, single-line excerpt of `text` for error messages.
func excerpt(_ text: String, limit: Int = 60) -> String {
  let flat: String = text.replacingOccurrences(of: "\t", with: "\\t").replacingOccurrences(of: "\r", with: "\\r")
  if flat.count <= limit { return "'\(flat)'" }
  return "'\(flat.prefix(limit))…'"
}
