import Foundation
import Kernels
import LayerCollapse
import Testing

/// The safetensors reader and writer: round trips, the float formats, and every lie a
/// header can tell, each a `.badData` error (exit 65) naming the tensor.
@Suite struct SafeTensorsTests {
  /// A file from a header object and raw data bytes.
  static func file(_ header: [String: Any], data: [UInt8], lengthOverride: UInt64? = nil) throws -> Data {
    let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    var out = Data()
    var length = (lengthOverride ?? UInt64(json.count)).littleEndian
    withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
    out.append(json)
    out.append(contentsOf: data)
    return out
  }

  static func entry(_ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> [String: Any] {
    ["dtype": dtype, "shape": shape, "data_offsets": [begin, end]]
  }

  /// The error reading `bytes` throws, as text; nil when it reads.
  static func failure(_ bytes: Data) -> (code: Int32, message: String)? {
    do {
      _ = try SafeTensorsFile(bytes: bytes, path: "t.safetensors")
      return nil
    } catch let e as LCError {
      return (e.exitCode, e.details.map(\.message).joined(separator: "; "))
    } catch {
      return (-1, "\(error)")
    }
  }

  @Test func roundTripKeepsNamesShapesValuesAndAlignment() throws {
    let dir = NSTemporaryDirectory() + "lc-st-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let a = Tensor([2, 3], [1, -2, 3.5, 0, .leastNonzeroMagnitude, -0.0])
    let b = Tensor([1], [42])
    try SafeTensorsFile.write([("x.weight", a), ("bias", b)], metadata: ["format": "pt"], to: dir + "/m.safetensors")
    let f = try SafeTensorsFile(path: dir + "/m.safetensors")
    #expect(f.names == ["bias", "x.weight"])
    #expect(f.metadata == ["format": "pt"])
    #expect(try f.tensor("x.weight").shape == [2, 3])
    #expect(try f.tensor("x.weight").array.map(\.bitPattern) == a.array.map(\.bitPattern))
    #expect(try f.tensor("bias").array == [42])
    let raw = try Data(contentsOf: URL(fileURLWithPath: dir + "/m.safetensors"))
    let length = raw.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    #expect((8 + length) % 8 == 0, "the data starts 8-byte aligned")
  }

  /// F16, BF16 and F64 convert to float32 exactly for values they hold (1, −2.5, 2⁻¹⁴).
  @Test func halfBFloatAndDoubleConvert() throws {
    let f16: [UInt16] = [0x3C00, 0xC100, 0x0400]  // 1, -2.5, 2^-14
    let bf16: [UInt16] = [0x3F80, 0xC020, 0x3880]  // 1, -2.5, 2^-14
    var data: [UInt8] = []
    for v in f16 + bf16 { data += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    for v in [1.0, -2.5, 0x1p-14] { withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data += $0 } }
    let bytes = try Self.file(
      ["h": Self.entry("F16", [3], 0, 6), "b": Self.entry("BF16", [3], 6, 12), "d": Self.entry("F64", [3], 12, 36)],
      data: data)
    let f = try SafeTensorsFile(bytes: bytes, path: "t")
    for name in ["h", "b", "d"] { #expect(try f.tensor(name).array == [1, -2.5, 0x1p-14], "\(name)") }
  }

  @Test func lyingHeadersAreErrorsNamingTheTensor() throws {
    let four: [UInt8] = [0, 0, 128, 63]  // 1.0 as F32
    let cases: [(String, Data, String)] = [
      ("too short", Data([1, 2, 3]), "too short"),
      (
        "length beyond the file", try Self.file(["a": Self.entry("F32", [1], 0, 4)], data: four, lengthOverride: 500),
        "header length"
      ),
      ("huge length", try Self.file([:], data: [], lengthOverride: UInt64.max), "header length"),
      ("not JSON", Data([5, 0, 0, 0, 0, 0, 0, 0]) + Data("{oops".utf8), "not a JSON object"),
      ("unknown dtype", try Self.file(["w": Self.entry("F8_E4M3", [1], 0, 1)], data: [0]), "tensor w: unknown dtype"),
      ("outside", try Self.file(["w": Self.entry("F32", [2], 0, 8)], data: four), "tensor w: data_offsets lie outside"),
      (
        "reversed", try Self.file(["w": Self.entry("F32", [0], 4, 0)], data: four), "tensor w: data_offsets lie outside"
      ),
      (
        "byte count", try Self.file(["w": Self.entry("F32", [2], 0, 4)], data: four),
        "tensor w: the byte count does not fit"
      ),
      ("negative dim", try Self.file(["w": Self.entry("F32", [-1], 0, 4)], data: four), "tensor w: the shape"),
      (
        "overlap",
        try Self.file(["a": Self.entry("F32", [1], 0, 4), "b": Self.entry("F32", [1], 2, 6)], data: four + four),
        "tensor b: its data overlaps tensor a"
      ),
      ("no offsets", try Self.file(["w": ["dtype": "F32", "shape": [1]]], data: four), "tensor w: data_offsets"),
      // The tensors fill the data exactly (a header length a few bytes short shifts them all).
      (
        "trailing bytes", try Self.file(["a": Self.entry("F32", [1], 0, 4)], data: four + four),
        "the data section is not the tensors' bytes; expected 4 bytes after the header, got 8"
      ),
      (
        "gap",
        try Self.file(
          ["a": Self.entry("F32", [1], 0, 4), "b": Self.entry("F32", [1], 8, 12)], data: four + four + four),
        "tensor b: its data does not follow the previous tensor's"
      ),
    ]
    // An empty tensor at another's offset is no gap (ordered by begin, then end).
    let empty = try Self.file(["a": Self.entry("F32", [1], 0, 4), "b": Self.entry("F32", [0], 0, 0)], data: four)
    #expect(Self.failure(empty) == nil)
    for (label, bytes, expected) in cases {
      let f = Self.failure(bytes)
      #expect(f?.code == 65, "\(label): \(f.map { "\($0.code) \($0.message)" } ?? "read without error")")
      #expect(f?.message.contains(expected) == true, "\(label): \(f?.message ?? "")")
      #expect(f?.message.contains("t.safetensors") == true, "\(label) names the file")
    }
    let ints = try SafeTensorsFile(
      bytes: try Self.file(["ids": Self.entry("I64", [1], 0, 8)], data: four + four), path: "t")
    #expect(throws: LCError.self) { try ints.tensor("ids") }
  }

  /// A sharded checkpoint: the index maps each tensor to its shard; a tensor the index
  /// places in a shard that lacks it is an error.
  @Test func shardedIndex() throws {
    let dir = NSTemporaryDirectory() + "lc-st-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try SafeTensorsFile.write([("a", Tensor([1], [1]))], to: dir + "/m-1.safetensors")
    try SafeTensorsFile.write([("b", Tensor([2], [2, 3]))], to: dir + "/m-2.safetensors")
    let index = dir + "/model.safetensors.index.json"
    try #"{"metadata": {}, "weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}}"#.write(
      toFile: index, atomically: true, encoding: .utf8)
    let (files, shardOf) = try SafeTensorsFile.readSharded(index: index)
    #expect(files.count == 2 && shardOf["b"] == "m-2.safetensors")
    #expect(try files["m-2.safetensors"]!.tensor("b").array == [2, 3])
    try #"{"weight_map": {"a": "m-2.safetensors"}}"#.write(toFile: index, atomically: true, encoding: .utf8)
    #expect(throws: LCError.self) { try SafeTensorsFile.readSharded(index: index) }
    // A shard the index names that is not there: said so (66), not "cannot read".
    try #"{"weight_map": {"a": "m-1.safetensors", "c": "m-3.safetensors"}}"#.write(
      toFile: index, atomically: true, encoding: .utf8)
    do {
      _ = try SafeTensorsFile.readSharded(index: index)
      Issue.record("a missing shard was read")
    } catch LCError.missingInput(let d) {
      #expect(d.what == "safetensors file not found" && d.location.hasSuffix("/m-3.safetensors"), "\(d)")
      #expect(d.hint.contains("every shard"))
    }
  }
}

/// `layercollapse export` and `scripts/load_exported.py`: the exported model, collapsed or
/// not, rebuilt in PyTorch gives our logits within 1e-4 relative (float32 on both sides,
/// summation orders differ: the parity suite's logit tolerance).
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct ExportTests {
  static var loader: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("scripts/load_exported.py").path
  }

  @Test(arguments: [ModelKind.vit, .encoder, .gpt, .mixer, .bert, .vgg])
  func exportedModelMatchesInPyTorch(kind: ModelKind) throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    var arch = Architecture(config: ParityModels.config(kind, activation: .gelu))
    let last = arch.unitCount - 1
    arch.activations[last] = .prelu
    let model = ParityModels.model(arch, seed: 21, alphas: [last: 1])
    let collapsed = Collapse.run(model).model
    #expect(collapsed.architecture.collapsed[last])
    for (name, m) in [("full", model), ("collapsed", collapsed)] {
      let checkpoint = dir + "/\(name).h5"
      try ParityModels.save(m, to: checkpoint)
      let out = dir + "/\(name)-export"
      let r = try CLI.run(["export", checkpoint, "-o", out])
      #expect(r.code == 0, "\(r.stderr)")
      #expect(r.stdout.contains("model.safetensors") && r.stdout.contains("config.json"))
      let (input, targets) = ParityModels.batch(m.config, seed: 22)
      let bundle = ParityBundle.make(
        model: m, input: input, targets: targets,
        regularizer: Regularizer(settings: LayerCollapseSettings(lambda: 0), units: []),
        optimizer: ParityModels.optimizer())
      try bundle.write(to: dir + "/\(name).bundle.h5")
      let check = try Parity.run(Parity.python, [Self.loader, out, "--check", dir + "/\(name).bundle.h5"])
      #expect(check.code == 0, "\(kind) \(name): \(check.output)")
    }
  }

  /// The loader's check can fail: logits that are not the model's are a mismatch.
  @Test func loaderCheckFailsOnWrongLogits() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let model = ParityModels.model(Architecture(config: ParityModels.config(.vit, activation: .gelu)), seed: 3)
    try ModelExport.write(model, vocabulary: nil, to: dir + "/export")
    let (input, targets) = ParityModels.batch(model.config, seed: 4)
    let bundle = ParityBundle.make(
      model: model, input: input, targets: targets,
      regularizer: Regularizer(settings: LayerCollapseSettings(lambda: 0), units: []),
      optimizer: ParityModels.optimizer())
    bundle.logits[0] += 0.5
    try bundle.write(to: dir + "/b.h5")
    let check = try Parity.run(Parity.python, [Self.loader, dir + "/export", "--check", dir + "/b.h5"])
    #expect(check.code == 1 && check.stdout.contains("MISMATCH"), "\(check.output)")
  }

  /// Raw pixels through the export's recorded preprocessing (`image_input`: the stored
  /// mean/std, then the resize 32 → 12) and the rebuilt model give what our data pipeline
  /// and model give: images within 1e-5 (float32, the resize sums in another order), logits
  /// within the parity tolerance.
  static let pixelsCheck = """
    import json, sys
    import numpy as np, torch
    sys.path.insert(0, sys.argv[1])
    from load_exported import image_input, load, read_preprocessing
    from torch_reference import read_bundle
    directory, bundle = sys.argv[2], read_bundle(sys.argv[3])
    pixels = np.array(json.load(open(sys.argv[4])), dtype=np.uint8).reshape(2, 3, 32, 32)
    prep = read_preprocessing(directory)
    x = image_input(pixels, prep)
    ours = torch.from_numpy(bundle.images.astype(np.float32))
    with torch.no_grad():
        logits = load(directory)(None, None, x).numpy()
    expected = bundle.logits.reshape(logits.shape)
    print(json.dumps({"image": float((x - ours).abs().max()), "shape": list(x.shape), "mean": prep["mean"],
        "logits": float(np.abs(logits - expected).max() / np.abs(expected).max())}))
    """

  @Test func exportRecordsImageNormalizationAndTheLoaderAppliesIt() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let model = ParityModels.model(Architecture(config: ParityModels.config(.vit, activation: .gelu)), seed: 5)
    let stats = ChannelStats(mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26])
    try Checkpoint(model: model, configText: ParityModels.configText, vocabulary: .imageNormalization(stats))
      .save(to: dir + "/m.h5")
    let r = try CLI.run(["export", dir + "/m.h5", "-o", dir + "/export"])
    #expect(r.code == 0, "\(r.stderr)")
    var rng = RNG(seed: 6, stream: "pixels")
    let pixels: [UInt8] = (0..<(2 * ImageSplit.pixelsPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let split = ImageSplit(labels: [0, 1], pixels: pixels, numClasses: 10)
    let data = ImageData(
      format: .cifar10, classNames: [], train: split, eval: split, normalization: stats, augment: false,
      side: model.config.imageSize)
    let batch = data.evalBatch([0, 1])
    let bundle = ParityBundle.make(
      model: model, input: .images(batch.images), targets: batch.labels,
      regularizer: Regularizer(settings: LayerCollapseSettings(lambda: 0), units: []),
      optimizer: ParityModels.optimizer())
    try bundle.write(to: dir + "/b.h5")
    try Data(try JSONSerialization.data(withJSONObject: pixels.map { Int($0) })).write(
      to: URL(fileURLWithPath: dir + "/pixels.json"))
    let scripts = Paths.parent(Self.loader)
    let run = try Parity.run(
      Parity.python, ["-c", Self.pixelsCheck, scripts, dir + "/export", dir + "/b.h5", dir + "/pixels.json"])
    #expect(run.code == 0, "\(run.output)")
    let result = try #require(
      try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.output)")
    #expect(result["shape"] as? [Int] == [2, 3, 12, 12])
    #expect(result["mean"] as? [Double] == [0.49, 0.48, 0.45])
    #expect((result["image"] as? Double ?? 1) < 1e-5, "\(result)")
    #expect((result["logits"] as? Double ?? 1) < 1e-4, "\(result)")
  }

  /// A "words" classifier's export: `text_input` in scripts/load_exported.py gives the ids
  /// and padding mask our encoder gives, on sentences chosen to catch each rule (case,
  /// apostrophes and hyphens inside and outside words, punctuation runs, accents and
  /// combining marks, CJK, emoji, tabs, control and format characters, sentences cut at
  /// max_len) and on every SST-2 dev sentence when the data is there; unknown words map to
  /// [UNK] alike. Exact equality: both sides are integer lookups.
  @Test func exportedWordTokenizerEncodesAsOurs() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    var sentences = [
      "It's a well-made, heart-warming film -- don't miss it!", "'tis the SEASON's end... rock 'n' roll",
      "Caf\u{00E9} na\u{0131}ve co\u{0301}te \u{00C9}T\u{00C9} \u{0130}stanbul \u{03A3}\u{039F}\u{03A6}\u{039F}\u{03A3}",
      "\u{6F22}\u{5B57}\u{304B}\u{306A} mixed\u{3000}spaces\ttabs\nnewline", "emoji \u{1F600}\u{1F44D}\u{1F3FD} end",
      "zero\u{200B}width\u{200D}joiner \u{0007}bell \u{00AD}soft", "  leading and trailing  ", "",
      "- dash 'quote' 3-4 9'5 x-", "cafe\u{0301} caf\u{00E9} na\u{0308}ive",
      "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        + "fifteen sixteen seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four",
    ]
    if RealData.sst2 { sentences += try LabeledSentences.read(tsv: RealData.path("sst2/dev.tsv")).sentences }
    // Trained on half, so the other half has words the vocabulary lacks.
    let tokenizer = Tokenizer(
      training: Array(sentences.prefix(sentences.count / 2)), minFrequency: 1, vocabularySize: 100_000)
    var config = Fixtures.config(.encoder)
    config.maxLen = 24
    let model = ModelRegistry.build(Architecture(config: config), seed: 1)
    try ModelExport.write(model, vocabulary: .words(tokenizer), to: dir + "/export")
    var expected: [[String: Any]] = []
    for s in sentences {
      let (ids, mask) = tokenizer.encodePadded(s, maxLength: 24)
      expected.append(["text": s, "ids": ids.map { Int($0) }, "valid": mask])
    }
    try Data(try JSONSerialization.data(withJSONObject: expected)).write(
      to: URL(fileURLWithPath: dir + "/expected.json"))
    let run = try Parity.run(
      Parity.python, ["-c", Self.wordsCheck, Paths.parent(Self.loader), dir + "/export", dir + "/expected.json"])
    #expect(run.code == 0, "\(run.output)")
    let result = try #require(
      try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.output)")
    #expect(result["sentences"] as? Int == sentences.count)
    #expect(result["mismatches"] as? [String] == [], "\(result)")
    #expect((result["unknown"] as? Int ?? 0) > 0, "the check covers [UNK]: \(result)")
  }

  static let wordsCheck = """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from load_exported import read_preprocessing, text_input
    expected = json.load(open(sys.argv[3], encoding="utf-8"))
    ids, valid = text_input([e["text"] for e in expected], read_preprocessing(sys.argv[2]))
    bad = [e["text"] for i, e in enumerate(expected) if ids[i].tolist() != e["ids"] or valid[i].tolist() != e["valid"]]
    print(json.dumps({"sentences": len(expected), "mismatches": bad[:5], "unknown": int((ids == 1).sum())}))
    """

  /// Without a stored normalization (older checkpoints) the export says so, and the
  /// loader's `image_input` refuses rather than guess.
  @Test func exportWithoutNormalizationSaysSo() throws {
    let dir = NSTemporaryDirectory() + "lc-export-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let model = ParityModels.model(Architecture(config: ParityModels.config(.vit, activation: .gelu)), seed: 5)
    try ModelExport.write(model, vocabulary: nil, to: dir)
    let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")))
    let steps = try #require((config as? [String: Any])?["preprocessing"] as? [String: Any])
    #expect(steps["input"] as? String == "images" && steps["image_size"] as? Int == 12)
    #expect(steps["mean"] == nil && (steps["normalization"] as? String ?? "").contains("not stored"))
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let refuse = """
      import sys, numpy as np
      sys.path.insert(0, sys.argv[1])
      from load_exported import image_input, read_preprocessing
      from torch_reference import InputError
      for pixels in (np.zeros((1, 3, 32, 32), np.uint8), np.zeros((1, 3, 32, 32), np.float32)):
          try:
              image_input(pixels, read_preprocessing(sys.argv[2]))
          except InputError as e:
              print("refused:", e)
      """
    let scripts = Paths.parent(Self.loader)
    let refused = try Parity.run(Parity.python, ["-c", refuse, scripts, dir])
    #expect(
      refused.code == 0 && refused.stdout.contains("refused: the export has no image normalization"),
      "\(refused.output)")
    // A word-level classifier's vocabulary goes with it, in id order.
    let encoder = ParityModels.model(Architecture(config: ParityModels.config(.encoder, activation: .gelu)), seed: 5)
    let words = try Tokenizer(tokens: Tokenizer.reservedTokens + ["good", "bad"])
    try ModelExport.write(encoder, vocabulary: .words(words), to: dir + "/words")
    let wordConfig = try JSONSerialization.jsonObject(
      with: Data(contentsOf: URL(fileURLWithPath: dir + "/words/config.json")))
    let wordSteps = try #require((wordConfig as? [String: Any])?["preprocessing"] as? [String: Any])
    #expect(wordSteps["tokenizer"] as? String == "words" && wordSteps["max_len"] as? Int == 6)
    #expect(wordSteps["tokens"] as? [String] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad"])
  }

  /// An export over an earlier one removes the tokenizer files the new model has not
  /// (a BERT's vocab.txt beside a GPT-2's vocab.json) and leaves every other file.
  @Test func staleTokenizerFilesAreRemoved() throws {
    let dir = NSTemporaryDirectory() + "lc-stale-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for name in ["vocab.txt", "tokenizer_config.json", "merges.txt", "notes.txt"] {
      try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/" + name))
    }
    let removed = try ModelExport.removeStaleTokenizerFiles(
      in: dir, written: [dir + "/model.safetensors", dir + "/vocab.json", dir + "/merges.txt"])
    #expect(removed == [dir + "/vocab.txt", dir + "/tokenizer_config.json"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["merges.txt", "notes.txt"])
  }

  /// A directory holding a model no export wrote (a Hugging Face download given as -o) is
  /// refused and left as it was; --overwrite replaces it. An earlier export's directory, of
  /// either format, is replaced without it.
  @Test func exportRefusesADirectoryItDidNotWrite() throws {
    let dir = NSTemporaryDirectory() + "lc-export-dest-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir + "/hf", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let model = ModelRegistry.build(Architecture(config: Fixtures.config(.bert)), seed: 1)
    let words = try WordPieceTokenizer(
      vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad"], lowercase: true)
    try Checkpoint(model: model, configText: "", vocabulary: .wordPiece(words)).save(to: dir + "/m.h5")
    let gpt = ModelRegistry.build(Architecture(config: Fixtures.config(.gpt)), seed: 1)
    try Checkpoint(model: gpt, configText: "", vocabulary: nil).save(to: dir + "/g.h5")
    let theirs: [String: String] = [
      "config.json": #"{"model_type": "bert"}"#, "vocab.txt": "[PAD]\n", "tokenizer_config.json": "{}",
      "README.md": "x", "tokenizer.json": "{}", "generation_config.json": "{}",
    ]
    for (name, text) in theirs { try text.write(toFile: dir + "/hf/" + name, atomically: true, encoding: .utf8) }
    for format in ["layercollapse", "hf"] {
      let r = try CLI.run(["export", dir + "/g.h5", "-o", dir + "/hf", "--format", format])
      #expect(r.code == 73 && r.stderr.contains("refusing to replace files an export did not write"), "\(r.stderr)")
      #expect(r.stderr.contains("config.json, vocab.txt, tokenizer_config.json") && r.stderr.contains("--overwrite"))
    }
    for (name, text) in theirs {
      #expect(try String(contentsOfFile: dir + "/hf/" + name, encoding: .utf8) == text, "\(name)")
    }
    // --overwrite into a copy: the downloaded tokenizer files go, called what they are.
    try FileManager.default.copyItem(atPath: dir + "/hf", toPath: dir + "/hf2")
    let over = try CLI.run(["export", dir + "/g.h5", "-o", dir + "/hf2", "--overwrite"])
    #expect(
      over.code == 0
        && over.stdout.contains("removed \(dir)/hf2/vocab.txt (another model's file: this model has none)")
        && !over.stdout.contains("earlier export"), "\(over.stdout) \(over.stderr)")
    // It says how to load it, with the loader of the checkout this binary was built in.
    #expect(
      over.stdout.contains("as a torch.nn.Module: python \(Parity.root.path)/scripts/load_exported.py \(dir)/hf2"),
      "\(over.stdout)")
    // Files transformers reads beside a model, which no export writes, go too: AutoTokenizer
    // would read the replaced model's tokenizer.json first.
    for name in ["tokenizer.json", "generation_config.json"] {
      #expect(over.stdout.contains("removed \(dir)/hf2/\(name)"), "\(over.stdout)")
      #expect(!FileManager.default.fileExists(atPath: dir + "/hf2/" + name))
    }
    #expect(FileManager.default.fileExists(atPath: dir + "/hf2/README.md"))
    // Beside an earlier export (no --overwrite), such a file is the user's: it stays.
    try "{}".write(toFile: dir + "/hf2/generation_config.json", atomically: true, encoding: .utf8)
    let again = try CLI.run(["export", dir + "/g.h5", "-o", dir + "/hf2"])
    #expect(again.code == 0 && FileManager.default.fileExists(atPath: dir + "/hf2/generation_config.json"), "\(again)")
    let replaced = try CLI.run(["export", dir + "/m.h5", "-o", dir + "/hf", "--format", "hf", "--overwrite"])
    #expect(replaced.code == 0, "\(replaced.stderr)")
    // Now an export's (hf, then our own format): replaced each time without --overwrite.
    for format in ["layercollapse", "hf", "layercollapse"] {
      let again = try CLI.run(["export", dir + "/m.h5", "-o", dir + "/hf", "--format", format])
      #expect(again.code == 0, "\(format): \(again.stderr)")
    }
    #expect(try String(contentsOfFile: dir + "/hf/README.md", encoding: .utf8) == "x")
    // A model saved by transformers from a loaded export keeps config.json's exported_by but
    // writes its own safetensors header: no longer an export's, so refused again.
    try SafeTensorsFile.write(
      [("x", Tensor([1], [1]))], metadata: ["format": "pt"], to: dir + "/hf/model.safetensors")
    let resaved = try CLI.run(["export", dir + "/m.h5", "-o", dir + "/hf", "--format", "hf"])
    #expect(resaved.code == 73 && resaved.stderr.contains("model.safetensors"), "\(resaved.stderr)")
  }

  @Test func exportErrors() throws {
    let noOutput = try CLI.run(["export", "/nonexistent.h5"])
    #expect(noOutput.code == 64 && noOutput.stderr.contains("-o DIR"))
    let missing = try CLI.run(["export", "/nonexistent.h5", "-o", NSTemporaryDirectory() + "x"])
    #expect(missing.code == 66, "\(missing.stderr)")
  }
}

/// `export --format hf`: models that `transformers` built, imported, changed (every
/// parameter redrawn, as a fine-tune would), exported in Hugging Face's layout, and
/// loaded back by `from_pretrained` with no missing or unexpected tensor: its logits
/// equal ours within 1e-4 relative (float32 both sides, sums in other orders). BERT's
/// tokenizer files load with `AutoTokenizer`. A collapsed model is refused (64).
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct HuggingFaceExportTests {
  static let build = """
    import sys, torch
    from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel,
                              ViTConfig, ViTForImageClassification)
    out = sys.argv[1]
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=23, hidden_size=12, num_hidden_layers=2,
        num_attention_heads=3, intermediate_size=20, max_position_embeddings=16, num_labels=3)
    ).save_pretrained(out + "/bert", safe_serialization=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["w%d" % i for i in range(18)]
    open(out + "/bert/vocab.txt", "w").write("\\n".join(vocab) + "\\n")
    GPT2LMHeadModel(GPT2Config(vocab_size=29, n_positions=12, n_embd=12, n_layer=2, n_head=3, n_inner=20)
    ).save_pretrained(out + "/gpt2", safe_serialization=True)
    ViTForImageClassification(ViTConfig(image_size=12, patch_size=4, hidden_size=12, num_hidden_layers=2,
        num_attention_heads=3, intermediate_size=20, num_labels=4)
    ).save_pretrained(out + "/vit", safe_serialization=True)
    """

  static let check = """
    import json, sys, torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, GPT2LMHeadModel, ViTForImageClassification
    from transformers.image_processing_utils import ImageProcessingMixin
    directory, kind = sys.argv[1], sys.argv[2]
    e = json.load(open(directory + "/ours.json"))
    cls = {"bert": AutoModelForSequenceClassification, "gpt": GPT2LMHeadModel, "vit": ViTForImageClassification}[kind]
    model, info = cls.from_pretrained(directory, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    assert not problems, problems
    model.eval()
    with torch.no_grad():
        if kind == "vit":
            logits = model(pixel_values=torch.tensor(e["images"]).reshape(e["shape"])).logits
        else:
            ids = torch.tensor(e["ids"]).reshape(e["batch"], e["time"])
            mask = torch.tensor(e["mask"]).reshape(e["batch"], e["time"]) if e["mask"] else None
            logits = model(input_ids=ids, attention_mask=mask).logits
    if kind == "bert":
        tokenizer = AutoTokenizer.from_pretrained(directory)
        assert tokenizer.vocab_size == 23 and tokenizer.model_max_length == 16, tokenizer
    if kind == "vit":
        # The import's preprocessing (no preprocessor_config.json there: 0.5, 0.5), as
        # from_pretrained reads it (its dict: the processor itself needs PIL, not installed).
        p, _ = ImageProcessingMixin.get_image_processor_dict(directory)
        assert p["image_processor_type"] == "ViTImageProcessor" and p["size"] == {"height": 12, "width": 12}, p
        assert p["image_mean"] == [0.5] * 3 and p["image_std"] == [0.5] * 3 and p["resample"] == 2, p
        assert p["do_rescale"] and abs(p["rescale_factor"] - 1 / 255) < 1e-12 and p["do_normalize"], p
    ours = torch.tensor(e["logits"])
    d = ((logits.reshape(-1) - ours).norm() / ours.norm()).item()
    print(json.dumps({"relative_difference": d}))
    """

  @Test(arguments: ["bert", "gpt2", "vit"])
  func exportedModelLoadsInTransformers(family: String) throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let made = try Parity.run(Parity.python, ["-c", Self.build, dir])
    try #require(made.code == 0, "\(made.output)")
    let imported = try CLI.run(["import", dir + "/" + family, "-o", dir + "/in.h5"])
    try #require(imported.code == 0, "\(imported.stderr)")
    let original = try Checkpoint.load(dir + "/in.h5")
    var rng = RNG(seed: 3, stream: "export \(family)")
    Fixtures.randomizeParameters(original.model, rng: &rng, alpha: 0)
    try Checkpoint(model: original.model, configText: original.configText, vocabulary: original.vocabulary)
      .save(to: dir + "/changed.h5")
    let exported = try CLI.run(["export", dir + "/changed.h5", "-o", dir + "/hf", "--format", "hf"])
    try #require(exported.code == 0, "\(exported.stderr)")

    let model = try Checkpoint.load(dir + "/changed.h5").model
    let (input, _) = Fixtures.batch(model.config, batch: 3, rng: &rng)
    var record: [String: Any] = ["logits": model.forward(input).array.map { Double($0) }]
    switch input {
    case .images(let images):
      record["images"] = images.array.map { Double($0) }
      record["shape"] = images.shape
    case .tokens(let ids, let valid, let batch, let time):
      record["ids"] = ids.map { Int($0) }
      record["mask"] = valid.map { $0.map { $0 ? 1 : 0 } } ?? []
      (record["batch"], record["time"]) = (batch, time)
    }
    try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: dir + "/hf/ours.json"))
    let kind = model.config.kind.rawValue
    let checked = try Parity.run(Parity.python, ["-c", Self.check, dir + "/hf", kind])
    try #require(checked.code == 0, "transformers could not load the export: \(checked.output)")
    let result = try JSONSerialization.jsonObject(with: Data((checked.stdout.split(separator: "\n").last ?? "").utf8))
    let d = (result as? [String: Any])?["relative_difference"] as? Double ?? .nan
    #expect(d < 1e-4, "\(family): transformers' logits differ from ours by \(d)")
    // Float settings as written (1e-12), not widened from binary (9.999999960041972e-13).
    let json = try String(contentsOfFile: dir + "/hf/config.json", encoding: .utf8)
    #expect(!json.contains("0000000") && !json.contains("9999999"), "\(json)")
    // A GPT-2 without <|endoftext|> in its vocabulary (29 tokens, none here) gets no bos/eos
    // id, not GPT2Config's default 50,256 past its vocabulary.
    if family == "gpt2" {
      let values = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
      #expect(values?["bos_token_id"] is NSNull && values?["eos_token_id"] is NSNull, "\(json)")
    }
  }

  @Test func collapsedOrPReLUModelsAreRefused() throws {
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    var arch = Architecture(config: Fixtures.config(.bert))
    arch.activations[1] = .prelu
    let model = ModelRegistry.build(arch, seed: 1)
    try Checkpoint(model: model, configText: "", vocabulary: nil).save(to: dir + "/lc.h5")
    let r = try CLI.run(["export", dir + "/lc.h5", "-o", dir + "/hf", "--format", "hf"])
    #expect(r.code == 64 && r.stderr.contains("blocks.1.mlp is a PReLU"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/hf/model.safetensors"))
    // A family with no Hugging Face layout is said to be so first, not blamed on its PReLU.
    var encoderArch = Architecture(config: Fixtures.config(.encoder))
    encoderArch.activations[1] = .prelu
    try Checkpoint(model: ModelRegistry.build(encoderArch, seed: 1), configText: "", vocabulary: nil)
      .save(to: dir + "/enc.h5")
    let encoder = try CLI.run(["export", dir + "/enc.h5", "-o", dir + "/hf", "--format", "hf"])
    #expect(
      encoder.code == 64 && encoder.stderr.contains("an encoder model has no Hugging Face layout")
        && !encoder.stderr.contains("PReLU"), "\(encoder.stderr)")
    let unknown = try CLI.run(["export", dir + "/lc.h5", "-o", dir + "/x", "--format", "onnx"])
    #expect(unknown.code == 64 && unknown.stderr.contains("--format"), "\(unknown.stderr)")
  }
}
