import Kernels

/// BERT for sentence classification (`model.kind: bert`), as Hugging Face's
/// `BertForSequenceClassification` computes it:
///
///     x = drop(LN_emb(tok[ids] + pos[t] + type[0]))
///     per block:  x = LN1(x + drop(attn(x)));  x = LN2(x + drop(mlp(x)))   (post-LayerNorm)
///     logits = head(drop(tanh(pooler(x[:, 0]))))
///
/// `drop` is dropout with `model.dropout` in training (BERT's `hidden_dropout_prob`, at
/// the same four places); the dropout on the attention probabilities
/// (`attention_probs_dropout_prob`) is not modelled.
///
/// Each block's MLP (`fc1 → GELU (erf) → fc2`) is its LayerCollapse unit. Parameter names
/// follow our transformer's (`tok_emb`, `blocks.3.attn.qkv`, `blocks.3.mlp.fc1`, `ln1`,
/// `ln2`) plus `type_emb`, `emb_ln` and `pooler`; `HuggingFaceImport` maps BERT's names
/// (and its separate query/key/value into the packed qkv).
public final class Bert: Model {
  public let architecture: Architecture
  public let parameters: ParameterSet
  let tokens: EmbeddingModule
  let positions: EmbeddingModule
  let types: EmbeddingModule
  let embeddingNorm: LayerNormModule
  let embeddingDropout = DropoutModule()
  let blocks: [BertBlock]
  let pooler: LinearModule
  let poolerDropout = DropoutModule()
  let head: LinearModule

  /// Whether the last block computes only what the pooler reads, each sequence's [CLS]
  /// row: keys and values for every position, the query, attention, projection, MLP and
  /// norms for the first (`BertBlock.prepare`). The same logits and gradients up to
  /// rounding; `false` computes every position (tests compare).
  public var pruneLastBlock = true {
    didSet { if pruneLastBlock != oldValue { batch = 0 } }
  }

  // The last forward.
  private var batch = 0
  private var time = 0
  /// Whether every layer has its own activations (`forward`: a backward may follow), or
  /// the layers share one set (`infer`).
  private var keepsActivations = true
  private var ids: [Int32] = []
  /// Position ids 0..<T per sequence and the (all-zero) token types, for (B, T).
  private var positionIDs: [Int32] = []
  private var typeIDs: [Int32] = []
  private var keyValid: [Bool]?
  private var summed = Tensor([0])  // (B·T, C) before the embedding norm
  /// L + 1 of (B·T, C), the last (B, C) when the last block is pruned; in inference two
  /// buffers serve the first L, alternately.
  private var streams: [Tensor] = []
  /// Whether the prepared last block runs on the [CLS] rows alone.
  private var prunedLast = false
  private var first = Tensor([0])  // (B, C) [CLS] rows of the last stream (that stream, pruned)
  private var pooledIn = Tensor([0])  // (B, C) pooler output before tanh
  private var pooled = Tensor([0])  // (B, C)
  private var logits = Tensor([0])
  private var lastLogits = Tensor([0])
  private let crossEntropy = CrossEntropyLoss()
  private let scratch = ScratchPool()
  /// Models for `infer`'s threads after the first, reading this one's parameters
  /// (`ParameterSet(sharing:)`): each thread runs whole chunks on one core.
  private var helpers: [Bert] = []

  /// A BERT of `architecture`; with `sharing`, one that reads those parameters (of a model
  /// of the same architecture) instead of its own, initialized by nobody.
  init(_ architecture: Architecture, sharing: ParameterSet?) {
    self.architecture = architecture
    let cfg = architecture.config
    let c = cfg.dModel
    let eps = cfg.layerNormEpsilon
    var ps = sharing.map { ParameterSet(sharing: $0) } ?? ParameterSet()
    tokens = EmbeddingModule("tok_emb", count: cfg.vocabSize, features: c, params: &ps)
    positions = EmbeddingModule("pos_emb", count: BertFamily.positions(cfg), features: c, params: &ps)
    types = EmbeddingModule("type_emb", count: max(cfg.typeVocabSize, 1), features: c, params: &ps)
    embeddingNorm = LayerNormModule("emb_ln", features: c, params: &ps, epsilon: eps)
    blocks = (0..<cfg.layers).map { i in
      BertBlock(
        index: i, channels: c, heads: cfg.heads, hidden: cfg.mlpHidden, activation: architecture.activations[i],
        collapsed: architecture.collapsed[i], epsilon: eps, params: &ps)
    }
    pooler = LinearModule("pooler", inputs: c, outputs: c, params: &ps)
    head = LinearModule("head", inputs: c, outputs: cfg.classes, params: &ps)
    ps.seal()
    parameters = ps
    if !ps.isShared {
      for p in ps.with(role: .normScale) { p.value.fill(1) }
    }
  }

  public convenience init(_ architecture: Architecture) { self.init(architecture, sharing: nil) }

  public func alphaParameter(unit: Int) -> Parameter? { blocks[unit].mlp.alpha }
  public func chain(unit: Int) -> [(weight: Parameter, bias: Parameter)]? { blocks[unit].mlp.chain }
  public func collapsedLinear(unit: Int) -> (weight: Parameter, bias: Parameter)? {
    blocks[unit].mlp.collapsedLinear
  }
  public func unitProbe(unit: Int) -> (input: Tensor, output: Tensor)? {
    (blocks[unit].mlp.input, blocks[unit].mlp.output)
  }

  // MARK: forward

  @discardableResult
  public func forward(_ input: ModelInput, training: Bool, rng: inout RNG) -> Tensor {
    run(input, training: training, keep: true, rng: &rng)
  }

  /// Inference in chunks of about `rowsPerChunk` rows (B·T), the layers sharing one set of
  /// activations: the same logits as `forward`, bit for bit (each sequence's rows go
  /// through the same kernels); `backward` cannot follow. With more than one thread and
  /// chunk, each thread runs whole chunks with one-thread kernels, on this model or a
  /// helper reading its parameters: the logits of a one-thread `infer`, bit for bit.
  @discardableResult
  public func infer(_ input: ModelInput, rowsPerChunk: Int) -> Tensor {
    guard case .tokens(_, _, let b, let t) = input else { preconditionFailure("bert reads tokens") }
    let per = max(1, rowsPerChunk / max(t, 1))
    let threads = min(Parallel.threads, (b + per - 1) / per)
    let workers = workerModels(self, helpers: &helpers, threads: threads) { Bert(architecture, sharing: parameters) }
    for h in workers { h.pruneLastBlock = pruneLastBlock }
    lastLogits = logitsInChunks(input, batch: b, perChunk: per, workers: workers) { model, chunk in
      var unused = RNG(state: 0)
      return model.run(chunk, training: false, keep: false, rng: &unused)
    }
    return lastLogits
  }

  private func run(_ input: ModelInput, training: Bool, keep: Bool, rng: inout RNG) -> Tensor {
    guard case .tokens(let ids, let valid, let b, let t) = input else { preconditionFailure("bert reads tokens") }
    precondition(t <= config.maxLen, "sequence of \(t) exceeds max_len \(config.maxLen)")
    prepare(batch: b, time: t, keep: keep)
    self.ids = ids
    keyValid = valid
    let c = config.dModel
    tokens.forward(out: summed, ids: ids)
    positions.forward(out: summed, ids: positionIDs, accumulate: true)
    types.forward(out: summed, ids: typeIDs, accumulate: true)
    embeddingNorm.forward(out: streams[0], x: summed)
    let dropout = training ? config.dropout : 0
    for (i, block) in blocks.enumerated() {
      let x = i == 0 ? embeddingDropout.forward(streams[0], p: dropout, rng: &rng) : streams[i]
      block.forward(out: streams[i + 1], x: x, keyValid: valid, dropout: dropout, rng: &rng)
    }
    if !prunedLast {
      for s in 0..<b { Rows.copy(1, width: c, from: streams[blocks.count], row: s * t, to: first, row: s) }
    }
    pooler.forward(y: pooledIn, x: first)
    Tanh.forward(out: pooled, x: pooledIn)
    head.forward(y: logits, x: poolerDropout.forward(pooled, p: dropout, rng: &rng))
    lastLogits = logits
    return logits
  }

  private func prepare(batch b: Int, time t: Int, keep: Bool) {
    guard b != batch || t != time || keep != keepsActivations else { return }
    (batch, time, keepsActivations) = (b, t, keep)
    positionIDs = (0..<(b * t)).map { Int32($0 % t) }
    typeIDs = [Int32](repeating: 0, count: b * t)
    let c = config.dModel
    prunedLast = pruneLastBlock && !blocks.isEmpty
    summed = Tensor([b * t, c])
    let pair = keep ? [] : [Tensor([b * t, c]), Tensor([b * t, c])]
    streams = (0...blocks.count).map { i in
      if prunedLast && i == blocks.count { return Tensor([b, c]) }
      return keep ? Tensor([b * t, c]) : pair[i % 2]
    }
    first = prunedLast ? streams[blocks.count] : Tensor([b, c])
    pooledIn = Tensor([b, c])
    pooled = Tensor([b, c])
    logits = Tensor([b, config.classes])
    let shape = Attention.Shape(batch: b, time: t, channels: c, heads: config.heads)
    prepareBlocks(blocks, shape, backward: keep, firstRowsOnly: prunedLast)
  }

  // MARK: loss, backward

  public func loss(targets: [Int32], teacher: DistillationTarget?) -> Float {
    crossEntropy.forward(logits: lastLogits, targets: targets, teacher: teacher)
  }

  public var probabilities: Tensor { crossEntropy.probabilities }

  public func backward() {
    precondition(
      keepsActivations && lastLogits === logits, "backward after infer(): run forward(_:training:rng:) first")
    let c = config.dModel
    let dlogits = scratch.tensor("bert.dlogits", logits.shape)
    crossEntropy.backward(dlogits: dlogits)
    var dpooled = scratch.tensor("bert.dpooled", pooled.shape)
    head.backward(dx: dpooled, dy: dlogits, x: poolerDropout.output, write: .overwrite)
    if poolerDropout.p > 0 {
      let undropped = scratch.tensor("bert.dpooledUndropped", pooled.shape)
      poolerDropout.backward(dx: undropped, dout: dpooled)
      dpooled = undropped
    }
    let dpooledIn = scratch.tensor("bert.dpooledIn", pooled.shape)
    Tanh.backward(dx: dpooledIn, dout: dpooled, y: pooled)
    let dfirst = scratch.tensor("bert.dfirst", first.shape)
    pooler.backward(dx: dfirst, dy: dpooledIn, x: first, write: .overwrite)
    var dout = scratch.tensor("bert.dstreamA", streams[0].shape)
    var dx = scratch.tensor("bert.dstreamB", streams[0].shape)
    var below = blocks.count  // the blocks whose backward is still to run
    if prunedLast {  // the last block's output is the [CLS] rows: dfirst is its gradient
      below -= 1
      blocks[below].backward(
        dx: dout, dout: dfirst, x: below == 0 ? embeddingDropout.output : streams[below], scratch: scratch)
    } else {
      dout.zero()
      for s in 0..<batch { Rows.copy(1, width: c, from: dfirst, row: s, to: dout, row: s * time) }
    }
    for i in stride(from: below - 1, through: 0, by: -1) {
      blocks[i].backward(dx: dx, dout: dout, x: i == 0 ? embeddingDropout.output : streams[i], scratch: scratch)
      swap(&dout, &dx)
    }
    embeddingDropout.backward(dx: dx, dout: dout)
    swap(&dout, &dx)
    let dsummed = scratch.tensor("bert.dsummed", summed.shape)
    dsummed.zero()
    embeddingNorm.backward(dx: dsummed, dout: dout, x: summed)
    tokens.backward(dout: dsummed, ids: ids)
    positions.backward(dout: dsummed, ids: positionIDs)
    types.backward(dout: dsummed, ids: typeIDs)
  }
}

/// A post-LayerNorm BERT layer: `x1 = LN1(x + drop(attn(x)))`,
/// `out = LN2(x1 + drop(mlp(x1)))`. With `firstRowsOnly` (the last layer, whose output
/// the pooler reads at [CLS] alone) keys and values cover every position and everything
/// after the attention's query the first row of each sequence: out is (B, C).
final class BertBlock: SharableBlock {
  let attention: AttentionModule
  let attentionDropout = DropoutModule()
  let ln1: LayerNormModule
  let mlp: CollapsibleMLP
  let mlpDropout = DropoutModule()
  let ln2: LayerNormModule
  private var attentionOut = Tensor([0])
  private var h1 = Tensor([0])  // x + attn(x)
  private var x1 = Tensor([0])  // LN1(h1)
  private var mlpOut = Tensor([0])
  private var h2 = Tensor([0])  // x1 + mlp(x1)

  init(
    index: Int, channels c: Int, heads: Int, hidden h: Int, activation: Activation, collapsed: Bool,
    epsilon: Float, params: inout ParameterSet
  ) {
    let p = "blocks.\(index)."
    attention = AttentionModule(p + "attn", channels: c, heads: heads, causal: false, params: &params, outputStd: nil)
    ln1 = LayerNormModule(p + "ln1", features: c, params: &params, epsilon: epsilon)
    mlp = CollapsibleMLP(
      p + "mlp", features: c, hidden: h, activation: activation, collapsed: collapsed, params: &params)
    ln2 = LayerNormModule(p + "ln2", features: c, params: &params, epsilon: epsilon)
  }

  /// Allocates the activations of a forward of shape `s`. Without `backward` none is kept
  /// for a backward pass: the attention probabilities live in per-thread scratch, the
  /// activation runs in place and each residual sum overwrites the branch output it adds.
  func prepare(_ s: Attention.Shape, backward: Bool, firstRowsOnly first: Bool) {
    let rows = first ? s.batch : s.batch * s.time  // rows after the attention
    attention.prepare(s, backward: backward, firstRowsOnly: first)
    mlp.prepare(rows: rows, backward: backward)
    (attentionOut, x1, mlpOut) = (Tensor([rows, s.channels]), Tensor([rows, s.channels]), Tensor([rows, s.channels]))
    h1 = backward ? Tensor([rows, s.channels]) : attentionOut
    h2 = backward ? Tensor([rows, s.channels]) : mlpOut
  }

  /// Shares the buffers of `owner` and the MLP activations of `mlpOwner` (inference).
  func borrow(from owner: BertBlock, mlpFrom mlpOwner: CollapsibleMLP) {
    attention.borrow(from: owner.attention)
    mlp.borrow(from: mlpOwner)
    (attentionOut, h1, x1, mlpOut, h2) = (owner.attentionOut, owner.h1, owner.x1, owner.mlpOut, owner.h2)
  }

  /// x: (B·T, C) -> out: (B·T, C), or (B, C) with `firstRowsOnly`.
  func forward(out: Tensor, x: Tensor, keyValid: [Bool]?, dropout: Float, rng: inout RNG) {
    attention.forward(out: attentionOut, x: x, keyValid: keyValid)
    let attended = attentionDropout.forward(attentionOut, p: dropout, rng: &rng)
    if attention.firstRowsOnly {
      Elementwise.addFirstRows(out: h1, x: x, attended)
    } else {
      Elementwise.add(out: h1, x, attended)
    }
    ln1.forward(out: x1, x: h1)
    mlp.forward(out: mlpOut, x: x1, dropout: 0, rng: &rng)
    Elementwise.add(out: h2, x1, mlpDropout.forward(mlpOut, p: dropout, rng: &rng))
    ln2.forward(out: out, x: h2)
  }

  /// dout (the forward's out) -> dx (B·T, C), overwritten (`dx` must not be `dout`).
  func backward(dx: Tensor, dout: Tensor, x: Tensor, scratch: ScratchPool) {
    let dh2 = scratch.tensor("bertblock.dh2", h2.shape)
    dh2.zero()
    ln2.backward(dx: dh2, dout: dout, x: h2)
    // h2 = x1 + drop(mlp(x1))
    let dx1 = scratch.tensor("bertblock.dx1", x1.shape)
    var dmlp = dh2
    if mlpDropout.p > 0 {
      dmlp = scratch.tensor("bertblock.dmlp", h2.shape)
      mlpDropout.backward(dx: dmlp, dout: dh2)
    }
    mlp.backward(dx: dx1, dout: dmlp, scratch: scratch)
    Elementwise.accumulate(dx1, dh2)
    let dh1 = scratch.tensor("bertblock.dh1", h1.shape)
    dh1.zero()
    ln1.backward(dx: dh1, dout: dx1, x: h1)
    // h1 = x + drop(attn(x))
    var dattention = dh1
    if attentionDropout.p > 0 {
      dattention = scratch.tensor("bertblock.dattention", h1.shape)
      attentionDropout.backward(dx: dattention, dout: dh1)
    }
    attention.backward(dx: dx, dout: dattention, x: x, scratch: scratch)
    if attention.firstRowsOnly {
      Elementwise.accumulateFirstRows(into: dx, from: dh1)
    } else {
      Elementwise.accumulate(dx, dh1)
    }
  }
}

/// BERT's closed-form counts; the model is `Bert`.
public enum BertFamily: ModelFamily {
  public static let unitsPerBlock = 1

  public static func unitName(_ unit: Int) -> String { "blocks.\(unit).mlp" }

  public static func build(_ architecture: Architecture) -> any Model { Bert(architecture) }

  public static func fits(_ kind: ModelKind, task: DataTaskKind) -> Bool { task == .sst2 }

  /// Rows of the position table: `maxPositions` (an imported model's), at least `maxLen`.
  static func positions(_ config: ModelConfig) -> Int { max(config.maxPositions, config.maxLen) }

  /// BERT's own sizes, as its config.json names them, so that a config can describe an
  /// imported model for `train.init_from`: `model.max_positions` (512),
  /// `model.type_vocab_size` (2), `model.layer_norm_eps` (1e-12).
  public static func readConfig(_ r: ConfigReader, into config: inout ModelConfig) {
    r.require(
      config.heads > 0 && config.dModel % config.heads == 0, at: "model.heads", "heads must divide d_model",
      expected: "a divisor of d_model = \(config.dModel)", got: "\(config.heads)")
    config.maxPositions = r.int("model.max_positions", default: 512, range: 1...(1 << 20))
    config.typeVocabSize = r.int("model.type_vocab_size", default: 2, range: 1...(1 << 20))
    config.layerNormEpsilon = Float(r.double("model.layer_norm_eps", default: 1e-12, range: 0...1))
    r.require(
      config.maxLen <= config.maxPositions, at: "data.max_len", "sequences longer than the position table",
      expected: "at most model.max_positions = \(config.maxPositions)", got: "\(config.maxLen)")
  }

  public static func fit(_ config: inout ModelConfig, outputs: Int, tokens: Int?) {
    if let t = tokens { config.vocabSize = t }
    config.classes = outputs
  }

  public static func predictsEveryPosition(_ kind: ModelKind) -> Bool { false }

  /// (The position and type tables have at least max_len rows and one row whatever the
  /// stored sizes: `positions`, the type embedding's count.)
  public static func storedProblems(_ config: ModelConfig) -> [String] {
    var problems: [String] = []
    if config.dModel % config.heads != 0 {
      problems.append("heads \(config.heads) do not divide d_model \(config.dModel)")
    }
    if config.maxLen < 1 { problems.append("max_len \(config.maxLen): no token fits") }
    return problems
  }

  public static func sequenceLength(_ config: ModelConfig) -> Int { config.maxLen }

  public static func sizeDescription(_ c: ModelConfig) -> String {
    "d_model \(c.dModel), \(c.heads) heads, \(c.layers) layers, MLP \(c.mlpHidden) (BERT, post-LN)"
  }

  public static func exampleBatch(
    _ config: ModelConfig, batch: Int, rng: inout RNG
  ) -> (input: ModelInput, targets: [Int32]) {
    TokenExamples.batch(config, batch: batch, rng: &rng)
  }

  /// Each unit is a block's MLP, as in the transformer family.
  public static func unitParameters(_ a: Architecture, unit: Int, collapsed: Bool) -> Int {
    TransformerFamily.unitParameters(a, unit: unit, collapsed: collapsed)
  }

  public static func parameterCount(_ a: Architecture) -> Int {
    let cfg = a.config
    let c = cfg.dModel
    var n = (cfg.vocabSize + positions(cfg) + max(cfg.typeVocabSize, 1)) * c + 2 * c
    for i in 0..<cfg.layers { n += 4 * c * c + 4 * c + 4 * c + a.unitParameters(i) }
    return n + c * c + c + cfg.classes * c + cfg.classes
  }

  public static func macsPerExample(_ a: Architecture, time: Int?) -> Int {
    let cfg = a.config
    let (c, t) = (cfg.dModel, time ?? cfg.maxLen)
    var n = 0
    for i in 0..<cfg.layers {
      n += t * c * 4 * c + 2 * t * t * c + t * (a.collapsed[i] ? c * c : 2 * c * cfg.mlpHidden)
    }
    return n + c * c + c * cfg.classes
  }

  /// As `macsPerExample`, with the last block computed for [CLS] alone (`Bert.pruneLastBlock`).
  public static func macsComputedPerExample(_ a: Architecture, time: Int?) -> Int {
    let (n, cfg) = (macsPerExample(a, time: time), a.config)
    guard cfg.layers > 0 else { return n }
    let (t, last) = (time ?? cfg.maxLen, cfg.layers - 1)
    return n - TransformerFamily.blockMACs(a, last, time: t) + TransformerFamily.firstRowBlockMACs(a, last, time: t)
  }

  public static func trainingMemory(_ config: ModelConfig, batchSize: Int) -> MemoryEstimate {
    let (d, h, layers, t) = (
      Double(config.dModel), Double(config.mlpHidden), Double(config.layers), Double(config.maxLen)
    )
    let p =
      layers * (4 * d * d + 2 * d * h + 9 * d + h)
      + (Double(config.vocabSize) + Double(positions(config)) + Double(max(config.typeVocabSize, 1))) * d + d * d
      + Double(config.classes) * d
    let perExample = layers * (t * (16 * d + 3 * h) + 2 * Double(config.heads) * t * t) + 6 * t * d
    return MemoryEstimate(parameters: p, activationBytes: 4 * perExample * Double(batchSize))
  }
}
