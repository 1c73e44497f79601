import Kernels

/// Multi-head self-attention with a packed projection: `qkv (C→3C)`, the attention of
/// each head (causal or not, padding keys hidden), `proj (C→C)`.
///
/// With `firstRowsOnly` (see `TransformerBlock.prepare`) it computes the keys and values
/// of every position but the query, the attention and the projection of each sequence's
/// first position alone: its output is (B, C).
final class AttentionModule {
  let qkv: LinearModule
  let proj: LinearModule
  let heads: Int
  /// Whether a query sees the keys after it (gpt) or not.
  let causal: Bool
  private var shape = Attention.Shape(batch: 0, time: 0, channels: 1, heads: 1)
  private(set) var firstRowsOnly = false
  private var packed = Tensor([0])  // (B·T, 3C)
  /// The attention probabilities: (B, H, T, T) kept for backward, (B, H, T) for the
  /// first rows; nil in inference (the kernel uses per-thread scratch).
  private var probs: Tensor?
  private var attended = Tensor([0])  // (B·T, C), or (B, C)

  /// `outputStd`: the initial standard deviation of the projection, which writes into
  /// the residual stream.
  init(_ name: String, channels c: Int, heads: Int, causal: Bool, params: inout ParameterSet, outputStd: Float?) {
    qkv = LinearModule(name + ".qkv", inputs: c, outputs: 3 * c, params: &params)
    proj = LinearModule(name + ".proj", inputs: c, outputs: c, params: &params, initStd: outputStd)
    self.heads = heads
    self.causal = causal
  }

  func prepare(_ s: Attention.Shape, backward: Bool, firstRowsOnly first: Bool) {
    shape = s
    firstRowsOnly = first
    let rows = s.batch * s.time
    packed = Tensor([rows, 3 * s.channels])
    if first {
      probs = Tensor([s.batch, s.heads, s.time])
    } else {
      probs = backward ? Tensor([s.batch, s.heads, s.time, s.time]) : nil
    }
    attended = Tensor([first ? s.batch : rows, s.channels])
  }

  /// Shares `owner`'s buffers (inference).
  func borrow(from owner: AttentionModule) {
    (shape, firstRowsOnly) = (owner.shape, owner.firstRowsOnly)
    (packed, probs, attended) = (owner.packed, owner.probs, owner.attended)
  }

  /// x: (B, T, C) -> out: (B, T, C), or (B, C) with `firstRowsOnly`.
  func forward(out: Tensor, x: Tensor, keyValid: [Bool]?) {
    if firstRowsOnly {
      let (c, t) = (shape.channels, shape.time)
      // keys and values of every position, the query of the first; q of the other rows unset
      qkv.forward(y: packed, x: x, outputs: c..<(3 * c))
      qkv.forward(y: packed, x: x, outputs: 0..<c, rowStride: t)
      guard let probs else { preconditionFailure("first-rows attention prepared without probabilities") }
      Attention.firstQueryForward(out: attended, probs: probs, qkv: packed, shape: shape, keyValid: keyValid)
    } else {
      qkv.forward(y: packed, x: x)  // (B, T, 3C)
      Attention.forward(
        out: attended, probs: probs, qkv: packed, shape: shape, causal: causal, keyValid: keyValid)
    }
    proj.forward(y: out, x: attended)
  }

  /// dout (the forward's out) -> dx (B·T, C), overwritten; parameter gradients added.
  func backward(dx: Tensor, dout: Tensor, x: Tensor, scratch: ScratchPool) {
    guard let probs else { preconditionFailure("attention backward after a forward prepared without backward") }
    let c = shape.channels
    let datt = scratch.tensor("attention.dattended", attended.shape)
    let dqkv = scratch.tensor("attention.dqkv", packed.shape)
    proj.backward(dx: datt, dy: dout, x: attended, write: .overwrite)
    if firstRowsOnly {
      Attention.firstQueryBackward(dqkv: dqkv, dout: datt, qkv: packed, probs: probs, shape: shape)
      qkv.backward(dx: dx, dy: dqkv, x: x, outputs: c..<(3 * c), write: .overwrite)
      qkv.backward(dx: dx, dy: dqkv, x: x, outputs: 0..<c, rowStride: shape.time, write: .accumulate)
    } else {
      Attention.backward(
        dqkv: dqkv, dout: datt, qkv: packed, probs: probs, shape: shape, causal: causal, write: .overwrite)
      qkv.backward(dx: dx, dy: dqkv, x: x, write: .overwrite)
    }
  }
}

/// A transformer layer whose activation buffers inference can share with the other
/// layers' (`prepareBlocks`): the pre-LayerNorm `TransformerBlock` and `BertBlock`.
protocol SharableBlock: AnyObject {
  var mlp: CollapsibleMLP { get }
  /// Allocates the activations of a forward of shape `s` (see `TransformerBlock.prepare`).
  func prepare(_ s: Attention.Shape, backward: Bool, firstRowsOnly: Bool)
  /// Shares the buffers of `owner` and the MLP activations of `mlpOwner`.
  func borrow(from owner: Self, mlpFrom mlpOwner: CollapsibleMLP)
}

/// Allocates the layers' activations for a forward of shape `s`. With `backward` each has
/// its own, for the backward pass. In inference the layers run one after another, so the
/// ones that run on every row share the first layer's buffers and the MLP activations of
/// the first uncollapsed MLP among them: one set serves them all, and stays in cache.
/// `firstRowsOnly`: the last layer runs on each sequence's first row (its own buffers).
func prepareBlocks<B: SharableBlock>(_ blocks: [B], _ s: Attention.Shape, backward: Bool, firstRowsOnly first: Bool) {
  let last = blocks.count - 1
  if backward {
    for (i, b) in blocks.enumerated() { b.prepare(s, backward: true, firstRowsOnly: first && i == last) }
  } else if let owner = blocks.first {
    owner.prepare(s, backward: false, firstRowsOnly: first && last == 0)
    let shared = blocks.prefix(first ? last : blocks.count)
    let mlpOwner = shared.first { !$0.mlp.isCollapsed }?.mlp ?? owner.mlp
    if mlpOwner !== owner.mlp { mlpOwner.prepare(rows: s.batch * s.time, backward: false) }
    for b in shared.dropFirst() { b.borrow(from: owner, mlpFrom: mlpOwner) }
    if first && last > 0 { blocks[last].prepare(s, backward: false, firstRowsOnly: true) }
  }
}

/// A pre-LayerNorm residual block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`. Its MLP
/// is the transformer's LayerCollapse unit.
final class TransformerBlock: SharableBlock {
  let ln1: LayerNormModule
  let attention: AttentionModule
  let ln2: LayerNormModule
  let mlp: CollapsibleMLP

  // Activations of the last forward.
  private var normed1 = Tensor([0])  // ln1(x): (B·T, C)
  private var attentionOut = Tensor([0])  // (B·T, C), or (B, C)
  /// x + attn(ln1(x)): the residual stream between the two halves.
  private var mid = Tensor([0])
  private var normed2 = Tensor([0])  // ln2(mid)
  private var mlpOut = Tensor([0])

  /// `residualStd`: the initial standard deviation of the weights that write into the
  /// residual stream (the attention projection and the MLP's output).
  init(
    index: Int, channels c: Int, heads: Int, hidden h: Int, causal: Bool, activation: Activation, collapsed: Bool,
    residualStd: Float, epsilon: Float = LayerNorm.epsilon, params: inout ParameterSet
  ) {
    let p = "blocks.\(index)."
    ln1 = LayerNormModule(p + "ln1", features: c, params: &params, epsilon: epsilon)
    attention = AttentionModule(
      p + "attn", channels: c, heads: heads, causal: causal, params: &params, outputStd: residualStd)
    ln2 = LayerNormModule(p + "ln2", features: c, params: &params, epsilon: epsilon)
    mlp = CollapsibleMLP(
      p + "mlp", features: c, hidden: h, activation: activation, collapsed: collapsed, params: &params,
      outputStd: residualStd)
  }

  /// Allocates the activations of a forward of shape `s`. Without `backward` none is
  /// kept for a backward pass: the attention probabilities live in per-thread scratch, the
  /// activation runs in place, ln2 reuses ln1's buffer (dead once the keys are computed)
  /// and the MLP's output the projection's (dead once mid is): less memory, fewer trips.
  ///
  /// With `firstRowsOnly` (the last block of a model whose head reads each sequence's
  /// first position alone, [CLS] pooling) only those positions leave the block: ln1,
  /// keys and values run on every position, the query, attention, projection, ln2 and MLP
  /// on the B first rows, and the output is (B, C). The rows it skips cannot reach the
  /// loss, so logits and gradients equal the full block's up to rounding (tested); in the
  /// reference models this is about a fifth of all the matrix products.
  func prepare(_ s: Attention.Shape, backward: Bool, firstRowsOnly first: Bool) {
    let rows = s.batch * s.time
    let out = first ? s.batch : rows  // rows after the attention
    attention.prepare(s, backward: backward, firstRowsOnly: first)
    mlp.prepare(rows: out, backward: backward)
    normed1 = Tensor([rows, s.channels])
    attentionOut = Tensor([out, s.channels])
    mid = Tensor([out, s.channels])
    normed2 = backward || first ? Tensor([out, s.channels]) : normed1
    mlpOut = backward ? Tensor([out, s.channels]) : attentionOut
  }

  /// Shares the buffers of `owner` and the MLP activations of `mlpOwner` (inference,
  /// where blocks run one after another: one set serves them all).
  func borrow(from owner: TransformerBlock, mlpFrom mlpOwner: CollapsibleMLP) {
    attention.borrow(from: owner.attention)
    mlp.borrow(from: mlpOwner)
    (normed1, attentionOut, mid, normed2, mlpOut) = (
      owner.normed1, owner.attentionOut, owner.mid, owner.normed2, owner.mlpOut
    )
  }

  /// The MLP's input and output in the last forward (the collapse report's probe).
  var mlpProbe: (input: Tensor, output: Tensor) { (normed2, mlpOut) }

  /// x: (B, T, C) -> out: (B, T, C), or (B, C) with `firstRowsOnly`. `dropout` > 0 only
  /// while training.
  func forward(out: Tensor, x: Tensor, keyValid: [Bool]?, dropout: Float, rng: inout RNG) {
    ln1.forward(out: normed1, x: x)
    attention.forward(out: attentionOut, x: normed1, keyValid: keyValid)
    if attention.firstRowsOnly {
      Elementwise.addFirstRows(out: mid, x: x, attentionOut)  // (B, C)
    } else {
      Elementwise.add(out: mid, x, attentionOut)
    }
    ln2.forward(out: normed2, x: mid)
    mlp.forward(out: mlpOut, x: normed2, dropout: dropout, rng: &rng)
    Elementwise.add(out: out, mid, mlpOut)
  }

  /// dout (the forward's out) -> dx (B, T, C), overwritten (`dx` must not be `dout`).
  /// Mirrors `forward` in reverse; scratch comes from `scratch`, so nothing needs zeroing.
  func backward(dx: Tensor, dout: Tensor, x: Tensor, scratch: ScratchPool) {
    // out = mid + mlp(ln2(mid)): dmid = dout + (through ln2 and the MLP)
    let first = attention.firstRowsOnly
    let dmid = first ? scratch.tensor("block.dmidFirst", mid.shape) : dx
    let dnormed2 = scratch.tensor("block.dnormed", mid.shape)
    dmid.copy(from: dout)
    mlp.backward(dx: dnormed2, dout: dout, scratch: scratch)
    ln2.backward(dx: dmid, dout: dnormed2, x: mid)
    // mid = x + attn(ln1(x)) (x's first rows alone when `first`)
    let dnormed1 = scratch.tensor("block.dnormed", normed1.shape)
    attention.backward(dx: dnormed1, dout: dmid, x: normed1, scratch: scratch)
    if first { Elementwise.scatterFirstRows(into: dx, from: dmid) }
    ln1.backward(dx: dx, dout: dnormed1, x: x)
  }
}
