import Foundation
import Kernels

/// The symbol set of a language-modelling corpus.
///
/// Character level: one id per Unicode scalar that occurs in the corpus, ids in ascending order of
/// scalar value (so "\r\n" is two symbols). Byte level: the 256 byte values, id = byte.
/// BPE: an imported model's byte-level BPE (GPT-2's vocab.json and merges.txt), which only
/// a checkpoint brings (`layercollapse import`).
/// `kind` and `characters` are the serialized form; `init(kind:characters:)` restores it.
public struct CorpusVocabulary: Sendable, Equatable {
  public enum Kind: String, Sendable, Equatable, CaseIterable {
    case character
    case byte
    case bpe
  }

  public let kind: Kind
  /// Character level: the scalar values in id order; byte level: empty.
  public let characters: [UInt32]
  let ids: [UInt32: Int32]
  /// BPE level: the tokenizer.
  public let bpe: ByteLevelBPE?

  /// Number of ids.
  public var count: Int {
    switch kind {
    case .byte: 256
    case .character: characters.count
    case .bpe: bpe?.count ?? 0
    }
  }

  /// An imported model's byte-level BPE.
  public init(bpe: ByteLevelBPE) {
    kind = .bpe
    characters = []
    ids = [:]
    self.bpe = bpe
  }

  /// Restores a vocabulary; character-level `characters` must be distinct valid scalar values in
  /// ascending order, byte-level ones empty. Throws `.badData` otherwise.
  public init(kind: Kind, characters: [UInt32] = []) throws {
    var valid: Bool = kind == .byte ? characters.isEmpty : kind == .character && !characters.isEmpty
    for (i, value) in characters.enumerated()
    where Unicode.Scalar(value) == nil || (i > 0 && characters[i - 1] >= value) {
      valid = false
    }
    if !valid {
      throw LCError.badData(
        ErrorDetail(
          what: "invalid corpus vocabulary", location: "corpus vocabulary",
          expected: kind == .byte
            ? "no character list for a byte-level vocabulary"
            : kind == .bpe
              ? "a BPE vocabulary with its merges" : "distinct Unicode scalar values in ascending order",
          got: "\(characters.count) values"))
    }
    self.init(checkedKind: kind, characters: characters)
  }

  init(checkedKind kind: Kind, characters: [UInt32]) {
    self.kind = kind
    self.characters = characters
    var ids: [UInt32: Int32] = [:]
    for (i, value) in characters.enumerated() { ids[value] = Int32(i) }
    self.ids = ids
    self.bpe = nil
  }

  public static func == (a: CorpusVocabulary, b: CorpusVocabulary) -> Bool {
    a.kind == b.kind && a.characters == b.characters && a.bpe == b.bpe
  }

  /// The vocabulary of every symbol in `text` (character and byte level; a BPE comes
  /// from an imported checkpoint, never from the corpus).
  public static func build(kind: Kind, from text: String) -> CorpusVocabulary {
    if kind != .character { return CorpusVocabulary(checkedKind: .byte, characters: []) }
    var seen: Set<UInt32> = []
    for scalar in text.unicodeScalars { seen.insert(scalar.value) }
    return CorpusVocabulary(checkedKind: .character, characters: seen.sorted())
  }

  /// The ids of `text`; throws `.badData` naming `file` and the line of the first character that is
  /// not in the vocabulary.
  public func encode(_ text: String, file: String = "text") throws -> [Int32] {
    if kind == .byte { return text.utf8.map { Int32($0) } }
    if let b = bpe { return b.encode(text) }
    var out: [Int32] = []
    out.reserveCapacity(text.utf8.count)
    var line: Int = 1
    for scalar in text.unicodeScalars {
      guard let id = ids[scalar.value] else {
        throw LCError.badData(
          ErrorDetail(
            what: "character not in the vocabulary", location: "\(file):\(line)",
            expected: "only characters of the stored \(characters.count)-character vocabulary",
            got: "U+\(String(scalar.value, radix: 16, uppercase: true)) '\(scalar.escaped(asASCII: false))'",
            hint: "Use the corpus the vocabulary was built from, or a byte-level vocabulary"))
      }
      if scalar == "\n" { line += 1 }
      out.append(id)
    }
    return out
  }

  /// The text of `ids` (invalid ids are skipped; byte sequences that are not UTF-8 become U+FFFD).
  public func decode(_ ids: [Int32]) -> String {
    if let b = bpe { return b.decode(ids) }
    if kind == .byte {
      return String(decoding: ids.compactMap { $0 >= 0 && $0 < 256 ? UInt8($0) : nil }, as: UTF8.self)
    }
    var view: String.UnicodeScalarView = String.UnicodeScalarView()
    for id in ids where id >= 0 && Int(id) < characters.count {
      if let scalar = Unicode.Scalar(characters[Int(id)]) { view.append(scalar) }
    }
    return String(view)
  }
}

/// Settings of the language-modelling corpus loader.
public struct CorpusOptions: Sendable, Equatable {
  /// T: each window holds T + 1 tokens, giving T inputs and T targets.
  public var maxLength: Int
  /// The first `trainFraction` of the tokens are the training split, the rest validation.
  public var trainFraction: Double
  public var vocabulary: CorpusVocabulary.Kind

  public init(maxLength: Int = 128, trainFraction: Double = 0.9, vocabulary: CorpusVocabulary.Kind = .character) {
    self.maxLength = maxLength
    self.trainFraction = trainFraction
    self.vocabulary = vocabulary
  }

  /// Throws `.badConfig` listing every invalid setting.
  public func validate() throws {
    var problems: [ErrorDetail] = []
    if maxLength < 1 {
      problems.append(
        ErrorDetail(what: "sequence length too small", location: "max_len", expected: "at least 1", got: "\(maxLength)")
      )
    }
    if !(trainFraction > 0 && trainFraction < 1) {
      problems.append(
        ErrorDetail(
          what: "invalid split fraction", location: "train_fraction", expected: "a number strictly between 0 and 1",
          got: "\(trainFraction)"))
    }
    if !problems.isEmpty { throw LCError.badConfig(problems) }
  }
}

/// A batch of language-modelling windows: B = `batchSize`, T = `sequenceLength`, row-major;
/// `targets[b*T + t]` is the token that follows `inputs[b*T + t]`.
public struct LMBatch: Sendable, Equatable {
  public let batchSize: Int
  public let sequenceLength: Int
  public let inputs: [Int32]
  public let targets: [Int32]
}

/// A plain UTF-8 text file as token ids, split contiguously: the first part trains, the last part validates.
public struct LanguageModelCorpus: Sendable {
  public let file: String
  public let vocabulary: CorpusVocabulary
  public let maxLength: Int
  public let train: [Int32]
  public let validation: [Int32]

  /// Reads `file` (UTF-8). The vocabulary is built from the whole file unless `vocabulary` is given
  /// (e.g. from a checkpoint; its kind must match `options.vocabulary`). The training split is the
  /// first ⌊trainFraction · N⌋ tokens; both splits must hold at least one window of maxLength + 1.
  public static func load(file: String, options: CorpusOptions, vocabulary: CorpusVocabulary? = nil) throws
    -> LanguageModelCorpus
  {
    try options.validate()
    if let given = vocabulary, given.kind != options.vocabulary {
      throw LCError.badConfig([
        ErrorDetail(
          what: "data.level does not match the checkpoint's vocabulary", location: "data.level",
          expected: "\(given.kind.rawValue), the level of the checkpoint's stored vocabulary",
          got: options.vocabulary.rawValue, hint: "Set data.level: \(given.kind.rawValue)")
      ])
    }
    let bytes: [UInt8] = try readDataFile(file, describing: "text corpus", inDataPath: false)
    let window: Int = options.maxLength + 1
    if bytes.isEmpty {
      throw LCError.badData(
        ErrorDetail(
          what: "empty corpus", location: file,
          expected: "text with at least \(window) tokens (max_len + 1) in each of the train and validation splits",
          got: "0 bytes"))
    }
    try validateUTF8(bytes, file: file)
    let text: String = String(decoding: bytes, as: UTF8.self)
    if options.vocabulary == .bpe && vocabulary == nil {
      throw LCError.badConfig([
        ErrorDetail(
          what: "a BPE corpus needs the tokenizer of an imported model", location: "data.level",
          expected: "train.init_from naming a checkpoint that carries a BPE vocabulary", got: "bpe",
          hint: "layercollapse import GPT2_DIR -o gpt2.h5 stores GPT-2's vocab.json and merges.txt")
      ])
    }
    let vocab: CorpusVocabulary = vocabulary ?? CorpusVocabulary.build(kind: options.vocabulary, from: text)
    let tokens: [Int32] = try vocab.encode(text, file: file)
    let trainCount: Int = Int((Double(tokens.count) * options.trainFraction).rounded(.down))
    let validationCount: Int = tokens.count - trainCount
    if trainCount < window || validationCount < window {
      throw LCError.badData(
        ErrorDetail(
          what: "corpus shorter than one window", location: file,
          expected:
            "at least \(window) tokens (max_len + 1) in each split, so at least \(minimumTokens(window, options.trainFraction)) tokens at train_fraction \(options.trainFraction)",
          got:
            "\(tokens.count) \(options.vocabulary.rawValue) tokens: \(trainCount) train, \(validationCount) validation",
          hint: "Use a longer text or a smaller max_len"))
    }
    return LanguageModelCorpus(
      file: file, vocabulary: vocab, maxLength: options.maxLength, train: Array(tokens[0..<trainCount]),
      validation: Array(tokens[trainCount...]))
  }

  /// The same corpus trained on its first `windows` windows only (`data.train_limit`): the
  /// training split is cut to windows·maxLength + 1 tokens, so random windows are drawn
  /// from that stretch and an epoch is that many windows.
  public func limitingTraining(windows: Int) -> LanguageModelCorpus {
    let tokens: Int = min(train.count, max(1, windows) * maxLength + 1)
    return LanguageModelCorpus(
      file: file, vocabulary: vocabulary, maxLength: maxLength, train: Array(train.prefix(tokens)),
      validation: validation)
  }

  /// The same corpus with its training split cut to its first `tokens` tokens (the rest
  /// held out, `TaskData.holdingOut`).
  public func keepingTraining(tokens: Int) -> LanguageModelCorpus {
    LanguageModelCorpus(
      file: file, vocabulary: vocabulary, maxLength: maxLength, train: Array(train.prefix(tokens)),
      validation: validation)
  }

  /// The smallest N whose contiguous split leaves `window` tokens on both sides.
  static func minimumTokens(_ window: Int, _ fraction: Double) -> Int {
    var n: Int = 2 * window
    while n < Int.max / 2 {
      let train: Int = Int((Double(n) * fraction).rounded(.down))
      if train >= window && n - train >= window { return n }
      n += 1
    }
    return n
  }

  /// `batchSize` windows of maxLength + 1 tokens at uniformly random positions of the training
  /// split, a function of (seed, step) only: the same seed and step give the same batch.
  public func trainBatch(batchSize: Int, seed: UInt64, step: Int) throws -> LMBatch {
    try BatchOrder.checkBatchSize(batchSize)
    var rng: RNG = RNG(seed: seed, stream: "windows").derived("step-\(step)")
    let positions: Int = train.count - maxLength  // window starts 0..<positions
    var starts: [Int] = []
    for _ in 0..<batchSize { starts.append(rng.int(below: positions)) }
    return LanguageModelCorpus.windows(train, starts: starts, length: maxLength)
  }

  /// Number of evaluation windows: validation is cut into consecutive, non-overlapping windows that
  /// start every maxLength tokens (so each validation token after the first is a target once, up to
  /// a remainder shorter than one window).
  public var validationWindowCount: Int { (validation.count - 1) / maxLength }

  /// The validation windows in order, `batchSize` per batch (the last batch may be smaller).
  public func validationBatches(batchSize: Int) throws -> [LMBatch] {
    let plan: [[Int]] = try BatchOrder.sequential(count: validationWindowCount, batchSize: batchSize)
    return plan.map { windows in
      LanguageModelCorpus.windows(validation, starts: windows.map { $0 * maxLength }, length: maxLength)
    }
  }

  static func windows(_ tokens: [Int32], starts: [Int], length: Int) -> LMBatch {
    var inputs: [Int32] = []
    var targets: [Int32] = []
    inputs.reserveCapacity(starts.count * length)
    targets.reserveCapacity(starts.count * length)
    for start in starts {
      inputs.append(contentsOf: tokens[start..<(start + length)])
      targets.append(contentsOf: tokens[(start + 1)..<(start + length + 1)])
    }
    return LMBatch(batchSize: starts.count, sequenceLength: length, inputs: inputs, targets: targets)
  }
}
