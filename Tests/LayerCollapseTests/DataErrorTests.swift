import Foundation
import LayerCollapse
import Testing

// Bad input: each test writes a small bad file and checks that the error names the file
// (and the line or record) and says what was expected.

@Test func dataMissingTSVFileIsMissingInput() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = dir.path + "/nope.tsv"
  expectLCError(.missingInput, mentions: [file, "not found", "expected an existing file", "LAYERCOLLAPSE_DATA"]) {
    _ = try LabeledSentences.read(tsv: file)
  }
}

@Test func dataMissingCIFARDirectoryOrFileIsMissingInput() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let missing: String = dir.path + "/cifar10"
  expectLCError(.missingInput, mentions: [missing, "directory not found", "expected an existing directory"]) {
    _ = try ImageData.loadCIFAR(directory: missing, format: .cifar10)
  }
  // The directory exists but a batch file does not.
  try dir.write("data_batch_1.bin", cifarRecords(labels: [[1]]) { _, _, _, _ in 9 })
  expectLCError(.missingInput, mentions: [dir.path + "/data_batch_2.bin", "expected an existing file"]) {
    _ = try ImageData.loadCIFAR(directory: dir.path, format: .cifar10)
  }
}

@Test func dataMissingCorpusFileIsMissingInput() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = dir.path + "/missing.txt"
  expectLCError(.missingInput, mentions: [file, "text corpus not found", "expected an existing file"]) {
    _ = try LanguageModelCorpus.load(file: file, options: CorpusOptions())
  }
}

/// Another task's data (a corpus file for sst2, a directory for text): the message says
/// what is there and points at data.path, not at fetching the datasets.
@Test func anotherTasksDataPointsAtDataPath() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  try dir.write("corpus.txt", Array("some text".utf8))
  expectLCError(.missingInput, mentions: ["`\(dir.path)/corpus.txt` is a file, not a directory", "Check data.path"]) {
    _ = try LabeledSentences.read(tsv: dir.path + "/corpus.txt/train.tsv")
  }
  expectLCError(.missingInput, mentions: ["got a directory", "names a directory where the task reads a file"]) {
    _ = try LanguageModelCorpus.load(file: dir.path, options: CorpusOptions())
  }
}

@Test func dataTSVWithoutSentenceLabelHeader() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("noheader.tsv", text: "a fine film\t1\nawful\t0\n")
  expectLCError(
    .badData, mentions: ["\(file):1", "missing header", "expected", "'sentence' and 'label'", "a fine film"]
  ) {
    _ = try LabeledSentences.read(tsv: file)
  }
  let empty: String = try dir.write("empty.tsv", text: "")
  expectLCError(.badData, mentions: ["\(empty):1", "'sentence' and 'label'", "an empty file"]) {
    _ = try LabeledSentences.read(tsv: empty)
  }
}

@Test func dataTSVRowWithWrongNumberOfFields() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("fields.tsv", text: "sentence\tlabel\ngood\t1\nbad\t0\textra\n")
  expectLCError(
    .badData, mentions: ["\(file):3", "wrong number of fields", "expected 2 tab-separated fields", "got 3 fields"]
  ) {
    _ = try LabeledSentences.read(tsv: file)
  }
  let short: String = try dir.write("short.tsv", text: "sentence\tlabel\ngood\t1\n\nbad\t0\n")
  expectLCError(.badData, mentions: ["\(short):3", "expected 2 tab-separated fields", "got 1 field"]) {
    _ = try LabeledSentences.read(tsv: short)
  }
}

@Test func dataTSVNonIntegerLabel() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("label.tsv", text: "sentence\tlabel\ngood\tpositive\n")
  expectLCError(.badData, mentions: ["\(file):2", "not an integer", "expected an integer class label", "'positive'"]) {
    _ = try LabeledSentences.read(tsv: file, numClasses: 2)
  }
}

@Test func dataTSVOutOfRangeLabel() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("range.tsv", text: "sentence\tlabel\ngood\t1\nodd\t2\n")
  expectLCError(.badData, mentions: ["\(file):3", "out of range", "expected an integer class label in 0..1", "got 2"]) {
    _ = try LabeledSentences.read(tsv: file, numClasses: 2)
  }
  let negative: String = try dir.write("negative.tsv", text: "sentence\tlabel\ngood\t-1\n")
  expectLCError(
    .badData, mentions: ["\(negative):2", "out of range", "expected a non-negative integer class label", "got -1"]
  ) {
    _ = try LabeledSentences.read(tsv: negative)
  }
  // Classes taken from the data must all occur: a stray 7 in a binary file is an error, not 8 classes.
  let gap: String = try dir.write("gap.tsv", text: "sentence\tlabel\na\t0\nb\t1\nc\t7\n")
  expectLCError(.badData, mentions: ["\(gap):4", "every class 0..7", "no row with label 2, 3, 4, 5, 6"]) {
    _ = try LabeledSentences.read(tsv: gap)
  }
  // The largest label Int32 holds: refused the same way (without a flag per class, 2³¹ of them).
  let far: String = try dir.write("far.tsv", text: "sentence\tlabel\na\t0\nb\t1\nc\t2147483647\n")
  expectLCError(.badData, mentions: ["\(far):4", "every class 0..2147483647", "no row with label 2, 3, 4, 5, 6, …"]) {
    _ = try LabeledSentences.read(tsv: far)
  }
  // Eval labels are checked against the classes of the training split.
  let train: String = try dir.write("train.tsv", text: "sentence\tlabel\na\t0\nb\t1\n")
  let dev: String = try dir.write("dev.tsv", text: "sentence\tlabel\na\t0\nb\t2\n")
  expectLCError(.badData, mentions: ["\(dev):3", "0..1", "got 2"]) {
    _ = try TextClassificationData.load(trainFile: train, evalFile: dev, options: TextClassificationOptions())
  }
}

@Test func dataTSVEmptySentence() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("blank.tsv", text: "label\tsentence\n1\tfine\n0\t   \n")
  expectLCError(.badData, mentions: ["\(file):3", "empty sentence", "expected non-empty text in column 2"]) {
    _ = try LabeledSentences.read(tsv: file)
  }
}

@Test func dataTSVInvalidUTF8() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let bytes: [UInt8] = Array("sentence\tlabel\ngood\t1\nna".utf8) + [0xEF, 0xBB] + Array("ve\t0\n".utf8)
  let file: String = try dir.write("latin.tsv", bytes)
  expectLCError(.badData, mentions: ["\(file):3", "invalid UTF-8", "expected UTF-8 text", "column 3"]) {
    _ = try LabeledSentences.read(tsv: file)
  }
}

@Test func dataCorpusInvalidUTF8() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let bytes: [UInt8] = Array(String(repeating: "line\n", count: 4).utf8) + [0x80] + Array("tail\n".utf8)
  let file: String = try dir.write("bad.txt", bytes)
  expectLCError(.badData, mentions: ["\(file):5", "invalid UTF-8", "byte 0x80"]) {
    _ = try LanguageModelCorpus.load(file: file, options: CorpusOptions(maxLength: 2))
  }
}

@Test func dataCIFARFileSizeNotAMultipleOfTheRecordSize() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("data_batch_1.bin", cifarRecords(labels: [[1], [2]]) { _, _, _, _ in 5 } + [7, 7])
  expectLCError(
    .badData,
    mentions: [file, "expected a positive multiple of 3073 bytes", "got 6148 bytes", "2 whole records + 2 extra bytes"]
  ) {
    _ = try ImageSplit.readCIFAR(files: [file], format: .cifar10)
  }
  let hundred: String = try dir.write("train.bin", [1, 2, 3])
  expectLCError(.badData, mentions: [hundred, "multiple of 3074 bytes", "0 whole records + 3 extra bytes"]) {
    _ = try ImageSplit.readCIFAR(files: [hundred], format: .cifar100Fine)
  }
  let empty: String = try dir.write("test_batch.bin", [])
  expectLCError(.badData, mentions: [empty, "multiple of 3073 bytes", "got 0 bytes (an empty file)"]) {
    _ = try ImageSplit.readCIFAR(files: [empty], format: .cifar10)
  }
}

@Test func dataCIFARLabelByteOutOfRange() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("data_batch_1.bin", cifarRecords(labels: [[9], [10]]) { _, _, _, _ in 0 })
  expectLCError(
    .badData,
    mentions: ["\(file): record 1 (counting from 0; byte offset 3073)", "expected a label byte in 0..9", "got 10"]
  ) {
    _ = try ImageSplit.readCIFAR(files: [file], format: .cifar10)
  }
  // CIFAR-100: both label bytes are checked, whichever one is used.
  let hundred: String = try dir.write("train.bin", cifarRecords(labels: [[19, 99], [20, 5]]) { _, _, _, _ in 0 })
  expectLCError(
    .badData,
    mentions: ["\(hundred): record 1 (counting from 0; byte offset 3074)", "coarse label byte in 0..19", "got 20"]
  ) {
    _ = try ImageSplit.readCIFAR(files: [hundred], format: .cifar100Fine)
  }
}

@Test func dataEmptyCorpus() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("empty.txt", [])
  expectLCError(.badData, mentions: [file, "empty corpus", "expected text with at least 129 tokens", "got 0 bytes"]) {
    _ = try LanguageModelCorpus.load(file: file, options: CorpusOptions(maxLength: 128))
  }
}

@Test func dataCorpusShorterThanOneWindow() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("short.txt", text: String(repeating: "x", count: 100))
  expectLCError(
    .badData,
    mentions: [
      file, "shorter than one window", "expected at least 17 tokens (max_len + 1) in each split",
      "got 100 character tokens: 90 train, 10 validation",
    ]
  ) {
    _ = try LanguageModelCorpus.load(file: file, options: CorpusOptions(maxLength: 16, trainFraction: 0.9))
  }
}

@Test func dataWrongClassNamesFile() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  try dir.write("data_batch_1.bin", cifarRecords(labels: [[1], [2]]) { _, c, y, x in UInt8((c + y + x) % 256) })
  for i in 2...5 { try dir.write("data_batch_\(i).bin", cifarRecords(labels: [[0]]) { _, _, y, _ in UInt8(y) }) }
  try dir.write("test_batch.bin", cifarRecords(labels: [[3]]) { _, _, _, _ in 1 })
  let names: String = try dir.write("batches.meta.txt", text: "cat\ndog\n\n")
  expectLCError(.badData, mentions: [names, "expected 10 non-empty lines", "got 2"]) {
    _ = try ImageData.loadCIFAR(directory: dir.path, format: .cifar10)
  }
}

@Test func dataInvalidOptionsAreBadConfig() throws {
  expectLCError(.badConfig, mentions: ["max_len", "vocab_size", "min_freq", "train_limit"]) {
    try TextClassificationOptions(maxLength: 1, vocabularySize: 3, minFrequency: 0, trainLimit: 0).validate()
  }
  expectLCError(.badConfig, mentions: ["max_len", "train_fraction"]) {
    try CorpusOptions(maxLength: 0, trainFraction: 1).validate()
  }
  expectLCError(.badConfig, mentions: ["normalization", "positive standard deviations"]) {
    try ChannelStats(mean: [0, 0, 0], std: [1, 0, 1]).validate()
  }
}
