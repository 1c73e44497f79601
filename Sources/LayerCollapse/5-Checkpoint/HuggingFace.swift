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
  }

  public static let supportedTypes = ["gpt2"]

  public static func load(directory: String) throws -> (model: any Model, report: Report) {
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
    default:
      throw LCError.usage(
        ErrorDetail(
          what: "model_type \(modelType) cannot be imported yet", location: configPath,
          expected: supportedTypes.joined(separator: ", "), got: modelType,
          hint: "BERT and ViT imports are planned (project issue 16)"))
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
    let unexpected = tensors.keys.filter { !used.contains($0) && !ignorable($0) }.sorted()
    guard missing.isEmpty && unexpected.isEmpty else {
      throw LCError.badData(
        ErrorDetail(
          what: "the checkpoint does not match a GPT-2 of its config"
            + (missing.isEmpty ? "" : "; missing: " + missing.prefix(6).joined(separator: ", "))
            + (unexpected.isEmpty ? "" : "; unexpected: " + unexpected.prefix(6).joined(separator: ", ")),
          location: configPath, hint: "Is config.json the one saved with these weights?"))
    }
    let ignored = tensors.keys.filter { !used.contains($0) && ignorable($0) }.sorted()
    return (model, Report(modelType: "gpt2", tensors: used.count, ignored: ignored))
  }
}
