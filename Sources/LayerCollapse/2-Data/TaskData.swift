import Kernels

/// A batch as the model reads it, with its targets.
public struct Batch {
  public let input: ModelInput
  /// (B) class labels, or (B·T) next tokens.
  public let targets: [Int32]
  /// Number of examples (sequences or images), for throughput.
  public let examples: Int

  public init(input: ModelInput, targets: [Int32], examples: Int) {
    self.input = input
    self.targets = targets
    self.examples = examples
  }
}

extension Batch {
  /// Examples `range` of this batch (an empty range: a batch of none). Targets follow
  /// their examples: one label each, or a sequence's tokens.
  public func examples(_ range: Range<Int>) -> Batch {
    precondition(range.lowerBound >= 0 && range.upperBound <= examples, "examples \(range) of \(examples)")
    if range.count == examples { return self }
    let perExample = targets.count / max(examples, 1)
    let picked = Array(targets[(range.lowerBound * perExample)..<(range.upperBound * perExample)])
    guard !range.isEmpty else { return Batch(input: input, targets: [], examples: 0) }
    return Batch(input: input.samples(range, paddedTo: range.count), targets: picked, examples: range.count)
  }
}

/// One of the three datasets, seen through one interface: epochs of seeded training
/// batches and fixed evaluation batches.
public struct TaskData: Sendable {
  public enum Source: Sendable {
    case text(TextClassificationData)
    case images(ImageData)
    case corpus(LanguageModelCorpus)
  }

  public let source: Source
  /// Text only: batch sentences of similar length and trim padding (less work per step).
  public var bucketByLength: Bool
  /// Corpus only: evaluate on the first this many validation windows (text and image
  /// loaders apply `data.eval_limit` when reading).
  public var evalWindowLimit: Int?
  /// Training examples (sentences, images; a corpus's windows) set aside at the end of the
  /// training split (`data.holdout`): never trained on, read by `holdoutBatches`, for
  /// decisions that must not look at the evaluation split (`compress`).
  public private(set) var holdout: Int = 0
  /// A corpus's held-out stretch: `holdout` windows of its training split's end.
  private var heldOutTokens: [Int32] = []

  public init(_ source: Source, bucketByLength: Bool = false, evalWindowLimit: Int? = nil) {
    self.source = source
    self.bucketByLength = bucketByLength
    self.evalWindowLimit = evalWindowLimit
  }

  /// This data with the last `count` training examples (a corpus: windows) held out.
  /// Throws `.badConfig` naming `data.holdout` when too few would be left to train on.
  public func holdingOut(_ count: Int) throws -> TaskData {
    guard count > 0 else { return self }
    var held = self
    held.holdout = count
    let left: Int
    switch source {
    case .text, .images:
      left = trainCount - count
    case .corpus(let d):
      let tail = count * d.maxLength + 1
      left = d.train.count - tail
      if left > d.maxLength {
        held.heldOutTokens = Array(d.train[left...])
        held = held.replacingSource(.corpus(d.keepingTraining(tokens: left)))
      }
    }
    let minimum = {
      if case .corpus(let d) = source { return d.maxLength + 1 }
      return 1
    }()
    guard left >= minimum else {
      throw LCError.badConfig([
        ErrorDetail(
          what: "data.holdout leaves nothing to train on", location: "data.holdout",
          expected: "fewer held-out examples than the training split's \(unitsDescription)",
          got: "\(count)", hint: "Hold out about a tenth of the training data")
      ])
    }
    return held
  }

  private func replacingSource(_ source: Source) -> TaskData {
    var copy = TaskData(source, bucketByLength: bucketByLength, evalWindowLimit: evalWindowLimit)
    copy.holdout = holdout
    copy.heldOutTokens = heldOutTokens
    return copy
  }

  private var unitsDescription: String {
    switch source {
    case .text(let d): "\(d.train.count) sentences"
    case .images(let d): "\(d.train.count) images"
    case .corpus(let d): "\((d.train.count - 1) / d.maxLength) windows"
    }
  }

  /// Training examples (sequences, images, or corpus tokens), without the held-out ones.
  public var trainCount: Int {
    switch source {
    case .text(let d): d.train.count - holdout
    case .images(let d): d.train.count - holdout
    case .corpus(let d): d.train.count
    }
  }

  /// The held-out training examples in order, unaugmented (empty without `data.holdout`).
  public func holdoutBatches(batchSize: Int) throws -> [Batch] {
    guard holdout > 0 else { return [] }
    switch source {
    case .text(let d):
      return try BatchOrder.sequential(count: holdout, batchSize: batchSize).map {
        Self.batch(d.train.batch($0.map { $0 + trainCount }))
      }
    case .images(let d):
      return try BatchOrder.sequential(count: holdout, batchSize: batchSize).map {
        Self.batch(d.unaugmentedTrainBatch($0.map { $0 + trainCount }))
      }
    case .corpus(let d):
      return try BatchOrder.sequential(count: holdout, batchSize: batchSize).map {
        Self.batch(LanguageModelCorpus.windows(heldOutTokens, starts: $0.map { $0 * d.maxLength }, length: d.maxLength))
      }
    }
  }

  /// What `trainCount` and `evalCount` count: "sentences", "images", or a corpus's
  /// training "tokens" and evaluation "windows of N tokens".
  public var countUnits: (train: String, eval: String) {
    switch source {
    case .text: ("sentences", "sentences")
    case .images: ("images", "images")
    case .corpus(let d): ("tokens", "windows of \(d.maxLength) tokens")
    }
  }

  /// Evaluation examples (sequences, images, or validation windows).
  public var evalCount: Int {
    switch source {
    case .text(let d): d.eval.count
    case .images(let d): d.eval.count
    case .corpus(let d): min(d.validationWindowCount, evalWindowLimit ?? Int.max)
    }
  }

  /// Side of the images batches hold (nil for text).
  public var imageSide: Int? {
    if case .images(let d) = source { return d.side }
    return nil
  }

  /// Output classes, or vocabulary size for a corpus.
  public var outputs: Int {
    switch source {
    case .text(let d): d.numClasses
    case .images(let d): d.numClasses
    case .corpus(let d): d.vocabulary.count
    }
  }

  /// Steps in one epoch: every training example once (the last batch may be smaller);
  /// for a corpus, as many windows as it has tokens.
  public func stepsPerEpoch(batchSize: Int) -> Int {
    switch source {
    case .text, .images: (trainCount + batchSize - 1) / batchSize
    case .corpus(let d): max(1, d.train.count / (batchSize * d.maxLength))
    }
  }

  /// The example indices of each batch of `epoch` (empty lists for a corpus, whose
  /// batches are drawn by step).
  public func epochPlan(epoch: Int, batchSize: Int, seed: UInt64) throws -> [[Int]] {
    switch source {
    case .text(let d):
      return try d.train.epochBatches(
        batchSize: batchSize, seed: seed, epoch: epoch, bucketByLength: bucketByLength, count: trainCount)
    case .images:
      return try BatchOrder.shuffled(count: trainCount, batchSize: batchSize, seed: seed, epoch: epoch)
    case .corpus:
      return Array(repeating: [], count: stepsPerEpoch(batchSize: batchSize))
    }
  }

  /// Training batch `index` of `epoch`, a function of (seed, epoch, index) only.
  public func trainBatch(plan: [[Int]], index: Int, epoch: Int, batchSize: Int, seed: UInt64) throws -> Batch {
    switch source {
    case .text(let d):
      return Self.batch(d.train.batch(plan[index], trimToLongest: bucketByLength))
    case .images(let d):
      return Self.batch(d.trainBatch(plan[index], seed: seed, epoch: epoch))
    case .corpus(let d):
      let step = epoch * stepsPerEpoch(batchSize: batchSize) + index
      return Self.batch(try d.trainBatch(batchSize: batchSize, seed: seed, step: step))
    }
  }

  /// The evaluation split in order, unaugmented.
  public func evalBatches(batchSize: Int) throws -> [Batch] {
    switch source {
    case .text(let d):
      return try BatchOrder.sequential(count: d.eval.count, batchSize: batchSize).map { Self.batch(d.eval.batch($0)) }
    case .images(let d):
      return try BatchOrder.sequential(count: d.eval.count, batchSize: batchSize).map { Self.batch(d.evalBatch($0)) }
    case .corpus(let d):
      return try BatchOrder.sequential(count: evalCount, batchSize: batchSize).map {
        Self.batch(LanguageModelCorpus.windows(d.validation, starts: $0.map { $0 * d.maxLength }, length: d.maxLength))
      }
    }
  }

  /// The first `limit` training examples in order and unaugmented, to measure training
  /// accuracy (and so the train–validation gap). For a corpus: the first windows of the
  /// training split.
  public func trainEvalBatches(batchSize: Int, limit: Int) throws -> [Batch] {
    let n = min(limit, trainCount)
    switch source {
    case .text(let d):
      return try BatchOrder.sequential(count: n, batchSize: batchSize).map { Self.batch(d.train.batch($0)) }
    case .images(let d):
      return try BatchOrder.sequential(count: n, batchSize: batchSize).map { Self.batch(d.unaugmentedTrainBatch($0)) }
    case .corpus(let d):
      let windows = min(limit, (d.train.count - 1) / d.maxLength)
      return try BatchOrder.sequential(count: windows, batchSize: batchSize).map {
        Self.batch(LanguageModelCorpus.windows(d.train, starts: $0.map { $0 * d.maxLength }, length: d.maxLength))
      }
    }
  }

  static func batch(_ b: TextBatch) -> Batch {
    Batch(
      input: .tokens(ids: b.tokenIDs, valid: b.mask, batch: b.batchSize, time: b.sequenceLength), targets: b.labels,
      examples: b.batchSize)
  }

  static func batch(_ b: ImageBatch) -> Batch {
    Batch(input: .images(b.images), targets: b.labels, examples: b.labels.count)
  }

  static func batch(_ b: LMBatch) -> Batch {
    Batch(
      input: .tokens(ids: b.inputs, valid: nil, batch: b.batchSize, time: b.sequenceLength), targets: b.targets,
      examples: b.batchSize)
  }
}
