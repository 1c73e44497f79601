import Foundation

/// GPT-2's byte-level BPE, as Hugging Face's `tokenizers` runs it (ByteLevel
/// pre-tokenizer without a prefix space, BPE model, no special tokens added):
///
/// 1. Split the text with GPT-2's pattern: the contractions `'s 't 're 've 'm 'll 'd`, an
///    optional space and a run of letters, of digits, or of other non-space characters,
///    and runs of whitespace (the last whitespace before a word goes with the word).
/// 2. Each piece's UTF-8 bytes become printable characters (GPT-2's byte-to-unicode table),
/// 3. and adjacent symbols are merged, the pair with the lowest rank in merges.txt first,
///    until no ranked pair is left; the symbols are then looked up in vocab.json.
public struct ByteLevelBPE: Sendable, Equatable {
  public let vocabulary: [String: Int32]
  /// The merges in rank order (as merges.txt lists them), kept to store the tokenizer.
  public let merges: [(String, String)]
  /// "a b" → rank (line order in merges.txt).
  private let ranks: [String: Int]
  /// id → symbol (empty for ids the vocabulary skips).
  private let symbols: [String]
  private let pattern: NSRegularExpression
  /// GPT-2's special tokens, `<|…|>` (`<|endoftext|>`), as UTF-8 with their ids: matched
  /// whole in the text before the rest is split and merged, as transformers' tokenizer
  /// matches them; longest first.
  private let specials: [(bytes: [UInt8], id: Int32)]
  private static let byteToUnicode: [Unicode.Scalar] = {
    var bytes: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
    var codes = bytes
    var extra = 0
    for b in 0..<256 where !bytes.contains(b) {
      bytes.append(b)
      codes.append(256 + extra)
      extra += 1
    }
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    for (b, c) in zip(bytes, codes) { table[b] = Unicode.Scalar(UInt32(c))! }
    return table
  }()
  private static let unicodeToByte: [UInt32: UInt8] = {
    var inverse: [UInt32: UInt8] = [:]
    for (b, scalar) in byteToUnicode.enumerated() { inverse[scalar.value] = UInt8(b) }
    return inverse
  }()

  /// Whitespace as Rust's `\s` (Unicode White_Space), spelled out for ICU.
  static let space = #"\t\n\x{0B}\f\r\x{85}\p{Z}"#

  /// `count`: the ids there are, when more than the vocabulary's largest + 1 (a model
  /// whose embedding was padded, or grown for tokens the merges never produce).
  public init(vocabulary: [String: Int32], merges: [(String, String)], count: Int? = nil) throws {
    self.vocabulary = vocabulary
    self.merges = merges
    let largest = Int(vocabulary.values.max() ?? -1)
    guard vocabulary.values.allSatisfy({ $0 >= 0 }), largest < 1 << 24 else {
      throw LCError.badData(
        ErrorDetail(
          what: "BPE vocabulary ids out of range", location: "vocab.json", expected: "ids 0..<16777216",
          got: largest >= 1 << 24 ? "largest \(largest)" : "smallest \(vocabulary.values.min() ?? 0)"))
    }
    let ids = max(largest + 1, min(count ?? 0, 1 << 24))
    var symbols = [String](repeating: "", count: ids)
    for (token, id) in vocabulary { symbols[Int(id)] = token }
    self.symbols = symbols
    var ranks: [String: Int] = [:]
    for (i, m) in merges.enumerated() where ranks[m.0 + " " + m.1] == nil { ranks[m.0 + " " + m.1] = i }
    self.ranks = ranks
    specials = vocabulary.filter { $0.key.count > 4 && $0.key.hasPrefix("<|") && $0.key.hasSuffix("|>") }
      .sorted { ($0.key.utf8.count, $0.key) > ($1.key.utf8.count, $1.key) }.map { (Array($0.key.utf8), $0.value) }
    let s = Self.space
    pattern = try NSRegularExpression(
      pattern: #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^"# + s + #"\p{L}\p{N}]+|["# + s + #"]+(?![^"# + s
        + #"])|["# + s + "]+")
  }

  /// Reads vocab.json and merges.txt (as GPT-2 and `tokenizers` save them).
  public init(vocabularyFile: String, mergesFile: String) throws {
    let files = try Self.read(vocabularyFile: vocabularyFile, mergesFile: mergesFile)
    try self.init(vocabulary: files.vocabulary, merges: files.merges)
  }

  /// vocab.json's token → id and merges.txt's pairs in rank order, checked, for a caller
  /// that adds to them before the tokenizer is built.
  public static func read(vocabularyFile: String, mergesFile: String) throws -> (
    vocabulary: [String: Int32], merges: [(String, String)]
  ) {
    guard let v = FileManager.default.contents(atPath: vocabularyFile),
      let object = try? JSONSerialization.jsonObject(with: v) as? [String: Any]
    else {
      throw LCError.badData(ErrorDetail(what: "not a vocab.json object of token → id", location: vocabularyFile))
    }
    var vocabulary: [String: Int32] = [:]
    for (token, id) in object {
      guard let n = id as? Int else {
        throw LCError.badData(ErrorDetail(what: "token \(token) has no integer id", location: vocabularyFile))
      }
      guard let small = Int32(exactly: n), small >= 0, small < 1 << 24 else {
        throw LCError.badData(
          ErrorDetail(
            what: "BPE vocabulary ids out of range", location: vocabularyFile, expected: "ids 0..<16777216",
            got: "\(token): \(n)"))
      }
      vocabulary[token] = small
    }
    guard let text = try? String(contentsOfFile: mergesFile, encoding: .utf8) else {
      throw LCError.missingInput(ErrorDetail(what: "cannot read the BPE merges", location: mergesFile))
    }
    var merges: [(String, String)] = []
    for (i, line) in TextLines.split(text).enumerated() {
      if line.hasPrefix("#version") || line.isEmpty { continue }
      let parts = line.split(separator: " ")
      guard parts.count == 2 else {
        throw LCError.badData(
          ErrorDetail(what: "a merge is two symbols", location: "\(mergesFile):\(i + 1)", got: String(line)))
      }
      merges.append((String(parts[0]), String(parts[1])))
    }
    return (vocabulary, merges)
  }

  public static func == (a: ByteLevelBPE, b: ByteLevelBPE) -> Bool {
    a.vocabulary == b.vocabulary && a.merges.elementsEqual(b.merges, by: { $0 == $1 })
  }

  /// Ids: one more than the largest id of the vocabulary (GPT-2: 50,257).
  public var count: Int { symbols.count }

  /// The text's token ids (a symbol not in the vocabulary is skipped, as `tokenizers`
  /// does without an unknown token).
  public func encode(_ text: String) -> [Int32] {
    guard !specials.isEmpty else { return tokens(text).compactMap { vocabulary[$0] } }
    // One pass over the bytes: a special token starts with `<`, which no multi-byte UTF-8
    // character contains, so the text between them splits at character boundaries.
    let bytes: [UInt8] = Array(text.utf8)
    var out: [Int32] = []
    var start = 0
    var i = 0
    func plain(_ end: Int) {
      if end > start {
        out += tokens(String(decoding: bytes[start..<end], as: UTF8.self)).compactMap { vocabulary[$0] }
      }
    }
    while i < bytes.count {
      if bytes[i] == UInt8(ascii: "<"),
        let s = specials.first(where: {
          i + $0.bytes.count <= bytes.count && bytes[i..<(i + $0.bytes.count)].elementsEqual($0.bytes)
        })
      {
        plain(i)
        out.append(s.id)
        i += s.bytes.count
        start = i
      } else {
        i += 1
      }
    }
    plain(bytes.count)
    return out
  }

  /// The text of `ids`: their symbols' bytes, decoded as UTF-8 (invalid sequences become
  /// U+FFFD; ids outside the vocabulary are skipped).
  public func decode(_ ids: [Int32]) -> String {
    var bytes: [UInt8] = []
    for id in ids where id >= 0 && Int(id) < symbols.count {
      for scalar in symbols[Int(id)].unicodeScalars {
        if let b = Self.unicodeToByte[scalar.value] { bytes.append(b) }
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// The text's BPE symbols. Pieces repeat (a corpus has far fewer distinct words than
  /// words), so each distinct piece is merged once per call.
  public func tokens(_ text: String) -> [String] {
    let ns = text as NSString
    var out: [String] = []
    var cache: [String: [String]] = [:]
    for match in pattern.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
      let piece = ns.substring(with: match.range)
      if let known = cache[piece] {
        out += known
        continue
      }
      let merged = merge(piece.utf8.map { String(Self.byteToUnicode[Int($0)]) })
      cache[piece] = merged
      out += merged
    }
    return out
  }

  /// Merges adjacent symbols, the lowest-ranked pair first, until none is ranked.
  func merge(_ start: [String]) -> [String] {
    var symbols = start
    while symbols.count > 1 {
      var best: (rank: Int, at: Int)? = nil
      for i in 0..<(symbols.count - 1) {
        if let r = ranks[symbols[i] + " " + symbols[i + 1]], r < best?.rank ?? Int.max { best = (r, i) }
      }
      guard let pair = best else { break }
      // Merge every occurrence of that pair, left to right (as GPT-2's reference does).
      let (a, b) = (symbols[pair.at], symbols[pair.at + 1])
      var merged: [String] = []
      var i = 0
      while i < symbols.count {
        if i < symbols.count - 1 && symbols[i] == a && symbols[i + 1] == b {
          merged.append(a + b)
          i += 2
        } else {
          merged.append(symbols[i])
          i += 1
        }
      }
      symbols = merged
    }
    return symbols
  }
}
