import Foundation
import LayerCollapse
import Testing

@Test func dataTokenizerSplitsWordsAndPunctuation() {
  #expect(
    Tokenizer.split("It's a well-made, don't-miss FILM!")
      == ["it's", "a", "well-made", ",", "don't-miss", "film", "!"])
  #expect(Tokenizer.split("it 's a charming journey .") == ["it", "'", "s", "a", "charming", "journey", "."])
  #expect(Tokenizer.split("does n't -- really\t(2002)") == ["does", "n't", "-", "-", "really", "(", "2002", ")"])
  #expect(Tokenizer.split("Café  NAÏVE\r\n") == ["café", "naïve"])
  #expect(Tokenizer.split("  ") == [])
}

@Test func dataTokenizerVocabularyOrderMinFrequencyAndCap() throws {
  let sentences: [String] = ["b a", "c a", "b d", "e"]
  // counts: a 2, b 2, c 1, d 1, e 1 -> a, b by count, then c, d, e by string
  let full: Tokenizer = Tokenizer(training: sentences, minFrequency: 1, vocabularySize: 100)
  #expect(full.tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "e"])
  let capped: Tokenizer = Tokenizer(training: sentences, minFrequency: 1, vocabularySize: 7)
  #expect(capped.tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c"])
  let frequent: Tokenizer = Tokenizer(training: sentences, minFrequency: 2, vocabularySize: 100)
  #expect(frequent.tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"])
  #expect(frequent.id(of: "c") == Tokenizer.unknownID)
  // Order of the training sentences does not matter.
  #expect(Tokenizer(training: sentences.reversed(), minFrequency: 1, vocabularySize: 100) == full)
}

@Test func dataTokenizerEncodesWithClsSepTruncationAndPadding() throws {
  let tok: Tokenizer = Tokenizer(training: ["a b c d e"], minFrequency: 1, vocabularySize: 100)
  let a: Int32 = tok.id(of: "a")
  let b: Int32 = tok.id(of: "b")
  let c: Int32 = tok.id(of: "c")
  let d: Int32 = tok.id(of: "d")
  #expect(tok.encode("a b c d e", maxLength: 5, appendSeparator: true) == [2, a, b, c, 3])
  #expect(tok.encode("a b c d e", maxLength: 5) == [2, a, b, c, d])
  #expect(tok.encode("a zzz", maxLength: 8, appendSeparator: true) == [2, a, 1, 3])
  let padded: (ids: [Int32], mask: [Bool]) = tok.encodePadded("A", maxLength: 5)
  #expect(padded.ids == [2, a, 0, 0, 0])
  #expect(padded.mask == [true, true, false, false, false])
}

@Test func dataTokenizerRoundTripsThroughItsTokenList() throws {
  let tok: Tokenizer = Tokenizer(training: ["the film , the end", "a film"], minFrequency: 1, vocabularySize: 50)
  let restored: Tokenizer = try Tokenizer(tokens: tok.tokens)
  #expect(restored == tok)
  #expect(restored.encode("the end", maxLength: 4) == tok.encode("the end", maxLength: 4))
  expectLCError(.badData, mentions: ["tokenizer", "[PAD] [UNK] [CLS] [SEP]"]) {
    _ = try Tokenizer(tokens: ["a", "b"])
  }
  expectLCError(.badData, mentions: ["tokenizer token 5", "duplicate 'x'"]) {
    _ = try Tokenizer(tokens: Tokenizer.reservedTokens + ["x", "x"])
  }
}

@Test func dataTSVFindsColumnsByNameWithCRLFAndExtraColumns() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("t.tsv", text: "Label\tid\tsentence\r\n1\t7\tGood film\r\n0\t8\t bad \r\n\r\n")
  let rows: LabeledSentences = try LabeledSentences.read(tsv: file)
  #expect(rows.sentences == ["Good film", "bad"])
  #expect(rows.labels == [1, 0])
  #expect(rows.lines == [2, 3])
  #expect(rows.numClasses == 2)
  #expect(try LabeledSentences.read(tsv: file, numClasses: 3).numClasses == 3)
  let bom: String = try dir.write("bom.tsv", [0xEF, 0xBB, 0xBF] + Array("sentence\tlabel\nok\t0\nfine\t1".utf8))
  #expect(try LabeledSentences.read(tsv: bom).sentences == ["ok", "fine"])
}

@Test func dataTextClassificationBatchesHaveShapesMasksAndLabels() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  var train: String = "sentence\tlabel\n"
  for i in 0..<23 { train += String(repeating: "w\(i % 5) ", count: 1 + i % 7) + "\t\(i % 3)\n" }
  let trainFile: String = try dir.write("train.tsv", text: train)
  let evalFile: String = try dir.write("dev.tsv", text: "sentence\tlabel\nw1 w2 unseen\t2\nw0\t0\n")
  // The evaluation file has no label 1: the number of classes must then be given.
  expectLCError(.badData, mentions: ["\(trainFile):3", "training label 1 never occurs", "data.classes"]) {
    _ = try TextClassificationData.load(
      trainFile: trainFile, evalFile: evalFile, options: TextClassificationOptions(maxLength: 6))
  }
  let options: TextClassificationOptions = TextClassificationOptions(
    maxLength: 6, minFrequency: 1, numClasses: 3, appendSeparator: true)
  let data: TextClassificationData = try TextClassificationData.load(
    trainFile: trainFile, evalFile: evalFile, options: options)
  #expect(data.numClasses == 3)
  #expect(data.train.count == 23 && data.eval.count == 2)
  #expect(data.train.classCounts() == [8, 8, 7])
  let tok: Tokenizer = try #require(data.tokenizer)
  let batch: TextBatch = data.eval.batch([0, 1])
  #expect(batch.batchSize == 2 && batch.sequenceLength == 6)
  #expect(batch.tokenIDs == [2, tok.id(of: "w1"), tok.id(of: "w2"), 1, 3, 0, 2, tok.id(of: "w0"), 3, 0, 0, 0])
  #expect(batch.mask == [true, true, true, true, true, false, true, true, true, false, false, false])
  #expect(batch.labels == [2, 0])
  let trimmed: TextBatch = data.eval.batch([1], trimToLongest: true)
  #expect(trimmed.sequenceLength == 3 && trimmed.tokenIDs == [2, tok.id(of: "w0"), 3])

  // A stored tokenizer is used as is.
  let again: TextClassificationData = try TextClassificationData.load(
    trainFile: trainFile, evalFile: evalFile, options: options, tokenizer: tok)
  #expect(again.tokenizer == tok)
  #expect(again.train.tokenIDs(of: 4) == data.train.tokenIDs(of: 4))

  let limited: TextClassificationData = try TextClassificationData.load(
    trainFile: trainFile, evalFile: evalFile,
    options: TextClassificationOptions(maxLength: 6, numClasses: 3, trainLimit: 5, evalLimit: 1))
  #expect(limited.train.count == 5 && limited.eval.count == 1)
}

@Test func dataTextBucketingKeepsEveryExampleAndGroupsLengths() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  var train: String = "sentence\tlabel\n"
  for i in 0..<200 { train += String(repeating: "x ", count: 1 + (i * 37) % 20) + "\t\(i % 2)\n" }
  let file: String = try dir.write("train.tsv", text: train)
  let data: TextClassificationData = try TextClassificationData.load(
    trainFile: file, evalFile: file, options: TextClassificationOptions(maxLength: 32))
  let plain: [[Int]] = try data.train.epochBatches(batchSize: 8, seed: 1, epoch: 0)
  let bucketed: [[Int]] = try data.train.epochBatches(batchSize: 8, seed: 1, epoch: 0, bucketByLength: true)
  #expect(bucketed.flatMap { $0 }.sorted() == Array(0..<200))
  #expect(try data.train.epochBatches(batchSize: 8, seed: 1, epoch: 0, bucketByLength: true) == bucketed)
  func spread(_ batches: [[Int]]) -> Int {
    batches.map { b in b.map { data.train.lengths[$0] }.max()! - b.map { data.train.lengths[$0] }.min()! }.reduce(0, +)
  }
  #expect(spread(bucketed) < spread(plain))
}
