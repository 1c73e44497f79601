import Foundation

/// `eval.json`: what was evaluated and how it did, for reports and other tools.
public struct EvalRecord: Codable, Sendable, Equatable {
  public var checkpoint: String
  public var kind: ModelKind
  public var metrics: Metrics
  /// Accuracy on (part of) the training split, unaugmented: the train–validation gap.
  public var train: Metrics?
  public var parameters: Int
  public var macsPerExample: Int
  /// Collapsed and PReLU LayerCollapse units (a transformer's blocks; a mixer has two
  /// units a block). The JSON keys keep their names from before units had one.
  public var collapsedBlocks: [Int]
  public var preluBlocks: [Int]
  public var step: Int?
  /// Median forward time of one example (batch size 1), if measured.
  public var latencyMilliseconds: Double?
  /// The data file or directory measured on, absolute (absent in records before it was
  /// kept).
  public var data: String?

  public init(
    checkpoint: String, architecture: Architecture, metrics: Metrics, train: Metrics? = nil, step: Int? = nil,
    latencyMilliseconds: Double? = nil, data: String? = nil
  ) {
    self.checkpoint = checkpoint
    self.kind = architecture.config.kind
    self.metrics = metrics
    self.train = train
    self.parameters = architecture.parameterCount
    self.macsPerExample = architecture.macsPerExample()
    self.collapsedBlocks = architecture.collapsed.indices.filter { architecture.collapsed[$0] }
    self.preluBlocks = architecture.activations.indices.filter {
      architecture.activations[$0] == .prelu && !architecture.collapsed[$0]
    }
    self.step = step
    self.latencyMilliseconds = latencyMilliseconds
    self.data = data.map(Paths.absolute)
  }

  public func write(to path: String) throws { try JSONFile.write(self, to: path) }

  /// Whether this is a record of a checkpoint named `fileName` (its last path component,
  /// e.g. `best.h5`): how records are matched to checkpoints, wherever either now lives.
  public func describes(checkpointNamed fileName: String) -> Bool {
    (checkpoint as NSString).lastPathComponent == fileName
  }

  public static func read(_ path: String) throws -> EvalRecord {
    try JSONFile.read(EvalRecord.self, from: path, what: "eval record")
  }

  /// The records `eval` wrote under its default names for the checkpoint at `checkpoint`
  /// (X.eval.json, X.train.eval.json, X.limit64.eval.json, X.train.trainlimit100.eval.json,
  /// X.data-mytext.eval.json):
  /// what describes the model a new file at that path replaces. Only files that read as
  /// records of a checkpoint of that file name (X.train.h5's own X.train.eval.json is not
  /// X.h5's); `generate` writes no file, so a X.sample.txt is the user's and never listed.
  public static func filesDescribing(_ checkpoint: String) -> [String] {
    let parent = Paths.parent(checkpoint)
    let directory = parent.isEmpty ? "." : parent
    let fileName = (checkpoint as NSString).lastPathComponent
    let stem = (CheckpointFiles.stem(checkpoint) as NSString).lastPathComponent
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    func isVariant(_ part: Substring) -> Bool {
      if part == "train" { return true }
      if part.hasPrefix("data-") && part.count > 5 { return true }
      for prefix in ["limit", "trainlimit"] where part.hasPrefix(prefix) {
        let digits = part.dropFirst(prefix.count)
        if !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber) { return true }
      }
      return false
    }
    var out: [String] = []
    for name in names.sorted() {
      let path = parent.isEmpty ? name : parent + "/" + name
      guard name.hasSuffix(CheckpointFiles.evalSuffix) else { continue }
      let core = name.dropLast(CheckpointFiles.evalSuffix.count)
      guard core == stem || core.hasPrefix(stem + ".") else { continue }
      let variants = core.dropFirst(stem.count).split(separator: ".")
      guard variants.allSatisfy(isVariant), let record = try? read(path),
        record.describes(checkpointNamed: fileName)
      else { continue }
      out.append(path)
    }
    return out
  }
}
