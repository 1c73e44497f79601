import Foundation
import Kernels
import LayerCollapse
import Testing

// Tests on the real datasets in ../shared/datasets (or $LAYERCOLLAPSE_DATA); skipped when absent.

@Suite(.enabled(if: RealData.sst2, "SST-2 not found under ../shared/datasets or $LAYERCOLLAPSE_DATA: skipped"))
struct DataRealSST2Tests {
  static let options: TextClassificationOptions = TextClassificationOptions(
    maxLength: 64, vocabularySize: 8000, minFrequency: 2)

  static func load() throws -> TextClassificationData {
    try TextClassificationData.load(
      trainFile: RealData.path("sst2/train.tsv"), evalFile: RealData.path("sst2/dev.tsv"), options: options)
  }

  @Test func rowCountsAndClassBalance() throws {
    let train: LabeledSentences = try LabeledSentences.read(tsv: RealData.path("sst2/train.tsv"))
    let dev: LabeledSentences = try LabeledSentences.read(tsv: RealData.path("sst2/dev.tsv"), numClasses: 2)
    #expect(train.count == 67_349)
    #expect(dev.count == 872)
    #expect(train.numClasses == 2)
    let data: TextClassificationData = try DataRealSST2Tests.load()
    for split in [data.train, data.eval] {
      let counts: [Int] = split.classCounts()
      #expect(counts.count == 2)
      #expect(counts.reduce(0, +) == split.count)
      #expect(counts.allSatisfy { $0 > 0 })
    }
    #expect(data.tokenizer?.count == 8000)
    #expect(data.train.lengths.allSatisfy { $0 >= 2 && $0 <= 64 })
  }

  @Test func tokenizerIsDeterministicAndSerializable() throws {
    let a: TextClassificationData = try DataRealSST2Tests.load()
    let b: TextClassificationData = try DataRealSST2Tests.load()
    #expect(a.tokenizer == b.tokenizer)
    let restored: Tokenizer = try Tokenizer(tokens: a.tokenizer?.tokens ?? [])
    let again: TextClassificationData = try TextClassificationData.load(
      trainFile: RealData.path("sst2/train.tsv"), evalFile: RealData.path("sst2/dev.tsv"),
      options: DataRealSST2Tests.options, tokenizer: restored)
    #expect(again.eval.batch(Array(0..<872)) == a.eval.batch(Array(0..<872)))
  }

  @Test func epochIterationIsDeterministicForASeed() throws {
    let data: TextClassificationData = try DataRealSST2Tests.load()
    let first: [[Int]] = try data.train.epochBatches(batchSize: 32, seed: 42, epoch: 0)
    let same: [[Int]] = try data.train.epochBatches(batchSize: 32, seed: 42, epoch: 0)
    let otherSeed: [[Int]] = try data.train.epochBatches(batchSize: 32, seed: 43, epoch: 0)
    let nextEpoch: [[Int]] = try data.train.epochBatches(batchSize: 32, seed: 42, epoch: 1)
    #expect(first.count == (67_349 + 31) / 32)
    #expect(first == same)
    #expect(first != otherSeed)
    #expect(first != nextEpoch)
    for k in [0, 1, first.count - 1] { #expect(data.train.batch(first[k]) == data.train.batch(same[k])) }
    #expect(data.train.batch(first[0]) != data.train.batch(otherSeed[0]))
  }
}

@Suite(.enabled(if: RealData.cifar10, "CIFAR-10 not found under ../shared/datasets or $LAYERCOLLAPSE_DATA: skipped"))
struct DataRealCIFAR10Tests {
  static let directory: String = RealData.path("cifar10-partial")

  @Test func everyBatchHas932ImagesAndClassBalanceIsComplete() throws {
    for name in CIFARFormat.cifar10.trainFiles + CIFARFormat.cifar10.testFiles {
      let split: ImageSplit = try ImageSplit.readCIFAR(
        files: [DataRealCIFAR10Tests.directory + "/" + name], format: .cifar10)
      #expect(split.count == 932, "\(name)")
    }
    let data: ImageData = try ImageData.loadCIFAR(directory: DataRealCIFAR10Tests.directory, format: .cifar10)
    #expect(data.train.count == 5 * 932 && data.eval.count == 932)
    #expect(data.classNames.first == "airplane" && data.classNames.count == 10)
    for split in [data.train, data.eval] {
      let counts: [Int] = split.classCounts()
      #expect(counts.count == 10)
      #expect(counts.reduce(0, +) == split.count)
      #expect(counts.allSatisfy { $0 > 0 })
    }
    for c in 0..<3 {
      #expect(data.normalization.mean[c] > 0.3 && data.normalization.mean[c] < 0.6)
      #expect(data.normalization.std[c] > 0.15 && data.normalization.std[c] < 0.35)
    }
    let limited: ImageData = try ImageData.loadCIFAR(
      directory: DataRealCIFAR10Tests.directory, format: .cifar10,
      options: ImageOptions(trainLimit: 1000, evalLimit: 10))
    #expect(limited.train.count == 1000 && limited.eval.count == 10)
    #expect(limited.train.labels == Array(data.train.labels[0..<1000]))
  }

  @Test func epochIterationIsDeterministicForASeed() throws {
    let data: ImageData = try ImageData.loadCIFAR(
      directory: DataRealCIFAR10Tests.directory, format: .cifar10, options: ImageOptions(trainLimit: 2000))
    let first: [[Int]] = try BatchOrder.shuffled(count: data.train.count, batchSize: 64, seed: 5, epoch: 0)
    let same: [[Int]] = try BatchOrder.shuffled(count: data.train.count, batchSize: 64, seed: 5, epoch: 0)
    let other: [[Int]] = try BatchOrder.shuffled(count: data.train.count, batchSize: 64, seed: 6, epoch: 0)
    #expect(first == same && first != other)
    let a: ImageBatch = data.trainBatch(first[3], seed: 5, epoch: 0)
    let b: ImageBatch = data.trainBatch(same[3], seed: 5, epoch: 0)
    #expect(a.images.shape == [64, 3, 32, 32])
    #expect(a.images.array == b.images.array && a.labels == b.labels)
    #expect(data.trainBatch(first[3], seed: 6, epoch: 0).images.array != a.images.array)
    // Evaluation batches are never augmented: the same every time, and equal to the normalized raw pixels.
    let e: ImageBatch = data.evalBatch([0, 1])
    #expect(e.images.array == data.evalBatch([0, 1]).images.array)
    let p: UInt8 = data.eval.image(1)[1024 + 5]  // image 1, green, row 0, column 5
    let expected: Float = (Float(p) / 255 - data.normalization.mean[1]) * (1 / data.normalization.std[1])
    #expect(e.images[3072 + 1024 + 5] == expected)
  }
}

@Suite(
  .enabled(if: RealData.austen, "text/austen.txt not found under ../shared/datasets or $LAYERCOLLAPSE_DATA: skipped"))
struct DataRealCorpusTests {
  static let file: String = RealData.path("text/austen.txt")

  @Test func splitSizesAndDeterministicWindows() throws {
    let text: String = try String(contentsOfFile: DataRealCorpusTests.file, encoding: .utf8)
    let chars: LanguageModelCorpus = try LanguageModelCorpus.load(
      file: DataRealCorpusTests.file, options: CorpusOptions(maxLength: 128, trainFraction: 0.9))
    let n: Int = text.unicodeScalars.count
    #expect(chars.train.count + chars.validation.count == n)
    #expect(chars.train.count == Int((Double(n) * 0.9).rounded(.down)))
    #expect(
      chars.vocabulary.decode(chars.validation)
        == String(String.UnicodeScalarView(text.unicodeScalars.suffix(chars.validation.count))))
    #expect(chars.vocabulary.count > 26 && chars.vocabulary.count < 200)
    #expect(chars.validationWindowCount == (chars.validation.count - 1) / 128)

    let bytes: LanguageModelCorpus = try LanguageModelCorpus.load(
      file: DataRealCorpusTests.file, options: CorpusOptions(maxLength: 128, trainFraction: 0.9, vocabulary: .byte))
    #expect(bytes.train.count + bytes.validation.count == text.utf8.count)

    let a: LMBatch = try chars.trainBatch(batchSize: 16, seed: 9, step: 3)
    #expect(a == (try chars.trainBatch(batchSize: 16, seed: 9, step: 3)))
    #expect(a != (try chars.trainBatch(batchSize: 16, seed: 10, step: 3)))
    #expect(Array(a.inputs[1..<128]) == Array(a.targets[0..<127]))
    let eval: [LMBatch] = try chars.validationBatches(batchSize: 64)
    #expect(eval.map(\.batchSize).reduce(0, +) == chars.validationWindowCount)
  }
}
