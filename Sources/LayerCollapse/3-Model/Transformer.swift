import Kernels

/// What a model reads: token ids (encoder, gpt) or images (vit).
public enum ModelInput {
  /// ids: (B·T); valid: (B·T), true = real token, nil = all real.
  case tokens(ids: [Int32], valid: [Bool]?, batch: Int, time: Int)
  /// (B, C, H, W), channels first as PyTorch.
  case images(Tensor)
}

extension ModelInput {
  /// Samples `range` of the batch, followed by copies of its last sample up to `count`.
  public func samples(_ range: Range<Int>, paddedTo count: Int) -> ModelInput {
    precondition(!range.isEmpty && range.count <= count, "samples \(range) padded to \(count)")
    let indices = Array(range) + Array(repeating: range.upperBound - 1, count: count - range.count)
    switch self {
    case .tokens(let ids, let valid, _, let time):
      let pick = { (i: Int) in (i * time)..<((i + 1) * time) }
      return .tokens(
        ids: indices.flatMap { ids[pick($0)] }, valid: valid.map { v in indices.flatMap { v[pick($0)] } },
        batch: count, time: time)
    case .images(let images):
      let out = Tensor([count] + images.shape.dropFirst())
      Rows.gather(images, blocks: indices, blockSize: images.count / max(images.shape[0], 1), into: out)
      return .images(out)
    }
  }
}

/// Encoder, ViT or GPT: embeddings, pre-LayerNorm blocks, final norm, head. Its
/// LayerCollapse unit i is block i's MLP.
public final class Transformer: Model {
  public let architecture: Architecture
  public let parameters: ParameterSet
  public var config: ModelConfig { architecture.config }
  let blocks: [TransformerBlock]

  let tokenEmbedding: EmbeddingModule?  // (V, C): encoder, gpt
  let positionEmbedding: EmbeddingModule  // (T, C)
  let patchEmbedding: LinearModule?  // channels·P·P -> C: vit
  let clsToken: Parameter?  // (C): vit
  let finalNorm: LayerNormModule
  /// C -> K; nil for a tied gpt head (the token embedding's table serves).
  let head: LinearModule?

  /// Whether the last block computes only what the head reads, when that is each
  /// sequence's first position (vit, and the encoder with [CLS] pooling): keys and values
  /// for every position, everything else for the first (see `Block.prepare`). The same
  /// logits and gradients up to rounding; `false` computes every position (tests compare).
  public var pruneLastBlock = true {
    didSet { if pruneLastBlock != oldValue { workspace = nil } }
  }

  /// Whether the last block runs on the first rows (`pruneLastBlock` where it applies).
  var firstRowsOnly: Bool { pruneLastBlock && config.headReadsFirstRow && !blocks.isEmpty }

  private var workspace: TransformerBuffers?
  /// The logits of a chunked `infer`, and the softmax and losses a `loss` call computes
  /// from them.
  private var inferLogits: Tensor?
  private var chunkedProbs: Tensor?
  private let distillation = DistillationTerm()
  private var chunkedLosses: Tensor?
  /// The logits the last forward or `infer` returned: what `loss` reads.
  private var lastLogits: Tensor?

  /// A model with every parameter zero (LayerNorm scales one); see `initialize`.
  public init(_ architecture: Architecture) {
    precondition(
      ObjectIdentifier(ModelRegistry.family(architecture.config.kind)) == ObjectIdentifier(TransformerFamily.self),
      "not a transformer: \(architecture.config.kind)")
    self.architecture = architecture
    let cfg = architecture.config
    let c = cfg.dModel
    var ps = ParameterSet()
    switch cfg.kind {
    case .encoder, .gpt:
      tokenEmbedding = EmbeddingModule("tok_emb", count: cfg.vocabSize, features: c, params: &ps)
      patchEmbedding = nil
      clsToken = nil
    default:  // vit (the registry builds a mixer as a `Mixer`)
      tokenEmbedding = nil
      patchEmbedding = LinearModule("patch_emb", inputs: cfg.patchValues, outputs: c, params: &ps)
      clsToken = ps.add("cls_token", [c], role: .token)
    }
    positionEmbedding = EmbeddingModule(
      "pos_emb", count: TransformerFamily.positionRows(cfg), features: c, params: &ps)
    // GPT-2: the weights that write into the residual stream start at 0.02/√(2L).
    let residualStd = 0.02 / Float(2 * max(cfg.layers, 1)).squareRoot()
    var bs: [TransformerBlock] = []
    for i in 0..<cfg.layers {
      bs.append(
        TransformerBlock(
          index: i, channels: c, heads: cfg.heads, hidden: cfg.mlpHidden, causal: cfg.kind == .gpt,
          activation: architecture.activations[i], collapsed: architecture.collapsed[i], residualStd: residualStd,
          epsilon: cfg.layerNormEpsilon, params: &ps))
    }
    blocks = bs
    finalNorm = LayerNormModule("ln_f", features: c, params: &ps, epsilon: cfg.layerNormEpsilon)
    if cfg.kind == .gpt && cfg.tieWeights {
      head = nil
    } else {
      head = LinearModule("head", inputs: c, outputs: cfg.outputs, bias: cfg.kind != .gpt, params: &ps)
    }
    ps.seal()
    parameters = ps
    for p in ps.with(role: .normScale) { p.value.fill(1) }
  }

  /// GPT-2-style initialization (`Model.initialize`, by role): N(0, 0.02) weights and
  /// embeddings, residual output projections N(0, 0.02/√(2L)), α = `alphaInit`.
  public convenience init(_ architecture: Architecture, seed: UInt64, alphaInit: Float = 0.01) {
    self.init(architecture)
    var rng = RNG(seed: seed, stream: "init")
    initialize(rng: &rng, alphaInit: alphaInit)
  }

  // MARK: queries

  /// The α parameter of `block`, if its MLP is an uncollapsed PReLU.
  public func alphaParameter(block: Int) -> Parameter? { blocks[block].mlp.alpha }

  public func alphaParameter(unit: Int) -> Parameter? { blocks[unit].mlp.alpha }

  public func chain(unit: Int) -> [(weight: Parameter, bias: Parameter)]? { blocks[unit].mlp.chain }

  public func collapsedLinear(unit: Int) -> (weight: Parameter, bias: Parameter)? {
    blocks[unit].mlp.collapsedLinear
  }

  /// The MLP input (ln2 output) and output of block `unit` in the last forward.
  public func unitProbe(unit: Int) -> (input: Tensor, output: Tensor)? { blocks[unit].mlpProbe }

  // MARK: forward

  /// Logits: (B, K) for classifiers, (B·T, V) for gpt. Valid until the next forward.
  /// `training` turns dropout on; its masks come from `rng`.
  @discardableResult
  public func forward(_ input: ModelInput, training: Bool, rng: inout RNG) -> Tensor {
    forward(input, training: training, keepActivations: true, rng: &rng)
  }

  /// Inference: no dropout, the blocks share one set of activation buffers, and a large
  /// batch runs in chunks of at most about `rowsPerChunk` rows (B·T), so what one layer
  /// hands the next stays in cache. The same logits as `forward`, bit for bit (each
  /// sample's rows go through the same kernels either way); `backward` cannot follow.
  /// (Measured at batch 256, 1 and 2 threads: +8–20 % samples/s over one whole-batch
  /// pass, whose 34 MB MLP activation of each vit block went out to memory and back
  /// several times; 512 rows did as well as 1024 and better than 256 or 2048.)
  @discardableResult
  public func infer(_ input: ModelInput, rowsPerChunk: Int = ModelRegistry.inferenceRows) -> Tensor {
    precondition(rowsPerChunk > 0, "infer: rowsPerChunk \(rowsPerChunk)")
    var unused = RNG(state: 0)
    let (batch, time) = inputShape(input)
    let chunks = min(batch, (batch * time + rowsPerChunk - 1) / rowsPerChunk)
    if chunks <= 1 { return forward(input, training: false, keepActivations: false, rng: &unused) }
    // Equal chunks: the last is padded with copies of the last sample, so every chunk
    // uses the same buffers.
    let per = (batch + chunks - 1) / chunks
    let rowsPerSample = config.kind == .gpt ? time : 1
    let width = config.outputs
    if inferLogits?.shape != [batch * rowsPerSample, width] {
      inferLogits = Tensor([batch * rowsPerSample, width])
    }
    let out = inferLogits!
    for start in stride(from: 0, to: batch, by: per) {
      let n = min(per, batch - start)
      let logits = forward(
        input.samples(start..<(start + n), paddedTo: per), training: false, keepActivations: false, rng: &unused)
      Rows.copy(n * rowsPerSample, width: width, from: logits, row: 0, to: out, row: start * rowsPerSample)
    }
    lastLogits = out
    return out
  }

  private func forward(_ input: ModelInput, training: Bool, keepActivations: Bool, rng: inout RNG) -> Tensor {
    let (batch, time) = inputShape(input)
    let ws = prepare(batch: batch, time: time, keepActivations: keepActivations)
    ws.input = input
    ws.dropout = training ? config.dropout : 0
    let x0 = ws.streams[0]
    embedForward(input, into: x0, ws)  // (B, T, C)
    for (i, block) in blocks.enumerated() {
      block.forward(
        out: ws.streams[i + 1], x: ws.streams[i], keyValid: ws.keyValid, dropout: ws.dropout, rng: &rng)
    }
    finalNorm.forward(out: ws.lnf, x: ws.streams[blocks.count])
    headForward(ws)
    lastLogits = ws.logits
    return ws.logits
  }

  func inputShape(_ input: ModelInput) -> (Int, Int) {
    switch input {
    case .tokens(let ids, let valid, let batch, let time):
      precondition(config.kind != .vit, "a vit reads images, not tokens")
      precondition(ids.count == batch * time && (valid == nil || valid!.count == ids.count), "token batch shape")
      precondition(time <= config.maxLen, "sequence of \(time) exceeds max_len \(config.maxLen)")
      return (batch, time)
    case .images(let images):
      precondition(config.kind == .vit, "only a vit reads images")
      images.expectShape(
        [images.shape[0], config.imageChannels, config.imageSize, config.imageSize], "images")
      return (images.shape[0], config.sequenceLength)
    }
  }

  /// (B, T, C) residual stream 0: token + position, or [CLS]/patches + position.
  private func embedForward(_ input: ModelInput, into x: Tensor, _ ws: TransformerBuffers) {
    let c = config.dModel
    switch (input, tokenEmbedding, patchEmbedding, clsToken) {
    case (.tokens(let ids, _, _, let time), let tokens?, _, _):
      tokens.forward(out: x, ids: ids)
      positionEmbedding.forward(out: x, ids: ws.positionIDs(time: time), accumulate: true)
    case (.images(let images), _, let patchEmbedding?, let cls?):
      ws.extractPatches(images, config)  // (B·N, channels·P·P)
      patchEmbedding.forward(y: ws.patchOut, x: ws.patches)  // (B·N, C)
      let n = ws.time - 1
      for b in 0..<ws.batch {
        Rows.copy(1, width: c, from: cls.value, row: 0, to: x, row: b * ws.time)
        Rows.copy(n, width: c, from: ws.patchOut, row: b * n, to: x, row: b * ws.time + 1)
      }
      positionEmbedding.forward(out: x, ids: ws.positionIDs(time: ws.time), accumulate: true)
    default:
      preconditionFailure("input does not fit a \(config.kind.rawValue) (checked by inputShape)")
    }
  }

  /// ln_f: (B, T, C) -> logits.
  private func headForward(_ ws: TransformerBuffers) {
    let c = config.dModel
    if config.kind == .gpt {
      if let head {
        head.forward(y: ws.logits, x: ws.lnf)  // (B·T, V)
      } else if let tied = tokenEmbedding {
        Linear.forward(y: ws.logits, x: ws.lnf, w: tied.table.value, b: nil)
      }
    } else if config.headReadsFirstRow {  // vit, encoder with [CLS] pooling
      let rowsPerSequence = ws.firstRowsOnly ? 1 : ws.time  // rows of lnf
      for b in 0..<ws.batch { Rows.copy(1, width: c, from: ws.lnf, row: b * rowsPerSequence, to: ws.pooled, row: b) }
      head?.forward(y: ws.logits, x: ws.pooled)  // (B, K)
    } else {  // encoder, mean pooling
      Rows.maskedMean(out: ws.pooled, x: ws.lnf, valid: ws.keyValid, batch: ws.batch, time: ws.time, width: c)
      head?.forward(y: ws.logits, x: ws.pooled)  // (B, K)
    }
  }

  // MARK: loss

  /// Mean cross-entropy of the last forward's logits against `targets` ((B) labels, or
  /// (B·T) next tokens with `CrossEntropy.ignoreIndex` for positions to skip).
  public func loss(targets: [Int32], teacher: DistillationTarget?) -> Float {
    let ws = workspace!
    let logits = lastLogits!
    precondition(targets.count == logits.shape[0], "\(targets.count) targets for \(logits.shape[0]) rows")
    ws.targets = targets
    if logits === ws.logits {
      let ce = CrossEntropy.forward(losses: ws.losses, probs: ws.probs, logits: logits, targets: targets)
      return distillation.forward(crossEntropy: ce, logits: logits, targets: targets, teacher: teacher)
    }
    // A chunked `infer`: its logits are not the workspace's.
    if chunkedProbs?.shape != logits.shape {
      chunkedProbs = Tensor(logits.shape)
      chunkedLosses = Tensor([logits.shape[0]])
    }
    return CrossEntropy.forward(losses: chunkedLosses!, probs: chunkedProbs!, logits: logits, targets: targets)
  }

  /// Softmax probabilities of the last `loss` call: (B, K) or (B·T, V).
  public var probabilities: Tensor { lastLogits === workspace!.logits ? workspace!.probs : chunkedProbs! }

  // MARK: backward

  /// Adds d(mean loss)/d(parameter) into every parameter's gradient, for the last
  /// forward and `loss`. Callers zero gradients before the forward.
  public func backward() {
    let ws = workspace!
    precondition(ws.keepsActivations, "backward after infer(): use forward(_:training:rng:) before a backward pass")
    let c = config.dModel
    let counted = CrossEntropy.countedRows(ws.targets)
    ws.dlogits.zero()
    CrossEntropy.backward(
      dlogits: ws.dlogits, probs: ws.probs, targets: ws.targets,
      scale: distillation.crossEntropyWeight / Float(max(counted, 1)))
    distillation.backward(dlogits: ws.dlogits, targets: ws.targets)
    // head
    ws.dlnf.zero()
    if config.kind == .gpt {
      if let head {
        head.backward(dx: ws.dlnf, dy: ws.dlogits, x: ws.lnf, write: .accumulate)
      } else if let tied = tokenEmbedding {
        Linear.backward(dx: ws.dlnf, dw: tied.table.grad, db: nil, dy: ws.dlogits, x: ws.lnf, w: tied.table.value)
      }
    } else {  // vit, encoder
      ws.dpooled.zero()
      head?.backward(dx: ws.dpooled, dy: ws.dlogits, x: ws.pooled, write: .accumulate)
      if config.headReadsFirstRow {
        let rowsPerSequence = ws.firstRowsOnly ? 1 : ws.time  // rows of lnf
        for b in 0..<ws.batch {
          Rows.copy(1, width: c, from: ws.dpooled, row: b, to: ws.dlnf, row: b * rowsPerSequence)
        }
      } else {
        Rows.maskedMeanBackward(
          dx: ws.dlnf, dout: ws.dpooled, valid: ws.keyValid, batch: ws.batch, time: ws.time, width: c)
      }
    }
    // final norm: its input is (B, T, C), or (B, C) after a first-rows-only last block
    var dout = ws.dstreamA
    var dx = ws.dstreamB
    let dlast = ws.firstRowsOnly ? ws.dfirstRows : dout
    dlast.zero()
    finalNorm.backward(dx: dlast, dout: ws.dlnf, x: ws.streams[blocks.count])
    // blocks, last to first
    for i in stride(from: blocks.count - 1, through: 0, by: -1) {
      let last = i == blocks.count - 1
      blocks[i].backward(dx: dx, dout: last ? dlast : dout, x: ws.streams[i], scratch: ws.scratch)
      swap(&dout, &dx)
    }
    embedBackward(dx0: dout, ws)
  }

  /// dx0: (B, T, C) gradient of residual stream 0 -> embedding gradients.
  private func embedBackward(dx0: Tensor, _ ws: TransformerBuffers) {
    let c = config.dModel
    positionEmbedding.backward(dout: dx0, ids: ws.positionIDs(time: ws.time))
    switch (ws.input, tokenEmbedding, patchEmbedding, clsToken) {
    case (.tokens(let ids, _, _, _)?, let tokens?, _, _):
      tokens.backward(dout: dx0, ids: ids)
    case (.images?, _, let patchEmbedding?, let cls?):
      let n = ws.time - 1
      for b in 0..<ws.batch {
        Rows.add(width: c, from: dx0, row: b * ws.time, to: cls.grad, row: 0)
        Rows.copy(n, width: c, from: dx0, row: b * ws.time + 1, to: ws.patchOut, row: b * n)  // now its gradient
      }
      patchEmbedding.backward(dx: nil, dy: ws.patchOut, x: ws.patches, write: .accumulate)
    default:
      preconditionFailure("backward without a forward")
    }
  }

  // MARK: workspace

  private func prepare(batch: Int, time: Int, keepActivations keep: Bool) -> TransformerBuffers {
    if let ws = workspace, ws.batch == batch, ws.time == time, ws.keepsActivations == keep { return ws }
    let first = firstRowsOnly
    let ws = TransformerBuffers(config: config, batch: batch, time: time, keepsActivations: keep, firstRowsOnly: first)
    let shape = Attention.Shape(batch: batch, time: time, channels: config.dModel, heads: config.heads)
    prepareBlocks(blocks, shape, backward: keep, firstRowsOnly: first)
    workspace = ws
    return ws
  }
}

/// The transformer's buffers sized for one (batch, time), reused across steps: the
/// residual streams, the final norm, pooling, logits and their gradients.
final class TransformerBuffers {
  let batch: Int
  let time: Int
  /// Every block has its own activations (a backward pass may follow).
  let keepsActivations: Bool
  /// The last block's output, the final norm and its gradients are (B, C): the first
  /// row of each sequence only.
  let firstRowsOnly: Bool
  var input: ModelInput?
  var targets: [Int32] = []
  var dropout: Float = 0
  var keyValid: [Bool]? {
    if case .tokens(_, let valid, _, _)? = input { return valid }
    return nil
  }
  let streams: [Tensor]  // L + 1 of (B, T, C)
  let lnf: Tensor
  let pooled: Tensor  // (B, C)
  let logits: Tensor
  /// Softmax of the logits and per-row losses: only a loss needs them, so inference never
  /// allocates them.
  lazy var probs = Tensor(logits.shape)
  lazy var losses = Tensor([logits.shape[0]])
  // Gradient buffers exist only once a backward pass needs them: evaluation and
  // inference never allocate them.
  lazy var dlogits = Tensor(logits.shape)
  lazy var dpooled = Tensor(pooled.shape)
  lazy var dlnf = Tensor(lnf.shape)
  lazy var dstreamA = Tensor(streams[0].shape)
  lazy var dstreamB = Tensor(streams[0].shape)
  /// d(last block's output) when it is (B, C).
  lazy var dfirstRows = Tensor(streams[streams.count - 1].shape)
  let patches: Tensor  // (B·N, channels·P·P)
  let patchOut: Tensor  // (B·N, C)
  /// Every module's gradient scratch (one backward runs at a time).
  let scratch = ScratchPool()
  private var positions: [Int32] = []

  init(config cfg: ModelConfig, batch: Int, time: Int, keepsActivations: Bool, firstRowsOnly: Bool) {
    self.batch = batch
    self.time = time
    self.keepsActivations = keepsActivations
    self.firstRowsOnly = firstRowsOnly
    let rows = batch * time
    let c = cfg.dModel
    // Inference ping-pongs between two residual streams; training keeps all L + 1.
    let a = Tensor([batch, time, c])
    let b = Tensor([batch, time, c])
    streams = (0...cfg.layers).map { i in
      if firstRowsOnly && i == cfg.layers { return Tensor([batch, c]) }
      return keepsActivations ? Tensor([batch, time, c]) : (i % 2 == 0 ? a : b)
    }
    let normRows = firstRowsOnly ? batch : rows
    lnf = Tensor([normRows, c])
    pooled = Tensor([batch, c])
    let logitRows = cfg.kind == .gpt ? rows : batch
    logits = Tensor([logitRows, cfg.outputs])
    let patchRows = cfg.kind == .vit ? batch * (time - 1) : 0
    patches = Tensor([patchRows, cfg.patchValues])
    patchOut = Tensor([patchRows, c])
  }

  /// Position ids 0..<time repeated for every sequence of the batch.
  func positionIDs(time: Int) -> [Int32] {
    if positions.count != batch * time {
      positions = (0..<(batch * time)).map { Int32($0 % time) }
    }
    return positions
  }

  /// images (B, ch, S, S) -> patches (B·N, ch·P·P) (`Patches.extract`).
  func extractPatches(_ images: Tensor, _ cfg: ModelConfig) {
    Patches.extract(
      out: patches, images: images, channels: cfg.imageChannels, size: cfg.imageSize, patch: cfg.patchSize)
  }

}
