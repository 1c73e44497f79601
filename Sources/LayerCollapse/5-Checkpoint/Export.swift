import Foundation
import Kernels

/// `layercollapse export`: a checkpoint's model as `model.safetensors` (every parameter,
/// float32, under its PyTorch-style name and in its stored shape) and `config.json`
/// (`{"format": "layercollapse", "format_version": 1, "architecture": {...}}`, the same
/// architecture JSON a checkpoint stores: family, sizes, each unit's activation, whether
/// it is collapsed and whether that merge was approximate, plus `preprocessing`: what turns raw inputs into the model's). An
/// imported BERT's or GPT-2's tokenizer files go beside them (vocab.txt and
/// tokenizer_config.json, or vocab.json, merges.txt and tokenizer_config.json). `scripts/load_exported.py` rebuilds any such directory as a PyTorch
/// `nn.Module` and prepares images with the stored normalization.
public enum ModelExport {
  public static let format = "layercollapse"
  public static let formatVersion = 1

  /// Writes the files into `directory` (created if needed), each atomically; returns their
  /// paths. `vocabulary` is the checkpoint's (nil: `preprocessing` says what is unknown).
  @discardableResult
  public static func write(_ model: any Model, vocabulary: Vocabulary?, to directory: String) throws -> [String] {
    try OutputDirectory.create(directory, what: "the export directory")
    let tensors = model.parameters.all.map { (name: $0.name, tensor: $0.value) }
    let weights = directory + "/model.safetensors"
    try SafeTensorsFile.write(tensors, metadata: ["format": "pt", "producer": format], to: weights)
    let tokenizerFiles = try HuggingFaceExport.writeTokenizer(vocabulary, to: directory)
    let architecture = try JSONFile.encode(model.architecture)
    let steps = preprocessing(
      model.config, vocabulary, files: tokenizerFiles.map { ($0 as NSString).lastPathComponent })
    let preprocessing = String(
      decoding: try JSONSerialization.data(withJSONObject: steps, options: [.sortedKeys]), as: UTF8.self)
    let config = """
      {"format": "\(format)", "format_version": \(formatVersion), "parameters": \(model.architecture.parameterCount), "architecture": \(architecture), "preprocessing": \(preprocessing)}

      """
    let configPath = directory + "/config.json"
    try AtomicFile.write(Data(config.utf8), to: configPath)
    return [weights, configPath] + tokenizerFiles
  }

  /// The files an export writes, replaces or removes in its directory.
  public static let ownFiles = ["config.json", "model.safetensors"] + tokenizerFiles + companionFiles

  /// The key a Hugging Face export's config.json carries (value `format`), so that a later
  /// export knows the directory as an earlier export's; transformers keeps it as an
  /// attribute and ignores it.
  public static let exportedByKey = "exported_by"

  /// Refuses (73), unless `overwrite`, a directory where an export would replace or remove
  /// files that no export of ours wrote: a Hugging Face model directory given as -o lost its
  /// weights, config and tokenizer files. A directory whose config.json an earlier export
  /// wrote (either format) is replaced as that export; other files are never touched.
  public static func checkDestination(_ directory: String, overwrite: Bool) throws {
    let present = ownFiles.filter { FileManager.default.fileExists(atPath: directory + "/" + $0) }
    guard !present.isEmpty, !overwrite, !isEarlierExport(directory) else { return }
    throw LCError.cannotCreate(
      ErrorDetail(
        what: "refusing to replace files an export did not write", location: directory,
        expected: "a new or empty directory, or an earlier export's",
        got: present.joined(separator: ", "),
        hint:
          "Choose another -o, or add --overwrite to replace them (the export also removes tokenizer files its model has no use for)"
      ))
  }

  /// Whether `directory` holds an export's files (either format): its config.json says so,
  /// and so does its model.safetensors, when there is one, in the header's `producer`
  /// (transformers' save_pretrained keeps config.json's unknown keys, so a model saved
  /// from a loaded export would pass on config.json alone, but it rewrites the header).
  static func isEarlierExport(_ directory: String) -> Bool {
    guard let object = configObject(directory),
      object["format"] as? String == format || object[exportedByKey] as? String == format
    else { return false }
    let weights = directory + "/model.safetensors"
    return !FileManager.default.fileExists(atPath: weights) || safeTensorsProducer(weights) == format
  }

  /// `directory`/config.json as a JSON object; nil when it is missing or is not one.
  static func configObject(_ directory: String) -> [String: Any]? {
    FileManager.default.contents(atPath: directory + "/config.json").flatMap {
      try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
    }
  }

  /// The `producer` in a safetensors file's header metadata, reading the header only.
  static func safeTensorsProducer(_ path: String) -> String? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    guard let size = try? handle.read(upToCount: 8), size.count == 8 else { return nil }
    let length = size.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    guard length <= 100_000_000, let header = try? handle.read(upToCount: Int(length)),
      let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
      let metadata = object["__metadata__"] as? [String: Any]
    else { return nil }
    return metadata["producer"] as? String
  }

  /// The tokenizer (and image preprocessor) files either export format may write beside
  /// the model.
  public static let tokenizerFiles = [
    "vocab.txt", "tokenizer_config.json", "vocab.json", "merges.txt", "preprocessor_config.json",
  ]

  /// Files transformers reads beside a model that no export writes, but a Hugging Face
  /// directory replaced with --overwrite may hold: the replaced model's, which would
  /// contradict the export (`AutoTokenizer` prefers tokenizer.json to vocab.json).
  public static let companionFiles = [
    "tokenizer.json", "special_tokens_map.json", "added_tokens.json", "generation_config.json",
  ]

  /// Removes the tokenizer files an earlier export left in `directory` that this one did
  /// not write (`written`): a GPT-2 exported over a BERT's export would otherwise sit beside
  /// its vocab.txt, which `AutoTokenizer` reads first. With `overwrite` (a model no export
  /// wrote is being replaced) its `companionFiles` go too; no export writes them, so beside
  /// an earlier export they are the user's and stay. Returns the paths removed.
  public static func removeStaleTokenizerFiles(in directory: String, written: [String], overwrite: Bool = false)
    throws -> [String]
  {
    let kept = Set(written.map { ($0 as NSString).lastPathComponent })
    var removed: [String] = []
    for name in tokenizerFiles + (overwrite ? companionFiles : []) where !kept.contains(name) {
      let path = directory + "/" + name
      guard FileManager.default.fileExists(atPath: path) else { continue }
      try Paths.remove(
        path, what: "the tokenizer file \(name)", hint: "Remove it by hand, or export into a new directory")
      removed.append(path)
    }
    return removed
  }

  /// How raw inputs become the model's: an image model's size and per-channel
  /// normalization (a pixel p of channel c → (p/255 − mean[c]) / std[c], then a bilinear
  /// resize to `image_size`); a token model's tokenizer (its vocabulary in id order, or the
  /// files written beside) and sequence length.
  static func preprocessing(_ cfg: ModelConfig, _ vocabulary: Vocabulary?, files: [String]) -> [String: Any] {
    var out: [String: Any] = [:]
    if ModelRegistry.family(cfg.kind).fits(cfg.kind, task: .cifar10) {
      out["input"] = "images"
      out["image_size"] = cfg.imageSize
      if case .imageNormalization(let n)? = vocabulary {
        out["mean"] = n.mean.map(clean)
        out["std"] = n.std.map(clean)
      } else {
        out["normalization"] =
          "not stored: the checkpoint predates it (eval's data.mean/std, or the training split's statistics)"
      }
      return out
    }
    out["input"] = "tokens"
    out["max_len"] = cfg.maxLen
    switch vocabulary {
    case .words(let t)?:
      out["tokenizer"] = "words"
      out["tokens"] = t.tokens
    case .corpus(let c)?:
      out["tokenizer"] = c.kind.rawValue
      if c.kind == .character { out["characters"] = c.characters.map { Int($0) } }
    case .wordPiece(let w)?:
      out["tokenizer"] = "wordpiece"
      out["lowercase"] = w.lowercase
      out["strip_accents"] = w.stripAccents
    case .imageNormalization?, nil:
      out["tokenizer"] = "not stored"
    }
    if !files.isEmpty { out["files"] = files }
    return out
  }
}
