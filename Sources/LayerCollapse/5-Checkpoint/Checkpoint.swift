import Foundation
import Kernels

/// The vocabulary a model was trained with, saved beside it.
public enum Vocabulary: Sendable, Equatable {
  /// Word-level tokenizer of a text classifier.
  case words(Tokenizer)
  /// Character- or byte-level vocabulary of a language model.
  case corpus(CorpusVocabulary)
  /// An imported BERT's WordPiece vocabulary (vocab.txt) and casing.
  case wordPiece(WordPieceTokenizer)
  /// An image model's per-channel normalization: what its training images were scaled
  /// with, so evaluation uses the same whatever part of the data it reads.
  case imageNormalization(ChannelStats)

  /// The token ids it gives (nil for images): at most the embedding table's rows.
  public var tokenCount: Int? {
    switch self {
    case .words(let t): t.count
    case .wordPiece(let w): w.count
    case .corpus(let v): v.count
    case .imageNormalization: nil
    }
  }
}

/// Where a run stands, saved so that `--resume` continues exactly.
public struct TrainingProgress: Sendable, Equatable, Codable {
  /// Optimizer steps taken.
  public var globalStep: Int
  /// The epoch the next step belongs to (0-based): batches are a function of (seed,
  /// epoch, index in the epoch), so this and `globalStep` place a resumed run exactly.
  public var epoch: Int
  /// Best evaluation score so far (accuracy, or −perplexity) and the step it was seen at.
  public var bestScore: Double?
  public var bestStep: Int?
  /// Wall time spent training, summed over resumed segments.
  public var elapsedSeconds: Double

  public init(
    globalStep: Int = 0, epoch: Int = 0, bestScore: Double? = nil, bestStep: Int? = nil, elapsedSeconds: Double = 0
  ) {
    self.globalStep = globalStep
    self.epoch = epoch
    self.bestScore = bestScore
    self.bestStep = bestStep
    self.elapsedSeconds = elapsedSeconds
  }

  enum CodingKeys: String, CodingKey { case globalStep, epoch, bestScore, bestStep, elapsedSeconds }

  /// `epoch` was added within format version 1; files without it read as epoch 0.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    globalStep = try c.decode(Int.self, forKey: .globalStep)
    epoch = try c.decodeIfPresent(Int.self, forKey: .epoch) ?? 0
    bestScore = try c.decodeIfPresent(Double.self, forKey: .bestScore)
    bestStep = try c.decodeIfPresent(Int.self, forKey: .bestStep)
    elapsedSeconds = try c.decode(Double.self, forKey: .elapsedSeconds)
  }
}

/// A model with everything needed to use it, evaluate it, or continue training it.
///
/// HDF5 layout (version 2), readable by any HDF5 tool:
/// ```
/// /                    attributes format = "layercollapse-checkpoint", version = 2
/// /meta/config         string: the resolved config (the YAML subset) the model was trained with
/// /meta/architecture   string: JSON {config: {...}, activations: [...], collapsed: [...],
///                      approximate: [...]} (approximate absent in older files: none)
/// /meta/vocabulary     string: JSON {"kind": "words", "tokens": [...]},
///                      {"kind": "character"|"byte", "characters": [...]},
///                      {"kind": "wordpiece", "tokens": [...], "lowercase": ..., "strip_accents": ...}
///                      or {"kind": "bpe", "tokens": [...], "merges": ["a b", ...]} (absent for images)
/// /params/<name>       float32, one dataset per parameter, "." in the name -> "/"
///                      (blocks.3.mlp.fc1.weight -> /params/blocks/3/mlp/fc1/weight), (out, in)
/// /optimizer/step      int64 [1]: AdamW steps taken        (training checkpoints only)
/// /optimizer/m/<name>, /optimizer/v/<name>   float32 AdamW moments
/// /state/progress      string: JSON {global_step, epoch, best_score, best_step, elapsed_seconds}
/// /state/rng/dropout   uint64 [1]: the dropout stream's SplitMix64 state
/// ```
public final class Checkpoint {
  public static let format = "layercollapse-checkpoint"
  /// 2: the architecture's config may name the mixer family and its `token_mlp_hidden`;
  /// `activations` and `collapsed` hold one entry per LayerCollapse unit. Version 1 files
  /// (transformers only, one unit per block) read as they are.
  public static let version: Int64 = 2

  public let model: any Model
  public let configText: String
  public let vocabulary: Vocabulary?
  public let optimizer: OptimizerState?
  public let progress: TrainingProgress?
  public let dropoutRNG: RNG?

  public init(
    model: any Model, configText: String, vocabulary: Vocabulary?, optimizer: OptimizerState? = nil,
    progress: TrainingProgress? = nil, dropoutRNG: RNG? = nil
  ) {
    self.model = model
    self.configText = configText
    self.vocabulary = vocabulary
    self.optimizer = optimizer
    self.progress = progress
    self.dropoutRNG = dropoutRNG
  }

  /// Dataset path of a parameter name.
  public static func datasetPath(_ name: String, under group: String = "/params") -> String {
    group + "/" + name.replacingOccurrences(of: ".", with: "/")
  }

  // MARK: save

  /// Writes the checkpoint atomically: a crash never leaves a partial file at `path`.
  public func save(to path: String) throws {
    let arch = try JSONFile.encode(model.architecture)
    try HDF5File.writeAtomically(to: path) { f in
      try f.setAttribute("format", string: Self.format)
      try f.setAttribute("version", int64: Self.version)
      try f.writeString(configText, at: "/meta/config")
      try f.writeString(arch, at: "/meta/architecture")
      if let v = vocabulary { try f.writeString(try JSONFile.encode(VocabularyRecord(v)), at: "/meta/vocabulary") }
      for p in model.parameters.all { try f.writeTensor(p.value, at: Self.datasetPath(p.name)) }
      if let o = optimizer {
        try f.writeInt64s([Int64(o.step)], at: "/optimizer/step")
        for p in model.parameters.all {
          try f.writeTensor(o.m[p.name]!, at: Self.datasetPath(p.name, under: "/optimizer/m"))
          try f.writeTensor(o.v[p.name]!, at: Self.datasetPath(p.name, under: "/optimizer/v"))
        }
      }
      if let p = progress { try f.writeString(try JSONFile.encode(p), at: "/state/progress") }
      if let r = dropoutRNG { try f.writeUInt64s([r.state], at: "/state/rng/dropout") }
    }
  }

  /// For a Hugging Face model directory, or a weights file in one, given where a checkpoint
  /// goes: how to import it first. nil for anything else.
  static func importHint(_ path: String) -> String? {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
    let parent = Paths.parent(path)
    let source = isDirectory.boolValue ? path : parent.isEmpty ? "." : parent
    let weights = path.hasSuffix(".safetensors") || path.hasSuffix(".bin") || path.hasSuffix(".safetensors.index.json")
    guard isDirectory.boolValue || weights, FileManager.default.fileExists(atPath: source + "/config.json") else {
      return nil
    }
    if ModelExport.configObject(source)?["format"] as? String == ModelExport.format {
      return "This is an export (`layercollapse export`, for PyTorch: scripts/load_exported.py); commands read the "
        + ".h5 checkpoint it was exported from"
    }
    return "This is a Hugging Face model\(isDirectory.boolValue ? " directory" : "'s weights"): import it first, "
      + "`layercollapse import \(source) -o model.h5`, then use model.h5 (README: Pretrained models)"
  }

  /// What a path already holds, for a command about to write a checkpoint there.
  public enum Occupant: Equatable, Sendable {
    case nothing
    /// A layercollapse checkpoint; `resumable` when it carries a run's training state.
    case checkpoint(resumable: Bool)
    case directory
    /// Any other file (not HDF5, or HDF5 that is not one of our checkpoints).
    case otherFile
  }

  /// Reads only the file's format attribute and whether it holds optimizer state.
  public static func occupant(of path: String) -> Occupant {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .nothing }
    if isDirectory.boolValue { return .directory }
    // A pipe would block the open until a writer came; a device is no checkpoint.
    if Paths.notAFile(path) != nil { return .otherFile }
    guard let f = try? HDF5File(reading: path) else { return .otherFile }
    defer { try? f.close() }
    guard formatAttribute(f).value == Self.format else { return .otherFile }
    return .checkpoint(resumable: f.exists("/optimizer/step"))
  }

  /// The file's `format` attribute (what tells our checkpoints from other HDF5 files), and
  /// it or what stands in its place, in words for a message.
  private static func formatAttribute(_ f: HDF5File) -> (value: String?, described: String) {
    guard f.hasAttribute("format") else { return (nil, "no format attribute") }
    do {
      let value = try f.stringAttribute("format")
      return (value, "\"\(value)\"")
    } catch let error as LCError {
      return (nil, "a format attribute that is not one string (\(error.details.first?.what ?? "\(error)"))")
    } catch {
      return (nil, "a format attribute that cannot be read (\(error))")
    }
  }

  // MARK: load

  /// The architecture `path` stores, without its parameters (what a report needs of a run
  /// that wrote no evaluation), checked as `load` checks it.
  public static func architecture(_ path: String) throws -> Architecture {
    let f = try open(path)
    defer { try? f.close() }
    return try architecture(in: f, path: path)
  }

  /// `path` opened for reading; not an HDF5 file, or missing, with the import hint where
  /// the file is a Hugging Face model's.
  private static func open(_ path: String) throws -> HDF5File {
    do {
      return try HDF5File(reading: path)
    } catch LCError.badData(let d) {
      throw LCError.badData(
        ErrorDetail(
          what: "not a valid checkpoint: \(d.what)", location: path, expected: d.expected,
          hint: importHint(path)
            ?? "Checkpoints are the .h5 files that `layercollapse train` writes; this one may be cut short or damaged"))
    } catch LCError.missingInput(var d) {
      if let h = importHint(path) { d.hint = h }
      throw LCError.missingInput(d)
    }
  }

  /// The format, version and architecture attributes of an open checkpoint, checked.
  private static func architecture(in f: HDF5File, path: String) throws -> Architecture {
    let format = formatAttribute(f)
    guard format.value == Self.format else {
      throw LCError.badData(
        ErrorDetail(
          what: "not a layercollapse checkpoint", location: path, expected: "attribute format = \"\(Self.format)\"",
          got: format.described,
          hint: "Checkpoints are the .h5 files that `layercollapse train` writes"))
    }
    let version = try f.int64Attribute("version")
    guard version <= Self.version else {
      throw LCError.badData(
        ErrorDetail(
          what: "checkpoint written by a newer layercollapse", location: path,
          expected: "format version ≤ \(Self.version)", got: "version \(version)", hint: "Upgrade layercollapse"))
    }
    let arch = try JSONFile.decode(
      Architecture.self, try f.readString(at: "/meta/architecture"), location: "\(path):/meta/architecture")
    let problems = storedProblems(arch)
    guard problems.isEmpty else {
      throw LCError.badData(
        ErrorDetail(
          what: "the stored architecture is inconsistent", location: "\(path):/meta/architecture",
          expected: "sizes the model can be built and run with, one activation and collapse flag per unit",
          got: problems.joined(separator: "; "), hint: "The file was modified or written by an incompatible tool"))
    }
    return arch
  }

  /// Reads and checks a checkpoint: format, version, architecture, and every parameter's
  /// presence and shape; a mismatch names the parameter and both shapes.
  public static func load(_ path: String) throws -> Checkpoint {
    let f = try open(path)
    defer { try? f.close() }
    let arch = try architecture(in: f, path: path)
    let cfg = arch.config
    try checkParametersFit(arch, location: path)
    let model = ModelRegistry.build(arch)
    let stored = Set(try f.datasetPaths(under: "/params"))
    let expected = Set(model.parameters.all.map { datasetPath($0.name) })
    let missing = expected.subtracting(stored).sorted()
    let extra = stored.subtracting(expected).sorted()
    if !missing.isEmpty || !extra.isEmpty {
      throw LCError.badData(
        ErrorDetail(
          what: "parameters do not match the architecture stored in the checkpoint", location: path,
          expected: missing.isEmpty ? "" : "also " + missing.joined(separator: ", "),
          got: extra.isEmpty ? "" : "unexpected " + extra.joined(separator: ", "),
          hint: "The file was modified or written by an incompatible tool"))
    }
    for p in model.parameters.all {
      let stored = try f.shape(of: datasetPath(p.name))
      guard stored == p.shape else {
        throw LCError.badData(
          ErrorDetail(
            what: "parameter \(p.name) has the wrong shape", location: "\(path):\(datasetPath(p.name))",
            expected: "\(p.shape) (from the stored architecture)", got: "\(stored)",
            hint: "The file was modified or written by an incompatible tool"))
      }
      try f.read(into: p.value, from: datasetPath(p.name))
    }
    if let (p, i) = model.parameters.firstNonFinite() {
      throw LCError.badData(
        ErrorDetail(
          what: "parameter \(p.name) holds a non-finite value", location: "\(path):\(datasetPath(p.name))",
          expected: "finite weights", got: "\(p.value[i]) at element \(i)",
          hint: "The run that wrote it diverged, or the file was modified; use an earlier checkpoint"))
    }

    var optimizer: OptimizerState? = nil
    if f.exists("/optimizer/step") {
      let o = OptimizerState(model.parameters)
      guard let step = try f.readInt64s(at: "/optimizer/step", limit: 1).first else {
        throw LCError.badData(
          ErrorDetail(
            what: "the optimizer's step count is empty", location: "\(path):/optimizer/step",
            expected: "one integer", hint: "The file was modified or written by an incompatible tool"))
      }
      // A step count past 2^40 (a trillion steps) is no run's: its bias correction would
      // underflow, and a negative one has none.
      guard step >= 0 && step <= 1 << 40 else {
        throw LCError.badData(
          ErrorDetail(
            what: "the optimizer's step count is out of range", location: "\(path):/optimizer/step",
            expected: "0…2^40", got: "\(step)", hint: "The file was modified or written by an incompatible tool"))
      }
      o.step = Int(step)
      for p in model.parameters.all {
        try f.read(into: o.m[p.name]!, from: datasetPath(p.name, under: "/optimizer/m"))
        try f.read(into: o.v[p.name]!, from: datasetPath(p.name, under: "/optimizer/v"))
      }
      optimizer = o
    }
    var vocabulary: Vocabulary? = nil
    if f.exists("/meta/vocabulary") {
      let record = try JSONFile.decode(
        VocabularyRecord.self, try f.readString(at: "/meta/vocabulary"), location: "\(path):/meta/vocabulary")
      vocabulary = try record.vocabulary(location: path + ":/meta/vocabulary")
      if let n = vocabulary?.tokenCount, n > cfg.vocabSize {
        throw LCError.badData(
          ErrorDetail(
            what: "the stored vocabulary gives more token ids than the model's embedding has rows",
            location: "\(path):/meta/vocabulary", expected: "at most \(cfg.vocabSize) tokens", got: "\(n)",
            hint: "The file was modified or written by an incompatible tool"))
      }
    }
    let progress: TrainingProgress? =
      f.exists("/state/progress")
      ? try JSONFile.decode(
        TrainingProgress.self, try f.readString(at: "/state/progress"), location: "\(path):/state/progress") : nil
    var rng: RNG? = nil
    if f.exists("/state/rng/dropout") {
      guard let state = try f.readUInt64s(at: "/state/rng/dropout", limit: 1).first else {
        throw LCError.badData(
          ErrorDetail(
            what: "the dropout stream's state is empty", location: "\(path):/state/rng/dropout",
            expected: "one 64-bit state", hint: "The file was modified or written by an incompatible tool"))
      }
      rng = RNG(state: state)
    }
    return Checkpoint(
      model: model, configText: try f.readString(at: "/meta/config"), vocabulary: vocabulary, optimizer: optimizer,
      progress: progress, dropoutRNG: rng)
  }
}

/// JSON form of `Vocabulary`.
struct VocabularyRecord: Codable {
  var kind: String
  var tokens: [String]?
  var characters: [UInt32]?
  /// WordPiece: lowercasing and accent stripping.
  var lowercase: Bool?
  var stripAccents: Bool?
  /// BPE: the merges in rank order, each "a b"; `tokens` in id order ("" for a gap).
  var merges: [String]?
  /// Images: the per-channel mean and standard deviation (R, G, B).
  var mean: [Float]?
  var std: [Float]?

  init(_ v: Vocabulary) {
    switch v {
    case .words(let t): self.init(kind: "words", tokens: t.tokens, characters: nil)
    case .corpus(let c):
      if let b = c.bpe {
        var tokens = [String](repeating: "", count: b.count)
        for (token, id) in b.vocabulary { tokens[Int(id)] = token }
        self.init(kind: "bpe", tokens: tokens, characters: nil)
        merges = b.merges.map { $0.0 + " " + $0.1 }
      } else {
        self.init(kind: c.kind.rawValue, tokens: nil, characters: c.characters)
      }
    case .wordPiece(let w):
      self.init(kind: "wordpiece", tokens: w.vocabulary, characters: nil)
      (lowercase, stripAccents) = (w.lowercase, w.stripAccents)
    case .imageNormalization(let stats):
      self.init(kind: "images", tokens: nil, characters: nil)
      (mean, std) = (stats.mean, stats.std)
    }
  }

  init(kind: String, tokens: [String]?, characters: [UInt32]?) {
    self.kind = kind
    self.tokens = tokens
    self.characters = characters
  }

  /// The vocabulary; a damaged one is bad data at `location` (the file's dataset), with
  /// the tokenizer's own words on what is wrong.
  func vocabulary(location: String) throws -> Vocabulary {
    do {
      return try decoded(location: location)
    } catch LCError.badData(var d) where d.location != location {
      d.what = d.location.isEmpty ? d.what : "\(d.location): \(d.what)"
      d.location = location
      throw LCError.badData(d)
    }
  }

  private func decoded(location: String) throws -> Vocabulary {
    if kind == "words" { return .words(try Tokenizer(tokens: tokens ?? [])) }
    if kind == "images" {
      let stats = ChannelStats(mean: mean ?? [], std: std ?? [])
      do {
        try stats.validate(location: location)
      } catch LCError.badConfig(let details) where !details.isEmpty {
        // A stored normalization no config wrote: the file's fault (65), not a setting's.
        throw LCError.badData(details[0])
      }
      return .imageNormalization(stats)
    }
    if kind == "wordpiece" {
      return .wordPiece(
        try WordPieceTokenizer(
          vocabulary: tokens ?? [], lowercase: lowercase ?? true, stripAccents: stripAccents, location: location))
    }
    if kind == "bpe" {
      var vocabulary: [String: Int32] = [:]
      for (id, token) in (tokens ?? []).enumerated() where !token.isEmpty { vocabulary[token] = Int32(id) }
      var pairs: [(String, String)] = []
      for m in merges ?? [] {
        let parts = m.split(separator: " ")
        guard parts.count == 2 else {
          throw LCError.badData(ErrorDetail(what: "a BPE merge is two symbols", location: location, got: m))
        }
        pairs.append((String(parts[0]), String(parts[1])))
      }
      guard !vocabulary.isEmpty else {
        throw LCError.badData(ErrorDetail(what: "empty BPE vocabulary", location: location))
      }
      // Trailing empty tokens are ids the model has and the merges never produce (padding).
      return .corpus(
        CorpusVocabulary(bpe: try ByteLevelBPE(vocabulary: vocabulary, merges: pairs, count: tokens?.count)))
    }
    guard let k = CorpusVocabulary.Kind(rawValue: kind) else {
      throw LCError.badData(
        ErrorDetail(
          what: "unknown vocabulary kind", location: location, expected: "words, character or byte", got: kind))
    }
    return .corpus(try CorpusVocabulary(kind: k, characters: characters ?? []))
  }
}

extension Checkpoint {
  /// What a stored (or imported) architecture asks that no run could have written, each in
  /// words: sizes out of range (their products must stay inside Int, as parameter and MAC
  /// counts are) and the family's own conditions. A model is built only from one with none.
  static func storedProblems(_ arch: Architecture) -> [String] {
    let c = arch.config
    var problems: [String] = []
    func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) {
      if !range.contains(value) { problems.append("\(name) \(value) outside \(range.lowerBound)…\(range.upperBound)") }
    }
    let width = 1...(1 << 20)
    check("d_model", c.dModel, width)
    check("heads", c.heads, width)
    check("mlp_hidden", c.mlpHidden, width)
    check("layers", c.layers, 1...(1 << 12))
    check("image_size", c.imageSize, 1...(1 << 14))
    check("patch_size", c.patchSize, 1...(1 << 14))
    // Every image task is RGB (CIFAR-10): a model of other channels could read none of them.
    check("image_channels", c.imageChannels, ImageSplit.channels...ImageSplit.channels)
    check("token_mlp_hidden", c.tokenMLPHidden, 0...(1 << 20))
    check("pooled_size", c.pooledSize, 0...(1 << 10))
    for (name, value) in [
      ("max_len", c.maxLen), ("vocab_size", c.vocabSize), ("classes", c.classes),
      ("type_vocab_size", c.typeVocabSize), ("max_positions", c.maxPositions),
    ] {
      check(name, value, 0...(1 << 24))
    }
    if c.convLayers.count > 64 || c.convLayers.contains(where: { $0 > 1 << 16 }) {
      problems.append("convolution layers \(c.convLayers.prefix(8))…")
    }
    if !(c.layerNormEpsilon >= 0 && c.layerNormEpsilon.isFinite) {
      problems.append("layer_norm_eps \(c.layerNormEpsilon)")
    }
    if !(c.dropout >= 0 && c.dropout < 1) { problems.append("dropout \(c.dropout)") }
    if arch.activations.count != arch.unitCount || arch.collapsed.count != arch.unitCount {
      problems.append(
        "\(arch.activations.count) activations and \(arch.collapsed.count) collapse flags for \(arch.unitCount) units")
    } else if arch.approximate.count != arch.unitCount {
      problems.append("\(arch.approximate.count) approximate-merge flags for \(arch.unitCount) units")
    } else if let u = arch.approximate.indices.first(where: { arch.approximate[$0] && !arch.collapsed[$0] }) {
      problems.append("unit \(u) marked approximately merged but not collapsed")
    }
    guard problems.isEmpty else { return problems }
    return ModelRegistry.family(c.kind).storedProblems(c)
  }

  /// Refuses (65) a model whose parameters alone (4 bytes each, counted in Double) would
  /// not fit in this machine's memory, before they are allocated: the file is not damaged,
  /// the model is too large for here.
  static func checkParametersFit(_ arch: Architecture, location: String) throws {
    let family = ModelRegistry.family(arch.config.kind)
    var parameters = family.trainingMemory(arch.config, batchSize: 1).parameters
    // The estimate is of the uncollapsed model; a collapsed unit's one linear can be larger
    // than its chain (a Mixer's token MLP becomes patches × patches): each added in full,
    // counted in Int (storedProblems keeps one unit's inside it), summed in Double.
    for u in 0..<arch.unitCount where arch.collapsed[u] {
      parameters += Double(family.unitParameters(arch, unit: u, collapsed: true))
    }
    let bytes = 4 * parameters
    guard bytes > MemoryEstimate.available else { return }
    throw LCError.badData(
      ErrorDetail(
        what: "the model is too large for this machine's memory", location: location,
        expected: String(format: "at most %.1f GiB of parameters", MemoryEstimate.available / 1_073_741_824),
        got: String(format: "%.1f GiB (%.0f parameters)", bytes / 1_073_741_824, bytes / 4)))
  }

  /// The data `settings` names, read with the checkpoint's tokenizer (or normalization)
  /// and checked against its model before any forward pass: as many classes (a language
  /// model: vocabulary symbols), token ids within its embedding table, images of its size.
  /// A mismatch is a config problem (78) naming the data.
  public func loadData(_ settings: DataSettings) throws -> TaskData {
    let cfg = model.config
    // The forward pass takes at most max_len tokens (the position table may have more rows,
    // an import's max_positions, but the model is built for max_len): checked before the
    // data is read and tokenized.
    // (A model of tokens: one that reads no images, asked of its family as export asks.)
    if !model.family.fits(cfg.kind, task: .cifar10) && settings.maxLen > cfg.maxLen {
      throw LCError.badConfig([
        ErrorDetail(
          what: "the data's sequences are longer than the checkpoint's model reads", location: "data.max_len",
          expected: "at most \(cfg.maxLen) tokens", got: "\(settings.maxLen)",
          hint: "Leave data.max_len at the checkpoint's \(cfg.maxLen) (longer texts are cut there)")
      ])
    }
    let (data, vocabulary) = try TaskLoader.load(settings, vocabulary: self.vocabulary)
    let location = "data.path (\(settings.resolvedPath))"
    guard data.outputs == cfg.outputs else {
      let what = model.family.predictsEveryPosition(cfg.kind) ? "vocabulary symbols" : "classes"
      throw LCError.badConfig([
        ErrorDetail(
          what: "the data does not fit the checkpoint's model", location: location,
          expected: "\(cfg.outputs) \(what), as the model was trained", got: "\(data.outputs)",
          hint: model.family.predictsEveryPosition(cfg.kind)
            ? ""
            : "An imported model gets a head of the data's classes with `layercollapse import --classes \(data.outputs)`"
        )
      ])
    }
    // Token ids index the embedding: a tokenizer built from the data (a checkpoint that
    // stores none, as an import without vocab.txt) may have more than the table's rows.
    if let n = vocabulary?.tokenCount, n > cfg.vocabSize {
      throw LCError.badConfig([
        ErrorDetail(
          what: "the data's tokens do not fit the checkpoint's embedding", location: location,
          expected: "at most \(cfg.vocabSize) token ids",
          got: "\(n)" + (self.vocabulary == nil ? " (a vocabulary built from the data: the checkpoint has none)" : ""),
          hint: self.vocabulary == nil
            ? "Import the model with its tokenizer files (vocab.txt, or vocab.json and merges.txt) beside config.json"
            : "")
      ])
    }
    if let side = data.imageSide, side != cfg.imageSize {
      throw LCError.badConfig([
        ErrorDetail(
          what: "the images are not the size the checkpoint's model reads", location: "data.resize",
          expected: "\(cfg.imageSize)×\(cfg.imageSize) images (data.resize: \(cfg.imageSize))",
          got: "\(side)×\(side)")
      ])
    }
    return data
  }
}
