import Foundation
import Kernels
import LayerCollapse
import Testing

/// The MLP-Mixer family through the same `Model` interface as the transformers: gradients
/// against finite differences, closed-form counts against the built model, exact collapse
/// of both kinds of unit, checkpoints, and the command line.
@Suite struct MixerTests {
  static func mixer(
    _ activations: [Activation], collapsed: [Bool] = [false, false, false, false], alpha: Float, seed: UInt64
  )
    -> any Model
  {
    let arch = Architecture(config: Fixtures.config(.mixer), activations: activations, collapsed: collapsed)
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: seed, stream: "mixer")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: alpha)
    return model
  }

  /// Every parameter's gradient (tolerances as `ModelGradientTests`): GELU everywhere; PReLU
  /// token and channel MLPs in the last block with the penalty on; and a collapsed unit of
  /// each kind.
  @Test func gradientsMatchFiniteDifferences() {
    let gelu = Self.mixer([.gelu, .gelu, .gelu, .gelu], alpha: 0, seed: 1)
    let none = Regularizer(settings: LayerCollapseSettings(), units: [])
    var r = ModelGradientTests.check(gelu, regularizer: none, seed: 2)
    #expect(r.worst == 0, "gelu: \(r.name)")

    let prelu = Self.mixer([.gelu, .gelu, .prelu, .prelu], alpha: 0.6, seed: 3)
    prelu.alphaParameter(unit: 3)!.value.fill(1.4)
    let lc = Regularizer(settings: LayerCollapseSettings(lambda: 0.7, blocks: 1), units: [2, 3])
    r = ModelGradientTests.check(prelu, regularizer: lc, seed: 4)
    #expect(r.worst == 0, "prelu: \(r.name)")
    #expect(prelu.parameters["blocks.1.token_mlp.act.alpha"] != nil)
    #expect(prelu.parameters["blocks.1.channel_mlp.act.alpha"] != nil)

    let collapsed = Self.mixer(
      [.prelu, .gelu, .gelu, .prelu], collapsed: [false, true, true, false], alpha: 0.8, seed: 5)
    #expect(collapsed.parameters["blocks.0.channel_mlp.linear.weight"]?.shape == [8, 8])
    #expect(collapsed.parameters["blocks.1.token_mlp.linear.weight"]?.shape == [16, 16])
    r = ModelGradientTests.check(collapsed, regularizer: none, seed: 6)
    #expect(r.worst == 0, "collapsed: \(r.name)")
  }

  /// The closed-form counts are the built model's: parameters exactly, and MACs by hand.
  @Test func countsMatchTheModel() {
    for collapsed in [[false, false, false, false], [true, false, false, true], [true, true, true, true]] {
      let arch = Architecture(
        config: Fixtures.config(.mixer), activations: [.prelu, .gelu, .prelu, .gelu], collapsed: collapsed)
      #expect(arch.parameterCount == ModelRegistry.build(arch).parameters.elementCount, "\(collapsed)")
    }
    // S = 16 patches of 12 values, C = 8: patch 16·12·8; per block tokens 8·2·16·12 and
    // channels 16·2·8·20; head 8·3.
    let arch = Architecture(config: Fixtures.config(.mixer))
    #expect(arch.macsPerExample() == 16 * 12 * 8 + 2 * (8 * 2 * 16 * 12 + 16 * 2 * 8 * 20) + 8 * 3)
    #expect(arch.unitName(0) == "blocks.0.token_mlp" && arch.unitName(3) == "blocks.1.channel_mlp")
  }

  /// At α = 1 both kinds of unit are linear: collapsing all four gives the same logits to
  /// float32 rounding (1e-5 of the largest logit, as for the transformers) and fewer
  /// parameters; the report measures each unit's deviation.
  @Test func collapseIsExactAtAlphaOne() {
    let model = Self.mixer([.prelu, .prelu, .prelu, .prelu], alpha: 1, seed: 7)
    var rng = RNG(seed: 8, stream: "probe")
    let (probe, _) = Fixtures.batch(model.config, batch: 3, rng: &rng)
    let (merged, report) = Collapse.run(model, options: CollapseOptions(threshold: 0.05), probe: probe)
    #expect(report.collapsedCount == 4 && merged.architecture.collapsed == [true, true, true, true])
    #expect(report.parametersAfter < report.parametersBefore)
    #expect(report.parametersAfter == merged.parameters.elementCount)
    let a = model.forward(probe).clone()
    #expect(relativeDifference(merged.forward(probe).array, a.array) <= 1e-5)
    for row in report.blocks { #expect(row.maxRelativeDeviation! <= 1e-5, "unit \(row.block)") }
    // α far from 1 keeps that unit (block 0's channel MLP); the others still merge.
    model.alphaParameter(unit: 1)!.value.fill(0.5)
    let partial = Collapse.run(model).report
    #expect(partial.blocks.map(\.decision.merged) == [true, false, true, true])
  }

  /// A batch larger than a chunk runs in equal chunks (the last padded): the same logits as
  /// one pass up to rounding (1e-4 of the largest, as for the transformers), a loss of the
  /// whole batch after it, and a training forward after it works again.
  @Test func chunkedInferEqualsForward() {
    let model = Self.mixer([.gelu, .prelu, .gelu, .prelu], alpha: 0.4, seed: 13)
    var rng = RNG(seed: 14, stream: "chunks")
    let (input, targets) = Fixtures.batch(model.config, batch: 7, rng: &rng)
    let whole = model.forward(input).clone()
    let expected = model.loss(targets: targets)
    let chunked = model.infer(input, rowsPerChunk: 3 * 16).clone()  // 3 images of 16 patches a chunk
    #expect(chunked.shape == whole.shape)
    #expect(relativeDifference(chunked.array, whole.array) < 1e-4)
    #expect(abs(model.loss(targets: targets) - expected) <= 1e-4 * max(1, abs(expected)))
    #expect(model.probabilities.shape == [7, 3])
    #expect(relativeDifference(model.forward(input).array, whole.array) == 0)
  }

  /// One fixed batch can be fitted: forward and backward are wired end to end.
  @Test func overfitsOneBatch() {
    let model = Self.mixer([.gelu, .gelu, .gelu, .prelu], alpha: 0.3, seed: 9)
    let trainer = Trainer(
      model: model, regularizer: Regularizer(settings: LayerCollapseSettings(), units: []),
      settings: OptimizerSettings(learningRate: 1e-2, totalSteps: 300, weightDecay: 0, gradClip: 0))
    var rng = RNG(seed: 10, stream: "overfit")
    let (input, targets) = Fixtures.batch(model.config, batch: 4, rng: &rng)
    var loss: Float = 0
    for _ in 0..<300 { loss = trainer.step(input, targets: targets, rng: &rng).loss }
    #expect(loss < 0.05, "final loss \(loss)")
  }

  /// A checkpoint is format version 2 and loads to the same logits, collapsed units and
  /// all; a version-1 transformer checkpoint (no token MLP width) still loads.
  @Test func checkpointsRoundTripAndVersionOneLoads() throws {
    let dir = NSTemporaryDirectory() + "lc-mixer-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let model = Self.mixer(
      [.prelu, .gelu, .prelu, .prelu], collapsed: [false, true, false, false], alpha: 0.9, seed: 11)
    try Checkpoint(model: model, configText: "", vocabulary: nil).save(to: dir + "/m.h5")
    let f = try HDF5File(reading: dir + "/m.h5")
    #expect(try f.int64Attribute("version") == 2)
    try f.close()
    let loaded = try Checkpoint.load(dir + "/m.h5").model
    #expect(loaded is Mixer && loaded.architecture == model.architecture)
    var rng = RNG(seed: 12, stream: "probe")
    let (probe, _) = Fixtures.batch(model.config, batch: 2, rng: &rng)
    #expect(loaded.forward(probe).array == model.forward(probe).array)

    let gpt = Transformer(Architecture(config: Fixtures.config(.gpt)), seed: 1)
    try Checkpoint(model: gpt, configText: "", vocabulary: nil).save(to: dir + "/g.h5")
    try rewrite(dir + "/g.h5") { g in
      try g.setAttribute("version", int64: 1)
      var json = try g.readString(at: "/meta/architecture")
      json = json.replacingOccurrences(of: "\"token_mlp_hidden\":0,", with: "")
      #expect(!json.contains("token_mlp_hidden"))
      try g.writeString(json, at: "/meta/architecture")
    }
    let old = try Checkpoint.load(dir + "/g.h5")
    #expect(old.model is Transformer && old.model.architecture == gpt.architecture)
  }
}

@Suite struct MixerCommandLineTests {
  /// `model.kind: mixer` trains, collapses, evaluates and inspects like any model.
  @Test func trainCollapseEvalInspect() throws {
    let ws = try Workspace()
    let config = try ws.config("m.yaml", Workspace.mixer)
    let train = try CLI.run(["train", config, "lc.mode=decoupled", "lc.lambda=400", "output.dir=\(ws.dir)/mixer"])
    #expect(train.code == 0, "\(train.stderr)")
    #expect(train.stderr.contains("mixer") && train.stderr.contains("[2, 3]"), "\(train.stderr)")
    let collapse = try CLI.run(["collapse", ws.dir + "/mixer/last.h5"])
    #expect(collapse.code == 0, "\(collapse.stderr)")
    #expect(collapse.stdout.contains("blocks.1.token_mlp") && collapse.stdout.contains("blocks.1.channel_mlp"))
    let eval = try CLI.run(["eval", ws.dir + "/mixer/collapsed.h5"])
    #expect(eval.code == 0 && eval.stdout.contains("accuracy"), "\(eval.stderr)")
    let inspect = try CLI.run(["inspect", ws.dir + "/mixer/collapsed.h5"])
    #expect(inspect.code == 0 && inspect.stdout.contains("blocks.0.token_mlp"), "\(inspect.stdout)")
    let wrongTask = try CLI.run(["validate", config, "data.task=sst2"])
    #expect(wrongTask.code == 78 && wrongTask.stderr.contains("model.kind"))
  }
}
