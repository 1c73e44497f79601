import Foundation
import LayerCollapse

/// Runs the built `layercollapse` binary (it sits beside the test bundle).
enum CLI {
  struct Result {
    var code: Int32
    var stdout: String
    var stderr: String
  }

  static var binary: String {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("layercollapse")
      .path
  }

  /// Runs the executable in `directory` (the tests' own when nil).
  static func run(_ args: [String], environment: [String: String] = [:], in directory: String? = nil) throws -> Result {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    p.arguments = args
    if let d = directory { p.currentDirectoryURL = URL(fileURLWithPath: d) }
    var env = ProcessInfo.processInfo.environment
    env["OPENBLAS_NUM_THREADS"] = "1"
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Both pipes drained at once: read one to its end first and a child that fills the
    // other (64 KiB of log lines) blocks on it forever.
    let stderrData = Drained()
    let reader = Thread { stderrData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = stderrData.wait()
    p.waitUntilExit()
    return Result(
      code: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
  }
}

/// The bytes a reader thread collected, handed over once it has them all.
private final class Drained: @unchecked Sendable {
  private let done = DispatchSemaphore(value: 0)
  private var data = Data()

  func set(_ d: Data) {
    data = d
    done.signal()
  }

  func wait() -> Data {
    done.wait()
    return data
  }
}

extension CLI {
  /// Starts `train CONFIG train.steps=1000000 log.every=1` and reads its stderr until
  /// `marker` appears (training under way, signal handlers installed). Returns the running
  /// process, its stderr pipe and what it printed so far.
  static func startTraining(_ config: String, until marker: String) throws -> (Process, Pipe, String) {
    try start(["train", config, "train.steps=1000000", "log.every=1"], until: marker)
  }

  /// Starts the binary with `args` and reads its stderr until `marker` appears. Its stdout
  /// goes to /dev/null: an unread pipe would fill and block the process mid-run.
  static func start(_ args: [String], until marker: String) throws -> (Process, Pipe, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    p.arguments = args
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    var seen = ""
    while !seen.contains(marker) {
      let chunk = err.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      seen += String(decoding: chunk, as: UTF8.self)
    }
    return (p, err, seen)
  }

  /// Sends `p` a Ctrl-C (SIGINT), or with `terminate` the SIGTERM a scheduler sends, reads
  /// the rest of its stderr and waits for it to exit.
  static func interrupt(_ p: Process, reading err: Pipe, terminate: Bool = false) -> String {
    if terminate { p.terminate() } else { p.interrupt() }
    let rest = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return rest
  }
}

/// A scratch directory with a tiny CIFAR-10-layout dataset (random pixels, labels that
/// follow the brightest third of the image, so a model can learn them) and a corpus.
final class Workspace {
  let dir: String

  init() throws {
    dir = NSTemporaryDirectory() + "lc-cli-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir + "/data/cifar", withIntermediateDirectories: true)
    var rng: UInt64 = 0x1234_5678
    func next() -> UInt8 {
      rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: rng >> 56)
    }
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"] {
      var bytes: [UInt8] = []
      for i in 0..<24 {
        let label = UInt8(i % 3)
        bytes.append(label)
        for _ in 0..<3 {
          for _ in 0..<32 {
            for x in 0..<32 { bytes.append(next() / 2 &+ (x * 3 / 32 == Int(label) ? 120 : 0)) }
          }
        }
      }
      try Data(bytes).write(to: URL(fileURLWithPath: dir + "/data/cifar/\(name).bin"))
    }
    let text = String(repeating: "abcdefghij klmnop qrstuv wxyz. ", count: 60)
    try text.write(toFile: dir + "/data/corpus.txt", atomically: true, encoding: .utf8)
  }

  deinit { try? FileManager.default.removeItem(atPath: dir) }

  /// Writes a config file and returns its path.
  func config(_ name: String, _ text: String) throws -> String {
    let path = dir + "/" + name
    try text.replacingOccurrences(of: "$DIR", with: dir).write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  static let vit = """
    # layercollapse train vit.yaml
    seed: 3
    data:
      task: cifar10
      root: $DIR/data
      path: cifar
    model:
      kind: vit
      d_model: 16
      heads: 2
      layers: 2
      mlp_ratio: 4
      patch_size: 8
      dropout: 0.1
    lc:
      lambda: 1
      blocks: 1
    train:
      epochs: 2
      batch_size: 16
      lr: 3e-3
      eval_every: 4
      train_eval_limit: 32
    log:
      every: 2
    output:
      dir: $DIR/run

    """

  /// The tiny ViT's settings as an MLP-Mixer (token-mixing MLPs of 24 in place of heads).
  static let mixer = vit.replacingOccurrences(of: "kind: vit", with: "kind: mixer").replacingOccurrences(
    of: "  heads: 2\n", with: "  token_mlp_hidden: 24\n")

  static let gpt = """
    data:
      task: text
      root: $DIR/data
      path: corpus.txt
      max_len: 16
    model:
      kind: gpt
      d_model: 16
      heads: 2
      layers: 2
    train:
      steps: 6
      batch_size: 4
    output:
      dir: $DIR/gpt

    """
}
