// The reference models of `make bench` (three transformers, an MLP-Mixer and a
// MiniLM-size BERT), their batches and the batch files both benchmark sides read.
import Foundation
import Kernels
import LayerCollapse

/// One reference model and its training batch size.
struct ModelCase: Sendable {
  /// What `--train-only` and `LC_BENCH_SHAPES` take: vit, encoder, gpt, mixer, minilm, vgg.
  var name: String
  var label: String
  var config: ModelConfig
  var batch: Int
  /// Batch sizes of the inference rows.
  var inferBatches: [Int] = [1, 256]
  /// Units that get a PReLU (and collapse in the inference rows); nil: the last half of
  /// the blocks.
  var preluOverride: [Int]? = nil
  /// Speed targets against PyTorch eager (issue 7's 1.5× for the transformers and the
  /// Mixer; issue 15's 1.0× training and 1.2× inference for the VGG, against oneDNN's
  /// convolutions).
  var trainTarget: Double = 1.5
  var inferTarget: Double = 1.5

  /// Whether the transformer family runs it (the kernel breakdown rebuilds a
  /// transformer's step from its kernels).
  var isTransformer: Bool { ModelRegistry.family(config.kind) == TransformerFamily.self }

  /// The LayerCollapse units of the last half of the blocks, with a PReLU; the others GELU.
  var preluUnits: [Int] {
    preluOverride
      ?? Architecture(config: config).units(ofBlocks: Architecture.lastBlocks(config.layers / 2, of: config.layers))
  }

  var architecture: Architecture {
    var arch = Architecture(config: config)
    for u in preluUnits { arch.activations[u] = .prelu }
    return arch
  }
}

let modelCases: [ModelCase] = [
  ModelCase(
    name: "vit", label: "vit (a)",
    config: ModelConfig(
      kind: .vit, dModel: 128, heads: 4, layers: 4, mlpHidden: 512, classes: 10, imageSize: 32, patchSize: 4),
    batch: 64),
  ModelCase(
    name: "encoder", label: "encoder (b)",
    config: ModelConfig(
      kind: .encoder, dModel: 128, heads: 4, layers: 4, mlpHidden: 512, maxLen: 64, vocabSize: 8192, classes: 2),
    batch: 32),
  ModelCase(
    name: "gpt", label: "gpt (c)",
    config: ModelConfig(kind: .gpt, dModel: 128, heads: 4, layers: 4, mlpHidden: 512, maxLen: 128, vocabSize: 256),
    batch: 32),
  ModelCase(
    name: "mixer", label: "mixer (d)",
    config: ModelConfig(
      kind: .mixer, dModel: 128, heads: 1, layers: 4, mlpHidden: 512, classes: 10, imageSize: 32, patchSize: 4,
      tokenMLPHidden: 64),
    batch: 64),
  ModelCase(
    name: "minilm", label: "minilm (e)", config: miniLM, batch: 32, inferBatches: [1, 128]),
  ModelCase(
    name: "vgg", label: "vgg (f)", config: vgg, batch: 64, preluOverride: [0, 1], trainTarget: 1.0, inferTarget: 1.2),
]

/// Experiment 8's VGG: VGG-11 layers at a quarter of the channels with BatchNorm on 32×32
/// images, pooled 2×2, a 512 → 1024 → 1024 → 10 head (73 % of the parameters), both head
/// activations collapsed in the inference rows.
let vgg: ModelConfig = {
  var c = ModelConfig(
    kind: .vgg, dModel: 128, heads: 1, layers: 2, mlpHidden: 1024, dropout: 0.5, classes: 10, imageSize: 32,
    imageChannels: 3, activation: .relu)
  c.convLayers = [16, 0, 32, 0, 64, 64, 0, 128, 128, 0, 128, 128, 0]
  c.convBatchNorm = true
  c.pooledSize = 2
  return c
}()

/// all-MiniLM-L6-v2's shape (issue 16's pretrained model): BERT, d 384, 12 heads, 6
/// layers, intermediate 1536, 30,522 WordPiece tokens, 64-token sentences, 2 classes.
let miniLM: ModelConfig = {
  var c = ModelConfig(
    kind: .bert, dModel: 384, heads: 12, layers: 6, mlpHidden: 1536, maxLen: 64, vocabSize: 30522, classes: 2,
    activation: .geluExact)
  c.maxPositions = 512
  c.typeVocabSize = 2
  c.layerNormEpsilon = 1e-12
  return c
}()

func modelCase(named name: String) -> ModelCase? { modelCases.first { $0.name == name } }

/// The cases `LC_BENCH_SHAPES` selects (all when unset); unknown names are an error.
func selectedModelCases() throws -> [ModelCase] {
  guard let names = environmentList("LC_BENCH_SHAPES") else { return modelCases }
  return try names.map { n in
    guard let c = modelCase(named: n) else {
      throw BenchError("LC_BENCH_SHAPES: unknown model \(n) (known: \(shapeNames))")
    }
    return c
  }
}

/// The trainer `make bench` times: AdamW (lr 1e-3, weight decay 0.01, clip 1), LC penalty
/// λ = 1 on the PReLU blocks.
func benchTrainer(_ model: any Model, preluUnits: [Int]) -> Trainer {
  Trainer(
    model: model,
    regularizer: Regularizer(
      settings: LayerCollapseSettings(lambda: 1, blocks: preluUnits.count), units: preluUnits),
    settings: OptimizerSettings(learningRate: 1e-3, totalSteps: 1000))
}

/// Random inputs and targets of the case's shape (`ModelFamily.exampleBatch`).
func syntheticBatch(_ c: ModelCase, batch: Int, rng: inout RNG) -> (ModelInput, [Int32]) {
  let example = ModelRegistry.family(c.config.kind).exampleBatch(c.config, batch: batch, rng: &rng)
  return (example.input, example.targets)
}

func batchSize(_ input: ModelInput) -> Int {
  switch input {
  case .images(let images): return images.shape[0]
  case .tokens(_, _, let batch, _): return batch
  }
}

/// A batch file (read by scripts/torch_bench.py too): /images float32 (B, C, S, S) or
/// /ids int64 (B, T); /targets int64.
func writeBatch(_ input: ModelInput, targets: [Int32], to path: String) throws {
  try HDF5File.writeAtomically(to: path) { f in
    switch input {
    case .images(let images):
      try f.writeTensor(images, at: "/images")
    case .tokens(let ids, _, let batch, let time):
      try f.writeInt64s(ids.map { Int64($0) }, shape: [batch, time], at: "/ids")
    }
    try f.writeInt64s(targets.map { Int64($0) }, at: "/targets")
  }
}

func readBatch(_ path: String) throws -> (ModelInput, [Int32]) {
  let f: HDF5File = try HDF5File(reading: path)
  defer { try? f.close() }
  let targets: [Int32] = try f.readInt64s(at: "/targets").map { Int32($0) }
  if f.exists("/images") { return (.images(try f.readTensor(at: "/images")), targets) }
  let shape: [Int] = try f.shape(of: "/ids")
  guard shape.count == 2 else { throw BenchError("\(path): /ids has shape \(shape), not (batch, time)") }
  let ids: [Int32] = try f.readInt64s(at: "/ids").map { Int32($0) }
  return (.tokens(ids: ids, valid: nil, batch: shape[0], time: shape[1]), targets)
}
