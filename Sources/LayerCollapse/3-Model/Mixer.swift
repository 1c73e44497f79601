import Kernels

/// The MLP-Mixer family (`model.kind: mixer`, image tasks; Tolstikhin et al., 2021): a
/// patch embedding, then per block
///
///     x = x + Tᵀ(token_mlp(T(ln1(x))))     across the S patches, per channel
///     x = x + channel_mlp(ln2(x))          across the C channels, per patch
///
/// (T swaps the patch and channel axes), a final LayerNorm, the mean over patches and a
/// linear head. Both MLPs of a block are LayerCollapse units (2b and 2b + 1), each with
/// its own α. Parameter names follow our transformer's (`patch_emb`, `blocks.i.ln1`,
/// `blocks.i.token_mlp.fc1`, `blocks.i.channel_mlp.act.alpha`, `ln_f`, `head`).
public final class Mixer: Model {
  public let architecture: Architecture
  public let parameters: ParameterSet
  let patchEmbedding: LinearModule
  let blocks: [MixerBlock]
  let finalNorm: LayerNormModule
  let head: LinearModule

  // Activations of the last forward, for B images.
  private var batch = 0
  private var patches = Tensor([0])  // (B·S, ch·P·P)
  private var streams: [Tensor] = []  // L + 1 of (B·S, C)
  private var lnf = Tensor([0])  // (B·S, C)
  private var pooled = Tensor([0])  // (B, C)
  private var logits = Tensor([0])  // (B, K)
  /// The logits `loss` reads: the last forward's, or a chunked `infer`'s whole batch.
  private var lastLogits = Tensor([0])
  private let crossEntropy = CrossEntropyLoss()
  private var dropout: Float = 0

  public init(_ architecture: Architecture) {
    self.architecture = architecture
    let cfg = architecture.config
    let (c, s) = (cfg.dModel, cfg.sequenceLength)
    var ps = ParameterSet()
    let scratch = ScratchPool()
    patchEmbedding = LinearModule("patch_emb", inputs: cfg.patchValues, outputs: c, params: &ps)
    blocks = (0..<cfg.layers).map { i in
      MixerBlock(
        index: i, channels: c, patches: s, tokenHidden: cfg.tokenMLPHidden, channelHidden: cfg.mlpHidden,
        activations: (architecture.activations[2 * i], architecture.activations[2 * i + 1]),
        collapsed: (architecture.collapsed[2 * i], architecture.collapsed[2 * i + 1]), scratch: scratch,
        params: &ps)
    }
    finalNorm = LayerNormModule("ln_f", features: c, params: &ps)
    head = LinearModule("head", inputs: c, outputs: cfg.classes, params: &ps)
    ps.seal()
    parameters = ps
    for p in ps.with(role: .normScale) { p.value.fill(1) }
  }

  func unit(_ u: Int) -> CollapsibleMLP { u % 2 == 0 ? blocks[u / 2].tokenMLP : blocks[u / 2].channelMLP }

  public func alphaParameter(unit u: Int) -> Parameter? { unit(u).alpha }
  public func chain(unit u: Int) -> [(weight: Parameter, bias: Parameter)]? { unit(u).chain }
  public func collapsedLinear(unit u: Int) -> (weight: Parameter, bias: Parameter)? { unit(u).collapsedLinear }
  public func unitProbe(unit u: Int) -> (input: Tensor, output: Tensor)? { (unit(u).input, unit(u).output) }

  // MARK: forward

  @discardableResult
  public func forward(_ input: ModelInput, training: Bool, rng: inout RNG) -> Tensor {
    guard case .images(let images) = input else { preconditionFailure("a mixer reads images, not tokens") }
    let cfg = config
    images.expectShape([images.shape[0], cfg.imageChannels, cfg.imageSize, cfg.imageSize], "images")
    prepare(batch: images.shape[0])
    dropout = training ? cfg.dropout : 0
    Patches.extract(
      out: patches, images: images, channels: cfg.imageChannels, size: cfg.imageSize, patch: cfg.patchSize)
    patchEmbedding.forward(y: streams[0], x: patches)  // (B·S, C)
    for (i, block) in blocks.enumerated() {
      block.forward(out: streams[i + 1], x: streams[i], batch: batch, dropout: dropout, rng: &rng)
    }
    finalNorm.forward(out: lnf, x: streams[blocks.count])
    let (c, s) = (cfg.dModel, cfg.sequenceLength)
    Reduce.meanRows(out: pooled, x: lnf, groups: batch, rows: s, cols: c)  // (B, C)
    head.forward(y: logits, x: pooled)
    lastLogits = logits
    return logits
  }

  /// Inference in chunks of about `rowsPerChunk` rows (images × patches), so that what one
  /// block hands the next stays small (the same logits as one pass up to rounding).
  @discardableResult
  public func infer(_ input: ModelInput, rowsPerChunk: Int) -> Tensor {
    precondition(rowsPerChunk > 0, "infer: rowsPerChunk \(rowsPerChunk)")
    guard case .images(let images) = input else { preconditionFailure("a mixer reads images, not tokens") }
    let all = logitsInChunks(
      input, batch: images.shape[0], perChunk: max(1, rowsPerChunk / config.sequenceLength))
    lastLogits = all  // what `loss` and `probabilities` read: the whole batch's logits
    return all
  }

  private func prepare(batch b: Int) {
    guard b != batch else { return }
    let cfg = config
    let (c, s) = (cfg.dModel, cfg.sequenceLength)
    batch = b
    patches = Tensor([b * s, cfg.patchValues])
    streams = (0...cfg.layers).map { _ in Tensor([b * s, c]) }
    lnf = Tensor([b * s, c])
    pooled = Tensor([b, c])
    logits = Tensor([b, cfg.classes])
    for block in blocks { block.prepare(batch: b) }
  }

  // MARK: loss

  public func loss(targets: [Int32], teacher: DistillationTarget?) -> Float {
    crossEntropy.forward(logits: lastLogits, targets: targets, teacher: teacher)
  }

  public var probabilities: Tensor { crossEntropy.probabilities }

  // MARK: backward

  public func backward() {
    precondition(lastLogits === logits, "backward after a chunked infer(): run forward(_:training:rng:) first")
    let cfg = config
    let (c, s) = (cfg.dModel, cfg.sequenceLength)
    let dlogits = Tensor(logits.shape)
    crossEntropy.backward(dlogits: dlogits)
    let dpooled = Tensor(pooled.shape)
    head.backward(dx: dpooled, dy: dlogits, x: pooled, write: .overwrite)
    let dlnf = Tensor(lnf.shape)
    Reduce.meanRowsBackward(dx: dlnf, dout: dpooled, groups: batch, rows: s, cols: c)
    var dout = Tensor(lnf.shape)
    var dx = Tensor(lnf.shape)
    finalNorm.backward(dx: dout, dout: dlnf, x: streams[blocks.count])
    for i in stride(from: blocks.count - 1, through: 0, by: -1) {
      blocks[i].backward(dx: dx, dout: dout, x: streams[i], batch: batch)
      swap(&dout, &dx)
    }
    patchEmbedding.backward(dx: nil, dy: dout, x: patches, write: .overwrite)
  }
}

/// One Mixer block: ln1 → token-mixing MLP (on the transposed stream) → residual, ln2 →
/// channel-mixing MLP → residual.
final class MixerBlock {
  let ln1: LayerNormModule
  let tokenMLP: CollapsibleMLP
  let ln2: LayerNormModule
  let channelMLP: CollapsibleMLP
  let c: Int
  let s: Int
  private var normed1 = Tensor([0])  // (B·S, C) ln1(x)
  private var tokensIn = Tensor([0])  // (B·C, S) its transpose
  private var mixed = Tensor([0])  // (B·S, C) the token MLP's output, transposed back
  private var mid = Tensor([0])  // (B·S, C) x + mixed
  private var normed2 = Tensor([0])  // (B·S, C) ln2(mid)
  private var tokensOut = Tensor([0])  // (B·C, S) the token MLP's output
  private var channelsOut = Tensor([0])  // (B·S, C) the channel MLP's output
  /// Scratch of the MLPs' backward (the same for every block: `Mixer` passes one).
  private let scratch: ScratchPool
  // Backward scratch.
  private var dmid = Tensor([0])
  private var dtokens = Tensor([0])  // (B·C, S)
  private var dtokensIn = Tensor([0])  // (B·C, S)
  private var dnormed = Tensor([0])  // (B·S, C)

  init(
    index i: Int, channels c: Int, patches s: Int, tokenHidden: Int, channelHidden: Int,
    activations: (Activation, Activation), collapsed: (Bool, Bool), scratch: ScratchPool,
    params: inout ParameterSet
  ) {
    let p = "blocks.\(i)."
    self.scratch = scratch
    self.c = c
    self.s = s
    ln1 = LayerNormModule(p + "ln1", features: c, params: &params)
    tokenMLP = CollapsibleMLP(
      p + "token_mlp", features: s, hidden: tokenHidden, activation: activations.0, collapsed: collapsed.0,
      params: &params)
    ln2 = LayerNormModule(p + "ln2", features: c, params: &params)
    channelMLP = CollapsibleMLP(
      p + "channel_mlp", features: c, hidden: channelHidden, activation: activations.1, collapsed: collapsed.1,
      params: &params)
  }

  func prepare(batch b: Int) {
    normed1 = Tensor([b * s, c])
    tokensIn = Tensor([b * c, s])
    mixed = Tensor([b * s, c])
    mid = Tensor([b * s, c])
    normed2 = Tensor([b * s, c])
    tokensOut = Tensor([b * c, s])
    channelsOut = Tensor([b * s, c])
    tokenMLP.prepare(rows: b * c, backward: true)
    channelMLP.prepare(rows: b * s, backward: true)
    dmid = Tensor([b * s, c])
    dtokens = Tensor([b * c, s])
    dtokensIn = Tensor([b * c, s])
    dnormed = Tensor([b * s, c])
  }

  /// x: (B·S, C) -> out: (B·S, C).
  func forward(out: Tensor, x: Tensor, batch b: Int, dropout: Float, rng: inout RNG) {
    ln1.forward(out: normed1, x: x)
    Transpose.forward(out: tokensIn, x: normed1, batch: b, rows: s, cols: c)  // (B, C, S)
    tokenMLP.forward(out: tokensOut, x: tokensIn, dropout: dropout, rng: &rng)  // (B·C, S)
    Transpose.forward(out: mixed, x: tokensOut, batch: b, rows: c, cols: s)  // (B, S, C)
    Elementwise.add(out: mid, x, mixed)
    ln2.forward(out: normed2, x: mid)
    channelMLP.forward(out: channelsOut, x: normed2, dropout: dropout, rng: &rng)
    Elementwise.add(out: out, mid, channelsOut)
  }

  /// dout: (B·S, C) -> dx (B·S, C), overwritten (`dx` must not be `dout`).
  func backward(dx: Tensor, dout: Tensor, x: Tensor, batch b: Int) {
    // out = mid + channel_mlp(ln2(mid))
    dmid.copy(from: dout)
    channelMLP.backward(dx: dnormed, dout: dout, scratch: scratch)
    ln2.backward(dx: dmid, dout: dnormed, x: mid)
    // mid = x + Tᵀ(token_mlp(T(ln1(x))))
    Transpose.forward(out: dtokens, x: dmid, batch: b, rows: s, cols: c)  // d(token MLP output), (B, C, S)
    tokenMLP.backward(dx: dtokensIn, dout: dtokens, scratch: scratch)
    Transpose.forward(out: dnormed, x: dtokensIn, batch: b, rows: c, cols: s)  // d(ln1 output), (B, S, C)
    dx.copy(from: dmid)
    ln1.backward(dx: dx, dout: dnormed, x: x)
  }
}

/// The Mixer's closed-form counts.
public enum MixerFamily: ModelFamily {
  public static let unitsPerBlock = 2

  public static func unitName(_ unit: Int) -> String {
    "blocks.\(unit / 2).\(unit % 2 == 0 ? "token_mlp" : "channel_mlp")"
  }

  public static func build(_ architecture: Architecture) -> any Model { Mixer(architecture) }

  /// An image classifier: the CIFAR tasks.
  public static func fits(_ kind: ModelKind, task: DataTaskKind) -> Bool { task != .sst2 && task != .text }

  /// `model.token_mlp_hidden`: the token-mixing MLP's hidden width (timm's Mixers use
  /// half the channels, the default). `model.heads` means nothing to a Mixer.
  public static func readConfig(_ r: ConfigReader, into config: inout ModelConfig) {
    let tokens = r.int("model.token_mlp_hidden", default: 0, range: 0...(1 << 24))
    config.tokenMLPHidden = tokens > 0 ? tokens : max(1, config.dModel / 2)
  }

  public static func fit(_ config: inout ModelConfig, outputs: Int, tokens: Int?) { config.classes = outputs }

  public static func predictsEveryPosition(_ kind: ModelKind) -> Bool { false }

  public static func storedProblems(_ config: ModelConfig) -> [String] {
    var problems: [String] = []
    if config.tokenMLPHidden < 1 { problems.append("token MLP width \(config.tokenMLPHidden)") }
    if config.imageSize % config.patchSize != 0 {
      problems.append("patch size \(config.patchSize) does not divide image size \(config.imageSize)")
    }
    return problems
  }

  /// The patches (no extra token).
  public static func sequenceLength(_ config: ModelConfig) -> Int { config.patchesPerSide * config.patchesPerSide }

  public static func exampleBatch(
    _ config: ModelConfig, batch: Int, rng: inout RNG
  ) -> (input: ModelInput, targets: [Int32]) { ImageExamples.batch(config, batch: batch, rng: &rng) }

  public static func sizeDescription(_ c: ModelConfig) -> String {
    "d_model \(c.dModel), \(c.layers) layers, token MLP \(c.tokenMLPHidden), channel MLP \(c.mlpHidden)"
  }

  /// (width, hidden) of `unit`: the token MLP maps S patches, the channel MLP C channels.
  static func sizes(_ config: ModelConfig, unit: Int) -> (d: Int, h: Int) {
    unit % 2 == 0 ? (config.sequenceLength, config.tokenMLPHidden) : (config.dModel, config.mlpHidden)
  }

  public static func unitParameters(_ a: Architecture, unit: Int, collapsed: Bool) -> Int {
    let (d, h) = sizes(a.config, unit: unit)
    return Architecture.mlpParameters(d: d, h: h, activation: a.activations[unit], collapsed: collapsed)
  }

  public static func parameterCount(_ a: Architecture) -> Int {
    let c = a.config.dModel
    var n = c * a.config.patchValues + c  // patch embedding
    for u in 0..<a.unitCount { n += a.unitParameters(u) }
    n += a.config.layers * 4 * c + 2 * c  // ln1, ln2 per block; ln_f
    return n + a.config.classes * c + a.config.classes
  }

  public static func macsPerExample(_ a: Architecture, time: Int?) -> Int {
    let cfg = a.config
    let (c, s) = (cfg.dModel, cfg.sequenceLength)
    var n = s * cfg.patchValues * c
    for u in 0..<a.unitCount {
      let (d, h) = sizes(cfg, unit: u)
      let rows = u % 2 == 0 ? c : s  // the token MLP runs once per channel, the channel MLP once per patch
      n += rows * (a.collapsed[u] ? d * d : 2 * d * h)
    }
    return n + c * cfg.classes
  }

  public static func macsComputedPerExample(_ a: Architecture, time: Int?) -> Int { macsPerExample(a, time: time) }

  public static func trainingMemory(_ config: ModelConfig, batchSize: Int) -> MemoryEstimate {
    let (c, s, layers) = (Double(config.dModel), Double(config.sequenceLength), Double(config.layers))
    let (ht, hc) = (Double(config.tokenMLPHidden), Double(config.mlpHidden))
    let p =
      layers * (2 * s * ht + ht + s + 2 * c * hc + hc + 5 * c) + c * Double(config.patchValues) + 3 * c
      + Double(config.classes) * (c + 1)
    // Per example and block: norms, transposes, residuals and their gradients (~14·S·C),
    // each MLP's hidden activations before and after the activation and their gradients.
    let perExample = layers * (14 * s * c + 4 * c * ht + 4 * s * hc) + 4 * s * c + s * Double(config.patchValues)
    return MemoryEstimate(parameters: p, activationBytes: 4 * perExample * Double(batchSize))
  }
}
