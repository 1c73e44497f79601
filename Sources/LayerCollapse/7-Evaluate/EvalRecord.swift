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

  public init(
    checkpoint: String, architecture: Architecture, metrics: Metrics, train: Metrics? = nil, step: Int? = nil,
    latencyMilliseconds: Double? = nil
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
  }

  public func write(to path: String) throws { try JSONFile.write(self, to: path) }

  public static func read(_ path: String) throws -> EvalRecord {
    try JSONFile.read(EvalRecord.self, from: path, what: "eval record")
  }
}
