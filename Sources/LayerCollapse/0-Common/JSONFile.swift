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
      var what = "unreadable JSON: " + describe(error)
      if case .dataCorrupted(let context) = error, context.codingPath.isEmpty, let at = syntaxErrorPosition(text) {
        what += " at " + at
      }
      throw LCError.badData(ErrorDetail(what: what, location: location, expected: "JSON of \(type)"))
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
      // At a key the decoder's words say which value ("Parsed JSON number <1e400> does not
      // fit in Int."); for a syntax error they are only "not valid JSON" (`decode` adds where).
      if context.codingPath.isEmpty { return "not valid JSON" }
      return "a value that does not fit" + at(context.codingPath) + " (\(context.debugDescription))"
    @unknown default: return "\(error)"
    }
  }

  /// Where `text` stops being JSON, "line 3, column 7" (1-based, columns in bytes), from
  /// the byte offset Foundation's parser reports ("… around character 41."); JSONDecoder
  /// itself says only that the data was not valid JSON.
  static func syntaxErrorPosition(_ text: String) -> String? {
    let bytes = Array(text.utf8)
    do {
      _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
      return nil
    } catch {
      guard let said = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String,
        let range = said.range(of: "character "),
        let offset = Int(said[range.upperBound...].prefix { $0.isNumber }), offset >= 0
      else { return nil }
      let before = bytes.prefix(min(offset, bytes.count))
      let line = before.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
      let column = before.count - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
      return "line \(line), column \(column)"
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
