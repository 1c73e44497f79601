import Foundation
import Kernels

/// The rows of a GLUE-style TSV file (SST-2): sentences with integer labels.
///
/// Format: UTF-8, lines ending in `\n` or `\r\n`, fields separated by tabs and taken verbatim
/// (no quoting, as in GLUE). Line 1 is a header that names a `sentence` and a `label` column
/// (case-insensitive, any order, other columns allowed and ignored). Every data row has as many
/// fields as the header; the sentence must not be blank; the label is an integer in 0..<C.
/// Blank lines at the end of the file are ignored.
public struct LabeledSentences: Sendable, Equatable {
  public let file: String
  public let sentences: [String]
  public let labels: [Int32]
  /// The 1-based line of each row in `file`.
  public let lines: [Int]
  /// C: the number of classes, given or (when not given) the largest label + 1.
  public let numClasses: Int

  public var count: Int { labels.count }

  /// Reads `path`. With `numClasses` nil, C is the largest label + 1 and every class 0..<C must occur.
  public static func read(tsv path: String, numClasses: Int? = nil) throws -> LabeledSentences {
    let bytes: [UInt8] = try readDataFile(path, describing: "TSV file", inDataPath: true)
    try validateUTF8(bytes, file: path)
    var rawLines: [ArraySlice<UInt8>] = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
    while let last = rawLines.last, last.isEmpty || last == [0x0D] { rawLines.removeLast() }
    if rawLines.isEmpty {
      throw LCError.badData(
        ErrorDetail(
          what: "missing header", location: "\(path):1",
          expected: "a tab-separated header row naming columns 'sentence' and 'label'", got: "an empty file"))
    }
    let header: [String] = fields(of: rawLines[0])
    // A UTF-8 byte-order mark before the first column name is ignored.
    let names: [String] = header.map {
      $0.replacingOccurrences(of: "\u{FEFF}", with: "").trimmingCharacters(in: .whitespaces).lowercased()
    }
    guard let sentenceColumn = names.firstIndex(of: "sentence"), let labelColumn = names.firstIndex(of: "label") else {
      let shown: String = String(decoding: rawLines[0], as: UTF8.self)
      throw LCError.badData(
        ErrorDetail(
          what: "missing header", location: "\(path):1",
          expected: "a tab-separated header row naming columns 'sentence' and 'label'", got: excerpt(shown),
          hint: names.contains("sentence") ? "GLUE test files have no labels; use the train and dev files" : ""))
    }
    var sentences: [String] = []
    var labels: [Int32] = []
    var lines: [Int] = []
    var maxLabel: Int32 = -1
    for index in 1..<rawLines.count {
      let line: Int = index + 1
      let row: [String] = fields(of: rawLines[index])
      if row.count != header.count {
        throw LCError.badData(
          ErrorDetail(
            what: "wrong number of fields", location: "\(path):\(line)",
            expected: "\(header.count) tab-separated fields as in the header (\(header.joined(separator: ", ")))",
            got: "\(row.count) field\(row.count == 1 ? "" : "s"): \(excerpt(row.joined(separator: "\t")))"))
      }
      let sentence: String = row[sentenceColumn].trimmingCharacters(in: .whitespaces)
      if sentence.isEmpty {
        throw LCError.badData(
          ErrorDetail(
            what: "empty sentence", location: "\(path):\(line)",
            expected: "non-empty text in column \(sentenceColumn + 1) ('sentence')", got: "a blank field"))
      }
      let labelText: String = row[labelColumn].trimmingCharacters(in: .whitespaces)
      let wanted: String =
        numClasses.map { "an integer class label in 0..\($0 - 1)" } ?? "a non-negative integer class label"
      guard let label = Int32(labelText) else {
        throw LCError.badData(
          ErrorDetail(
            what: "label is not an integer", location: "\(path):\(line)",
            expected: "\(wanted) in column \(labelColumn + 1) ('label')", got: excerpt(labelText)))
      }
      if label < 0 || (numClasses != nil && Int(label) >= numClasses!) {
        throw LCError.badData(
          ErrorDetail(what: "label out of range", location: "\(path):\(line)", expected: wanted, got: "\(label)"))
      }
      maxLabel = max(maxLabel, label)
      sentences.append(sentence)
      labels.append(label)
      lines.append(line)
    }
    if labels.isEmpty {
      throw LCError.badData(
        ErrorDetail(what: "no data rows", location: path, expected: "at least one row after the header", got: "none"))
    }
    var classes: Int = numClasses ?? Int(maxLabel) + 1
    if numClasses == nil {
      // The labels present, not a flag per class: one row labelled 2³¹ − 1 must not cost
      // an allocation of 2³¹ flags before it is refused.
      let present: Set<Int32> = Set(labels)
      var missing: [Int] = []
      var k: Int32 = 0
      while present.count < classes && missing.count < 6 && k < maxLabel {
        if !present.contains(k) { missing.append(Int(k)) }
        k += 1
      }
      if !missing.isEmpty {
        let line: Int = lines[labels.firstIndex(of: maxLabel)!]
        throw LCError.badData(
          ErrorDetail(
            what: "labels are not 0..C-1", location: "\(path):\(line)",
            expected: "every class 0..\(maxLabel) to occur when the number of classes is taken from the data",
            got:
              "largest label \(maxLabel) here, but no row with label \(missing.prefix(5).map(String.init).joined(separator: ", "))\(missing.count > 5 ? ", …" : "")",
            hint: "Set the number of classes explicitly if some classes really have no examples"))
      }
      classes = max(classes, 1)
    }
    return LabeledSentences(file: path, sentences: sentences, labels: labels, lines: lines, numClasses: classes)
  }

  static func fields(of line: ArraySlice<UInt8>) -> [String] {
    var bytes: ArraySlice<UInt8> = line
    if bytes.last == 0x0D { bytes = bytes.dropLast() }
    return bytes.split(separator: 0x09, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
  }

  /// The first `limit` rows (all when nil).
  public func prefix(_ limit: Int?) -> LabeledSentences {
    guard let limit = limit, limit < count else { return self }
    let n: Int = max(0, limit)
    return LabeledSentences(
      file: file, sentences: Array(sentences[0..<n]), labels: Array(labels[0..<n]), lines: Array(lines[0..<n]),
      numClasses: numClasses)
  }
}

/// Settings of the text-classification loader. Names in error messages follow the config keys.
public struct TextClassificationOptions: Sendable, Equatable {
  /// T: every sequence is `[CLS]` + tokens (+ `[SEP]`), truncated or padded to this length.
  public var maxLength: Int
  /// Vocabulary size including the four reserved tokens.
  public var vocabularySize: Int
  /// Tokens seen fewer times than this in the training split map to `[UNK]`.
  public var minFrequency: Int
  /// C; nil takes it from the training labels (largest + 1).
  public var numClasses: Int?
  /// Append `[SEP]` after the tokens.
  public var appendSeparator: Bool
  /// Use only the first N training / evaluation rows.
  public var trainLimit: Int?
  public var evalLimit: Int?

  public init(
    maxLength: Int = 64, vocabularySize: Int = 16_384, minFrequency: Int = 1, numClasses: Int? = nil,
    appendSeparator: Bool = false, trainLimit: Int? = nil, evalLimit: Int? = nil
  ) {
    self.maxLength = maxLength
    self.vocabularySize = vocabularySize
    self.minFrequency = minFrequency
    self.numClasses = numClasses
    self.appendSeparator = appendSeparator
    self.trainLimit = trainLimit
    self.evalLimit = evalLimit
  }

  /// Throws `.badConfig` listing every invalid setting.
  public func validate() throws {
    var problems: [ErrorDetail] = []
    let minimum: Int = appendSeparator ? 3 : 2
    if maxLength < minimum {
      problems.append(
        ErrorDetail(
          what: "sequence length too small", location: "max_len",
          expected: "at least \(minimum) ([CLS]\(appendSeparator ? ", [SEP]" : "") and one token)", got: "\(maxLength)")
      )
    }
    if vocabularySize < 5 {
      problems.append(
        ErrorDetail(
          what: "vocabulary too small", location: "vocab_size",
          expected: "at least 5 (4 reserved tokens and one word)", got: "\(vocabularySize)"))
    }
    if minFrequency < 1 {
      problems.append(
        ErrorDetail(
          what: "invalid minimum frequency", location: "min_freq", expected: "at least 1", got: "\(minFrequency)"))
    }
    if let c = numClasses, c < 2 {
      problems.append(
        ErrorDetail(what: "too few classes", location: "num_classes", expected: "at least 2", got: "\(c)"))
    }
    for (key, value) in [("train_limit", trainLimit), ("eval_limit", evalLimit)] {
      if let v = value, v < 1 {
        problems.append(
          ErrorDetail(what: "invalid limit", location: key, expected: "a positive number of rows", got: "\(v)"))
      }
    }
    if !problems.isEmpty { throw LCError.badConfig(problems) }
  }
}

/// One batch of encoded sentences; B = `batchSize`, T = `sequenceLength`, arrays row-major.
public struct TextBatch: Sendable, Equatable {
  public let batchSize: Int
  public let sequenceLength: Int
  /// B*T token ids, `[PAD]` (0) after the real tokens.
  public let tokenIDs: [Int32]
  /// B*T, true for a real token (including `[CLS]`/`[SEP]`), false for padding.
  public let mask: [Bool]
  /// B class labels.
  public let labels: [Int32]
}

/// One split (train or eval) of a text-classification dataset, encoded to fixed-length id rows.
public struct TextClassificationSplit: Sendable {
  public let file: String
  public let maxLength: Int
  public let labels: [Int32]
  /// Number of real ids (with `[CLS]`/`[SEP]`) of each example.
  public let lengths: [Int]
  public let numClasses: Int
  /// count * maxLength ids, padded.
  let ids: [Int32]

  public var count: Int { labels.count }

  public init(sentences: LabeledSentences, tokenizer: any SentenceEncoder, maxLength: Int, appendSeparator: Bool) {
    var ids: [Int32] = []
    ids.reserveCapacity(sentences.count * maxLength)
    var lengths: [Int] = []
    lengths.reserveCapacity(sentences.count)
    for sentence in sentences.sentences {
      let real: [Int32] = tokenizer.encode(sentence, maxLength: maxLength, appendSeparator: appendSeparator)
      ids.append(contentsOf: real)
      ids.append(contentsOf: [Int32](repeating: tokenizer.paddingID, count: maxLength - real.count))
      lengths.append(real.count)
    }
    self.file = sentences.file
    self.maxLength = maxLength
    self.labels = sentences.labels
    self.lengths = lengths
    self.numClasses = sentences.numClasses
    self.ids = ids
  }

  /// The padded ids of example `index`.
  public func tokenIDs(of index: Int) -> [Int32] { Array(ids[(index * maxLength)..<((index + 1) * maxLength)]) }

  /// Number of examples of each class (index = label).
  public func classCounts() -> [Int] {
    var counts: [Int] = [Int](repeating: 0, count: numClasses)
    for label in labels { counts[Int(label)] += 1 }
    return counts
  }

  /// The examples at `indices` (valid indices into this split). T is `maxLength`, or with
  /// `trimToLongest` the longest real length in the batch (less padding work for the model).
  public func batch(_ indices: [Int], trimToLongest: Bool = false) -> TextBatch {
    var t: Int = maxLength
    if trimToLongest { t = max(1, indices.map { lengths[$0] }.max() ?? 1) }
    var tokenIDs: [Int32] = []
    tokenIDs.reserveCapacity(indices.count * t)
    var mask: [Bool] = []
    mask.reserveCapacity(indices.count * t)
    var labels: [Int32] = []
    for index in indices {
      let start: Int = index * maxLength
      tokenIDs.append(contentsOf: ids[start..<(start + t)])
      let real: Int = min(lengths[index], t)
      mask.append(contentsOf: [Bool](repeating: true, count: real))
      mask.append(contentsOf: [Bool](repeating: false, count: t - real))
      labels.append(self.labels[index])
    }
    return TextBatch(batchSize: indices.count, sequenceLength: t, tokenIDs: tokenIDs, mask: mask, labels: labels)
  }

  /// The batches of one training epoch: a seeded shuffle (`BatchOrder.shuffled`). With
  /// `bucketByLength`, the shuffled order is cut into pools of 50 batches, each pool is sorted by
  /// length (then index) and cut into batches, and the batch order is shuffled again, so batches
  /// hold examples of similar length (use with `batch(_:trimToLongest: true)`).
  public func epochBatches(
    batchSize: Int, seed: UInt64, epoch: Int, dropLast: Bool = false, bucketByLength: Bool = false,
    count limit: Int? = nil
  ) throws -> [[Int]] {
    // `limit`: the first this many sentences only (the rest held out).
    let count: Int = Swift.min(limit ?? self.count, self.count)
    if !bucketByLength {
      return try BatchOrder.shuffled(count: count, batchSize: batchSize, seed: seed, epoch: epoch, dropLast: dropLast)
    }
    try BatchOrder.checkBatchSize(batchSize)
    var rng: RNG = BatchOrder.shuffleRNG(seed: seed, epoch: epoch)
    var order: [Int] = Array(0..<count)
    rng.shuffle(&order)
    let pool: Int = batchSize * 50
    var sorted: [Int] = []
    sorted.reserveCapacity(count)
    var start: Int = 0
    while start < order.count {
      let end: Int = min(start + pool, order.count)
      let lengths: [Int] = self.lengths
      sorted.append(
        contentsOf: order[start..<end].sorted { a, b in lengths[a] != lengths[b] ? lengths[a] < lengths[b] : a < b })
      start = end
    }
    var batches: [[Int]] = BatchOrder.chunk(sorted, size: batchSize, dropLast: dropLast)
    rng.shuffle(&batches)
    return batches
  }
}

/// A text-classification dataset: a tokenizer built from (or restored for) the training split,
/// and both splits encoded with it.
public struct TextClassificationData: Sendable {
  /// What encoded the sentences: the word tokenizer, or an imported model's WordPiece.
  public let vocabulary: Vocabulary
  /// The word tokenizer, when that is what encoded the sentences.
  public var tokenizer: Tokenizer? {
    if case .words(let t) = vocabulary { return t }
    return nil
  }

  public let numClasses: Int
  public let train: TextClassificationSplit
  public let eval: TextClassificationSplit

  /// Reads `trainFile` and `evalFile` (GLUE TSV, see `LabeledSentences`). The tokenizer is built
  /// from the training rows (after `trainLimit`) unless `tokenizer` is given (e.g. from a checkpoint).
  /// C is `options.numClasses` (`data.classes`), or taken from the training labels; eval labels
  /// must lie in 0..<C. Without `data.classes`, a training label that never occurs in the
  /// evaluation file is an error naming its line: a stray label would silently add a class.
  public static func load(
    trainFile: String, evalFile: String, options: TextClassificationOptions, tokenizer: Tokenizer? = nil,
    wordPiece: WordPieceTokenizer? = nil
  ) throws -> TextClassificationData {
    try options.validate()
    let trainRows: LabeledSentences = try LabeledSentences.read(tsv: trainFile, numClasses: options.numClasses)
      .prefix(options.trainLimit)
    let numClasses: Int = options.numClasses ?? trainRows.numClasses
    if numClasses < 2 {
      throw LCError.badData(
        ErrorDetail(
          what: "only one class", location: trainFile, expected: "labels of at least 2 classes",
          got: "every label is 0", hint: "Set data.classes to the number of classes"))
    }
    let allEvalRows: LabeledSentences = try LabeledSentences.read(tsv: evalFile, numClasses: numClasses)
    if options.numClasses == nil {
      let evalLabels: Set<Int32> = Set(allEvalRows.labels)
      if let i = trainRows.labels.firstIndex(where: { !evalLabels.contains($0) }) {
        throw LCError.badData(
          ErrorDetail(
            what: "training label \(trainRows.labels[i]) never occurs in the evaluation file",
            location: "\(trainFile):\(trainRows.lines[i])",
            expected: "labels of \(evalFile): \(evalLabels.sorted().map(String.init).joined(separator: ", "))",
            got: "\(trainRows.labels[i])",
            hint: "Fix the label, or set data.classes to the number of classes if the files are right"))
      }
    }
    let evalRows: LabeledSentences = allEvalRows.prefix(options.evalLimit)
    let tok: any SentenceEncoder
    let vocabulary: Vocabulary
    if let w = wordPiece {
      (tok, vocabulary) = (w, .wordPiece(w))
    } else {
      let t =
        tokenizer
        ?? Tokenizer(
          training: trainRows.sentences, minFrequency: options.minFrequency, vocabularySize: options.vocabularySize)
      (tok, vocabulary) = (t, .words(t))
    }
    return TextClassificationData(
      vocabulary: vocabulary, numClasses: numClasses,
      train: TextClassificationSplit(
        sentences: trainRows, tokenizer: tok, maxLength: options.maxLength, appendSeparator: options.appendSeparator),
      eval: TextClassificationSplit(
        sentences: evalRows, tokenizer: tok, maxLength: options.maxLength, appendSeparator: options.appendSeparator))
  }
}
