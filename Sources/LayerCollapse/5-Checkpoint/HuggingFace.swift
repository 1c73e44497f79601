import Foundation
import Kernels

/// `layercollapse import`: a Hugging Face model directory (config.json and
/// model.safetensors, or a sharded model.safetensors.index.json) as one of our models,
/// every tensor mapped to its PyTorch-style name here, shapes checked, and missing or
/// unexpected tensors listed.
///
/// Families so far: GPT-2 (`GPT2LMHeadModel`, `GPT2Model`), which is our `gpt`: pre-LayerNorm
/// blocks with a packed qkv projection, `gelu_new` (the tanh GELU), learned positions and a
/// head tied to the token embedding. GPT-2 stores its `Conv1D` weights (in, out); they are
/// transposed to our (out, in).
public enum HuggingFaceImport {
  /// What the import did, for the command's report.
  public struct Report: Sendable {
    public var modelType: String
    public var tensors: Int
    /// Tensors of the source that carry no parameter (attention-mask buffers).
    public var ignored: [String]
    /// The tokenizer the directory ships, when we read its kind (BERT's vocab.txt,
    /// GPT-2's vocab.json and merges.txt).
    public var vocabulary: Vocabulary? = nil
    /// `data.*` settings the model needs (ViT: the preprocessor's size, mean and std;
    /// GPT-2 with its tokenizer: `level: bpe`), for the stored config.
    public var dataKeys: [(key: String, value: String)] = []
    /// The outputs of the source's classifier when `--classes` replaced it by a new head.
    public var replacedClassifier: Int? = nil
    /// The classes of a new, untrained head (a source without a classifier, or one
    /// `--classes` replaced): nil when the source's own classifier was kept.
    public var newClassifier: Int? = nil
    /// BERT without a pooler (`BertModel(add_pooling_layer=False)`, a masked-LM
    /// checkpoint): ours is new and untrained, as transformers initializes it.
    public var newPooler: Bool = false
    /// Parameters of the source's other heads that a classifier has no use for (BERT's
    /// pre-training heads `cls.*`), left out as transformers leaves them.
    public var otherHeads: [String] = []
    /// ViT without preprocessor_config.json: images normalized with transformers' default
    /// (mean and std 0.5), which may not be what the model was trained with.
    public var defaultNormalization: Bool = false
    /// The tokenizer's ids and the embedding's rows when the embedding has more (padded,
    /// or grown for tokens the tokenizer files do not list).
    public var paddedVocabulary: (tokens: Int, rows: Int)? = nil
  }

  /// The tasks a model of `kind` can read, in `DataTaskKind`'s order (its family decides).
  public static func tasks(_ kind: ModelKind) -> [DataTaskKind] {
    DataTaskKind.allCases.filter { ModelRegistry.family(kind).fits(kind, task: $0) }
  }

  /// The task an imported model reads unless `--task` says otherwise: the first it fits
  /// (sst2 for BERT, cifar10 for ViT, text for GPT-2).
  public static func defaultTask(_ kind: ModelKind) -> DataTaskKind { tasks(kind).first ?? .sst2 }

  /// The run config stored in an imported checkpoint: the model's sizes as `model.*`
  /// keys, the task, and the data settings the model needs, so that `eval`, `collapse`
  /// and `inspect --config` work on it directly and a training config can copy it.
  public static func storedConfig(_ config: ModelConfig, task: DataTaskKind, report: Report, source: String) -> String {
    func number(_ f: Float) -> String { String(format: "%g", Double(f)) }
    var data: [(String, String)] = [("task", task.rawValue)]
    if task == .text || task == .sst2 {
      data.append(("max_len", "\(min(config.maxLen, task == .text ? 128 : 64))"))
    }
    // A sentence classifier of other than 2 classes reads a TSV of as many (its own data).
    if task == .sst2 && config.classes != 2 { data.append(("classes", "\(config.classes)")) }
    data += report.dataKeys.map { ($0.key, $0.value) }
    var model: [(String, String)] = [
      ("kind", config.kind.rawValue), ("d_model", "\(config.dModel)"), ("heads", "\(config.heads)"),
      ("layers", "\(config.layers)"), ("mlp_hidden", "\(config.mlpHidden)"),
      ("activation", config.activation.rawValue), ("dropout", number(config.dropout)),
      ("layer_norm_eps", number(config.layerNormEpsilon)),
    ]
    if config.kind == .vit { model.append(("patch_size", "\(config.patchSize)")) }
    if config.kind == .gpt { model.append(("tie_weights", "\(config.tieWeights)")) }
    if config.maxPositions > 0 { model.append(("max_positions", "\(config.maxPositions)")) }
    if config.typeVocabSize > 0 { model.append(("type_vocab_size", "\(config.typeVocabSize)")) }
    func section(_ name: String, _ keys: [(String, String)]) -> String {
      name + ":\n" + keys.map { "  \($0.0): \($0.1)\n" }.joined()
    }
    return "# imported by `layercollapse import \(source)` (\(report.modelType)); a fine-tuning config\n"
      + "# starts from it with train.init_from and these model.* keys.\n" + "seed: 1\n" + section("data", data)
      + section("model", model) + "output:\n  dir: runs/imported\n"
  }

  public static let supportedTypes = ["gpt2", "bert", "vit"]

  /// `classes`: the outputs of a new classifier head, for a source without one (BERT's
  /// `BertModel`) or in place of the source's when it has another number (an ImageNet
  /// ViT for CIFAR-10, as `transformers`' `ignore_mismatched_sizes`); a source with a
  /// classifier of as many keeps its own. A language model has none: a usage error.
  public static func load(directory: String, classes: Int? = nil) throws -> (model: any Model, report: Report) {
    let configPath = directory + "/config.json"
    var isDirectory: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
    guard exists && isDirectory.boolValue else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "not a Hugging Face model directory", location: directory, expected: "a directory",
          got: exists ? "a file" : "nothing at this path",
          hint: "Point at the directory holding config.json and model.safetensors"
            + (exists && directory.hasSuffix(".json") ? " (the one this file is in)" : "")))
    }
    guard let data = FileManager.default.contents(atPath: configPath) else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "no config.json: not a Hugging Face model directory", location: directory,
          hint: "Point at the directory holding config.json and model.safetensors"))
    }
    let parsed: Any
    do {
      parsed = try JSONSerialization.jsonObject(with: data)
    } catch {
      // Foundation's reason names the spot ("… around line 3, column 1").
      let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
      throw LCError.badData(
        ErrorDetail(
          what: "config.json is not valid JSON", location: configPath, got: reason,
          hint: "The file is cut short or was edited by hand; save the model again with save_pretrained"))
    }
    guard let config = parsed as? [String: Any] else {
      throw LCError.badData(
        ErrorDetail(what: "config.json is not a JSON object", location: configPath, expected: "{\"model_type\": …}"))
    }
    let modelType = config["model_type"] as? String ?? "?"
    let tensors = try readTensors(directory)
    let imported = try importModel(modelType, config, tensors, configPath: configPath, classes: classes)
    // As a checkpoint's load refuses them: a NaN or infinity would pass through every
    // later command as "the run that wrote it diverged".
    if let (p, i) = imported.model.parameters.firstNonFinite() {
      throw LCError.badData(
        ErrorDetail(
          what: "the weights of \(p.name) hold a non-finite value", location: directory,
          expected: "finite weights", got: "\(p.value[i]) at element \(i)",
          hint: "The source is damaged, or was saved from a run that diverged"))
    }
    return imported
  }

  static func importModel(
    _ modelType: String, _ config: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String,
    classes: Int?
  ) throws -> (model: any Model, report: Report) {
    switch modelType {
    case "gpt2":
      if let n = classes {
        throw LCError.usage(
          ErrorDetail(
            what: "--classes does not apply to a language model (its outputs are its vocabulary)",
            location: "layercollapse import --classes", got: "\(n)", hint: "Import GPT-2 without --classes"))
      }
      return try gpt2(config, tensors, configPath: configPath)
    case "bert": return try bert(config, tensors, configPath: configPath, classes: classes)
    case "vit": return try vit(config, tensors, configPath: configPath, classes: classes)
    case "?":
      throw LCError.badData(
        ErrorDetail(
          what: "config.json has no model_type", location: configPath, expected: supportedTypes.joined(separator: ", "),
          hint: "transformers' save_pretrained writes it; a config.json without it is not one of a transformers model"
            + " (an export of ours in its own format is read with scripts/load_exported.py)"))
    default:
      // What the source holds, as an unsupported activation or position embedding is: 65.
      throw LCError.badData(
        ErrorDetail(
          what: "model_type \(modelType) cannot be imported yet", location: configPath,
          expected: supportedTypes.joined(separator: ", "), got: modelType,
          hint: "Supported: GPT-2, BERT and ViT checkpoints saved by transformers"))
    }
  }

  /// Every tensor of the directory: name → (file, entry).
  static func readTensors(_ directory: String) throws -> [String: SafeTensorsFile] {
    let index = directory + "/model.safetensors.index.json"
    if FileManager.default.fileExists(atPath: index) {
      let (files, shardOf) = try SafeTensorsFile.readSharded(index: index)
      return shardOf.compactMapValues { files[$0] }
    }
    let single = directory + "/model.safetensors"
    guard FileManager.default.fileExists(atPath: single) else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "no model.safetensors (or model.safetensors.index.json)", location: directory,
          hint: "Save the model with save_pretrained(..., safe_serialization=True)"))
    }
    let file = try SafeTensorsFile(path: single)
    return Dictionary(uniqueKeysWithValues: file.names.map { ($0, file) })
  }

  // MARK: names

  /// GPT-2: our name ← HF's (without its "transformer." prefix); the `transposed` ones are
  /// Conv1D weights, stored (in, out).
  static func gpt2Names(layers: Int) -> (map: [String: [String]], transposed: Set<String>) {
    var map: [String: [String]] = [
      "tok_emb.weight": ["wte.weight"], "pos_emb.weight": ["wpe.weight"], "ln_f.weight": ["ln_f.weight"],
      "ln_f.bias": ["ln_f.bias"],
    ]
    var transposed: Set<String> = []
    for i in 0..<layers {
      let (ours, theirs) = ("blocks.\(i).", "h.\(i).")
      for (o, t, transpose) in [
        ("ln1.weight", "ln_1.weight", false), ("ln1.bias", "ln_1.bias", false),
        ("attn.qkv.weight", "attn.c_attn.weight", true), ("attn.qkv.bias", "attn.c_attn.bias", false),
        ("attn.proj.weight", "attn.c_proj.weight", true), ("attn.proj.bias", "attn.c_proj.bias", false),
        ("ln2.weight", "ln_2.weight", false), ("ln2.bias", "ln_2.bias", false),
        ("mlp.fc1.weight", "mlp.c_fc.weight", true), ("mlp.fc1.bias", "mlp.c_fc.bias", false),
        ("mlp.fc2.weight", "mlp.c_proj.weight", true), ("mlp.fc2.bias", "mlp.c_proj.bias", false),
      ] {
        map[ours + o] = [theirs + t]
        if transpose { transposed.insert(ours + o) }
      }
    }
    return (map, transposed)
  }

  /// BERT: our name ← the source's tensors (without "bert."), several stacked along rows
  /// (query, key, value → qkv).
  static func bertNames(layers: Int) -> [String: [String]] {
    var map: [String: [String]] = [
      "tok_emb.weight": ["embeddings.word_embeddings.weight"],
      "pos_emb.weight": ["embeddings.position_embeddings.weight"],
      "type_emb.weight": ["embeddings.token_type_embeddings.weight"],
      "emb_ln.weight": ["embeddings.LayerNorm.weight"], "emb_ln.bias": ["embeddings.LayerNorm.bias"],
      "pooler.weight": ["pooler.dense.weight"], "pooler.bias": ["pooler.dense.bias"],
    ]
    for i in 0..<layers {
      let (o, t) = ("blocks.\(i).", "encoder.layer.\(i).")
      for part in ["weight", "bias"] {
        map[o + "attn.qkv." + part] = ["query", "key", "value"].map { t + "attention.self.\($0)." + part }
        map[o + "attn.proj." + part] = [t + "attention.output.dense." + part]
        map[o + "ln1." + part] = [t + "attention.output.LayerNorm." + part]
        map[o + "mlp.fc1." + part] = [t + "intermediate.dense." + part]
        map[o + "mlp.fc2." + part] = [t + "output.dense." + part]
        map[o + "ln2." + part] = [t + "output.LayerNorm." + part]
      }
    }
    return map
  }

  /// ViT: our name ← the source's tensors (without "vit.").
  static func vitNames(layers: Int) -> [String: [String]] {
    var map: [String: [String]] = [
      "patch_emb.weight": ["embeddings.patch_embeddings.projection.weight"],
      "patch_emb.bias": ["embeddings.patch_embeddings.projection.bias"],
      "cls_token": ["embeddings.cls_token"], "pos_emb.weight": ["embeddings.position_embeddings"],
      "ln_f.weight": ["layernorm.weight"], "ln_f.bias": ["layernorm.bias"],
    ]
    for i in 0..<layers {
      let (o, t) = ("blocks.\(i).", "encoder.layer.\(i).")
      for part in ["weight", "bias"] {
        map[o + "ln1." + part] = [t + "layernorm_before." + part]
        map[o + "attn.qkv." + part] = ["query", "key", "value"].map { t + "attention.attention.\($0)." + part }
        map[o + "attn.proj." + part] = [t + "attention.output.dense." + part]
        map[o + "ln2." + part] = [t + "layernorm_after." + part]
        map[o + "mlp.fc1." + part] = [t + "intermediate.dense." + part]
        map[o + "mlp.fc2." + part] = [t + "output.dense." + part]
      }
    }
    return map
  }

  // MARK: GPT-2

  static func gpt2(_ values: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String) throws -> (
    model: any Model, report: Report
  ) {
    let c = SourceConfig(values: values, path: configPath)
    func int(_ key: String, _ fallback: Int? = nil) throws -> Int { try c.int(key, fallback) }
    let (d, heads, layers) = (try int("n_embd"), try int("n_head"), try int("n_layer"))
    let hidden = try int("n_inner", 4 * d)
    let activation = try c.activation("activation_function", default: "gelu_new")
    let epsilon = try c.double("layer_norm_epsilon", 1e-5, in: 1e-30...1)
    var unsupported: [String] = []
    if (values["scale_attn_by_inverse_layer_idx"] as? Bool) == true {
      unsupported.append("scale_attn_by_inverse_layer_idx")
    }
    if (values["scale_attn_weights"] as? Bool) == false { unsupported.append("scale_attn_weights false") }
    if (values["tie_word_embeddings"] as? Bool) == false { unsupported.append("tie_word_embeddings false") }
    if (values["add_cross_attention"] as? Bool) == true {
      unsupported.append("add_cross_attention (an encoder-decoder's)")
    }
    guard unsupported.isEmpty else {
      throw LCError.badData(
        ErrorDetail(
          what: "GPT-2 variant not supported: " + unsupported.joined(separator: ", "), location: configPath,
          hint: "The import reads GPT-2 as GPT2LMHeadModel defines it by default"))
    }
    guard heads > 0 && d % heads == 0 else {
      throw LCError.badData(
        ErrorDetail(what: "n_head does not divide n_embd", location: configPath, got: "\(heads), \(d)"))
    }
    var config = ModelConfig(
      kind: .gpt, dModel: d, heads: heads, layers: layers, mlpHidden: hidden,
      dropout: Float(try c.double("resid_pdrop", 0, in: 0...0.999)), maxLen: try int("n_positions"),
      vocabSize: try int("vocab_size"), tieWeights: true, activation: activation)
    config.layerNormEpsilon = Float(epsilon)
    // The position table keeps its n_positions rows; the sequence length the model is
    // counted (and generates) at is our default window, as the stored config's data.max_len.
    config.maxPositions = config.maxLen
    config.maxLen = min(config.maxLen, 128)
    try checkBuildable(config, configPath: configPath)
    let model = ModelRegistry.build(Architecture(config: config))
    let (map, transposed) = gpt2Names(layers: layers)
    let prefix = tensors.keys.contains { $0.hasPrefix("transformer.") } ? "transformer." : ""
    let (used, missing) = try fill(
      model, from: tensors, map: map, prefix: prefix, transposed: transposed, classifier: false,
      configPath: configPath)
    // The tied head and the attention masks some checkpoints store are not parameters.
    let ignorable = { (n: String) in
      n == "lm_head.weight" || n.hasSuffix(".attn.bias") || n.hasSuffix(".attn.masked_bias")
    }
    let ignored = try accountFor(
      tensors, used: used, missing: missing, ignorable: ignorable, family: "GPT-2", configPath: configPath)
    var report = Report(modelType: "gpt2", tensors: used.count, ignored: ignored)
    // The tokenizer: vocab.json and merges.txt, GPT-2's byte-level BPE.
    let dir = Paths.parent(configPath)
    if FileManager.default.fileExists(atPath: dir + "/vocab.json") {
      let files = try ByteLevelBPE.read(vocabularyFile: dir + "/vocab.json", mergesFile: dir + "/merges.txt")
      var vocabulary = files.vocabulary
      // Tokens added after training (added_tokens.json, as `add_special_tokens` saves them)
      // are ids of the vocabulary too, as transformers counts it.
      let addedPath = dir + "/added_tokens.json"
      if let data = FileManager.default.contents(atPath: addedPath) {
        guard let added = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
          throw LCError.badData(ErrorDetail(what: "not a JSON object of token → id", location: addedPath))
        }
        var taken: [Int32: String] = Dictionary(vocabulary.map { ($0.value, $0.key) }) { a, _ in a }
        for (token, value) in added.sorted(by: { $0.key < $1.key }) {
          guard let id = value as? Int, let small = Int32(exactly: id), small >= 0, small < 1 << 24,
            vocabulary[token] == nil || vocabulary[token] == small, taken[small] == nil || taken[small] == token
          else {
            throw LCError.badData(
              ErrorDetail(
                what: "added token \(token) has no new id", location: addedPath,
                expected: "an id in 0..<16777216 that vocab.json does not give another token", got: "\(value)"))
          }
          vocabulary[token] = small
          taken[small] = token
        }
      }
      let ids = Int(vocabulary.values.max() ?? -1) + 1
      guard ids <= config.vocabSize else {
        throw LCError.badData(
          ErrorDetail(
            what: "vocab.json does not fit the model", location: dir + "/vocab.json",
            expected: "at most \(config.vocabSize) ids (vocab_size)", got: "\(ids)"))
      }
      // An embedding padded past the tokenizer (to a multiple of 64, say): rows no text
      // produces, kept so that the weights and the head's outputs stay as they are.
      if ids < config.vocabSize { report.paddedVocabulary = (tokens: ids, rows: config.vocabSize) }
      let bpe = try ByteLevelBPE(vocabulary: vocabulary, merges: files.merges, count: config.vocabSize)
      report.vocabulary = .corpus(CorpusVocabulary(bpe: bpe))
      report.dataKeys = [("level", "bpe")]
    } else if FileManager.default.fileExists(atPath: dir + "/merges.txt") {
      throw LCError.missingInput(
        ErrorDetail(
          what: "merges.txt without vocab.json: half of GPT-2's tokenizer", location: dir + "/vocab.json",
          hint: "Put the vocab.json saved with merges.txt beside config.json, or remove merges.txt to import the "
            + "model without a tokenizer"))
    }
    return (model, report)
  }

  // MARK: BERT

  static func bert(_ values: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String, classes: Int?)
    throws -> (model: any Model, report: Report)
  {
    let c = SourceConfig(values: values, path: configPath)
    let (d, heads, layers) = (
      try c.int("hidden_size"), try c.int("num_attention_heads"), try c.int("num_hidden_layers")
    )
    let activation = try c.activation("hidden_act", default: "gelu")
    if let kind = values["position_embedding_type"] as? String, kind != "absolute" {
      throw LCError.badData(ErrorDetail(what: "position_embedding_type \(kind) is not supported", location: configPath))
    }
    guard heads > 0 && d % heads == 0 else {
      throw LCError.badData(
        ErrorDetail(
          what: "num_attention_heads does not divide hidden_size", location: configPath, got: "\(heads), \(d)"))
    }
    let prefix = tensors.keys.contains { $0.hasPrefix("bert.") } ? "bert." : ""
    let poolerNames = ["pooler.dense.weight", "pooler.dense.bias"].map { prefix + $0 }
    let hasPooler = poolerNames.contains { tensors[$0] != nil }
    if !hasPooler && tensors["classifier.weight"] != nil && classes == nil {
      // A classifier without a pooler reads every token (BertForTokenClassification):
      // not the sequence classifier ours is.
      throw LCError.usage(
        ErrorDetail(
          what: "the source's classifier reads no pooler (a token classifier?): ours classifies sequences",
          location: configPath, expected: "--classes N for a new sequence-classification head"))
    }
    let head =
      hasPooler
      ? try classifierOutputs(tensors, classes: classes, configPath: configPath)
      : (
        outputs: try classifierOutputs([:], classes: classes, configPath: configPath).outputs, sourceHasOne: false,
        replaced: tensors["classifier.weight"]?.entries["classifier.weight"]?.shape.first
      )
    var config = ModelConfig(
      kind: .bert, dModel: d, heads: heads, layers: layers, mlpHidden: try c.int("intermediate_size"),
      dropout: Float(try c.double("hidden_dropout_prob", 0, in: 0...0.999)),
      maxLen: try c.int("max_position_embeddings"),
      vocabSize: try c.int("vocab_size"), classes: head.outputs, activation: activation)
    config.layerNormEpsilon = Float(try c.double("layer_norm_eps", 1e-12, in: 1e-30...1))
    config.typeVocabSize = try c.int("type_vocab_size", 2)
    config.maxPositions = config.maxLen
    config.maxLen = min(config.maxLen, 64)  // SST-2's sentences; the table keeps every row
    try checkBuildable(config, configPath: configPath)
    let model = ModelRegistry.build(Architecture(config: config), seed: 1)  // the new head, if any: N(0, 0.02)
    let map = bertNames(layers: layers)
    let (used, missing) = try fill(
      model, from: tensors, map: map, prefix: prefix, classifier: head.sourceHasOne, configPath: configPath)
    let otherHeads = tensors.keys.filter { $0.hasPrefix("cls.") }.sorted()
    let ignored = try accountFor(
      tensors, used: used.union(replacedClassifier(tensors, head.replaced)).union(otherHeads),
      missing: hasPooler ? missing : missing.filter { !poolerNames.contains($0) },
      ignorable: { $0.hasSuffix("position_ids") }, family: "BERT", configPath: configPath)
    var report = Report(modelType: "bert", tensors: used.count, ignored: ignored)
    report.replacedClassifier = head.replaced
    report.newClassifier = head.sourceHasOne ? nil : head.outputs
    report.newPooler = !hasPooler
    report.otherHeads = otherHeads
    // The tokenizer: vocab.txt, cased or not as tokenizer_config.json says.
    let dir = Paths.parent(configPath)
    if FileManager.default.fileExists(atPath: dir + "/vocab.txt") {
      let settings =
        FileManager.default.contents(atPath: dir + "/tokenizer_config.json").flatMap {
          try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
        } ?? [:]
      let tokenizer = try WordPieceTokenizer(
        vocabularyFile: dir + "/vocab.txt", lowercase: settings["do_lower_case"] as? Bool ?? true,
        stripAccents: settings["strip_accents"] as? Bool)
      guard tokenizer.count <= config.vocabSize else {
        throw LCError.badData(
          ErrorDetail(
            what: "vocab.txt does not fit the model", location: dir + "/vocab.txt",
            expected: "at most \(config.vocabSize) tokens (vocab_size)", got: "\(tokenizer.count)"))
      }
      // A padded embedding: rows no text produces (BERT reads them only through its ids).
      if tokenizer.count < config.vocabSize {
        report.paddedVocabulary = (tokens: tokenizer.count, rows: config.vocabSize)
      }
      report.vocabulary = .wordPiece(tokenizer)
    }
    return (model, report)
  }

  // MARK: ViT

  /// ViT (`ViTForImageClassification`, or `ViTModel` with `--classes`) is our `vit`:
  /// pre-LayerNorm blocks, a patch convolution (its (C, ch, P, P) kernel flattened
  /// channel-major is our patch linear), [CLS] and learned positions, the classifier on
  /// [CLS] after the final norm. Images must have the config's size; the caller normalizes
  /// them with the model's preprocessor mean and std.
  static func vit(_ values: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String, classes: Int?)
    throws -> (model: any Model, report: Report)
  {
    let c = SourceConfig(values: values, path: configPath)
    let (d, heads, layers) = (
      try c.int("hidden_size"), try c.int("num_attention_heads"), try c.int("num_hidden_layers")
    )
    let activation = try c.activation("hidden_act", default: "gelu")
    if (values["qkv_bias"] as? Bool) == false {
      throw LCError.badData(
        ErrorDetail(
          what: "qkv_bias false is not supported", location: configPath, expected: "qkv_bias true (ViT's default)",
          hint: "The import reads ViT with biases on its query, key and value, as ViTConfig defaults"))
    }
    let (image, patch) = (try c.int("image_size", 224), try c.int("patch_size", 16))
    guard heads > 0 && d % heads == 0, patch > 0, image % patch == 0 else {
      throw LCError.badData(
        ErrorDetail(
          what: "inconsistent sizes", location: configPath,
          got: "hidden_size \(d), heads \(heads), image_size \(image), patch_size \(patch)"))
    }
    let channels = try c.int("num_channels", 3)
    guard channels == ImageSplit.channels else {
      throw LCError.badData(
        ErrorDetail(
          what: "num_channels \(channels) is not supported", location: configPath,
          expected: "\(ImageSplit.channels) (RGB: the image task, CIFAR-10, has no other)", got: "\(channels)"))
    }
    let head = try classifierOutputs(tensors, classes: classes, configPath: configPath)
    var config = ModelConfig(
      kind: .vit, dModel: d, heads: heads, layers: layers, mlpHidden: try c.int("intermediate_size"),
      dropout: Float(try c.double("hidden_dropout_prob", 0, in: 0...0.999)), classes: head.outputs, imageSize: image,
      imageChannels: channels, patchSize: patch, activation: activation)
    config.layerNormEpsilon = Float(try c.double("layer_norm_eps", 1e-12, in: 1e-30...1))
    try checkBuildable(config, configPath: configPath)
    let model = ModelRegistry.build(Architecture(config: config), seed: 1)
    let map = vitNames(layers: layers)
    let prefix = tensors.keys.contains { $0.hasPrefix("vit.") } ? "vit." : ""
    // The patch kernel is flattened into our patch linear: its 4 dimensions must be the
    // config's (another split of as many values would import scrambled).
    let kernel = prefix + "embeddings.patch_embeddings.projection.weight"
    let kernelShape = [d, config.imageChannels, patch, patch]
    if let shape = tensors[kernel]?.entries[kernel]?.shape, shape != kernelShape {
      throw LCError.badData(
        ErrorDetail(
          what: "tensor \(kernel) has the wrong shape", location: configPath, expected: "\(kernelShape)",
          got: "\(shape)"))
    }
    let (used, missing) = try fill(
      model, from: tensors, map: map, prefix: prefix, classifier: head.sourceHasOne, configPath: configPath)
    let ignored = try accountFor(
      tensors, used: used.union(replacedClassifier(tensors, head.replaced)), missing: missing,
      ignorable: { $0.hasPrefix(prefix + "pooler.") }, family: "ViT", configPath: configPath)
    var report = Report(modelType: "vit", tensors: used.count, ignored: ignored)
    report.replacedClassifier = head.replaced
    report.newClassifier = head.sourceHasOne ? nil : head.outputs
    let preprocessing = try vitPreprocessing(
      directory: Paths.parent(configPath), image: image)
    report.dataKeys = preprocessing.keys
    report.defaultNormalization = !preprocessing.read
    // Stored with the model too, as a trained image model's is: `export` records it.
    report.vocabulary = .imageNormalization(preprocessing.normalization)
    return (model, report)
  }

  /// The data settings of a ViT's preprocessor_config.json (`ViTImageProcessor`): images
  /// resized to the model's size and normalized with its mean and std (0.5 each when the
  /// file is absent, transformers' default for ViT); `read`: whether the file was there.
  static func vitPreprocessing(
    directory: String, image: Int
  ) throws -> (keys: [(key: String, value: String)], normalization: ChannelStats, read: Bool) {
    let path = directory + "/preprocessor_config.json"
    var mean: [Double] = [0.5, 0.5, 0.5]
    var std: [Double] = [0.5, 0.5, 0.5]
    let data = FileManager.default.contents(atPath: path)
    if let data {
      guard let values = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw LCError.badData(ErrorDetail(what: "preprocessor_config.json is not a JSON object", location: path))
      }
      if (values["do_normalize"] as? Bool) == false {
        (mean, std) = ([0, 0, 0], [1, 1, 1])
      } else {
        if let m = values["image_mean"] { mean = try triple(m, "image_mean", path) }
        if let s = values["image_std"] { std = try triple(s, "image_std", path) }
      }
      if let resample = values["resample"] as? Int, resample != 2 {
        throw LCError.badData(
          ErrorDetail(
            what: "only bilinear resampling is supported", location: path + " (resample)", expected: "2 (bilinear)",
            got: "\(resample)"))
      }
      guard std.allSatisfy({ $0 > 0 }) else {
        throw LCError.badData(ErrorDetail(what: "image_std must be positive", location: path, got: "\(std)"))
      }
    }
    // Every digit (0.48145466 stays so), as the value stored with the model.
    func list(_ v: [Double]) -> String { "[" + v.map { "\($0)" }.joined(separator: ", ") + "]" }
    var keys: [(key: String, value: String)] = [("mean", list(mean)), ("std", list(std))]
    if image != ImageSplit.side { keys.insert(("resize", "\(image)"), at: 0) }
    return (keys, ChannelStats(mean: mean.map { Float($0) }, std: std.map { Float($0) }), data != nil)
  }

  static func triple(_ value: Any, _ key: String, _ path: String) throws -> [Double] {
    if let v = value as? Double { return [v, v, v] }
    guard let v = value as? [Double], v.count == 3 else {
      throw LCError.badData(
        ErrorDetail(what: "\(key) is not three numbers", location: path, expected: "[r, g, b]", got: "\(value)"))
    }
    return v
  }

  /// A source's config.json: typed reads that name the key and the file when they fail.
  struct SourceConfig {
    let values: [String: Any]
    let path: String

    /// Every size is at most 2^20 (a million: above any BERT's, GPT-2's or ViT's), so
    /// that their products (parameter counts) stay far inside Int; 0 is left to the
    /// family's own checks.
    static let largest = 1 << 20

    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
      let value: Int
      if let v = values[key] as? Int {
        value = v
      } else if values[key] == nil || values[key] is NSNull, let f = fallback {
        value = f
      } else {
        throw LCError.badData(ErrorDetail(what: "config.json: \(key) is missing or not an integer", location: path))
      }
      guard value >= 0 && value <= Self.largest else {
        throw LCError.badData(
          ErrorDetail(
            what: "config.json: \(key) is out of range", location: path, expected: "0…\(Self.largest)",
            got: "\(value)"))
      }
      return value
    }

    /// A number within `range` (a dropout below 1, an ε above 0); absent or null is the
    /// fallback, anything else bad data naming the key.
    func double(_ key: String, _ fallback: Double, in range: ClosedRange<Double>) throws -> Double {
      let value: Double
      if let v = values[key] as? Double {
        value = v
      } else if values[key] == nil || values[key] is NSNull {
        return fallback
      } else {
        throw LCError.badData(ErrorDetail(what: "config.json: \(key) is not a number", location: path))
      }
      guard range.contains(value) && value.isFinite else {
        throw LCError.badData(
          ErrorDetail(
            what: "config.json: \(key) is out of range", location: path,
            expected: "\(range.lowerBound)…\(range.upperBound)", got: "\(value)"))
      }
      return value
    }

    /// The activation `key` names (Hugging Face's names: `gelu` is erf's, `gelu_new` tanh's).
    func activation(_ key: String, default name: String) throws -> Activation {
      let known: [String: Activation] = [
        "gelu": .geluExact, "gelu_new": .gelu, "gelu_pytorch_tanh": .gelu, "relu": .relu,
      ]
      let name = values[key] as? String ?? name
      guard let a = known[name] else {
        throw LCError.badData(
          ErrorDetail(
            what: "unsupported \(key)", location: path, expected: known.keys.sorted().joined(separator: ", "),
            got: name))
      }
      return a
    }
  }

  /// The classes of the source's classifier, or `classes` for a new head: where the source
  /// has none, or one of another number (`replaced`: its outputs). A usage error when
  /// neither is there.
  static func classifierOutputs(_ tensors: [String: SafeTensorsFile], classes: Int?, configPath: String) throws
    -> (outputs: Int, sourceHasOne: Bool, replaced: Int?)
  {
    if let shape = tensors["classifier.weight"]?.entries["classifier.weight"]?.shape, let rows = shape.first {
      if let n = classes, n != rows { return (n, false, rows) }
      return (rows, true, nil)
    }
    guard let n = classes else {
      throw LCError.usage(
        ErrorDetail(
          what: "the model has no classifier: say how many classes the new head has", location: configPath,
          expected: "--classes N"))
    }
    return (n, false, nil)
  }

  /// Refuses (65) what config.json describes when no model can be built from it (a size
  /// of 0, more layers than a checkpoint may hold) or its parameters would not fit in
  /// memory, before they are allocated: the checks a checkpoint's load makes, so that
  /// import never writes a file every later command refuses.
  static func checkBuildable(_ config: ModelConfig, configPath: String) throws {
    let arch = Architecture(config: config)
    let problems = Checkpoint.storedProblems(arch)
    guard problems.isEmpty else {
      throw LCError.badData(
        ErrorDetail(
          what: "config.json describes no model that can be built", location: configPath,
          got: problems.joined(separator: "; "), hint: "Check its sizes"))
    }
    try Checkpoint.checkParametersFit(arch, location: configPath)
  }

  /// The source classifier's tensors, read as accounted for when a new head replaced it.
  static func replacedClassifier(_ tensors: [String: SafeTensorsFile], _ replaced: Int?) -> Set<String> {
    replaced == nil ? [] : Set(tensors.keys.filter { $0.hasPrefix("classifier.") })
  }

  /// Fills `model` from the source: each parameter from the tensors `map` names (under
  /// `prefix`; several are stacked along rows, as q, k, v into qkv), its `head.*` from the
  /// source's `classifier.*` when it has one (else the new head keeps its
  /// initialization). A stored shape may differ from ours only by leading 1s ([CLS],
  /// positions), as a (C, ch, P, P) kernel for our (C, ch·P·P), or, for the parameters in
  /// `transposed`, as the (in, out) matrix of our (out, in). Returns the tensors used and
  /// the ones missing.
  static func fill(
    _ model: any Model, from tensors: [String: SafeTensorsFile], map: [String: [String]], prefix: String,
    transposed: Set<String> = [], classifier: Bool, configPath: String
  ) throws -> (used: Set<String>, missing: [String]) {
    var used: Set<String> = []
    var missing: [String] = []
    for p in model.parameters.all {
      let names: [String]
      if p.name.hasPrefix("head.") {
        guard classifier else { continue }
        names = ["classifier." + p.name.dropFirst("head.".count)]
      } else if let sources = map[p.name] {
        names = sources.map { prefix + $0 }
      } else {
        missing.append(p.name)
        continue
      }
      guard names.allSatisfy({ tensors[$0] != nil }) else {
        missing += names.filter { tensors[$0] == nil }
        continue
      }
      var parts = try names.map { try tensors[$0]!.tensor($0) }
      if transposed.contains(p.name) { parts = parts.map { $0.shape.count == 2 ? Transpose.matrix($0) : $0 } }
      for n in names { used.insert(n) }
      // Several sources (BERT's query, key, value) stack along their first axis: each must
      // have one, and the same trailing axes, or the stacked values would not fill the shape.
      let trailing = Array(parts[0].shape.dropFirst())
      let stackable = parts.allSatisfy { !$0.shape.isEmpty && Array($0.shape.dropFirst()) == trailing }
      var shape =
        parts.count == 1 ? parts[0].shape : stackable ? [parts.map { $0.shape[0] }.reduce(0, +)] + trailing : []
      while shape.count > p.shape.count && shape.first == 1 { shape.removeFirst() }
      if shape.count == 4 && p.shape.count == 2 && shape[0] == p.shape[0] {
        shape = [shape[0], shape.dropFirst().reduce(1, *)]
      }
      guard shape == p.shape && parts.map(\.count).reduce(0, +) == p.value.count else {
        throw LCError.badData(
          ErrorDetail(
            what: "tensor \(names.joined(separator: " + ")) does not fit \(p.name)", location: configPath,
            expected: "\(p.shape)", got: parts.map { "\($0.shape)" }.joined(separator: " + ")))
      }
      p.value.copy(from: Tensor(p.shape, parts.flatMap(\.array)))
    }
    return (used, missing)
  }

  /// Every tensor of the source is used, ignorable, or an error listing the unexpected and
  /// the missing ones; returns the ignored ones.
  static func accountFor(
    _ tensors: [String: SafeTensorsFile], used: Set<String>, missing: [String], ignorable: (String) -> Bool,
    family: String, configPath: String
  ) throws -> [String] {
    let unexpected = tensors.keys.filter { !used.contains($0) && !ignorable($0) }.sorted()
    guard missing.isEmpty && unexpected.isEmpty else {
      throw LCError.badData(
        ErrorDetail(
          what: "the checkpoint does not match a \(family) of its config"
            + (missing.isEmpty ? "" : "; missing: " + missing.prefix(6).joined(separator: ", "))
            + (unexpected.isEmpty ? "" : "; unexpected: " + unexpected.prefix(6).joined(separator: ", ")),
          location: configPath, hint: "Is config.json the one saved with these weights?"))
    }
    return tensors.keys.filter { !used.contains($0) && ignorable($0) }.sorted()
  }
}
