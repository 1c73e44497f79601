import Foundation
import Kernels

/// `layercollapse export`: a checkpoint's model as `model.safetensors` (every parameter,
/// float32, under its PyTorch-style name and in its stored shape) and `config.json`
/// (`{"format": "layercollapse", "format_version": 1, "architecture": {...}}`, the same
/// architecture JSON a checkpoint stores: family, sizes, each unit's activation and whether
/// it is collapsed). `scripts/load_exported.py` rebuilds any such directory as a PyTorch
/// `nn.Module`.
public enum ModelExport {
  public static let format = "layercollapse"
  public static let formatVersion = 1

  /// Writes the two files into `directory` (created if needed), each atomically; returns
  /// their paths.
  @discardableResult
  public static func write(_ model: any Model, to directory: String) throws -> [String] {
    try OutputDirectory.create(directory, what: "the export directory")
    let tensors = model.parameters.all.map { (name: $0.name, tensor: $0.value) }
    let weights = directory + "/model.safetensors"
    try SafeTensorsFile.write(tensors, metadata: ["format": "pt", "producer": format], to: weights)
    let architecture = try JSONFile.encode(model.architecture)
    let config = """
      {"format": "\(format)", "format_version": \(formatVersion), "parameters": \(model.architecture.parameterCount), "architecture": \(architecture)}

      """
    let configPath = directory + "/config.json"
    try AtomicFile.write(Data(config.utf8), to: configPath)
    return [weights, configPath]
  }
}
