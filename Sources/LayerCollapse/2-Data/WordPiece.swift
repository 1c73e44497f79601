import Foundation

/// BERT's WordPiece tokenizer, as Hugging Face's `tokenizers` runs it for a
/// `BertForSequenceClassification` (BertNormalizer, BertPreTokenizer, WordPiece, and the
/// `[CLS] … [SEP]` template):
///
/// 1. Normalize: drop NUL, U+FFFD and control characters (Unicode C* categories but tab,
///    newline and return), turn whitespace into spaces; put
///    spaces around CJK ideographs; strip accents (NFD, then drop non-spacing marks) and
///    lowercase, when the tokenizer config asks (`do_lower_case`; accents follow it unless
///    `strip_accents` says otherwise).
/// 2. Split on whitespace, and make every punctuation character (ASCII punctuation or a
///    Unicode P* category) a word of its own.
/// 3. Each word: longest vocabulary match first from its start, continuations prefixed
///    `##`; a word with an unmatched piece, or longer than 100 characters, is `[UNK]`.
///
/// Characters are Unicode scalars, as in the Rust implementation.
public struct WordPieceTokenizer: SentenceEncoder, Equatable {
  public let vocabulary: [String]
  public let lowercase: Bool
  public let stripAccents: Bool
  public let maxCharactersPerWord: Int
  private let ids: [String: Int32]
  public let unknownID: Int32
  public let classID: Int32
  public let separatorID: Int32
  public let padID: Int32

  /// `vocabulary`: the tokens in id order (vocab.txt's lines). `stripAccents` nil follows
  /// `lowercase`, as BERT's tokenizers do.
  public init(
    vocabulary: [String], lowercase: Bool = true, stripAccents: Bool? = nil, maxCharactersPerWord: Int = 100,
    location: String = "vocab.txt"
  ) throws {
    var ids: [String: Int32] = [:]
    for (i, token) in vocabulary.enumerated() where ids[token] == nil { ids[token] = Int32(i) }
    func id(_ token: String) throws -> Int32 {
      guard let i = ids[token] else {
        throw LCError.badData(
          ErrorDetail(
            what: "the WordPiece vocabulary has no \(token)", location: location,
            expected: "[PAD], [UNK], [CLS] and [SEP] among its tokens"))
      }
      return i
    }
    self.vocabulary = vocabulary
    self.ids = ids
    self.lowercase = lowercase
    self.stripAccents = stripAccents ?? lowercase
    self.maxCharactersPerWord = maxCharactersPerWord
    unknownID = try id("[UNK]")
    classID = try id("[CLS]")
    separatorID = try id("[SEP]")
    padID = try id("[PAD]")
  }

  /// Reads vocab.txt (one token per line, id = line number).
  public init(vocabularyFile path: String, lowercase: Bool = true, stripAccents: Bool? = nil) throws {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      throw LCError.missingInput(ErrorDetail(what: "cannot read the WordPiece vocabulary", location: path))
    }
    try self.init(
      vocabulary: TextLines.split(text), lowercase: lowercase, stripAccents: stripAccents, location: path)
  }

  public static func == (a: WordPieceTokenizer, b: WordPieceTokenizer) -> Bool {
    a.vocabulary == b.vocabulary && a.lowercase == b.lowercase && a.stripAccents == b.stripAccents
  }

  public var count: Int { vocabulary.count }
  public var paddingID: Int32 { padID }

  /// BERT's template always ends in `[SEP]`.
  public func encode(_ text: String, maxLength: Int, appendSeparator: Bool) -> [Int32] {
    encode(text, maxLength: maxLength)
  }

  /// The text's ids with `[CLS]` first and `[SEP]` last, cut to `maxLength` (the
  /// template's tokens kept).
  public func encode(_ text: String, maxLength: Int) -> [Int32] {
    let body = tokenIDs(text).prefix(max(0, maxLength - 2))
    return [classID] + body + [separatorID]
  }

  /// The ids of the text's word pieces (no template).
  public func tokenIDs(_ text: String) -> [Int32] { words(text).flatMap(pieces) }

  /// The word pieces as strings (for inspection and tests).
  public func tokens(_ text: String) -> [String] { tokenIDs(text).map { vocabulary[Int($0)] } }

  // MARK: normalization and pre-tokenization

  /// Step 1 and 2: the normalized words.
  func words(_ text: String) -> [[Unicode.Scalar]] {
    var normalized = String.UnicodeScalarView()
    for s in text.unicodeScalars {
      if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
      if Self.isWhitespace(s) {
        normalized.append(" ")
      } else if Self.isCJK(s) {
        normalized.append(" ")
        normalized.append(s)
        normalized.append(" ")
      } else {
        normalized.append(s)
      }
    }
    var string = String(normalized)
    if stripAccents {
      string = String(
        String.UnicodeScalarView(
          string.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
            $0.properties.generalCategory != .nonspacingMark
          }))
    }
    if lowercase {
      // Scalar by scalar, as Rust's char::to_lowercase: no context rules (a final Σ is σ).
      var lowered = String.UnicodeScalarView()
      for s in string.unicodeScalars { lowered.append(contentsOf: String(s).lowercased().unicodeScalars) }
      string = String(lowered)
    }
    var words: [[Unicode.Scalar]] = []
    var current: [Unicode.Scalar] = []
    for s in string.unicodeScalars {
      if s.properties.isWhitespace {
        if !current.isEmpty { words.append(current) }
        current = []
      } else if Self.isPunctuation(s) {
        if !current.isEmpty { words.append(current) }
        words.append([s])
        current = []
      } else {
        current.append(s)
      }
    }
    if !current.isEmpty { words.append(current) }
    return words
  }

  /// Step 3: one word's pieces, or `[UNK]`.
  func pieces(_ word: [Unicode.Scalar]) -> [Int32] {
    guard word.count <= maxCharactersPerWord else { return [unknownID] }
    var out: [Int32] = []
    var start = 0
    while start < word.count {
      var end = word.count
      var found: Int32? = nil
      while start < end {
        var piece = String(String.UnicodeScalarView(word[start..<end]))
        if start > 0 { piece = "##" + piece }
        if let id = ids[piece] {
          found = id
          break
        }
        end -= 1
      }
      guard let id = found else { return [unknownID] }
      out.append(id)
      start = end
    }
    return out
  }

  // MARK: character classes (BERT's)

  /// Unicode White_Space (tab, newline and return included); controls among them are
  /// dropped before this is asked.
  static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
    s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
  }

  static func isControl(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return false }
    switch s.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned: return true
    default: return false
    }
  }

  static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
    let v = s.value
    if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
      return true
    }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
      .finalPunctuation, .otherPunctuation:
      return true
    default: return false
    }
  }

  static func isCJK(_ s: Unicode.Scalar) -> Bool {
    let v = s.value
    return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
      || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
      || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
  }
}
