import Foundation
import Kernels

/// `layercollapse export --format hf`: a model of a family Hugging Face has (bert, gpt,
/// vit) written back in its layout, loadable by `transformers`' `from_pretrained`:
/// `config.json` (the model type, sizes and class count), `model.safetensors` under
/// transformers' names (the packed qkv split into query/key/value, GPT-2's Conv1D
/// weights transposed back to (in, out), ViT's patch kernel as (C, ch, P, P)), and the
/// tokenizer the checkpoint carries (vocab.txt, or vocab.json and merges.txt).
///
/// Only what the layout can express: every unit uncollapsed and with the model's own
/// activation (a PReLU or a merged MLP has no Hugging Face form; the default export and
/// `scripts/load_exported.py` carry those).
public enum HuggingFaceExport {
  /// A usage error: a family Hugging Face has no classes for (encoder, mixer, vgg).
  static func noLayout(_ kind: ModelKind, source: String) -> LCError {
    LCError.usage(
      ErrorDetail(
        what: "\(kind == .encoder ? "an" : "a") \(kind.rawValue) model has no Hugging Face layout", location: source,
        expected: "a bert, gpt or vit model",
        hint: "Export without --format hf; scripts/load_exported.py rebuilds it in PyTorch"))
  }

  /// Writes the directory (created if needed), each file atomically; returns the paths.
  @discardableResult
  public static func write(_ model: any Model, vocabulary: Vocabulary?, to directory: String, source: String) throws
    -> [String]
  {
    let arch = model.architecture
    let cfg = arch.config
    // The family first: an encoder's PReLU is beside the point when it has no layout at all.
    guard [.bert, .gpt, .vit].contains(cfg.kind) else {
      throw noLayout(cfg.kind, source: source)
    }
    if let u = (0..<arch.unitCount).first(where: { arch.collapsed[$0] || arch.activations[$0] == .prelu }) {
      throw LCError.usage(
        ErrorDetail(
          what: "\(arch.unitName(u)) is \(arch.collapsed[u] ? "collapsed" : "a PReLU"): the Hugging Face layout has "
            + "no form for it", location: source,
          expected: "a model with its own MLPs (an import, or a plain fine-tune)",
          hint: "Export without --format hf (scripts/load_exported.py rebuilds it in PyTorch), or export the model "
            + "before the LayerCollapse fine-tune"))
    }
    let hiddenAct: String =
      switch cfg.activation {
      case .geluExact: "gelu"
      case .gelu: "gelu_new"
      case .relu: "relu"
      case .prelu: "prelu"
      }
    // Floats as the decimals they were written as (0.1, 1e-12, by `clean`), not their binary
    // values widened (0.10000000149011612), which config.json would otherwise show.
    var config: [String: Any] = [
      "layer_norm_eps": clean(cfg.layerNormEpsilon), "transformers_version": "4.57.1", "torch_dtype": "float32",
      ModelExport.exportedByKey: ModelExport.format,
    ]
    var names: [String: [String]]
    var transposed: Set<String> = []
    var prefix: String
    switch cfg.kind {
    case .bert:
      names = HuggingFaceImport.bertNames(layers: cfg.layers)
      prefix = "bert."
      config.merge(
        [
          "model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_size": cfg.dModel,
          "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads, "intermediate_size": cfg.mlpHidden,
          "hidden_act": hiddenAct, "max_position_embeddings": BertFamily.positions(cfg),
          "type_vocab_size": max(cfg.typeVocabSize, 1), "vocab_size": cfg.vocabSize,
          "hidden_dropout_prob": clean(cfg.dropout), "attention_probs_dropout_prob": 0.0,
          "position_embedding_type": "absolute", "pad_token_id": 0,
        ], uniquingKeysWith: { $1 })
      config.merge(labels(cfg.classes), uniquingKeysWith: { $1 })
    case .gpt:
      (names, transposed) = HuggingFaceImport.gpt2Names(layers: cfg.layers)
      prefix = "transformer."
      config.merge(
        [
          "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": cfg.dModel, "n_layer": cfg.layers,
          "n_head": cfg.heads, "n_inner": cfg.mlpHidden, "activation_function": hiddenAct,
          "n_positions": TransformerFamily.positionRows(cfg), "n_ctx": TransformerFamily.positionRows(cfg),
          "vocab_size": cfg.vocabSize, "layer_norm_epsilon": clean(cfg.layerNormEpsilon),
          "resid_pdrop": clean(cfg.dropout), "embd_pdrop": 0.0, "attn_pdrop": 0.0,
          "tie_word_embeddings": cfg.tieWeights,
        ], uniquingKeysWith: { $1 })
      config.removeValue(forKey: "layer_norm_eps")
      // GPT2Config's default bos/eos is 50,256 (GPT-2's <|endoftext|>): right only for that
      // vocabulary. The tokenizer's own <|endoftext|> when it has one, else none (null),
      // never an id past a smaller vocabulary.
      var endOfText: Any = NSNull()
      if case .corpus(let c)? = vocabulary, let id = c.bpe?.vocabulary["<|endoftext|>"], Int(id) < cfg.vocabSize {
        endOfText = Int(id)
      }
      config["bos_token_id"] = endOfText
      config["eos_token_id"] = endOfText
    case .vit:
      names = HuggingFaceImport.vitNames(layers: cfg.layers)
      prefix = "vit."
      config.merge(
        [
          "model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": cfg.dModel,
          "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads, "intermediate_size": cfg.mlpHidden,
          "hidden_act": hiddenAct, "image_size": cfg.imageSize, "patch_size": cfg.patchSize,
          "num_channels": cfg.imageChannels, "qkv_bias": true, "hidden_dropout_prob": clean(cfg.dropout),
          "attention_probs_dropout_prob": 0.0,
        ], uniquingKeysWith: { $1 })
      config.merge(labels(cfg.classes), uniquingKeysWith: { $1 })
    default:
      throw noLayout(cfg.kind, source: source)
    }
    var tensors: [(name: String, tensor: Tensor)] = []
    for p in model.parameters.all {
      if p.name.hasPrefix("head.") {
        // An untied GPT-2 head is lm_head.weight, beside the transformer, not under it.
        let hfName = cfg.kind == .gpt ? "lm_head.weight" : "classifier." + p.name.dropFirst("head.".count)
        tensors.append((hfName, p.value))
        continue
      }
      guard let targets = names[p.name] else {
        throw LCError.other(
          ErrorDetail(
            what: "parameter \(p.name) has no Hugging Face name", location: source,
            hint: "This is a bug in layercollapse's export; please report it"))
      }
      let parts = split(p.value, into: targets.count)
      for (target, part) in zip(targets, parts) {
        tensors.append(
          (prefix + target, huggingFaceShape(p.name, part, cfg: cfg, transpose: transposed.contains(p.name))))
      }
    }
    try OutputDirectory.create(directory, what: "the export directory")
    let weights = directory + "/model.safetensors"
    try SafeTensorsFile.write(tensors, metadata: ["format": "pt", "producer": ModelExport.format], to: weights)
    let configPath = directory + "/config.json"
    let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
    try AtomicFile.write(json + Data("\n".utf8), to: configPath)
    var written = [weights, configPath]
    written += try writeTokenizer(
      vocabulary, to: directory,
      maxLength: cfg.kind == .bert
        ? BertFamily.positions(cfg) : cfg.kind == .gpt ? TransformerFamily.positionRows(cfg) : nil)
    if cfg.kind == .vit, case .imageNormalization(let n)? = vocabulary {
      written.append(try writePreprocessor(n, imageSize: cfg.imageSize, to: directory))
    }
    return written
  }

  /// A ViT's preprocessor_config.json as `ViTImageProcessor` reads it: bytes rescaled to
  /// [0, 1], normalized with the model's mean and std, and resized (bilinear) to its size.
  static func writePreprocessor(_ n: ChannelStats, imageSize: Int, to directory: String) throws -> String {
    let values: [String: Any] = [
      "image_processor_type": "ViTImageProcessor", "do_rescale": true, "rescale_factor": 1.0 / 255,
      "do_normalize": true, "image_mean": n.mean.map(clean), "image_std": n.std.map(clean), "do_resize": true,
      "resample": 2, "size": ["height": imageSize, "width": imageSize],
    ]
    let path = directory + "/preprocessor_config.json"
    try AtomicFile.write(
      try JSONSerialization.data(withJSONObject: values, options: [.prettyPrinted, .sortedKeys]) + Data("\n".utf8),
      to: path)
    return path
  }

  /// `num_labels` as transformers writes it: id2label and label2id.
  static func labels(_ classes: Int) -> [String: Any] {
    var id2label: [String: String] = [:]
    var label2id: [String: Int] = [:]
    for i in 0..<classes {
      id2label["\(i)"] = "LABEL_\(i)"
      label2id["LABEL_\(i)"] = i
    }
    return ["id2label": id2label, "label2id": label2id]
  }

  /// A packed parameter (qkv) as its `count` equal row blocks; others as they are.
  static func split(_ t: Tensor, into count: Int) -> [Tensor] {
    guard count > 1 else { return [t] }
    let rows = t.shape[0] / count
    let width = t.count / t.shape[0]
    let values = t.array
    return (0..<count).map { k in
      Tensor([rows] + t.shape.dropFirst(), Array(values[(k * rows * width)..<((k + 1) * rows * width)]))
    }
  }

  /// Our shape → transformers': Conv1D weights (in, out), ViT's patch kernel
  /// (C, ch, P, P), its [CLS] (1, 1, C) and positions (1, T, C).
  static func huggingFaceShape(_ name: String, _ t: Tensor, cfg: ModelConfig, transpose: Bool) -> Tensor {
    if transpose { return Transpose.matrix(t) }
    switch name {
    case "patch_emb.weight":
      return Tensor([t.shape[0], cfg.imageChannels, cfg.patchSize, cfg.patchSize], t.array)
    case "cls_token": return Tensor([1, 1, t.count], t.array)
    case "pos_emb.weight" where cfg.kind == .vit: return Tensor([1] + t.shape, t.array)
    default: return t
    }
  }

  /// The checkpoint's tokenizer in the files transformers reads beside the model.
  static func writeTokenizer(_ vocabulary: Vocabulary?, to directory: String, maxLength: Int? = nil) throws -> [String]
  {
    switch vocabulary {
    case .wordPiece(let w)?:
      let vocab = directory + "/vocab.txt"
      try AtomicFile.write(Data((w.vocabulary.joined(separator: "\n") + "\n").utf8), to: vocab)
      let settings = directory + "/tokenizer_config.json"
      var values: [String: Any] = [
        "do_lower_case": w.lowercase, "strip_accents": w.stripAccents, "tokenizer_class": "BertTokenizer",
      ]
      // The longest input the model's positions take (transformers warns past it).
      if let n = maxLength { values["model_max_length"] = n }
      try AtomicFile.write(try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]), to: settings)
      return [vocab, settings]
    case .corpus(let c)?:
      guard let bpe = c.bpe else { return [] }
      let vocab = directory + "/vocab.json"
      try AtomicFile.write(
        try JSONSerialization.data(withJSONObject: bpe.vocabulary, options: [.sortedKeys]), to: vocab)
      let merges = directory + "/merges.txt"
      let lines = ["#version: 0.2"] + bpe.merges.map { $0.0 + " " + $0.1 }
      try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: merges)
      // GPT2Tokenizer's settings: no prefix space (as we encode), <|endoftext|> as its
      // special tokens when the vocabulary has it, and none otherwise (its default would
      // add a token past the embedding's rows).
      let settings = directory + "/tokenizer_config.json"
      let endOfText: Any = bpe.vocabulary["<|endoftext|>"] == nil ? NSNull() : "<|endoftext|>"
      var values: [String: Any] = [
        "tokenizer_class": "GPT2Tokenizer", "add_prefix_space": false, "bos_token": endOfText,
        "eos_token": endOfText, "unk_token": endOfText,
      ]
      if let n = maxLength { values["model_max_length"] = n }
      try AtomicFile.write(try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]), to: settings)
      return [vocab, merges, settings]
    default: return []
    }
  }
}
