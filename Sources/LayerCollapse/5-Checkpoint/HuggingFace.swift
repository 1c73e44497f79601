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
    /// The tokenizer the directory ships, when we read its kind (BERT's vocab.txt).
    public var vocabulary: Vocabulary? = nil
  }

  public static let supportedTypes = ["gpt2", "bert", "vit"]

  /// `classes`: the outputs of a new classifier head, for a source without one (BERT's
  /// `BertModel`); a source with a classifier keeps its own.
  public static func load(directory: String, classes: Int? = nil) throws -> (model: any Model, report: Report) {
    let configPath = directory + "/config.json"
    guard let data = FileManager.default.contents(atPath: configPath) else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "no config.json: not a Hugging Face model directory", location: directory,
          hint: "Point at the directory holding config.json and model.safetensors"))
    }
    guard let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw LCError.badData(ErrorDetail(what: "config.json is not a JSON object", location: configPath))
    }
    let modelType = config["model_type"] as? String ?? "?"
    let tensors = try readTensors(directory)
    switch modelType {
    case "gpt2": return try gpt2(config, tensors, configPath: configPath)
    case "bert": return try bert(config, tensors, configPath: configPath, classes: classes)
    case "vit": return try vit(config, tensors, configPath: configPath, classes: classes)
    default:
      throw LCError.usage(
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

  // MARK: GPT-2

  static func gpt2(_ c: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String) throws -> (
    model: any Model, report: Report
  ) {
    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
      if let v = c[key] as? Int { return v }
      if c[key] == nil || c[key] is NSNull, let f = fallback { return f }
      throw LCError.badData(
        ErrorDetail(what: "config.json: \(key) is missing or not an integer", location: configPath))
    }
    let (d, heads, layers) = (try int("n_embd"), try int("n_head"), try int("n_layer"))
    let hidden = try int("n_inner", 4 * d)
    let activationName = c["activation_function"] as? String ?? "gelu_new"
    let activations: [String: Activation] = [
      "gelu_new": .gelu, "gelu_pytorch_tanh": .gelu, "gelu": .geluExact, "relu": .relu,
    ]
    guard let activation = activations[activationName] else {
      throw LCError.badData(
        ErrorDetail(
          what: "unsupported activation_function", location: configPath,
          expected: activations.keys.sorted().joined(separator: ", "), got: activationName))
    }
    let epsilon = (c["layer_norm_epsilon"] as? Double) ?? 1e-5
    var unsupported: [String] = []
    if abs(epsilon - Double(LayerNorm.epsilon)) > 1e-12 { unsupported.append("layer_norm_epsilon \(epsilon)") }
    if (c["scale_attn_by_inverse_layer_idx"] as? Bool) == true { unsupported.append("scale_attn_by_inverse_layer_idx") }
    if (c["scale_attn_weights"] as? Bool) == false { unsupported.append("scale_attn_weights false") }
    if (c["tie_word_embeddings"] as? Bool) == false { unsupported.append("tie_word_embeddings false") }
    guard unsupported.isEmpty else {
      throw LCError.badData(
        ErrorDetail(
          what: "GPT-2 variant not supported: " + unsupported.joined(separator: ", "), location: configPath))
    }
    guard heads > 0 && d % heads == 0 else {
      throw LCError.badData(
        ErrorDetail(what: "n_head does not divide n_embd", location: configPath, got: "\(heads), \(d)"))
    }
    let config = ModelConfig(
      kind: .gpt, dModel: d, heads: heads, layers: layers, mlpHidden: hidden,
      dropout: Float((c["resid_pdrop"] as? Double) ?? 0), maxLen: try int("n_positions"),
      vocabSize: try int("vocab_size"), tieWeights: true, activation: activation)
    let model = ModelRegistry.build(Architecture(config: config))
    // Our name ← (HF name without its "transformer." prefix, transposed?).
    var map: [String: (String, Bool)] = [
      "tok_emb.weight": ("wte.weight", false), "pos_emb.weight": ("wpe.weight", false),
      "ln_f.weight": ("ln_f.weight", false), "ln_f.bias": ("ln_f.bias", false),
    ]
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
        map[ours + o] = (theirs + t, transpose)
      }
    }
    let prefix = tensors.keys.contains { $0.hasPrefix("transformer.") } ? "transformer." : ""
    var used: Set<String> = []
    var missing: [String] = []
    for p in model.parameters.all {
      guard let (name, transpose) = map[p.name], let file = tensors[prefix + name] else {
        missing.append(prefix + (map[p.name]?.0 ?? p.name))
        continue
      }
      used.insert(prefix + name)
      let t = try file.tensor(prefix + name)
      let stored = transpose ? t.shape.reversed() : t.shape
      guard Array(stored) == p.shape else {
        throw LCError.badData(
          ErrorDetail(
            what: "tensor \(prefix + name) does not fit \(p.name)", location: file.path,
            expected: "\(transpose ? Array(p.shape.reversed()) : p.shape)", got: "\(t.shape)"))
      }
      p.value.copy(from: transpose ? Transpose.matrix(t) : t)
    }
    // The tied head and the attention masks some checkpoints store are not parameters.
    let ignorable = { (n: String) in
      n == "lm_head.weight" || n.hasSuffix(".attn.bias") || n.hasSuffix(".attn.masked_bias")
    }
    let ignored = try accountFor(
      tensors, used: used, missing: missing, ignorable: ignorable, family: "GPT-2", configPath: configPath)
    return (model, Report(modelType: "gpt2", tensors: used.count, ignored: ignored))
  }

  // MARK: BERT

  static func bert(_ c: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String, classes: Int?)
    throws -> (model: any Model, report: Report)
  {
    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
      if let v = c[key] as? Int { return v }
      if c[key] == nil, let f = fallback { return f }
      throw LCError.badData(ErrorDetail(what: "config.json: \(key) is missing or not an integer", location: configPath))
    }
    let (d, heads, layers) = (try int("hidden_size"), try int("num_attention_heads"), try int("num_hidden_layers"))
    let act = c["hidden_act"] as? String ?? "gelu"
    let activations: [String: Activation] = [
      "gelu": .geluExact, "gelu_new": .gelu, "gelu_pytorch_tanh": .gelu, "relu": .relu,
    ]
    guard let activation = activations[act] else {
      throw LCError.badData(
        ErrorDetail(
          what: "unsupported hidden_act", location: configPath,
          expected: activations.keys.sorted().joined(separator: ", "),
          got: act))
    }
    if let kind = c["position_embedding_type"] as? String, kind != "absolute" {
      throw LCError.badData(ErrorDetail(what: "position_embedding_type \(kind) is not supported", location: configPath))
    }
    guard heads > 0 && d % heads == 0 else {
      throw LCError.badData(
        ErrorDetail(
          what: "num_attention_heads does not divide hidden_size", location: configPath, got: "\(heads), \(d)"))
    }
    let prefix = tensors.keys.contains { $0.hasPrefix("bert.") } ? "bert." : ""
    let hasClassifier = tensors["classifier.weight"] != nil
    let sourceClasses = try hasClassifier ? tensors["classifier.weight"]!.tensor("classifier.weight").shape[0] : nil
    guard let outputs = sourceClasses ?? classes else {
      throw LCError.usage(
        ErrorDetail(
          what: "the model has no classifier: say how many classes the new head has", location: configPath,
          expected: "--classes N"))
    }
    var config = ModelConfig(
      kind: .bert, dModel: d, heads: heads, layers: layers, mlpHidden: try int("intermediate_size"),
      dropout: Float((c["hidden_dropout_prob"] as? Double) ?? 0), maxLen: try int("max_position_embeddings"),
      vocabSize: try int("vocab_size"), classes: outputs, activation: activation)
    config.layerNormEpsilon = Float((c["layer_norm_eps"] as? Double) ?? 1e-12)
    config.typeVocabSize = try int("type_vocab_size", 2)
    config.maxPositions = config.maxLen
    let model = ModelRegistry.build(Architecture(config: config), seed: 1)  // the new head, if any: N(0, 0.02)
    // Our name ← the source's tensors, concatenated along rows (q, k, v → qkv).
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
    var used: Set<String> = []
    var missing: [String] = []
    for p in model.parameters.all {
      if p.name.hasPrefix("head.") {
        guard hasClassifier else { continue }  // a new head keeps its initialization
        let name = "classifier." + p.name.dropFirst("head.".count)
        guard let file = tensors[name] else {
          missing.append(name)
          continue
        }
        used.insert(name)
        try copy(try file.tensor(name), into: p, from: name, file: file.path)
        continue
      }
      guard let sources = map[p.name] else {
        missing.append(p.name)
        continue
      }
      let names = sources.map { prefix + $0 }
      guard names.allSatisfy({ tensors[$0] != nil }) else {
        missing += names.filter { tensors[$0] == nil }
        continue
      }
      let parts = try names.map { try tensors[$0]!.tensor($0) }
      for n in names { used.insert(n) }
      let joined =
        parts.count == 1
        ? parts[0]
        : Tensor([parts.map { $0.shape[0] }.reduce(0, +)] + parts[0].shape.dropFirst(), parts.flatMap(\.array))
      try copy(joined, into: p, from: names.joined(separator: " + "), file: configPath)
    }
    let ignorable = { (n: String) in n.hasSuffix("position_ids") }
    let ignored = try accountFor(
      tensors, used: used, missing: missing, ignorable: ignorable, family: "BERT", configPath: configPath)
    var report = Report(modelType: "bert", tensors: used.count, ignored: ignored)
    // The tokenizer: vocab.txt, cased or not as tokenizer_config.json says.
    let dir = (configPath as NSString).deletingLastPathComponent
    if FileManager.default.fileExists(atPath: dir + "/vocab.txt") {
      let settings =
        FileManager.default.contents(atPath: dir + "/tokenizer_config.json").flatMap {
          try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
        } ?? [:]
      let tokenizer = try WordPieceTokenizer(
        vocabularyFile: dir + "/vocab.txt", lowercase: settings["do_lower_case"] as? Bool ?? true,
        stripAccents: settings["strip_accents"] as? Bool)
      guard tokenizer.count == config.vocabSize else {
        throw LCError.badData(
          ErrorDetail(
            what: "vocab.txt does not fit the model", location: dir + "/vocab.txt",
            expected: "\(config.vocabSize) tokens (vocab_size)", got: "\(tokenizer.count)"))
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
  static func vit(_ c: [String: Any], _ tensors: [String: SafeTensorsFile], configPath: String, classes: Int?)
    throws -> (model: any Model, report: Report)
  {
    func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
      if let v = c[key] as? Int { return v }
      if c[key] == nil, let f = fallback { return f }
      throw LCError.badData(ErrorDetail(what: "config.json: \(key) is missing or not an integer", location: configPath))
    }
    let (d, heads, layers) = (try int("hidden_size"), try int("num_attention_heads"), try int("num_hidden_layers"))
    let act = c["hidden_act"] as? String ?? "gelu"
    let activations: [String: Activation] = [
      "gelu": .geluExact, "gelu_new": .gelu, "gelu_pytorch_tanh": .gelu, "relu": .relu,
    ]
    guard let activation = activations[act] else {
      throw LCError.badData(ErrorDetail(what: "unsupported hidden_act", location: configPath, got: act))
    }
    if (c["qkv_bias"] as? Bool) == false {
      throw LCError.badData(ErrorDetail(what: "qkv_bias false is not supported", location: configPath))
    }
    let (image, patch) = (try int("image_size", 224), try int("patch_size", 16))
    guard heads > 0 && d % heads == 0, patch > 0, image % patch == 0 else {
      throw LCError.badData(
        ErrorDetail(
          what: "inconsistent sizes", location: configPath,
          got: "hidden_size \(d), heads \(heads), image_size \(image), patch_size \(patch)"))
    }
    let prefix = tensors.keys.contains { $0.hasPrefix("vit.") } ? "vit." : ""
    let hasClassifier = tensors["classifier.weight"] != nil
    let sourceClasses = try hasClassifier ? tensors["classifier.weight"]!.tensor("classifier.weight").shape[0] : nil
    guard let outputs = sourceClasses ?? classes else {
      throw LCError.usage(
        ErrorDetail(
          what: "the model has no classifier: say how many classes the new head has", location: configPath,
          expected: "--classes N"))
    }
    var config = ModelConfig(
      kind: .vit, dModel: d, heads: heads, layers: layers, mlpHidden: try int("intermediate_size"),
      dropout: Float((c["hidden_dropout_prob"] as? Double) ?? 0), classes: outputs, imageSize: image,
      imageChannels: try int("num_channels", 3), patchSize: patch, activation: activation)
    config.layerNormEpsilon = Float((c["layer_norm_eps"] as? Double) ?? 1e-12)
    let model = ModelRegistry.build(Architecture(config: config), seed: 1)
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
    var used: Set<String> = []
    var missing: [String] = []
    for p in model.parameters.all {
      let names: [String]
      if p.name.hasPrefix("head.") {
        guard hasClassifier else { continue }  // a new head keeps its initialization
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
      let parts = try names.map { try tensors[$0]!.tensor($0) }
      for n in names { used.insert(n) }
      // Rows stacked (q, k, v); a (1, 1, C) token, (1, T, C) positions or (C, ch, P, P)
      // kernel taken in its stored order as our (C), (T, C) or (C, ch·P·P).
      let values = parts.flatMap(\.array)
      guard values.count == p.value.count else {
        throw LCError.badData(
          ErrorDetail(
            what: "tensor \(names.joined(separator: " + ")) does not fit \(p.name)", location: configPath,
            expected: "\(p.shape)", got: parts.map { "\($0.shape)" }.joined(separator: " + ")))
      }
      p.value.copy(from: Tensor(p.shape, values))
    }
    let ignored = try accountFor(
      tensors, used: used, missing: missing, ignorable: { $0.hasPrefix(prefix + "pooler.") }, family: "ViT",
      configPath: configPath)
    return (model, Report(modelType: "vit", tensors: used.count, ignored: ignored))
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

  static func copy(_ t: Tensor, into p: Parameter, from name: String, file: String) throws {
    guard t.shape == p.shape else {
      throw LCError.badData(
        ErrorDetail(
          what: "tensor \(name) does not fit \(p.name)", location: file, expected: "\(p.shape)", got: "\(t.shape)"))
    }
    p.value.copy(from: t)
  }
}
