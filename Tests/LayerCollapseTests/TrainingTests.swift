import Kernels
import LayerCollapse
import Testing

/// A learnable synthetic task per model kind: the label is a simple function of the input.
enum SyntheticTask {
  static func batch(_ cfg: ModelConfig, batch: Int, rng: inout RNG) -> (ModelInput, [Int32]) {
    switch cfg.kind {
    case .vit, .mixer, .vgg:
      // Class = which third of the image is brightest.
      let images = Tensor([batch, cfg.imageChannels, cfg.imageSize, cfg.imageSize])
      rng.fillNormal(images, std: 0.5)
      var labels: [Int32] = []
      let s = cfg.imageSize
      for b in 0..<batch {
        let label = rng.int(below: cfg.classes)
        labels.append(Int32(label))
        for ch in 0..<cfg.imageChannels {
          for y in 0..<s {
            for x in 0..<s where x * cfg.classes / s == label {
              images[((b * cfg.imageChannels + ch) * s + y) * s + x] += 1.5
            }
          }
        }
      }
      return (.images(images), labels)
    case .encoder, .bert:
      // Class = the token at position 1, folded into the classes.
      var (input, _) = Fixtures.batch(cfg, batch: batch, rng: &rng)
      guard case .tokens(let ids, let valid, let b, let t) = input else { fatalError("encoder batch") }
      let labels = (0..<b).map { Int32(Int(ids[$0 * t + 1]) % cfg.classes) }
      input = .tokens(ids: ids, valid: valid, batch: b, time: t)
      return (input, labels)
    case .gpt:
      // Next token = current + 1 (mod V).
      let t = cfg.maxLen
      var ids: [Int32] = []
      for _ in 0..<batch {
        let start = rng.int(below: cfg.vocabSize)
        for i in 0..<t { ids.append(Int32((start + i) % cfg.vocabSize)) }
      }
      let targets = ids.map { ($0 + 1) % Int32(cfg.vocabSize) }
      return (.tokens(ids: ids, valid: nil, batch: batch, time: t), targets)
    }
  }

  /// Trains and returns (first loss, mean of the last 10 losses, the trainer).
  static func train(
    _ cfg: ModelConfig, activations: [Activation], lc: LayerCollapseSettings, steps: Int, lr: Double = 3e-3,
    seed: UInt64 = 1
  ) -> (first: Float, last: Float, trainer: Trainer) {
    let model = ModelRegistry.build(
      Architecture(config: cfg, activations: activations, collapsed: activations.map { _ in false }), seed: seed,
      alphaInit: lc.alphaInit)
    let blocks = activations.indices.filter { activations[$0] == .prelu }
    let trainer = Trainer(
      model: model, regularizer: Regularizer(settings: lc, units: blocks),
      settings: OptimizerSettings(learningRate: lr, warmupSteps: 10, totalSteps: steps, weightDecay: 0.01))
    var data = RNG(seed: seed, stream: "data")
    var dropout = RNG(seed: seed, stream: "dropout")
    var losses: [Float] = []
    for _ in 0..<steps {
      let (input, targets) = batch(cfg, batch: 16, rng: &data)
      losses.append(trainer.step(input, targets: targets, rng: &dropout).loss)
    }
    return (losses[0], losses.suffix(10).reduce(0, +) / 10, trainer)
  }
}

@Suite struct TrainingTests {
  /// A large λ pulls every selected α within the threshold of 1 while the task loss falls;
  /// with λ = 0 nothing pulls, and the α's stay far from 1.
  /// In penalty mode Adam normalizes α's step to about lr, so α can travel at most Σ lr_t:
  /// 300 cosine steps at 1e-2 give ~1.5, enough for 0.01 → 1. Decoupled mode pulls by
  /// 2·lr·λ·(α − 1) outside Adam, so a smaller lr suffices.
  @Test(arguments: [RegularizerMode.penalty, .decoupled])
  func largeLambdaDrivesAlphaToOne(mode: RegularizerMode) {
    let cfg = Fixtures.config(.vit)
    let lc = LayerCollapseSettings(lambda: mode == .penalty ? 5 : 50, blocks: 2, mode: mode)
    let lr = mode == .penalty ? 1e-2 : 3e-3
    let run = SyntheticTask.train(cfg, activations: [.prelu, .prelu], lc: lc, steps: 300, lr: lr)
    #expect(run.last < 0.6 * run.first, "loss \(run.first) → \(run.last)")
    for (b, a) in run.trainer.model.alphas { #expect(abs(a - 1) < 0.05, "block \(b): α = \(a)") }
    #expect(run.trainer.regularizer.converged(run.trainer.model))
  }

  @Test func zeroLambdaLeavesAlphaAlone() {
    let cfg = Fixtures.config(.vit)
    let run = SyntheticTask.train(
      cfg, activations: [.prelu, .prelu], lc: LayerCollapseSettings(lambda: 0, blocks: 2), steps: 300)
    #expect(run.last < 0.6 * run.first)
    for (b, a) in run.trainer.model.alphas { #expect(abs(a - 1) > 0.5, "block \(b): α = \(a)") }
  }

  /// Each model kind can drive the loss on one fixed small batch to near zero: forward and
  /// backward are wired so that gradient descent works end to end.
  @Test(arguments: ModelKind.transformers)
  func overfitsOneBatch(kind: ModelKind) {
    let cfg = Fixtures.config(kind)
    let model = Transformer(
      Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: [false, false]), seed: 3)
    let trainer = Trainer(
      model: model, regularizer: Regularizer(settings: LayerCollapseSettings(), units: []),
      settings: OptimizerSettings(learningRate: 1e-2, totalSteps: 400, weightDecay: 0, gradClip: 0))
    var rng = RNG(seed: 4, stream: "overfit")
    let (input, targets) = Fixtures.batch(cfg, batch: 4, rng: &rng)
    var loss: Float = 0
    for _ in 0..<400 { loss = trainer.step(input, targets: targets, rng: &rng).loss }
    #expect(loss < 0.05, "final loss \(loss)")
  }

  /// Changing a future token never changes an earlier position's logits.
  @Test func causalMask() {
    let cfg = Fixtures.config(.gpt)
    let model = Transformer(Architecture(config: cfg), seed: 5)
    var rng = RNG(seed: 6, stream: "causal")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0)
    var ids: [Int32] = (0..<6).map { _ in Int32(rng.int(below: 7)) }
    let before = model.forward(.tokens(ids: ids, valid: nil, batch: 1, time: 6)).clone()
    for changed in 1..<6 {
      ids[changed] = (ids[changed] + 3) % 7
      let after = model.forward(.tokens(ids: ids, valid: nil, batch: 1, time: 6))
      for i in 0..<(changed * 7) { #expect(after[i] == before[i], "position \(i / 7) changed with token \(changed)") }
      #expect((changed * 7..<42).contains { after[$0] != before[$0] })
      ids[changed] = (ids[changed] + 4) % 7
    }
  }

  /// Padding is invisible to the encoder: changing a padded token changes nothing.
  @Test func paddingIsMasked() {
    let cfg = Fixtures.config(.encoder)
    let model = Transformer(Architecture(config: cfg), seed: 5)
    var rng = RNG(seed: 7, stream: "padding")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0)
    let valid = [true, true, true, true, false, false]
    var ids: [Int32] = [2, 5, 6, 7, 0, 0]
    let before = model.forward(.tokens(ids: ids, valid: valid, batch: 1, time: 6)).clone()
    ids[4] = 9
    ids[5] = 3
    let after = model.forward(.tokens(ids: ids, valid: valid, batch: 1, time: 6))
    #expect(after.array == before.array)
  }

  @Test func convertingKeepsWeightsAndAddsAlpha() {
    let cfg = Fixtures.config(.encoder)
    let gelu = Transformer(Architecture(config: cfg), seed: 8)
    let converted = gelu.withPReLU(
      units: LayerCollapseSettings(blocks: 1).selectedUnits(gelu.architecture), alphaInit: 0.01)
    #expect(converted.architecture.activations == [.gelu, .prelu])
    #expect(converted.alphas.map(\.alpha) == [0.01])
    for p in gelu.parameters.all { #expect(converted.parameters[p.name]!.value.array == p.value.array) }
  }

  @Test func selectionCountsFromTheOutputEnd() {
    #expect(LayerCollapseSettings(blocks: 2).selectedBlocks(layers: 6) == [4, 5])
    #expect(LayerCollapseSettings(fraction: 0.5).selectedBlocks(layers: 6) == [3, 4, 5])
    #expect(LayerCollapseSettings(fraction: 0.1).selectedBlocks(layers: 6) == [5])
    #expect(LayerCollapseSettings(blocks: 9).selectedBlocks(layers: 4) == [0, 1, 2, 3])
    #expect(LayerCollapseSettings().selectedBlocks(layers: 4).isEmpty)
    // A Mixer block has two units (token and channel MLP): both of each selected block.
    let mixer = Architecture(config: Fixtures.config(.mixer))
    #expect(mixer.unitCount == 4)
    #expect(LayerCollapseSettings(blocks: 1).selectedUnits(mixer) == [2, 3])
    #expect(LayerCollapseSettings(fraction: 0.1).selectedUnits(mixer) == [2, 3])
  }

  /// Dropout runs only in training, and the same seed reproduces a run bit for bit.
  @Test func dropoutIsSeeded() {
    let cfg = Fixtures.config(.vit, dropout: 0.3)
    let a = SyntheticTask.train(cfg, activations: [.gelu, .gelu], lc: LayerCollapseSettings(), steps: 5)
    let b = SyntheticTask.train(cfg, activations: [.gelu, .gelu], lc: LayerCollapseSettings(), steps: 5)
    for p in a.trainer.model.parameters.all {
      #expect(p.value.array.map(\.bitPattern) == b.trainer.model.parameters[p.name]!.value.array.map(\.bitPattern))
    }
    var rng = RNG(seed: 1, stream: "eval")
    let (input, _) = Fixtures.batch(cfg, batch: 2, rng: &rng)
    let first = a.trainer.model.forward(input).clone()
    #expect(a.trainer.model.forward(input).array == first.array)
  }
}

@Suite struct GenerationTests {
  /// After learning "next = current + 1", greedy-ish sampling continues the count, the same
  /// seed gives the same text, and top-k = 1 is argmax whatever the temperature.
  @Test func continuesALearnedPattern() throws {
    let cfg = Fixtures.config(.gpt)
    let run = SyntheticTask.train(cfg, activations: [.gelu, .gelu], lc: LayerCollapseSettings(), steps: 300, lr: 1e-2)
    let model = run.trainer.model as! Transformer
    var rng = RNG(seed: 1, stream: "sample")
    let greedy = try model.generate(
      prompt: [2, 3], count: 8, sampling: SamplingSettings(temperature: 5, topK: 1), rng: &rng)
    #expect(greedy == [4, 5, 6, 0, 1, 2, 3, 4])
    var a = RNG(seed: 9, stream: "sample")
    var b = RNG(seed: 9, stream: "sample")
    let s = SamplingSettings(temperature: 2, topK: 0)
    let first = try model.generate(prompt: [1], count: 20, sampling: s, rng: &a)
    #expect(first == (try model.generate(prompt: [1], count: 20, sampling: s, rng: &b)))
    // Weights that overflow: non-finite logits are an error naming the token, not a draw.
    let weight = try #require(model.parameters.all.first { $0.name.hasSuffix("mlp.fc1.weight") })
    for i in 0..<weight.value.count { weight.value[i] = 3e38 }
    #expect(throws: LCError.self) { _ = try model.generate(prompt: [1], count: 2, sampling: s, rng: &a) }
  }
}

@Suite struct AlphaLearningRateTests {
  /// Adam's first step moves every parameter by lr·g/|g| (m̂ = g, v̂ = g²): with the
  /// penalty dominating α's gradient (λ = 100, α far below 1), α rises by exactly
  /// lr × alpha_lr_scale. Float32 rounding of 0.01 + 0.005 is below 1e-8.
  @Test(arguments: [1.0, 5.0])
  func firstStepMovesAlphaByScaledRate(scale: Double) {
    let cfg = Fixtures.config(.vit)
    let model = Transformer(
      Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: [false, false]), seed: 1)
    let lc = LayerCollapseSettings(lambda: 100, blocks: 1, alphaLearningRateScale: scale)
    let trainer = Trainer(
      model: model, regularizer: Regularizer(settings: lc, units: [1]),
      settings: OptimizerSettings(learningRate: 1e-3, totalSteps: 10, weightDecay: 0))
    var rng = RNG(seed: 1, stream: "alpha lr")
    let (input, targets) = Fixtures.batch(cfg, batch: 2, rng: &rng)
    _ = trainer.step(input, targets: targets, rng: &rng)
    #expect(abs(Double(model.alphas[0].alpha) - (0.01 + 1e-3 * scale)) < 1e-8)
  }
}

@Suite struct InferenceTests {
  /// A two-block model of `kind` with random parameters (α = `alpha` in its PReLU block).
  static func model(
    _ kind: ModelKind, collapsed: [Bool], alpha: Float, seed: UInt64, rng: inout RNG
  ) -> (Transformer, ModelConfig) {
    let cfg = Fixtures.config(kind)
    let model = Transformer(Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: collapsed), seed: seed)
    Fixtures.randomizeParameters(model, rng: &rng, alpha: alpha)
    return (model, cfg)
  }

  /// `infer` shares one activation set across blocks; its logits equal a forward that
  /// keeps every block's activations, bit for bit, for all kinds and a collapsed block.
  @Test(arguments: ModelKind.transformers)
  func inferEqualsForward(kind: ModelKind) {
    var rng = RNG(seed: 3, stream: "infer")
    let (model, cfg) = Self.model(kind, collapsed: [true, false], alpha: 0.4, seed: 2, rng: &rng)
    let (input, _) = Fixtures.batch(cfg, batch: 3, rng: &rng)
    let kept = model.forward(input).clone()
    let shared = model.infer(input).clone()
    #expect(kept.array.map(\.bitPattern) == shared.array.map(\.bitPattern))
    // And back: a training forward after inference gets its own buffers again.
    #expect(model.forward(input).array.map(\.bitPattern) == kept.array.map(\.bitPattern))
  }

  /// Inference borrows the MLP buffers of the first uncollapsed block among those that
  /// run on every row, which need not be block 0: three blocks, the first collapsed, and
  /// for vit the last pruned to the first rows. Bit for bit as a forward.
  @Test(arguments: ModelKind.transformers)
  func inferSharesTheFirstUncollapsedMLP(kind: ModelKind) {
    var rng = RNG(seed: 13, stream: "infer borrow")
    var cfg = Fixtures.config(kind)
    cfg.layers = 3
    let arch = Architecture(config: cfg, activations: [.gelu, .prelu, .gelu], collapsed: [true, false, false])
    let model = Transformer(arch, seed: 5)
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.6)
    let (input, _) = Fixtures.batch(cfg, batch: 3, rng: &rng)
    let kept = model.forward(input).clone()
    #expect(model.infer(input).array.map(\.bitPattern) == kept.array.map(\.bitPattern))
  }

  /// A batch larger than a chunk runs in equal chunks, the last padded with copies of its
  /// last sample: the same logits as one whole-batch forward up to rounding, padding never
  /// leaks into the logits, and the next call with another batch size gets the right shape.
  ///
  /// Up to rounding: a chunk's matrix products have fewer rows, and OpenBLAS's kernels for
  /// the rows left over after its register tiles sum in another order (README,
  /// Determinism). Each product of k ≤ 64 terms moves by at most k·ε (ε = 2⁻²⁴) relative
  /// to its terms; through the model's ~12 products and LayerNorms that stays below 1e-4
  /// of the largest logit, where a padding leak or a wrong chunk moves logits by O(1).
  @Test(arguments: ModelKind.transformers)
  func chunkedInferEqualsForward(kind: ModelKind) {
    var rng = RNG(seed: 5, stream: "chunks")
    let (model, cfg) = Self.model(kind, collapsed: [false, true], alpha: 0.3, seed: 4, rng: &rng)
    let (input, _) = Fixtures.batch(cfg, batch: 7, rng: &rng)
    let kept = model.forward(input).clone()
    let time = cfg.sequenceLength
    // 3 samples a chunk: chunks of 3, 3 and 1 padded to 3; 2 a chunk: 2, 2, 2, 1 padded.
    for samples in [3, 2, 1] {
      let chunked = model.infer(input, rowsPerChunk: samples * time)
      #expect(chunked.shape == kept.shape, "\(samples) a chunk")
      let d = relativeDifference(chunked.array, kept.array)
      #expect(d < 1e-4, "\(samples) a chunk: relative difference \(d)")
    }
    let (small, _) = Fixtures.batch(cfg, batch: 2, rng: &rng)
    let d = relativeDifference(model.infer(small, rowsPerChunk: time).array, model.forward(small).array)
    #expect(d < 1e-4, "batch of 2 after 7: relative difference \(d)")
  }

  /// `loss` and `probabilities` after a chunked `infer` read the whole batch's logits, as
  /// after `forward`; so does `Evaluator.evaluate` on a batch of several default chunks.
  @Test(arguments: ModelKind.transformers)
  func lossAfterChunkedInfer(kind: ModelKind) {
    var rng = RNG(seed: 7, stream: "chunked loss")
    let (model, cfg) = Self.model(kind, collapsed: [false, false], alpha: 0.5, seed: 6, rng: &rng)
    let time = cfg.sequenceLength
    let (input, targets) = Fixtures.batch(cfg, batch: 5, rng: &rng)
    model.forward(input)
    let expected = model.loss(targets: targets)
    let probabilities = model.probabilities.array
    model.infer(input, rowsPerChunk: 2 * time)
    // Up to rounding, as in chunkedInferEqualsForward; a loss of the wrong logits (the
    // workspace's, or a padded chunk's) would differ by O(1).
    #expect(abs(model.loss(targets: targets) - expected) <= 1e-4 * max(1, abs(expected)))
    #expect(relativeDifference(model.probabilities.array, probabilities) < 1e-4)

    let examples = 2 * ModelRegistry.inferenceRows / time + 3
    let (big, bigTargets) = Fixtures.batch(cfg, batch: examples, rng: &rng)
    model.forward(big)
    let bigLoss = Double(model.loss(targets: bigTargets))
    let metrics = Evaluator.evaluate(model, batches: [Batch(input: big, targets: bigTargets, examples: examples)])
    // Evaluation runs the batch in chunks (other matrix-product shapes than the forward's,
    // so other OpenBLAS summation orders): equal up to float32 rounding, as above.
    #expect(abs(metrics.loss - bigLoss) <= 1e-4 * abs(bigLoss))
    #expect(metrics.examples == examples)
  }
}
