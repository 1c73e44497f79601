/// What turns a sentence into ids for a text classifier: our word-level `Tokenizer`, or an
/// imported model's `WordPieceTokenizer`.
public protocol SentenceEncoder: Sendable {
  /// Ids in the vocabulary (the embedding table's rows).
  var count: Int { get }
  /// The id that pads a sequence.
  var paddingID: Int32 { get }
  /// At most `maxLength` ids, `[CLS]` first (and `[SEP]` last where the encoder adds one).
  func encode(_ text: String, maxLength: Int, appendSeparator: Bool) -> [Int32]
}

/// A word-level tokenizer with a vocabulary built from a training split.
///
/// Splitting (`Tokenizer.split`): the text is lowercased; a word is a maximal run of letters,
/// digits and combining marks, and an apostrophe (' or ’) or hyphen (-) stays inside a word when
/// it has a letter or digit on both sides ("don't", "n't", "well-made" are one token each);
/// every other character that is not whitespace or a control character is a token of its own
/// ("'s" becomes "'" and "s", "--" becomes "-" and "-").
///
/// Ids 0...3 are reserved: `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`. The vocabulary is `tokens`, in id
/// order; storing that array and passing it to `init(tokens:)` restores the tokenizer exactly.
public struct Tokenizer: SentenceEncoder, Equatable {
  public static let padID: Int32 = 0
  public static let unknownID: Int32 = 1
  public static let classID: Int32 = 2
  public static let separatorID: Int32 = 3
  public static let reservedTokens: [String] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]

  /// Every token in id order; `tokens[0..<4]` are the reserved tokens. This is the serialized form.
  public let tokens: [String]
  let ids: [String: Int32]

  /// Number of ids, reserved tokens included (the embedding table's row count).
  public var count: Int { tokens.count }
  public var paddingID: Int32 { Self.padID }

  /// Restores a tokenizer from its `tokens`; throws `.badData` when the list is not a valid vocabulary.
  public init(tokens: [String]) throws {
    if tokens.count < 4 || Array(tokens[0..<4]) != Tokenizer.reservedTokens {
      throw LCError.badData(
        ErrorDetail(
          what: "invalid tokenizer vocabulary", location: "tokenizer",
          expected: "a token list starting with \(Tokenizer.reservedTokens.joined(separator: " "))",
          got: "\(tokens.prefix(4).joined(separator: " ")) (\(tokens.count) tokens)"))
    }
    var ids: [String: Int32] = [:]
    for (i, token) in tokens.enumerated() {
      if token.isEmpty || ids[token] != nil {
        throw LCError.badData(
          ErrorDetail(
            what: "invalid tokenizer vocabulary", location: "tokenizer token \(i)",
            expected: "distinct non-empty tokens", got: token.isEmpty ? "an empty token" : "duplicate '\(token)'"))
      }
      ids[token] = Int32(i)
    }
    self.tokens = tokens
    self.ids = ids
  }

  /// Builds the vocabulary from `sentences`: tokens seen at least `minFrequency` times, most frequent
  /// first, ties broken by the token string (ascending), capped so that the vocabulary including the
  /// four reserved tokens has at most `vocabularySize` entries.
  public init(training sentences: [String], minFrequency: Int, vocabularySize: Int) {
    var counts: [String: Int] = [:]
    for sentence in sentences {
      for token in Tokenizer.split(sentence) { counts[token, default: 0] += 1 }
    }
    var kept: [(token: String, count: Int)] = []
    for (token, count) in counts where count >= minFrequency && !Tokenizer.reservedTokens.contains(token) {
      kept.append((token, count))
    }
    kept.sort { a, b in a.count != b.count ? a.count > b.count : a.token < b.token }
    let room: Int = max(0, vocabularySize - Tokenizer.reservedTokens.count)
    var tokens: [String] = Tokenizer.reservedTokens
    for entry in kept.prefix(room) { tokens.append(entry.token) }
    var ids: [String: Int32] = [:]
    for (i, token) in tokens.enumerated() { ids[token] = Int32(i) }
    self.tokens = tokens
    self.ids = ids
  }

  public static func == (a: Tokenizer, b: Tokenizer) -> Bool { a.tokens == b.tokens }

  /// The id of `token`, or `[UNK]`'s.
  public func id(of token: String) -> Int32 { ids[token] ?? Tokenizer.unknownID }

  /// Lowercases `text` and splits it into words and punctuation (see the type's documentation).
  public static func split(_ text: String) -> [String] {
    let scalars: [Unicode.Scalar] = Array(text.lowercased().unicodeScalars)
    var tokens: [String] = []
    var word: String.UnicodeScalarView = String.UnicodeScalarView()
    for (i, scalar) in scalars.enumerated() {
      if isWordScalar(scalar) {
        word.append(scalar)
      } else if isJoiner(scalar) && !word.isEmpty && i + 1 < scalars.count && isWordScalar(scalars[i + 1]) {
        word.append(scalar)
      } else {
        if !word.isEmpty {
          tokens.append(String(word))
          word = String.UnicodeScalarView()
        }
        let category: Unicode.GeneralCategory = scalar.properties.generalCategory
        if !scalar.properties.isWhitespace && category != .control && category != .format {
          tokens.append(String(scalar))
        }
      }
    }
    if !word.isEmpty { tokens.append(String(word)) }
    return tokens
  }

  static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
      .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber:
      return true
    default:
      return false
    }
  }

  static func isJoiner(_ scalar: Unicode.Scalar) -> Bool {
    scalar == "'" || scalar == "\u{2019}" || scalar == "-"
  }

  /// Ids of `text`: `[CLS]`, its tokens, and `[SEP]` when `appendSeparator`, at most `maxLength`
  /// in all (tokens are cut so that `[SEP]` stays last), without padding.
  public func encode(_ text: String, maxLength: Int, appendSeparator: Bool = false) -> [Int32] {
    let room: Int = max(0, maxLength - 1 - (appendSeparator ? 1 : 0))
    var out: [Int32] = [Tokenizer.classID]
    for token in Tokenizer.split(text).prefix(room) { out.append(id(of: token)) }
    if appendSeparator { out.append(Tokenizer.separatorID) }
    return Array(out.prefix(max(0, maxLength)))
  }

  /// `encode` padded with `[PAD]` to exactly `maxLength` ids, with `mask[i]` true for real tokens.
  public func encodePadded(_ text: String, maxLength: Int, appendSeparator: Bool = false) -> (
    ids: [Int32], mask: [Bool]
  ) {
    let real: [Int32] = encode(text, maxLength: maxLength, appendSeparator: appendSeparator)
    let padding: Int = max(0, maxLength - real.count)
    let ids: [Int32] = real + [Int32](repeating: Tokenizer.padID, count: padding)
    let mask: [Bool] = [Bool](repeating: true, count: real.count) + [Bool](repeating: false, count: padding)
    return (ids, mask)
  }
}
