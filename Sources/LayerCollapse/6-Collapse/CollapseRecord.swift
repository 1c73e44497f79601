import Foundation

/// The collapse report as JSON (`OUT.json` beside a collapsed checkpoint).
public struct CollapseRecord: Codable, Sendable {
  public struct Block: Codable, Sendable {
    public var block: Int
    public var alpha: Double?
    public var distance: Double?
    public var decision: String
    public var merged: Bool
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
        block: $0.block, alpha: $0.alpha.map(clean), distance: $0.distance.map(clean),
        decision: $0.decision.explanation,
        merged: $0.decision.merged, parametersBefore: $0.parametersBefore, parametersAfter: $0.parametersAfter,
        maxRelativeDeviation: $0.maxRelativeDeviation.map(clean))
    }
    parametersBefore = r.parametersBefore
    parametersAfter = r.parametersAfter
    macsBefore = r.macsBefore
    macsAfter = r.macsAfter
    logitDeviation = r.logitDeviation.map(clean)
  }

  public func write(to path: String) throws {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = [.sortedKeys, .prettyPrinted]
    try LayerCollapse.write(String(decoding: try e.encode(self), as: UTF8.self) + "\n", to: path)
  }

  public static func read(_ path: String) throws -> CollapseRecord {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw LCError.missingInput(ErrorDetail(what: "no collapse record", location: path))
    }
    let d = JSONDecoder()
    d.keyDecodingStrategy = .convertFromSnakeCase
    do {
      return try d.decode(CollapseRecord.self, from: data)
    } catch {
      throw LCError.badData(ErrorDetail(what: "unreadable collapse record", location: path, got: "\(error)"))
    }
  }
}
