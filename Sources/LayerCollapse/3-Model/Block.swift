import Kernels

/// The MLP of one block: `fc1 (d→h) → act → dropout → fc2 (h→d)`, or after LayerCollapse
/// a single `linear (d→d)` and nothing else.
enum MLP {
  case full(fc1W: Parameter, fc1B: Parameter, fc2W: Parameter, fc2B: Parameter, act: Activation, alpha: Parameter?)
  case collapsed(w: Parameter, b: Parameter)
}

/// Gradient scratch shared by all blocks (only one block runs backward at a time).
final class BlockScratch {
  let dln: Tensor  // (B, T, C): d(ln2), then d(ln1)
  let dqkv: Tensor  // (B, T, 3C)
  let datt: Tensor  // (B, T, C)
  let dhidden: Tensor  // (B, T, H)
  let dact: Tensor  // (B, T, H)
  let ddrop: Tensor  // (B, T, H)

  init(rows: Int, c: Int, h: Int) {
    dln = Tensor([rows, c])
    dqkv = Tensor([rows, 3 * c])
    datt = Tensor([rows, c])
    dhidden = Tensor([rows, h])
    dact = Tensor([rows, h])
    ddrop = Tensor([rows, h])
  }
}

/// A pre-LayerNorm residual block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
/// Holds its parameters and the activations of the last forward pass.
final class Block {
  let index: Int
  let c: Int
  let h: Int
  let ln1W: Parameter
  let ln1B: Parameter
  let qkvW: Parameter
  let qkvB: Parameter
  let projW: Parameter
  let projB: Parameter
  let ln2W: Parameter
  let ln2B: Parameter
  let mlp: MLP

  // Activations of the last forward, for rows = B·T.
  private(set) var rows = 0
  private var shape = Attention.Shape(batch: 0, time: 0, channels: 1, heads: 1)
  /// Whether the last forward hid later keys (backward then skips the zero triangle).
  private var causal = false
  /// Only each sequence's first position leaves this block (see `prepare`): everything
  /// after the keys and values runs on B rows instead of B·T.
  private(set) var firstRowsOnly = false
  /// d(mid) of the first rows, for a `firstRowsOnly` backward: (B, C).
  private var dmidFirst = Tensor([0])
  private var ln1 = Tensor([0])
  private var ln1Mean = Tensor([0])
  private var ln1Rstd = Tensor([0])
  private var qkv = Tensor([0])
  /// Attention probabilities, kept for backward only (inference uses per-thread scratch).
  private var probs: Tensor?
  private var att = Tensor([0])
  private var proj = Tensor([0])
  /// x + attn(ln1(x)): the residual stream between the two halves.
  private var mid = Tensor([0])
  /// ln2(mid): the MLP's input, also the probe point of the collapse report.
  private(set) var ln2 = Tensor([0])
  private var ln2Mean = Tensor([0])
  private var ln2Rstd = Tensor([0])
  private var hidden = Tensor([0])
  private var activated = Tensor([0])
  private var dropped = Tensor([0])
  private var dropMask = Tensor([0])
  /// The MLP's output (before the residual add).
  private(set) var mlpOut = Tensor([0])

  /// `residualStd`: the initial standard deviation of the weights that write into the
  /// residual stream (the attention projection and the MLP's output).
  init(
    index: Int, c: Int, h: Int, params: inout ParameterSet, activation: Activation, collapsed: Bool,
    residualStd: Float
  ) {
    let p = "blocks.\(index)."
    self.index = index
    self.c = c
    self.h = h
    ln1W = params.add(p + "ln1.weight", [c], role: .normScale)
    ln1B = params.add(p + "ln1.bias", [c], role: .normShift)
    qkvW = params.add(p + "attn.qkv.weight", [3 * c, c], role: .weight)
    qkvB = params.add(p + "attn.qkv.bias", [3 * c], role: .bias)
    projW = params.add(p + "attn.proj.weight", [c, c], role: .weight, initStd: residualStd)
    projB = params.add(p + "attn.proj.bias", [c], role: .bias)
    ln2W = params.add(p + "ln2.weight", [c], role: .normScale)
    ln2B = params.add(p + "ln2.bias", [c], role: .normShift)
    if collapsed {
      mlp = .collapsed(
        w: params.add(p + "mlp.linear.weight", [c, c], role: .weight, initStd: residualStd),
        b: params.add(p + "mlp.linear.bias", [c], role: .bias))
    } else {
      let fc1W = params.add(p + "mlp.fc1.weight", [h, c], role: .weight)
      let fc1B = params.add(p + "mlp.fc1.bias", [h], role: .bias)
      let alpha = activation == .prelu ? params.add(p + "mlp.act.alpha", [1], role: .slope) : nil
      mlp = .full(
        fc1W: fc1W, fc1B: fc1B,
        fc2W: params.add(p + "mlp.fc2.weight", [c, h], role: .weight, initStd: residualStd),
        fc2B: params.add(p + "mlp.fc2.bias", [c], role: .bias),
        act: activation, alpha: alpha)
    }
  }

  /// Allocates activation buffers for a batch shape; `mlpBuffers` also allocates the
  /// MLP's hidden-width buffers (needed by an uncollapsed MLP, here or in a borrower).
  /// Without `backward`, no backward pass will follow: the attention probabilities are
  /// not kept, the activation is applied in place, ln2 reuses ln1 (dead once qkv is
  /// computed) and the MLP output reuses proj (dead once mid is): less memory, fewer
  /// trips to it.
  ///
  /// With `firstRowsOnly` (the last block of a model whose head reads each sequence's
  /// first position alone, [CLS] pooling), only those positions leave the block: it
  /// computes ln1, keys and values for every position, but the query, attention,
  /// projection, ln2 and MLP for the B first rows, and its output is (B, C). The rows
  /// it skips cannot reach the loss, so the logits and every gradient are those of the
  /// full block up to rounding (tested); in the reference models this is about a fifth
  /// of all the matrix products.
  func prepare(_ s: Attention.Shape, mlpBuffers: Bool, backward: Bool, firstRowsOnly first: Bool = false) {
    shape = s
    rows = s.batch * s.time
    firstRowsOnly = first
    let out = first ? s.batch : rows  // rows after the attention
    ln1 = Tensor([rows, c])
    ln1Mean = Tensor([rows])
    ln1Rstd = Tensor([rows])
    qkv = Tensor([rows, 3 * c])
    if first {
      probs = Tensor([s.batch, s.heads, s.time])
    } else {
      probs = backward ? Tensor([s.batch, s.heads, s.time, s.time]) : nil
    }
    att = Tensor([out, c])
    proj = Tensor([out, c])
    mid = Tensor([out, c])
    ln2 = backward || first ? Tensor([out, c]) : ln1
    ln2Mean = Tensor([out])
    ln2Rstd = Tensor([out])
    mlpOut = backward ? Tensor([out, c]) : proj
    hidden = Tensor(mlpBuffers ? [out, h] : [0])
    activated = backward ? Tensor(mlpBuffers ? [out, h] : [0]) : hidden
    dropped = Tensor([0])  // allocated by the first forward with dropout
    dropMask = Tensor([0])
    dmidFirst = Tensor(first && backward ? [out, c] : [0])
  }

  /// Uses `owner`'s activation buffers: for inference, where no backward follows, the
  /// blocks run one after another and can share one set (a fraction of the memory).
  func prepare(_ s: Attention.Shape, borrowingFrom owner: Block) {
    shape = s
    rows = owner.rows
    (ln1, ln1Mean, ln1Rstd, qkv, probs, att, proj) = (
      owner.ln1, owner.ln1Mean, owner.ln1Rstd, owner.qkv, owner.probs, owner.att, owner.proj
    )
    (mid, ln2, ln2Mean, ln2Rstd, mlpOut, hidden, activated) = (
      owner.mid, owner.ln2, owner.ln2Mean, owner.ln2Rstd, owner.mlpOut, owner.hidden, owner.activated
    )
    (dropped, dropMask) = (owner.dropped, owner.dropMask)
  }

  // MARK: forward

  /// x: (B, T, C) -> out: (B, T, C), or (B, C) when `firstRowsOnly`. `dropout` > 0 only
  /// while training.
  func forward(
    out: Tensor, x: Tensor, causal: Bool, keyValid: [Bool]?, dropout: Float, rng: inout RNG
  ) {
    if firstRowsOnly {
      forwardFirstRows(out: out, x: x, keyValid: keyValid, dropout: dropout, rng: &rng)
      return
    }
    LayerNorm.forward(out: ln1, mean: ln1Mean, rstd: ln1Rstd, x: x, weight: ln1W.value, bias: ln1B.value)
    Linear.forward(y: qkv, x: ln1, w: qkvW.value, b: qkvB.value)  // (B, T, 3C)
    self.causal = causal
    Attention.forward(out: att, probs: probs, qkv: qkv, shape: shape, causal: causal, keyValid: keyValid)
    Linear.forward(y: proj, x: att, w: projW.value, b: projB.value)  // (B, T, C)
    Elementwise.add(out: mid, x, proj)
    LayerNorm.forward(out: ln2, mean: ln2Mean, rstd: ln2Rstd, x: mid, weight: ln2W.value, bias: ln2B.value)
    mlpForward(out: mlpOut, dropout: dropout, rng: &rng)
    Elementwise.add(out: out, mid, mlpOut)
  }

  /// The `firstRowsOnly` forward: x (B, T, C) -> out (B, C), the first row of each sequence.
  private func forwardFirstRows(out: Tensor, x: Tensor, keyValid: [Bool]?, dropout: Float, rng: inout RNG) {
    let (c, t) = (self.c, shape.time)
    LayerNorm.forward(out: ln1, mean: ln1Mean, rstd: ln1Rstd, x: x, weight: ln1W.value, bias: ln1B.value)
    // keys and values of every position, the query of the first: (B, T, 3C), q of other rows unset
    Linear.forward(y: qkv, x: ln1, w: qkvW.value, b: qkvB.value, outputs: c..<(3 * c))
    Linear.forward(y: qkv, x: ln1, w: qkvW.value, b: qkvB.value, outputs: 0..<c, rowStride: t)
    causal = false
    Attention.firstQueryForward(out: att, probs: probs!, qkv: qkv, shape: shape, keyValid: keyValid)  // (B, C)
    Linear.forward(y: proj, x: att, w: projW.value, b: projB.value)  // (B, C)
    Elementwise.addFirstRows(out: mid, x: x, proj)  // (B, C)
    LayerNorm.forward(out: ln2, mean: ln2Mean, rstd: ln2Rstd, x: mid, weight: ln2W.value, bias: ln2B.value)
    mlpForward(out: mlpOut, dropout: dropout, rng: &rng)
    Elementwise.add(out: out, mid, mlpOut)  // (B, C)
  }

  /// ln2: (B, T, C) -> out: (B, T, C).
  private func mlpForward(out: Tensor, dropout: Float, rng: inout RNG) {
    switch mlp {
    case .collapsed(let w, let b):
      Linear.forward(y: out, x: ln2, w: w.value, b: b.value)
    case .full(let fc1W, let fc1B, let fc2W, let fc2B, let act, let alpha):
      Linear.forward(y: hidden, x: ln2, w: fc1W.value, b: fc1B.value)  // (B, T, H)
      act.forward(out: activated, x: hidden, alpha: alpha?.value[0] ?? 0)
      let fc2In: Tensor
      if dropout > 0 {
        if dropped.count != hidden.count {
          dropped = Tensor(hidden.shape)
          dropMask = Tensor(hidden.shape)
        }
        Dropout.forward(out: dropped, mask: dropMask, x: activated, p: dropout, rng: &rng)
        fc2In = dropped
      } else {
        fc2In = activated
      }
      Linear.forward(y: out, x: fc2In, w: fc2W.value, b: fc2B.value)  // (B, T, C)
    }
  }

  // MARK: backward

  /// dout: (B, T, C) gradient of this block's output -> dx = gradient of its input
  /// (overwritten; `dx` must not be `dout`). Mirrors `forward` in reverse. `dropout` must be
  /// what forward used. Scratch buffers are overwritten too, so nothing needs zeroing.
  /// With `firstRowsOnly`, dout is (B, C) and `first` holds the scratch for B rows.
  func backward(
    dx: Tensor, dout: Tensor, x: Tensor, dropout: Float, scratch s: BlockScratch, first: BlockScratch? = nil
  ) {
    if firstRowsOnly {
      backwardFirstRows(dx: dx, dout: dout, x: x, dropout: dropout, scratch: s, first: first!)
      return
    }
    // dmid is built in dx; then dx = dmid + (through the attention branch and ln1).
    backwardToAttention(dmid: dx, datt: s.datt, dout: dout, dropout: dropout, scratch: s)
    guard let probs = probs else { preconditionFailure("block backward after a forward prepared without backward") }
    Attention.backward(
      dqkv: s.dqkv, dout: s.datt, qkv: qkv, probs: probs, shape: shape, causal: causal, write: .overwrite)
    Linear.backward(
      dx: s.dln, dw: qkvW.grad, db: qkvB.grad, dy: s.dqkv, x: ln1, w: qkvW.value, dxWrite: .overwrite)
    LayerNorm.backward(
      dx: dx, dweight: ln1W.grad, dbias: ln1B.grad, dout: s.dln, x: x, weight: ln1W.value,
      mean: ln1Mean, rstd: ln1Rstd)
  }

  /// The half of the backward both paths share, on the rows the MLP ran on (all, or the
  /// first): out = mid + mlp(ln2(mid)) gives dmid = dout + (through ln2 and the MLP),
  /// written to `dmid`; mid = … + proj(att) gives d(att), written to `datt`.
  private func backwardToAttention(dmid: Tensor, datt: Tensor, dout: Tensor, dropout: Float, scratch s: BlockScratch) {
    dmid.copy(from: dout)
    mlpBackward(dln2: s.dln, dout: dout, dropout: dropout, scratch: s)
    LayerNorm.backward(
      dx: dmid, dweight: ln2W.grad, dbias: ln2B.grad, dout: s.dln, x: mid, weight: ln2W.value,
      mean: ln2Mean, rstd: ln2Rstd)
    Linear.backward(
      dx: datt, dw: projW.grad, db: projB.grad, dy: dmid, x: att, w: projW.value, dxWrite: .overwrite)
  }

  /// The backward of `forwardFirstRows`: dout (B, C) -> dx (B, T, C), overwritten.
  /// `s` is scratch for B·T rows (keys, values, ln1), `f` for the B first rows.
  private func backwardFirstRows(
    dx: Tensor, dout: Tensor, x: Tensor, dropout: Float, scratch s: BlockScratch, first f: BlockScratch
  ) {
    let (c, t) = (self.c, shape.time)
    let dmid = dmidFirst
    backwardToAttention(dmid: dmid, datt: f.datt, dout: dout, dropout: dropout, scratch: f)
    // mid = x (first rows) + proj(attn(ln1(x))): the rest as in `backward`, keys and
    // values of every row apart from the query of the first
    Attention.firstQueryBackward(dqkv: s.dqkv, dout: f.datt, qkv: qkv, probs: probs!, shape: shape)
    Linear.backward(
      dx: s.dln, dw: qkvW.grad, db: qkvB.grad, dy: s.dqkv, x: ln1, w: qkvW.value, outputs: c..<(3 * c),
      dxWrite: .overwrite)
    Linear.backward(
      dx: s.dln, dw: qkvW.grad, db: qkvB.grad, dy: s.dqkv, x: ln1, w: qkvW.value, outputs: 0..<c,
      rowStride: t, dxWrite: .accumulate)
    Elementwise.scatterFirstRows(into: dx, from: dmid)
    LayerNorm.backward(
      dx: dx, dweight: ln1W.grad, dbias: ln1B.grad, dout: s.dln, x: x, weight: ln1W.value,
      mean: ln1Mean, rstd: ln1Rstd)
  }

  /// dout: (B, T, C) gradient of the MLP output -> dln2 = gradient of its input (overwritten).
  private func mlpBackward(dln2: Tensor, dout: Tensor, dropout: Float, scratch s: BlockScratch) {
    switch mlp {
    case .collapsed(let w, let b):
      Linear.backward(dx: dln2, dw: w.grad, db: b.grad, dy: dout, x: ln2, w: w.value, dxWrite: .overwrite)
    case .full(let fc1W, let fc1B, let fc2W, let fc2B, let act, let alpha):
      let fc2In = dropout > 0 ? dropped : activated
      let dfc2In = dropout > 0 ? s.ddrop : s.dact
      Linear.backward(
        dx: dfc2In, dw: fc2W.grad, db: fc2B.grad, dy: dout, x: fc2In, w: fc2W.value, dxWrite: .overwrite)
      if dropout > 0 {
        s.dact.zero()
        Dropout.backward(dx: s.dact, dout: s.ddrop, mask: dropMask)
      }
      let dAlpha = act.backward(dx: s.dhidden, dout: s.dact, x: hidden, alpha: alpha?.value[0] ?? 0, write: .overwrite)
      if let a = alpha { a.grad.data[0] += dAlpha }
      Linear.backward(
        dx: dln2, dw: fc1W.grad, db: fc1B.grad, dy: s.dhidden, x: ln2, w: fc1W.value, dxWrite: .overwrite)
    }
  }
}
