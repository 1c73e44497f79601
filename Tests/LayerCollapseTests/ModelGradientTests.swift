import Kernels
import LayerCollapse
import Testing

/// Whole-model gradients against central finite differences of
/// L = cross-entropy + λ·Σ(α − 1)², for every parameter element of tiny models.
///
/// Tolerance: the loss is float32 through ~40 rounded operations per path (relative
/// noise ~1e-6 on L ≈ 1); with h = 1e-3 that is ≤ 5e-4 in the quotient, and truncation
/// is h²·|f'''| ≈ 1e-6. PReLU/ReLU kinks: a pre-activation within h·|∂pre/∂θ| of 0
/// breaks the difference quotient, so the fixtures use GELU or an α that keeps the kink
/// mild, and we allow |Δ| ≤ 3e-3 + 2e-2·|numeric|. Wrong wiring is off by O(1).
@Suite struct ModelGradientTests {
  static let h: Float = 1e-3

  /// `dropoutSeed`: run in training mode with dropout masks drawn from this seed, the
  /// same masks at every evaluation of the loss.
  static func check(_ model: any Model, regularizer: Regularizer, seed: UInt64, dropoutSeed: UInt64? = nil) -> (
    worst: Double, name: String
  ) {
    var rng = RNG(seed: seed, stream: "batch")
    let (input, targets) = Fixtures.batch(model.config, batch: 3, rng: &rng)
    let loss: () -> Double = {
      if let s = dropoutSeed {
        var masks = RNG(seed: s, stream: "dropout")
        model.forward(input, training: true, rng: &masks)
      } else {
        model.forward(input)
      }
      return Double(model.loss(targets: targets)) + regularizer.penalty(model)
    }
    model.parameters.zeroGradients()
    _ = loss()
    model.backward()
    regularizer.addGradient(model)
    var worst = 0.0
    var worstName = ""
    for p in model.parameters.all {
      for i in 0..<p.value.count {
        let saved = p.value.data[i]
        p.value.data[i] = saved + h
        let plus = loss()
        p.value.data[i] = saved - h
        let minus = loss()
        p.value.data[i] = saved
        let numeric = (plus - minus) / Double(2 * h)
        let excess = abs(Double(p.grad.data[i]) - numeric) - (3e-3 + 2e-2 * abs(numeric))
        if excess > worst {
          worst = excess
          worstName = "\(p.name)[\(i)]: analytic \(p.grad.data[i]) numeric \(numeric)"
        }
      }
    }
    return (worst, worstName)
  }

  @Test(arguments: ModelKind.transformers)
  func geluModel(kind: ModelKind) {
    var rng = RNG(seed: 1, stream: "fd \(kind)")
    let model = Transformer(Architecture(config: Fixtures.config(kind)))
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0)
    let result = Self.check(model, regularizer: Regularizer(settings: LayerCollapseSettings(), units: []), seed: 2)
    #expect(result.worst == 0, "\(result.name)")
  }

  /// PReLU in the last block, penalty on: α's gradient is the data term plus 2λ(α − 1).
  @Test(arguments: ModelKind.transformers)
  func preluModelWithPenalty(kind: ModelKind) {
    var rng = RNG(seed: 3, stream: "fd prelu \(kind)")
    let cfg = Fixtures.config(kind)
    let model = Transformer(Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: [false, false]))
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.6)
    let lc = LayerCollapseSettings(lambda: 0.7, blocks: 1)
    let result = Self.check(model, regularizer: Regularizer(settings: lc, units: [1]), seed: 4)
    #expect(result.worst == 0, "\(result.name)")
    #expect(model.parameters["blocks.1.mlp.act.alpha"] != nil)
  }

  @Test(arguments: ModelKind.transformers)
  func collapsedModel(kind: ModelKind) {
    var rng = RNG(seed: 5, stream: "fd collapsed \(kind)")
    let cfg = Fixtures.config(kind)
    let model = Transformer(Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: [false, true]))
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 1)
    #expect(model.parameters["blocks.1.mlp.linear.weight"]?.shape == [8, 8])
    #expect(model.parameters["blocks.1.mlp.fc1.weight"] == nil)
    let result = Self.check(model, regularizer: Regularizer(settings: LayerCollapseSettings(), units: []), seed: 6)
    #expect(result.worst == 0, "\(result.name)")
  }

  /// The regularizer alone (gradients zeroed, no data term) adds exactly 2λ(α − 1) to dα.
  @Test func penaltyGradientIsTwoLambdaAlphaMinusOne() {
    let cfg = Fixtures.config(.vit)
    let model = Transformer(
      Architecture(config: cfg, activations: [.prelu, .prelu], collapsed: [false, false]), seed: 1)
    model.alphaParameter(block: 0)!.value.fill(0.25)
    model.alphaParameter(block: 1)!.value.fill(1.5)
    let reg = Regularizer(settings: LayerCollapseSettings(lambda: 2, blocks: 2), units: [0, 1])
    model.parameters.zeroGradients()
    reg.addGradient(model)
    #expect(model.alphaParameter(block: 0)!.grad[0] == -3)  // 2·2·(0.25 − 1)
    #expect(model.alphaParameter(block: 1)!.grad[0] == 2)  // 2·2·(1.5 − 1)
    #expect(reg.penalty(model) == 2 * (0.5625 + 0.25))
  }
}

/// The last block of a model whose head reads the first position alone (vit, encoder with
/// [CLS] pooling) computes only what reaches the head (`Transformer.pruneLastBlock`).
/// It must give the logits, loss and every gradient of the full computation, for a full
/// PReLU block, a collapsed one, and with padded keys (the encoder batches end in padding).
@Suite struct PrunedLastBlockTests {
  /// Tolerance: the two paths sum the same products in different orders (a 1-row product
  /// against rows of a larger one, separate K/V and Q products), so float32 rounding of
  /// ~1e-7 relative per operation; through two blocks and the backward that stays below
  /// 1e-5 of each tensor's largest entry. A wrong row, head or missing gradient is O(1).
  static let tolerance = 1e-5

  static func outputs(_ model: any Model, _ input: ModelInput, _ targets: [Int32]) -> (
    logits: [Float], loss: Float, grads: [String: [Float]]
  ) {
    model.parameters.zeroGradients()
    var rng = RNG(seed: 1, stream: "unused")
    let logits = model.forward(input, training: true, rng: &rng).array
    let loss = model.loss(targets: targets)
    model.backward()
    var grads: [String: [Float]] = [:]
    for p in model.parameters.all { grads[p.name] = p.grad.array }
    return (logits, loss, grads)
  }

  static func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    let scale = max(a.map { Double(abs($0)) }.max() ?? 0, 1e-30)
    return zip(a, b).map { Double(abs($0 - $1)) }.max().map { $0 / scale } ?? 0
  }

  /// The logits (of `forward` and `infer`), loss and every gradient of `model` as it is
  /// (pruned) and after `unprune`, within `tolerance`; the last block's and the token
  /// table's gradients are not trivially zero on either path.
  static func expectPrunedEqualsFull(
    _ model: any Model, _ input: ModelInput, _ targets: [Int32], unprune: () -> Void
  ) {
    let pruned = outputs(model, input, targets)
    let prunedInfer = model.infer(input).array
    unprune()
    let full = outputs(model, input, targets)
    #expect(relativeDifference(full.logits, pruned.logits) < tolerance)
    #expect(relativeDifference(full.logits, prunedInfer) < tolerance)
    #expect(abs(Double(full.loss - pruned.loss)) < tolerance * Double(abs(full.loss)))
    for (name, g) in full.grads {
      let d = relativeDifference(g, pruned.grads[name]!)
      #expect(d < tolerance, "\(name): \(d)")
    }
    let last = "blocks.\(model.config.layers - 1).attn.qkv.weight"
    #expect(full.grads[last]?.contains { $0 != 0 } == true, "\(last)")
    if let table = full.grads["tok_emb.weight"] { #expect(table.contains { $0 != 0 }) }  // a vit has none
  }

  /// `collapsed` also sets the depth: a one-block model's only block is the pruned one,
  /// reading the embeddings.
  @Test(arguments: [ModelKind.vit, .encoder], [[false, false], [false, true], [false]])
  func prunedEqualsFull(kind: ModelKind, collapsed: [Bool]) {
    var cfg = Fixtures.config(kind)
    cfg.pooling = .cls
    cfg.layers = collapsed.count
    let activations = Array([Activation.gelu, .prelu].suffix(collapsed.count))
    let model = Transformer(Architecture(config: cfg, activations: activations, collapsed: collapsed), seed: 3)
    var rng = RNG(seed: 9, stream: "pruned")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.4)
    let (input, targets) = Fixtures.batch(cfg, batch: 5, rng: &rng)
    #expect(model.pruneLastBlock)
    Self.expectPrunedEqualsFull(model, input, targets) { model.pruneLastBlock = false }
  }

  /// BERT's pooler reads [CLS]: its last (post-LayerNorm) layer runs the rest on the first
  /// rows (`Bert.pruneLastBlock`), with padded keys, a PReLU or collapsed last MLP, and
  /// one layer reading the embeddings.
  @Test(arguments: [[false, false], [false, true], [false]])
  func prunedBertEqualsFull(collapsed: [Bool]) {
    var cfg = Fixtures.config(.bert)
    cfg.layers = collapsed.count
    let activations = Array([Activation.geluExact, .prelu].suffix(collapsed.count))
    let model = Bert(Architecture(config: cfg, activations: activations, collapsed: collapsed))
    var rng = RNG(seed: 9, stream: "pruned-bert")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.4)
    let (input, targets) = Fixtures.batch(cfg, batch: 5, rng: &rng)
    #expect(model.pruneLastBlock)
    Self.expectPrunedEqualsFull(model, input, targets) { model.pruneLastBlock = false }
  }

  /// Mean pooling reads every position: nothing is pruned, and gpt never is.
  @Test func meanPoolingAndGPTComputeEveryRow() {
    for kind in [ModelKind.encoder, .gpt] {
      let cfg = Fixtures.config(kind)  // the encoder fixture pools by mean
      let model = Transformer(
        Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: [false, false]), seed: 3)
      var rng = RNG(seed: 2, stream: "mean")
      Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.4)
      let (input, targets) = Fixtures.batch(cfg, batch: 3, rng: &rng)
      let a = Self.outputs(model, input, targets)
      model.pruneLastBlock = false
      let b = Self.outputs(model, input, targets)
      #expect(a.logits.map(\.bitPattern) == b.logits.map(\.bitPattern), "\(kind)")
    }
  }
}

/// BERT's `infer` runs its layers on one shared set of activations (in place where a
/// value is dead), in chunks; `forward` keeps every layer's for a backward pass.
@Suite struct BertInferenceTests {
  /// Three layers: a collapsed MLP, then GELU and PReLU ones (the shared set's MLP buffer
  /// is the first uncollapsed MLP's), the last pruned to [CLS]; sequences end in padding.
  static func model(_ rng: inout RNG) -> (Bert, ModelConfig) {
    var cfg = Fixtures.config(.bert)
    cfg.layers = 3
    let arch = Architecture(
      config: cfg, activations: [.geluExact, .geluExact, .prelu], collapsed: [true, false, false])
    let model = Bert(arch)
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.4)
    return (model, cfg)
  }

  /// At two threads the chunks run on this model and on a helper reading its parameters
  /// (`ParameterSet(sharing:)`), each with one-thread kernels: the logits of one thread,
  /// bit for bit. Building the helper changes no value (it initializes nothing), and it
  /// sees later changes to them. (Needs OpenBLAS at two threads or more, as CI's 2 cores.)
  @Test func twoThreadsGiveOneThreadsLogits() {
    var rng = RNG(seed: 6, stream: "bert-threads")
    let (model, cfg) = Self.model(&rng)
    let (input, _) = Fixtures.batch(cfg, batch: 7, rng: &rng)
    let rows = 2 * cfg.maxLen  // chunks of 2 sequences: 4 chunks, the last padded
    #expect(Parallel.$limit.withValue(2) { Parallel.threads } == min(2, BLASThreads.count))
    let values = model.parameters.values.array
    for change in [false, true] {
      if change { Elementwise.scale(model.parameters["pooler.weight"]!.value, by: 0.5) }
      let one = Parallel.$limit.withValue(1) { model.infer(input, rowsPerChunk: rows).array }
      let two = Parallel.$limit.withValue(2) { model.infer(input, rowsPerChunk: rows).array }
      #expect(two.map(\.bitPattern) == one.map(\.bitPattern), "after a change: \(change)")
      if !change { #expect(model.parameters.values.array == values) }
    }
  }

  /// One chunk: the same kernels on the same rows as `forward`, so the same bits. Chunks
  /// of fewer sequences: equal up to rounding (OpenBLAS sums products of other row counts
  /// in another order; bound as in `TrainingTests.chunkedInferEqualsForward`). A forward
  /// and backward after `infer` get their own buffers back: the same loss and gradients
  /// as before it, bit for bit.
  @Test func inferEqualsForwardAndBackwardStillWorks() {
    var rng = RNG(seed: 4, stream: "bert-infer")
    let (model, cfg) = Self.model(&rng)
    let (input, targets) = Fixtures.batch(cfg, batch: 5, rng: &rng)
    let before = PrunedLastBlockTests.outputs(model, input, targets)
    let kept = model.forward(input).array
    #expect(model.infer(input).array.map(\.bitPattern) == kept.map(\.bitPattern))
    for samples in [2, 1] {
      let chunked = model.infer(input, rowsPerChunk: samples * cfg.maxLen).array
      let d = PrunedLastBlockTests.relativeDifference(kept, chunked)
      #expect(d < 1e-4, "\(samples) a chunk: relative difference \(d)")
    }
    let after = PrunedLastBlockTests.outputs(model, input, targets)
    #expect(after.loss.bitPattern == before.loss.bitPattern)
    for (name, g) in before.grads {
      #expect(after.grads[name]!.map(\.bitPattern) == g.map(\.bitPattern), "\(name)")
    }
  }
}
