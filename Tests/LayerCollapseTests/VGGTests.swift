import Foundation
import Kernels
import LayerCollapse
import Testing

/// The VGG family: gradients of the whole model (trunk BatchNorm in training mode, max
/// and adaptive pools, the head's BatchNorm1d, PReLUs and dropout) against central
/// differences, the collapse of its head (one or both junctions, BatchNorm folded)
/// exactly, and its counts.
@Suite struct VGGTests {
  static func model(alphas: [Float], batchNorm: Bool = true, dropout: Float = 0, collapsed: [Bool] = [false, false])
    -> any Model
  {
    let arch = Architecture(
      config: Fixtures.vgg(dropout: dropout, batchNorm: batchNorm), activations: [.prelu, .prelu],
      collapsed: collapsed)
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: 3, stream: "vgg")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0)
    for (u, a) in alphas.enumerated() { model.alphaParameter(unit: u)?.value.fill(a) }
    return model
  }

  /// Training mode with fixed dropout masks; PReLU slopes away from 1 so the head is not
  /// linear, the penalty on both units.
  @Test func gradientsMatchFiniteDifferences() {
    let model = Self.model(alphas: [0.4, 1.3], dropout: 0.3)
    let regularizer = Regularizer(settings: LayerCollapseSettings(lambda: 0.5, blocks: 2), units: [0, 1])
    let (worst, name) = ModelGradientTests.check(model, regularizer: regularizer, seed: 4, dropoutSeed: 5)
    #expect(worst <= 0, "worst: \(name)")
    #expect(model.parameters["features.1.running_var"]?.role == .buffer)
    #expect(model.parameters["classifier.act2.alpha"] != nil)
  }

  /// α = 1 at both junctions: the head merges into one linear (45 → 3), BatchNorm1d folded
  /// with its running statistics; evaluation logits equal the original's up to rounding.
  /// With only the last junction linear, fc2 and fc3 merge and fc1, bn1, act1 stay.
  @Test(arguments: [[Float(1), 1], [0.3, 1]])
  func headCollapsesExactly(alphas: [Float]) {
    let model = Self.model(alphas: alphas)
    var rng = RNG(seed: 6, stream: "vgg collapse")
    let (input, _) = Fixtures.batch(model.config, batch: 4, rng: &rng)
    let before = model.forward(input).clone()
    let (merged, report) = Collapse.run(model, probe: input)
    let both = alphas[0] == 1
    #expect(merged.architecture.collapsed == [both, true])
    #expect(report.blocks.map(\.decision) == [both ? .collapsed : .alphaTooFar, .collapsed])
    if both {
      #expect(merged.parameters["classifier.fc1.weight"]?.shape == [3, 45])
      #expect(merged.parameters["classifier.bn1.weight"] == nil && merged.parameters["classifier.fc2.weight"] == nil)
    } else {
      #expect(merged.parameters["classifier.fc2.weight"]?.shape == [3, 7])
      #expect(
        merged.parameters["classifier.bn1.running_mean"] != nil && merged.parameters["classifier.fc3.weight"] == nil)
    }
    // The folded BatchNorm divides by √(running variance + ε) ≈ 1: float32 rounding, 1e-5.
    #expect(relativeDifference(merged.forward(input), before) < 1e-5)
    #expect(merged.architecture.parameterCount == Self.trainable(merged))
    #expect(report.parametersAfter < report.parametersBefore)
    // Each row counts its own merge after the earlier ones: the rows add up to the model's change.
    let saved = report.blocks.map { $0.parametersBefore - $0.parametersAfter }.reduce(0, +)
    #expect(saved == report.parametersBefore - report.parametersAfter, "\(report.blocks)")
  }

  /// Units are decided in order, each on what the earlier merges left: with many classes
  /// (45 → 7 → 7 → 40), merging fc2·fc3 alone saves parameters, but after fc1·fc2 merged
  /// (45 → 7), merging on into 45 → 40 would grow the head, so unit 1 stays.
  @Test func laterJunctionIsJudgedAfterTheEarlierMerge() {
    var config = Fixtures.vgg()
    config.classes = 40
    let arch = Architecture(config: config, activations: [.prelu, .prelu], collapsed: [false, false])
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: 3, stream: "vgg")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 1)
    let (merged, report) = Collapse.run(model)
    #expect(report.blocks.map(\.decision) == [.collapsed, .notSmaller], "\(report.blocks)")
    #expect(merged.architecture.collapsed == [true, false])
    #expect(report.parametersAfter < report.parametersBefore)
    let saved = report.blocks.map { $0.parametersBefore - $0.parametersAfter }.reduce(0, +)
    #expect(saved == report.parametersBefore - report.parametersAfter)
    // With fc1·fc2 kept apart (α far from 1), the same unit 1 merges: fc2·fc3 is smaller.
    model.alphaParameter(unit: 0)?.value.fill(0.3)
    #expect(Collapse.run(model).report.blocks.map(\.decision) == [.alphaTooFar, .collapsed])
  }

  /// `infer` runs the trunk in passes of `VGG.trunkChunk` (8) images with each BatchNorm
  /// and ReLU computed in its convolution's output pass, then the head once. Within one pass:
  /// the same bits as `forward` in evaluation (the same products; the fused pass does the
  /// kernels' arithmetic). Over chunks of 8, 8 and 3 padded to 8, the products have other
  /// widths, whose leftover tiles sum in another order (README, Determinism): k·ε per
  /// product, below 1e-5 of the largest logit here, where a wrong chunk or a dropped
  /// epilogue moves logits by O(0.1).
  @Test(arguments: [true, false])
  func inferEqualsEvaluationForward(batchNorm: Bool) {
    let model = Self.model(alphas: [0.4, 1.3], batchNorm: batchNorm)
    var rng = RNG(seed: 8, stream: "vgg infer")
    for batch in [5, 19] {
      let (input, _) = Fixtures.batch(model.config, batch: batch, rng: &rng)
      let (expected, got) = Parallel.$limit.withValue(1) { (model.forward(input).clone(), model.infer(input).clone()) }
      #expect(got.shape == expected.shape)
      // At 2 threads the passes run on two models, each on one core: the trunk's bits are
      // the same, the head's product splits (up to rounding).
      let two = Parallel.$limit.withValue(2) { model.infer(input) }
      #expect(relativeDifference(two, got) < 1e-5, "batch \(batch) at 2 threads")
      if batch <= VGG.trunkChunk {
        #expect(got.array.map(\.bitPattern) == expected.array.map(\.bitPattern), "batch \(batch)")
      } else {
        #expect(relativeDifference(got, expected) < 1e-5, "batch \(batch)")
      }
    }
  }

  /// The second thread's trunk passes run on a helper that reads this model's parameters
  /// (`ParameterSet(sharing:)`): making it changes no value (running statistics and norm
  /// scales included), and it sees later changes (a conv weight halved: the 2-thread
  /// logits follow the 1-thread ones, which a stale copy would not).
  @Test func inferHelpersReadTheModelsParameters() {
    let model = Self.model(alphas: [0.4, 1.3], batchNorm: true)
    var rng = RNG(seed: 9, stream: "vgg helpers")
    let (input, _) = Fixtures.batch(model.config, batch: 19, rng: &rng)
    let values = model.parameters.values.array
    for change in [false, true] {
      if change { Elementwise.scale(model.parameters["features.0.weight"]!.value, by: 0.5) }
      let one = Parallel.$limit.withValue(1) { model.infer(input).clone() }
      let two = Parallel.$limit.withValue(2) { model.infer(input) }
      #expect(relativeDifference(two, one) < 1e-5, "after a change: \(change)")  // the head splits: rounding
      if !change { #expect(model.parameters.values.array == values) }
    }
  }

  static func trainable(_ m: any Model) -> Int {
    m.parameters.all.filter { $0.role != .buffer }.map { $0.value.count }.reduce(0, +)
  }

  /// The closed-form count equals the built model's trainable parameters (BatchNorm's
  /// running statistics are state, as in torchvision), for each collapse state; MACs
  /// count every convolution at its feature-map size.
  @Test func countsMatchTheModel() {
    for collapsed in [[false, false], [true, false], [false, true], [true, true]] {
      for bn in [false, true] {
        let m = Self.model(alphas: [], batchNorm: bn, collapsed: collapsed)
        #expect(m.architecture.parameterCount == Self.trainable(m), "\(collapsed) bn \(bn)")
      }
    }
    let m = Self.model(alphas: [])
    // conv 3→4 at 8×8, conv 4→6 and 6→5 at 4×4, head 45·7 + 7·7 + 7·3.
    #expect(m.architecture.macsPerExample() == 4 * 3 * 9 * 64 + 6 * 4 * 9 * 16 + 5 * 6 * 9 * 16 + 45 * 7 + 49 + 21)
  }
}

/// The VGG family against PyTorch (`torch_reference.py`'s nn.Conv2d, nn.BatchNorm2d,
/// nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm1d mirror): logits in training mode
/// (BatchNorm on batch statistics), every gradient, one AdamW step, and the running
/// statistics after it; and the collapsed head (BatchNorm1d folded) against PyTorch's
/// own merge, evaluated with the running statistics.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct VGGParityTests {
  @Test(arguments: [false, true])
  func trainingStepMatchesPyTorch(batchNorm: Bool) throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let model = VGGTests.model(alphas: [0.3, 1.6], batchNorm: batchNorm)
    let lc = LayerCollapseSettings(lambda: 0.5, blocks: 2, mode: .penalty)
    let regularizer = Regularizer(settings: lc, units: [0, 1])
    let (input, targets) = ParityModels.batch(model.config, seed: 7)
    let checkpoint = dir + "/vgg.h5"
    try ParityModels.save(model, to: checkpoint)
    let bundle = ParityBundle.make(
      model: model, input: input, targets: targets, regularizer: regularizer, optimizer: ParityModels.optimizer(),
      training: true)
    try bundle.write(to: dir + "/vgg.bundle.h5")
    let r = try Parity.reference([checkpoint, "--check", dir + "/vgg.bundle.h5"])
    #expect(r.code == 0, "torch_reference.py --check failed:\n\(r.output)")
    if batchNorm { #expect(r.output.contains("running features.1.running_var")) }
  }

  @Test func collapsedHeadMatchesPyTorchMerge() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let model = VGGTests.model(alphas: [0.98, 1.01])
    let (collapsed, report) = Collapse.run(model)
    #expect(report.collapsedCount == 2)
    try ParityModels.save(model, to: dir + "/uncollapsed.h5")
    try ParityModels.save(collapsed, to: dir + "/collapsed.h5")
    let (input, targets) = ParityModels.batch(model.config, seed: 8)
    let none = Regularizer(settings: LayerCollapseSettings(lambda: 0), units: [])
    let bundle = ParityBundle.make(
      model: collapsed, input: input, targets: targets, regularizer: none, optimizer: ParityModels.optimizer())
    try bundle.write(to: dir + "/collapsed.bundle.h5")
    let r = try Parity.reference([
      "--collapse-check", dir + "/uncollapsed.h5", dir + "/collapsed.h5", dir + "/collapsed.bundle.h5",
    ])
    #expect(r.code == 0, "torch_reference.py --collapse-check failed:\n\(r.output)")
  }
}

/// `model.kind: vgg` from a config: train with the head's PReLUs pulled to 1, collapse,
/// evaluate; and the contract's errors for a conv list that pools the image away and a
/// BatchNorm micro-batch of one example.
@Suite(.serialized) struct VGGCommandTests {
  static let config = """
    seed: 2
    data:
      task: cifar10
      root: $DIR/data
      path: cifar
    model:
      kind: vgg
      conv: [8, M, 12, M]
      batch_norm: true
      pool_size: 2
      mlp_hidden: 32
    lc:
      lambda: 200
      blocks: 2
      mode: decoupled
    train:
      epochs: 2
      batch_size: 16
      lr: 3e-3
    output:
      dir: $DIR/vgg

    """

  /// The VGG's own defaults (ReLU, dropout 0.5, a 512-wide head) are what the resolved
  /// config records, so a run's config.yaml builds the same model again.
  @Test func resolvedConfigRecordsTheFamilyDefaults() throws {
    let text = "data:\n  task: cifar10\nmodel:\n  kind: vgg\n  conv: [8, M]\noutput:\n  dir: runs/v\n"
    let (settings, resolved) = try RunSettings.decode(try ConfigTree.parse(text, file: "v.yaml"))
    #expect(settings.model.activation == .relu && settings.model.dropout == 0.5 && settings.model.mlpHidden == 512)
    #expect(resolved.value("model.activation") == .string("relu") && resolved.value("model.dropout") == .double(0.5))
    #expect(resolved.value("model.mlp_hidden") == .int(512))
    let again = try RunSettings.decode(try ConfigTree.parse(resolved.serialized(), file: "config.yaml")).settings
    #expect(again.model == settings.model)
    // Its PReLUs start at α = 0 (the ReLU they replace); a ratio set in the config wins over
    // the 512 default; other families keep the generic defaults.
    #expect(settings.lc.alphaInit == 0 && resolved.value("lc.alpha_init") == .double(0))
    let ratio = try RunSettings.decode(
      try ConfigTree.parse(
        text.replacingOccurrences(of: "[8, M]\n", with: "[8, M]\n  mlp_ratio: 2\n"), file: "v.yaml")
    ).settings
    // (ratio × model.d_model, the setting's 128: a VGG's own width comes from its conv list)
    #expect(ratio.model.mlpHidden == 256)
    let encoder = "data:\n  task: sst2\nmodel:\n  kind: encoder\n  d_model: 16\noutput:\n  dir: runs/e\n"
    let e = try RunSettings.decode(try ConfigTree.parse(encoder, file: "e.yaml")).settings
    #expect(e.model.activation == .gelu && e.model.dropout == 0 && e.model.mlpHidden == 64 && e.lc.alphaInit == 0.01)
  }

  @Test func trainCollapseEval() throws {
    let ws = try Workspace()
    let config = try ws.config("vgg.yaml", Self.config)
    let trained = try CLI.run(["train", config])
    try #require(trained.code == 0, "\(trained.stderr)")
    #expect(trained.stderr.contains("vgg"), "\(trained.stderr)")
    let last = try Checkpoint.load(ws.dir + "/vgg/last.h5")
    #expect(last.model.alphas.count == 2)
    let collapsed = try CLI.run(["collapse", ws.dir + "/vgg/last.h5", "--force", "0,1", "-o", ws.dir + "/small.h5"])
    #expect(collapsed.code == 0, "\(collapsed.stderr)")
    let small = try Checkpoint.load(ws.dir + "/small.h5")
    #expect(small.model.architecture.collapsed == [true, true])
    #expect(small.model.parameters["classifier.fc1.weight"]?.shape == [10, 12 * 4])
    let evaluated = try CLI.run(["eval", ws.dir + "/small.h5"])
    #expect(evaluated.code == 0 && evaluated.stdout.contains("accuracy"), "\(evaluated.stderr)")
    // The collapse table's rows add up to the model's change (each merge counted after the
    // earlier one, as the two junctions share fc2).
    let record = try CollapseRecord.read(ws.dir + "/small.json")
    #expect(
      record.blocks.map { $0.parametersBefore - $0.parametersAfter }.reduce(0, +)
        == record.parametersBefore - record.parametersAfter, "\(record.blocks)")
    // inspect gives no sequence length to a model of one row.
    let inspect = try CLI.run(["inspect", ws.dir + "/vgg/last.h5"])
    #expect(inspect.code == 0 && inspect.stdout.contains("outputs 10") && !inspect.stdout.contains("sequence"))
    // A finished run of 2 epochs: both complete (not "the next in epoch 3").
    #expect(inspect.stdout.contains("(2 full epochs)"), "\(inspect.stdout)")
  }

  @Test func badConfigsAreRefused() throws {
    let ws = try Workspace()
    let config = try ws.config("vgg.yaml", Self.config)
    let pools = try CLI.run(["train", config, "model.conv=[8, M, M, M, M, M, M]"])
    #expect(
      pools.code == 78 && pools.stderr.contains("model.conv") && pools.stderr.contains("below 1×1"), "\(pools.stderr)")
    // 120 training images in batches of 17: the last batch holds 1.
    let lone = try CLI.run(["train", config, "train.batch_size=17"])
    #expect(lone.code == 78 && lone.stderr.contains("micro-batch of one example"), "\(lone.stderr)")
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/vgg/last.h5"))
  }
}

/// Knowledge distillation (`train.distill_from`): a student that starts as a copy of its
/// teacher, with the soft term alone (weight 1, no dropout), has a first loss of exactly
/// T²·KL(p ‖ p) = 0; a VGG student with a single-linear head learns from a VGG teacher;
/// a teacher whose outputs or inputs differ is a config error naming the key.
@Suite(.serialized) struct DistillationCommandTests {
  @Test func studentEqualToTeacherHasZeroSoftLoss() throws {
    let ws = try Workspace()
    let vit = try ws.config("vit.yaml", Workspace.vit)
    let plain = ["model.dropout=0", "lc.lambda=0", "lc.blocks=0"]
    let teacher = try CLI.run(["train", vit, "train.epochs=1"] + plain)
    try #require(teacher.code == 0, "\(teacher.stderr)")
    let soft = ["train.steps=1", "log.every=1", "train.distill_from=\(ws.dir)/run/last.h5", "train.distill_weight=1"]
    let student = try CLI.run(
      ["train", vit, "train.init_from=\(ws.dir)/run/last.h5", "output.dir=\(ws.dir)/student"] + plain + soft)
    try #require(student.code == 0, "\(student.stderr)")
    #expect(student.stderr.contains("distil  from"), "\(student.stderr)")
    #expect(student.stderr.contains("step 1/1 epoch 1 loss 0.0000"), "\(student.stderr)")
    // A student that is not the teacher (fresh weights) has a soft loss above 0.
    let fresh = try CLI.run(["train", vit, "output.dir=\(ws.dir)/fresh"] + plain + soft)
    try #require(fresh.code == 0, "\(fresh.stderr)")
    #expect(fresh.stderr.contains("step 1/1 epoch 1 loss") && !fresh.stderr.contains("loss 0.0000"), "\(fresh.stderr)")
  }

  @Test func vggStudentLearnsFromTeacherAndMismatchesAreRefused() throws {
    let ws = try Workspace()
    let config = try ws.config("vgg.yaml", VGGCommandTests.config)
    let teacher = try CLI.run(["train", config, "lc.lambda=0", "lc.blocks=0", "train.epochs=1"])
    try #require(teacher.code == 0, "\(teacher.stderr)")
    let student = try CLI.run([
      "train", config, "lc.lambda=0", "lc.blocks=0", "model.head_linears=1",
      "train.distill_from=\(ws.dir)/vgg/last.h5", "train.distill_temperature=2", "output.dir=\(ws.dir)/student",
    ])
    #expect(student.code == 0, "\(student.stderr)")
    // The config's lc.blocks: 2 on a single-linear head has nothing to act on: refused.
    let idle = try CLI.run(["validate", config, "model.head_linears=1"])
    #expect(idle.code == 78, "\(idle.stderr)")
    #expect(idle.stderr.contains("vgg.yaml:14: LayerCollapse units selected on a model without"), "\(idle.stderr)")
    let head = try Checkpoint.load(ws.dir + "/student/last.h5").model
    #expect(
      head.parameters["classifier.fc1.weight"]?.shape == [10, 12 * 4] && head.architecture.collapsed == [true, true])
    let gpt = try ws.config("gpt.yaml", Workspace.gpt)
    let lm = try CLI.run(["train", gpt, "train.steps=1"])
    try #require(lm.code == 0, "\(lm.stderr)")
    let mismatch = try CLI.run([
      "train", config, "train.distill_from=\(ws.dir)/gpt/last.h5", "output.dir=\(ws.dir)/bad",
    ])
    #expect(mismatch.code == 78 && mismatch.stderr.contains("train.distill_from"), "\(mismatch.stderr)")
    // Weights of another family to start from: said in one line, by validate as by train.
    for command in ["validate", "train"] {
      let family = try CLI.run([command, config, "train.init_from=\(ws.dir)/gpt/last.h5", "output.dir=\(ws.dir)/fam"])
      #expect(
        family.code == 78 && family.stderr.contains("train.init_from holds a gpt model, the config builds a vgg"),
        "\(command): \(family.stderr)")
    }
  }
}

/// A teacher trained on other normalization statistics than the student's (an imported
/// ViT's 0.5 under a student of CIFAR's own) sees each batch normalized as it was
/// trained: its target is its forward pass on the raw images normalized its own way.
@Suite struct TeacherNormalizationTests {
  @Test func teacherSeesImagesNormalizedItsOwnWay() throws {
    let dir = NSTemporaryDirectory() + "lc-teacher-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let theirs = ChannelStats(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
    let mine = ChannelStats(mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26])
    let path = try DamagedCheckpointTests.saved(.vit, dir, vocabulary: .imageNormalization(theirs))
    let text = "data:\n  task: cifar10\nmodel:\n  kind: vit\ntrain:\n  distill_from: \(path)\n  distill_weight: 1\n"
    let settings = try RunSettings.decode(try ConfigTree.parse(text + "output:\n  dir: \(dir)/r\n", file: "c.yaml"))
      .settings
    let student = ModelRegistry.build(Architecture(config: Fixtures.config(.vit)), seed: 2)
    let c = student.config
    var rng = RNG(seed: 7, stream: "pixels")
    let raw = (0..<(2 * 3 * c.imageSize * c.imageSize)).map { _ in Float(rng.uniformDouble()) }
    let plane = c.imageSize * c.imageSize
    func normalized(_ s: ChannelStats) -> ModelInput {
      .images(
        Tensor(
          [2, 3, c.imageSize, c.imageSize],
          raw.indices.map { (raw[$0] - s.mean[$0 / plane % 3]) / s.std[$0 / plane % 3] }))
    }
    let teacherModel = try Checkpoint.load(path).model
    let expected = teacherModel.forward(normalized(theirs)).array
    let teacher = try TrainingRun.teacher(settings, student: student, vocabulary: .imageNormalization(mine))
    #expect(teacher.renormalize != nil)
    let got = teacher.target(normalized(mine)).logits.array
    let d = zip(got, expected).map { abs($0 - $1) }.max() ?? .nan
    let scale = expected.map { abs($0) }.max() ?? 1
    // Float rounding of two routes to the same normalized pixels (~1e-7 relative each).
    #expect(d <= 1e-5 * max(scale, 1), "teacher logits differ by \(d)")
    // The same statistics: the batch goes to the teacher as it is.
    let same = try TrainingRun.teacher(settings, student: student, vocabulary: .imageNormalization(theirs))
    #expect(same.renormalize == nil)
    #expect(same.target(normalized(theirs)).logits.array == expected)
  }
}
