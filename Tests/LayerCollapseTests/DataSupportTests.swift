import Foundation
import Kernels
import LayerCollapse
import Testing

// Helpers shared by the Data*Tests files, and tests of the data root and batch orders.

/// The real datasets, found like the program finds them but relative to the package root:
/// LAYERCOLLAPSE_DATA if set, else ../shared/datasets next to the package.
enum RealData {
  static let packageRoot: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
  static let root: String = resolveDataRoot(
    configured: nil, environment: ProcessInfo.processInfo.environment, currentDirectory: packageRoot)

  static func path(_ relative: String) -> String { root + "/" + relative }
  static func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: path(relative)) }

  static var sst2: Bool { exists("sst2/train.tsv") && exists("sst2/dev.tsv") }
  static var cifar10: Bool { exists("cifar10-partial/data_batch_1.bin") }
  static var austen: Bool { exists("text/austen.txt") }
}

/// A fresh directory under the system temp directory; call `remove()` when done.
struct TempDir {
  let path: String

  init() throws {
    path = NSTemporaryDirectory() + "lc-data-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  /// Writes `bytes` to `name` in the directory and returns its path.
  @discardableResult
  func write(_ name: String, _ bytes: [UInt8]) throws -> String {
    let file: String = path + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: file))
    return file
  }

  @discardableResult
  func write(_ name: String, text: String) throws -> String { try write(name, Array(text.utf8)) }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}

enum ErrorKind: String {
  case badData, missingInput, badConfig
}

/// Expects `body` to throw an `LCError` of `kind` whose message contains every string of `mentions`.
func expectLCError(
  _ kind: ErrorKind, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("expected a \(kind.rawValue) error, but nothing was thrown", sourceLocation: sourceLocation)
  } catch let error as LCError {
    let actual: ErrorKind? =
      switch error {
      case .badData: .badData
      case .missingInput: .missingInput
      case .badConfig: .badConfig
      default: nil
      }
    #expect(actual == kind, "wrong error case: \(error)", sourceLocation: sourceLocation)
    let message: String = error.description
    for needle in mentions {
      #expect(message.contains(needle), "message lacks \"\(needle)\": \(message)", sourceLocation: sourceLocation)
    }
  } catch {
    Issue.record("expected LCError, got \(error)", sourceLocation: sourceLocation)
  }
}

/// CIFAR-style records: label byte(s) then 3072 pixels from `pixel(image, channel, y, x)`.
func cifarRecords(labels: [[UInt8]], pixel: (Int, Int, Int, Int) -> UInt8) -> [UInt8] {
  var bytes: [UInt8] = []
  for (n, label) in labels.enumerated() {
    bytes.append(contentsOf: label)
    for c in 0..<3 {
      for y in 0..<32 {
        for x in 0..<32 { bytes.append(pixel(n, c, y, x)) }
      }
    }
  }
  return bytes
}

@Test func dataRootPrefersConfigThenEnvironmentThenDefault() {
  let env: [String: String] = ["LAYERCOLLAPSE_DATA": "/env/data"]
  #expect(resolveDataRoot(configured: "/cfg/data", environment: env, currentDirectory: "/work/repo") == "/cfg/data")
  #expect(resolveDataRoot(configured: nil, environment: env, currentDirectory: "/work/repo") == "/env/data")
  #expect(resolveDataRoot(configured: "", environment: [:], currentDirectory: "/work/repo") == "/work/shared/datasets")
  #expect(resolveDataRoot(configured: "data", environment: env, currentDirectory: "/work/repo/") == "/work/repo/data")
  #expect(
    resolveDataRoot(configured: nil, environment: ["LAYERCOLLAPSE_DATA": ""], currentDirectory: "/a/b")
      == "/a/shared/datasets")
}

@Test func dataBatchOrderCoversEveryIndexOnceAndIsSeeded() throws {
  let a: [[Int]] = try BatchOrder.shuffled(count: 103, batchSize: 10, seed: 7, epoch: 0)
  #expect(a.count == 11)
  #expect(a.last?.count == 3)
  #expect(a.flatMap { $0 }.sorted() == Array(0..<103))
  #expect(try BatchOrder.shuffled(count: 103, batchSize: 10, seed: 7, epoch: 0) == a)
  #expect(try BatchOrder.shuffled(count: 103, batchSize: 10, seed: 8, epoch: 0) != a)
  #expect(try BatchOrder.shuffled(count: 103, batchSize: 10, seed: 7, epoch: 1) != a)
  let dropped: [[Int]] = try BatchOrder.shuffled(count: 103, batchSize: 10, seed: 7, epoch: 0, dropLast: true)
  #expect(dropped.count == 10 && dropped.allSatisfy { $0.count == 10 })
  #expect(try BatchOrder.sequential(count: 5, batchSize: 2) == [[0, 1], [2, 3], [4]])
  expectLCError(.badConfig, mentions: ["batch_size", "positive"]) {
    _ = try BatchOrder.sequential(count: 5, batchSize: 0)
  }
}
