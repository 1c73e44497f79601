import Foundation

/// JSON as the project writes it everywhere (eval.json, collapse records, checkpoint
/// metadata): snake_case keys, sorted, so other tools and diffs read it easily.
enum JSONFile {
  static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
    String(decoding: try encoder(pretty: pretty).encode(value), as: UTF8.self)
  }

  /// The encoder and decoder behind every JSON file of the project (also metrics.jsonl).
  static func encoder(pretty: Bool = false) -> JSONEncoder {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
    e.nonConformingFloatEncodingStrategy = nonFinite
    return e
  }

  static func decoder() -> JSONDecoder {
    let d = JSONDecoder()
    d.keyDecodingStrategy = .convertFromSnakeCase
    d.nonConformingFloatDecodingStrategy = nonFiniteDecoding
    return d
  }

  /// JSON has no NaN or infinity: they are written as the strings "NaN", "Infinity" and
  /// "-Infinity" (and read back), so a diverged value never fails a write.
  static let nonFinite = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
  static let nonFiniteDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
    positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")

  /// Decodes `text`; a failure is bad data at `location`.
  static func decode<T: Decodable>(_ type: T.Type, _ text: String, location: String) throws -> T {
    do {
      return try decoder().decode(type, from: Data(text.utf8))
    } catch {
      throw LCError.badData(
        ErrorDetail(what: "unreadable JSON", location: location, expected: "JSON of \(type)", got: "\(error)"))
    }
  }

  static func write<T: Encodable>(_ value: T, to path: String) throws {
    try writeText(try encode(value, pretty: true) + "\n", to: path)
  }

  /// Reads `path`; a missing file is missing input named `what`.
  static func read<T: Decodable>(_ type: T.Type, from path: String, what: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw LCError.missingInput(ErrorDetail(what: "no \(what)", location: path))
    }
    return try decode(type, String(decoding: data, as: UTF8.self), location: path)
  }
}

/// Writes a text file atomically (`AtomicFile`): errors name the path.
func writeText(_ text: String, to path: String) throws {
  try AtomicFile.write(Data(text.utf8), to: path)
}
