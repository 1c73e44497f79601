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

  /// Decodes `text`; a failure is bad data at `location`, said as the file spells it: the
  /// key path in snake_case and what was wrong there (not the decoder's own types).
  static func decode<T: Decodable>(_ type: T.Type, _ text: String, location: String) throws -> T {
    do {
      return try decoder().decode(type, from: Data(text.utf8))
    } catch let error as DecodingError {
      throw LCError.badData(
        ErrorDetail(what: "unreadable JSON: " + describe(error), location: location, expected: "JSON of \(type)"))
    } catch {
      throw LCError.badData(
        ErrorDetail(what: "unreadable JSON", location: location, expected: "JSON of \(type)", got: "\(error)"))
    }
  }

  /// "missing key `global_step`", "`blocks`[2].`alpha`: expected a number".
  static func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
      keys.map { key in key.intValue.map { "[\($0)]" } ?? "`\(snakeCase(key.stringValue))`" }.joined(separator: ".")
    }
    func at(_ keys: [any CodingKey]) -> String { keys.isEmpty ? "" : " at " + path(keys) }
    switch error {
    case .keyNotFound(let key, let context):
      return "missing key `\(snakeCase(key.stringValue))`" + at(context.codingPath)
    case .typeMismatch(let type, let context): return "expected \(typeName(type))" + at(context.codingPath)
    case .valueNotFound(let type, let context): return "expected \(typeName(type)), got null" + at(context.codingPath)
    case .dataCorrupted(let context):
      // The parser's own words say where (line, column) or which value.
      let detail = (context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription)
      return (context.codingPath.isEmpty ? "not valid JSON" : "a value that does not fit" + at(context.codingPath))
        + " (\(detail))"
    @unknown default: return "\(error)"
    }
  }

  static func typeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Bool.Type: "true or false"
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type: "an integer"
    case is Double.Type, is Float.Type: "a number"
    default: "\(type)".hasPrefix("Array") ? "a list" : "an object"
    }
  }

  /// camelCase as the files spell it: `globalStep` → `global_step`.
  static func snakeCase(_ key: String) -> String {
    var out: String = ""
    for ch in key {
      if ch.isUppercase {
        if !out.isEmpty { out.append("_") }
        out.append(contentsOf: ch.lowercased())
      } else {
        out.append(ch)
      }
    }
    return out
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
