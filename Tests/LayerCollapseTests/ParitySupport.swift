import Foundation
import Kernels
import LayerCollapse

/// What one parity check needs from our side, for one model and one batch: the batch, our
/// logits, loss and penalty, every parameter's gradient after one forward/backward with
/// the LayerCollapse penalty, and every parameter after one `Trainer.step` on the same
/// batch. `scripts/torch_reference.py --check` recomputes all of it in PyTorch.
///
/// HDF5 layout (`write(to:)`):
/// ```
/// /                 attributes format = "layercollapse-parity-bundle", version = 1
/// /meta/settings    string, JSON {lr, step_lr, alpha_lr_scale, beta1, beta2, eps, weight_decay,
///                   grad_clip, lambda, mode, blocks, grad_norm}
/// /input/ids        int64 (B, T)            encoder, gpt
/// /input/valid      int64 (B, T), 1 = token, 0 = padding (absent when the model got no mask)
/// /input/images     float32 (B, C, S, S)    vit
/// /targets          int64 (N): (B) labels or (B·T) next tokens; -1 = ignored
/// /logits           float32 (N, K)
/// /loss, /penalty   float32 (1): mean cross-entropy; λ·Σ(α−1)² over the selected blocks
/// /grads/<name>     float32, "." -> "/" as in checkpoints: d(loss + penalty)/dθ (the penalty
///                   only in penalty mode), before clipping
/// /updated/<name>   float32: the parameter after one step
/// ```
/// Built only from public API: `Model.forward/loss/backward`, `Regularizer`, `Trainer`.
struct ParityBundle {
  static let format: String = "layercollapse-parity-bundle"

  struct Settings: Codable {
    var lr: Double
    /// The rate the step used: the schedule's value at step 0 (the peak when warm-up is 0).
    var stepLR: Double
    var alphaLRScale: Double
    var beta1: Double
    var beta2: Double
    var eps: Double
    var weightDecay: Double
    var gradClip: Double
    var lambda: Double
    var mode: String
    var blocks: [Int]
    /// Global gradient norm the step saw (before clipping); informational.
    var gradNorm: Double

    enum CodingKeys: String, CodingKey {
      case lr
      case stepLR = "step_lr"
      case alphaLRScale = "alpha_lr_scale"
      case beta1, beta2, eps
      case weightDecay = "weight_decay"
      case gradClip = "grad_clip"
      case lambda, mode, blocks
      case gradNorm = "grad_norm"
    }
  }

  var settings: Settings
  var input: ModelInput
  var targets: [Int32]
  var logits: Tensor
  var loss: Float
  var penalty: Double
  var grads: [(name: String, value: Tensor)]
  var updated: [(name: String, value: Tensor)]

  /// Runs our side on `model` (left unchanged: the step runs on a copy).
  /// `training`: the forward in training mode (BatchNorm on batch statistics, as PyTorch's
  /// module in its default mode; dropout must be 0), the running statistics of the copy
  /// that takes the step restored first, so that they move once, as PyTorch's do.
  static func make(
    model: any Model, input: ModelInput, targets: [Int32], regularizer: Regularizer,
    optimizer: OptimizerSettings, training: Bool = false
  ) -> ParityBundle {
    let params: ParameterSet = model.parameters
    params.zeroGradients()
    let buffers: [(name: String, value: Tensor)] = params.all.filter { $0.role == .buffer }.map {
      ($0.name, $0.value.clone())
    }
    var unused: RNG = RNG(seed: 1, stream: "parity forward")
    let logits: Tensor = model.forward(input, training: training, rng: &unused).clone()
    let loss: Float = model.loss(targets: targets)
    model.backward()
    let penalty: Double = regularizer.penalty(model)
    regularizer.addGradient(model)
    let grads: [(name: String, value: Tensor)] = params.all.filter { $0.role != .buffer }.map {
      ($0.name, $0.grad.clone())
    }

    let copy: any Model = ModelRegistry.build(model.architecture)
    let unmatched: [String] = copy.copyParameters(from: params)
    precondition(unmatched.isEmpty, "copy of the model misses \(unmatched)")
    for (name, value) in buffers { copy.parameters[name]!.value.copy(from: value) }
    let trainer: Trainer = Trainer(model: copy, regularizer: regularizer, settings: optimizer)
    var rng: RNG = RNG(seed: 1, stream: "parity")
    let report: StepReport = trainer.step(input, targets: targets, rng: &rng)
    let updated: [(name: String, value: Tensor)] = copy.parameters.all.map { ($0.name, $0.value.clone()) }

    let settings: Settings = Settings(
      lr: optimizer.learningRate, stepLR: report.learningRate,
      alphaLRScale: regularizer.settings.alphaLearningRateScale, beta1: optimizer.beta1, beta2: optimizer.beta2,
      eps: optimizer.epsilon, weightDecay: optimizer.weightDecay, gradClip: optimizer.gradClip,
      lambda: regularizer.settings.lambda, mode: regularizer.settings.mode.rawValue, blocks: regularizer.units,
      gradNorm: Double(report.gradNorm))
    return ParityBundle(
      settings: settings, input: input, targets: targets, logits: logits, loss: loss, penalty: penalty, grads: grads,
      updated: updated)
  }

  func write(to path: String) throws {
    let encoder: JSONEncoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json: String = String(decoding: try encoder.encode(settings), as: UTF8.self)
    try HDF5File.writeAtomically(to: path) { f in
      try f.setAttribute("format", string: Self.format)
      try f.setAttribute("version", int64: 1)
      try f.writeString(json, at: "/meta/settings")
      switch input {
      case .tokens(let ids, let valid, let batch, let time):
        try f.writeInt64s(ids.map { Int64($0) }, shape: [batch, time], at: "/input/ids")
        if let valid = valid {
          try f.writeInt64s(valid.map { $0 ? 1 : 0 }, shape: [batch, time], at: "/input/valid")
        }
      case .images(let images):
        try f.writeTensor(images, at: "/input/images")
      }
      try f.writeInt64s(targets.map { Int64($0) }, at: "/targets")
      try f.writeTensor(logits, at: "/logits")
      try f.writeFloats([loss], shape: [1], at: "/loss")
      try f.writeFloats([Float(penalty)], shape: [1], at: "/penalty")
      for (name, value) in grads { try f.writeTensor(value, at: Checkpoint.datasetPath(name, under: "/grads")) }
      for (name, value) in updated { try f.writeTensor(value, at: Checkpoint.datasetPath(name, under: "/updated")) }
    }
  }

  /// The stored gradient of `name` (to tamper with in the tests that make the check fail).
  func gradient(_ name: String) -> Tensor {
    grads.first { $0.name == name }!.value
  }
}

/// Finding and running `scripts/torch_reference.py` with the PyTorch venv.
enum Parity {
  struct Result {
    var code: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + (stderr.isEmpty ? "" : "\n--- stderr ---\n" + stderr) }
  }

  static let environment: [String: String] = ProcessInfo.processInfo.environment

  /// `LAYERCOLLAPSE_PYTHON`, else the venv that `make torch-env` creates.
  static let python: String = {
    if let p = environment["LAYERCOLLAPSE_PYTHON"], !p.isEmpty { return p }
    let home: String = environment["HOME"] ?? NSHomeDirectory()
    return home + "/.cache/layercollapse/torch-venv/bin/python"
  }()

  /// CI sets `CI`; there a missing PyTorch is a failure, not a skip.
  static let isCI: Bool = !(environment["CI"] ?? "").isEmpty

  /// The repository root, from this file's path (Tests/LayerCollapseTests/ParitySupport.swift).
  static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  static var script: String { root.appendingPathComponent("scripts/torch_reference.py").path }

  /// Why the parity tests cannot run here, or nil when `python` imports torch, h5py and numpy.
  static let torchProblem: String? = {
    guard FileManager.default.isExecutableFile(atPath: python) else { return "\(python) does not exist" }
    guard let r = try? run(python, ["-c", "import torch, h5py, numpy"]) else { return "\(python) does not start" }
    if r.code == 0 { return nil }
    let last: String = r.stderr.split(separator: "\n").last.map(String.init) ?? "exit \(r.code)"
    return "\(python) cannot import torch, h5py and numpy (\(last))"
  }()

  /// Whether the suite runs: PyTorch is there, or this is CI (where its absence fails).
  /// A local skip prints why, once.
  static let shouldRun: Bool = {
    if torchProblem == nil || isCI { return true }
    print("ParityTests skipped: \(torchProblem!). Run `make torch-env` (or set LAYERCOLLAPSE_PYTHON) to run them.")
    return false
  }()

  static let missingTorchMessage: String =
    "PyTorch parity tests need PyTorch: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"

  /// Runs the reference script with `args`.
  static func reference(_ args: [String]) throws -> Result {
    let r: Result = try run(python, [script] + args)
    if verbose { say("$ torch_reference.py \(args.joined(separator: " "))\n\(r.output)\n") }
    return r
  }

  static func run(_ executable: String, _ args: [String]) throws -> Result {
    let p: Process = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    var env: [String: String] = environment
    env["OMP_NUM_THREADS"] = "1"  // tiny models; the suite runs beside other tests on 2 cores
    p.environment = env
    let out: Pipe = Pipe()
    let err: Pipe = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o: Data = out.fileHandleForReading.readDataToEndOfFile()
    let e: Data = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Result(
      code: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
  }

  /// `LAYERCOLLAPSE_PARITY_VERBOSE` set: print every table the script prints and keep the
  /// checkpoints and bundles (their directory is printed) to rerun the script by hand.
  static let verbose: Bool = !(environment["LAYERCOLLAPSE_PARITY_VERBOSE"] ?? "").isEmpty

  /// One unbuffered write, so a long table is not cut by the test runner's own output.
  static func say(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

  /// A fresh scratch directory, removed by `removeScratch`.
  static func makeScratch() throws -> String {
    let dir: String = NSTemporaryDirectory() + "lc-parity-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  static func removeScratch(_ dir: String) {
    if verbose {
      say("parity files kept in \(dir)\n")
      return
    }
    try? FileManager.default.removeItem(atPath: dir)
  }

  /// The rows of the script's table that failed, from its closing "MISMATCH in: a, b" line.
  static func mismatched(_ stdout: String) -> [String] {
    let prefix: String = "MISMATCH in: "
    guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return [] }
    return line.dropFirst(prefix.count).components(separatedBy: ", ")
  }
}

/// Tiny models for the parity tests: three blocks so that a GELU, a PReLU and a collapsed
/// block can sit in one model; 9 ViT patches (12×12 images, 4×4 patches) so the raster
/// order of patches is tested beyond 2×2.
enum ParityModels {
  static func config(_ kind: ModelKind, activation: Activation, pooling: Pooling = .mean, tied: Bool = true)
    -> ModelConfig
  {
    switch kind {
    case .encoder:
      ModelConfig(
        kind: .encoder, dModel: 8, heads: 2, layers: 3, mlpHidden: 32, maxLen: 6, vocabSize: 11, classes: 3,
        pooling: pooling, activation: activation)
    case .vit:
      ModelConfig(
        kind: .vit, dModel: 8, heads: 2, layers: 3, mlpHidden: 32, classes: 3, imageSize: 12, imageChannels: 3,
        patchSize: 4, activation: activation)
    case .gpt:
      ModelConfig(
        kind: .gpt, dModel: 8, heads: 2, layers: 3, mlpHidden: 32, maxLen: 6, vocabSize: 7, tieWeights: tied,
        activation: activation)
    case .bert:  // not mirrored in torch_reference.py: BertImportTests holds it to transformers
      Fixtures.config(.bert)
    case .mixer:  // 12×12 images in 3×3 patches: 16 patches; token MLP 16 → 12, channel MLP 8 → 20
      ModelConfig(
        kind: .mixer, dModel: 8, heads: 1, layers: 3, mlpHidden: 20, classes: 3, imageSize: 12, imageChannels: 3,
        patchSize: 3, activation: activation, tokenMLPHidden: 12)
    case .vgg:
      Fixtures.vgg()
    }
  }

  /// A model with random weights at the scale of the gradient tests (so gradients are
  /// O(0.1), not GPT-2 init's 1e-3) and the given α per PReLU block.
  static func model(_ arch: Architecture, seed: UInt64, alphas: [Int: Float] = [:]) -> any Model {
    let model: any Model = ModelRegistry.build(arch)
    var rng: RNG = RNG(seed: seed, stream: "parity-weights")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 1)
    for (unit, alpha) in alphas { model.alphaParameter(unit: unit)!.value.fill(alpha) }
    return model
  }

  /// A batch of 4: encoder sequences with 0–2 padding positions, gpt targets with two
  /// ignored (-1) positions, random images.
  static func batch(_ cfg: ModelConfig, seed: UInt64) -> (input: ModelInput, targets: [Int32]) {
    var rng: RNG = RNG(seed: seed, stream: "parity-batch")
    var (input, targets) = Fixtures.batch(cfg, batch: 4, rng: &rng)
    if cfg.kind == .gpt {
      targets[3] = CrossEntropy.ignoreIndex
      targets[targets.count - 1] = CrossEntropy.ignoreIndex
    }
    return (input, targets)
  }

  /// AdamW without clipping or warm-up: the first step uses the peak rate.
  static func optimizer(gradClip: Double = 0) -> OptimizerSettings {
    OptimizerSettings(
      learningRate: 2e-3, warmupSteps: 0, totalSteps: 100, weightDecay: 0.1, beta1: 0.9, beta2: 0.98, epsilon: 1e-8,
      gradClip: gradClip)
  }

  static let configText: String = "# parity test model: built in ParityTests, not from a config\n"

  static func save(_ model: any Model, to path: String) throws {
    try Checkpoint(model: model, configText: configText, vocabulary: nil).save(to: path)
  }
}
