import Foundation

/// The collapse report as JSON (`OUT.json` beside a collapsed checkpoint).
public struct CollapseRecord: Codable, Sendable {
  public struct Block: Codable, Sendable {
    /// The unit's index (a transformer's block).
    public var block: Int
    /// The unit's module path, e.g. `blocks.3.mlp` or `blocks.3.token_mlp` (absent in
    /// records written before units had names).
    public var unit: String?
    public var alpha: Double?
    public var distance: Double?
    public var decision: String
    public var merged: Bool
    /// Merged although not (near) linear: forced, fitted, or beyond the paper's threshold
    /// (absent in records written before it was recorded per unit).
    public var approximate: Bool?
    public var parametersBefore: Int
    public var parametersAfter: Int
    public var maxRelativeDeviation: Double?
  }

  public var input: String
  public var output: String
  public var threshold: Double
  public var approximate: Bool
  public var blocks: [Block]
  public var parametersBefore: Int
  public var parametersAfter: Int
  public var macsBefore: Int
  public var macsAfter: Int
  public var logitDeviation: Double?

  public init(input: String, output: String, report r: CollapseReport) {
    self.input = input
    self.output = output
    threshold = clean(r.threshold)
    approximate = r.approximate
    blocks = r.blocks.map {
      Block(
        block: $0.block, unit: $0.name, alpha: $0.alpha.map(clean), distance: $0.distance.map(clean),
        decision: $0.decision.explanation,
        merged: $0.decision.merged, approximate: $0.decision.approximate, parametersBefore: $0.parametersBefore,
        parametersAfter: $0.parametersAfter,
        maxRelativeDeviation: $0.maxRelativeDeviation.map(clean))
    }
    parametersBefore = r.parametersBefore
    parametersAfter = r.parametersAfter
    macsBefore = r.macsBefore
    macsAfter = r.macsAfter
    logitDeviation = r.logitDeviation.map(clean)
  }

  public func write(to path: String) throws { try JSONFile.write(self, to: path) }

  public static func read(_ path: String) throws -> CollapseRecord {
    try JSONFile.read(CollapseRecord.self, from: path, what: "collapse record")
  }

  /// Whether `path` holds a collapse record (not some other file, nor nothing): what may be
  /// replaced or removed as one.
  public static func isRecord(_ path: String) -> Bool { (try? read(path)) != nil }
}
