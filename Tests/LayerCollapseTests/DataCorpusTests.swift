import Foundation
import LayerCollapse
import Testing

@Test func dataCorpusSplitsContiguouslyAndWindowsShiftTargets() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let text: String = String(repeating: "abcdefghij", count: 10)  // 100 characters
  let file: String = try dir.write("c.txt", text: text)
  let corpus: LanguageModelCorpus = try LanguageModelCorpus.load(
    file: file, options: CorpusOptions(maxLength: 4, trainFraction: 0.75))
  #expect(corpus.vocabulary.kind == .character && corpus.vocabulary.count == 10)
  #expect(corpus.train.count == 75 && corpus.validation.count == 25)
  #expect(corpus.vocabulary.decode(corpus.train + corpus.validation) == text)
  #expect(corpus.vocabulary.decode(corpus.validation) == String(text.suffix(25)))

  let batch: LMBatch = try corpus.trainBatch(batchSize: 6, seed: 1, step: 0)
  #expect(batch.batchSize == 6 && batch.sequenceLength == 4)
  #expect(batch.inputs.count == 24 && batch.targets.count == 24)
  for b in 0..<6 {
    for t in 0..<4 {
      // In this text each character is followed by the next letter (mod 10).
      #expect(batch.targets[b * 4 + t] == (batch.inputs[b * 4 + t] + 1) % 10)
      if t > 0 { #expect(batch.inputs[b * 4 + t] == batch.targets[b * 4 + t - 1]) }
    }
  }
  #expect(try corpus.trainBatch(batchSize: 6, seed: 1, step: 0) == batch)
  #expect(try corpus.trainBatch(batchSize: 6, seed: 1, step: 1) != batch)
  #expect(try corpus.trainBatch(batchSize: 6, seed: 2, step: 0) != batch)

  // Validation: windows every 4 tokens over 25 tokens -> 6 windows, in order.
  #expect(corpus.validationWindowCount == 6)
  let eval: [LMBatch] = try corpus.validationBatches(batchSize: 4)
  #expect(eval.map(\.batchSize) == [4, 2])
  #expect(Array(eval[0].inputs[0..<4]) == Array(corpus.validation[0..<4]))
  #expect(Array(eval[0].targets[4..<8]) == Array(corpus.validation[5..<9]))
  #expect(Array(eval[1].targets[4..<8]) == Array(corpus.validation[21..<25]))
  #expect(try corpus.validationBatches(batchSize: 4) == eval)
}

@Test func dataCorpusByteLevelAndVocabularyRoundTrip() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let text: String = String(repeating: "é a\r\n", count: 20)  // 6 bytes, 5 scalars per repeat
  let file: String = try dir.write("c.txt", text: text)
  let bytes: LanguageModelCorpus = try LanguageModelCorpus.load(
    file: file, options: CorpusOptions(maxLength: 3, trainFraction: 0.5, vocabulary: .byte))
  #expect(bytes.vocabulary.count == 256)
  #expect(bytes.train.count + bytes.validation.count == 120)
  #expect(Array(bytes.train.prefix(2)) == [0xC3, 0xA9])
  #expect(bytes.vocabulary.decode(bytes.train + bytes.validation) == text)

  let chars: LanguageModelCorpus = try LanguageModelCorpus.load(
    file: file, options: CorpusOptions(maxLength: 3, trainFraction: 0.5))
  #expect(chars.train.count == 50 && chars.validation.count == 50)
  #expect(chars.vocabulary.characters == [0x0A, 0x0D, 0x20, 0x61, 0xE9])
  let restored: CorpusVocabulary = try CorpusVocabulary(kind: .character, characters: chars.vocabulary.characters)
  #expect(restored == chars.vocabulary)
  let again: LanguageModelCorpus = try LanguageModelCorpus.load(
    file: file, options: CorpusOptions(maxLength: 3, trainFraction: 0.5), vocabulary: restored)
  #expect(again.train == chars.train)
  expectLCError(.badData, mentions: ["corpus vocabulary", "ascending"]) {
    _ = try CorpusVocabulary(kind: .character, characters: [0x62, 0x61])
  }
}

@Test func dataCorpusWithAStoredVocabularyRejectsUnknownCharacters() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let file: String = try dir.write("c.txt", text: String(repeating: "ab\n", count: 10) + "abz\n")
  let vocabulary: CorpusVocabulary = try CorpusVocabulary(kind: .character, characters: [0x0A, 0x61, 0x62])
  expectLCError(.badData, mentions: ["\(file):11", "not in the vocabulary", "U+7A"]) {
    _ = try LanguageModelCorpus.load(file: file, options: CorpusOptions(maxLength: 2), vocabulary: vocabulary)
  }
  expectLCError(.badConfig, mentions: ["data.level", "expected character", "got byte"]) {
    _ = try LanguageModelCorpus.load(
      file: file, options: CorpusOptions(maxLength: 2, vocabulary: .byte), vocabulary: vocabulary)
  }
}
