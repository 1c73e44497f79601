import Foundation

/// JSON as the project writes it everywhere (eval.json, collapse records, checkpoint
/// metadata): snake_case keys, sorted, so other tools and diffs read it easily.
enum JSONFile {
  static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
    return String(decoding: try e.encode(value), as: UTF8.self)
  }

  /// Decodes `text`; a failure is bad data at `location`.
  static func decode<T: Decodable>(_ type: T.Type, _ text: String, location: String) throws -> T {
    let d = JSONDecoder()
    d.keyDecodingStrategy = .convertFromSnakeCase
    do {
      return try d.decode(type, from: Data(text.utf8))
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

/// Writes a text file atomically; failure is `.cannotCreate` naming the path.
func writeText(_ text: String, to path: String) throws {
  do {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
  } catch {
    throw LCError.cannotCreate(ErrorDetail(what: "cannot write file", location: path, got: "\(error)"))
  }
}
