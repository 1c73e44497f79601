// Where the time goes: a model's training step or forward pass rebuilt from its kernels
// at the model's shapes, each kernel timed on its own and multiplied by its calls.
import Kernels
import LayerCollapse

/// One kernel of the breakdown: its label, its calls per step (or pass), and one call.
private struct KernelCall {
  var label: String
  var calls: Int
  var body: () -> Void
}

/// The kernels of model `m` at `batch` examples, each timed alone: forward and backward
/// (a training step) or forward only (an inference pass, no attention probabilities kept),
/// each with its calls per step or pass and its time per step or pass in seconds. The loss
/// and the optimizer count in training only.
func breakdown(_ m: ModelCase, batch: Int, backward: Bool) -> [(label: String, calls: Int, seconds: Double)] {
  let cfg: ModelConfig = m.config
  let (t, c, h, heads, layers) = (cfg.sequenceLength, cfg.dModel, cfg.mlpHidden, cfg.heads, cfg.layers)
  let rows: Int = batch * t
  let prelu: Int = m.preluUnits.count
  var rng: RNG = RNG(seed: 2, stream: "breakdown")
  func random(_ shape: [Int], std: Float = 1) -> Tensor {
    let x: Tensor = Tensor(shape)
    rng.fillNormal(x, std: std)
    return x
  }
  func linear(_ n: Int, _ i: Int, _ o: Int, dx: Bool = true, bias: Bool = true) -> () -> Void {
    let (x, w, y): (Tensor, Tensor, Tensor) = (random([n, i]), random([o, i], std: 0.02), Tensor([n, o]))
    let b: Tensor? = bias ? random([o]) : nil
    let (gx, gw, gb, dy): (Tensor, Tensor, Tensor?, Tensor) = (
      Tensor([n, i]), Tensor([o, i]), bias ? Tensor([o]) : nil, random([n, o])
    )
    return {
      Linear.forward(y: y, x: x, w: w, b: b)
      if backward { Linear.backward(dx: dx ? gx : nil, dw: gw, db: gb, dy: dy, x: x, w: w, dxWrite: .overwrite) }
    }
  }
  let x: Tensor = random([rows, c])
  let (lnOut, mean, rstd): (Tensor, Tensor, Tensor) = (Tensor([rows, c]), Tensor([rows]), Tensor([rows]))
  let (lw, lb, dx, dw, db, g): (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) = (
    random([c]), random([c]), Tensor([rows, c]), Tensor([c]), Tensor([c]), random([rows, c])
  )
  let shape: Attention.Shape = Attention.Shape(batch: batch, time: t, channels: c, heads: heads)
  // A language model (a prediction at every position) is causal and has a bias-free head.
  let languageModel: Bool = ModelRegistry.family(cfg.kind).predictsEveryPosition(cfg.kind)
  let causal: Bool = languageModel
  let qkv: Tensor = random([rows, 3 * c])
  let (att, dqkv): (Tensor, Tensor) = (Tensor([rows, c]), Tensor([rows, 3 * c]))
  let probs: Tensor? = backward ? Tensor([batch, heads, t, t]) : nil
  let hx: Tensor = random([rows, h], std: 3)
  let (act, dact, hg): (Tensor, Tensor, Tensor) = (Tensor([rows, h]), Tensor([rows, h]), random([rows, h]))

  // A [CLS] model's last block runs its keys and values on every row and the rest on the
  // first row of each example (Transformer.pruneLastBlock): one row of its own below, and
  // the full-width kernels count the other blocks.
  let pruned: Bool = cfg.headReadsFirstRow
  let full: Int = pruned ? layers - 1 : layers  // blocks on every row
  let lastIsPReLU: Bool = m.preluUnits.contains(layers - 1)

  var kernels: [KernelCall] = []
  switch syntheticBatch(m, batch: 1, rng: &rng).0 {
  case .images:
    kernels.append(
      KernelCall(
        label: "patch embed \(cfg.patchValues)→\(c)", calls: 1,
        body: linear(batch * (t - 1), cfg.patchValues, c, dx: false)))
  case .tokens:
    let table: Tensor = random([cfg.vocabSize, c])
    let dtable: Tensor = Tensor([cfg.vocabSize, c])
    let ids: [Int32] = (0..<rows).map { _ in Int32(rng.int(below: cfg.vocabSize)) }
    kernels.append(
      KernelCall(label: "token embedding", calls: 1) {
        Embedding.forward(out: x, ids: ids, table: table)
        if backward { Embedding.backward(dtable: dtable, dout: g, ids: ids) }
      })
  }
  kernels.append(
    KernelCall(label: "layernorm", calls: pruned ? layers + full : 2 * layers + 1) {
      LayerNorm.forward(out: lnOut, mean: mean, rstd: rstd, x: x, weight: lw, bias: lb)
      if backward {
        LayerNorm.backward(dx: dx, dweight: dw, dbias: db, dout: g, x: x, weight: lw, mean: mean, rstd: rstd)
      }
    })
  kernels.append(KernelCall(label: "qkv \(c)→\(3 * c)", calls: full, body: linear(rows, c, 3 * c)))
  kernels.append(
    KernelCall(label: causal ? "attention core, causal" : "attention core", calls: full) {
      Attention.forward(out: att, probs: probs, qkv: qkv, shape: shape, causal: causal, keyValid: nil)
      if backward {
        Attention.backward(
          dqkv: dqkv, dout: g, qkv: qkv, probs: probs!, shape: shape, causal: causal, write: .overwrite)
      }
    })
  kernels.append(KernelCall(label: "proj \(c)→\(c)", calls: full, body: linear(rows, c, c)))
  kernels.append(KernelCall(label: "fc1 \(c)→\(h)", calls: full, body: linear(rows, c, h)))
  kernels.append(KernelCall(label: "fc2 \(h)→\(c)", calls: full, body: linear(rows, h, c)))
  kernels.append(
    KernelCall(label: "gelu", calls: layers - prelu - (pruned && !lastIsPReLU ? 1 : 0)) {
      GELU.forward(out: act, x: hx)
      if backward { GELU.backward(dx: dact, dout: hg, x: hx, write: .overwrite) }
    })
  kernels.append(
    KernelCall(label: "prelu", calls: prelu - (pruned && lastIsPReLU ? 1 : 0)) {
      PReLU.forward(out: act, x: hx, alpha: 0.5)
      if backward { PReLU.backward(dx: dact, dout: hg, x: hx, alpha: 0.5, write: .overwrite) }
    })
  kernels.append(
    KernelCall(label: "residual adds", calls: (backward ? 3 : 2) * full) { Elementwise.add(out: dx, x, g) })
  if pruned {
    // k, v of every row; q, attention, proj, ln2, MLP and both norms' last rows for one.
    kernels.append(KernelCall(label: "last block: k, v \(c)→\(2 * c)", calls: 1, body: linear(rows, c, 2 * c)))
    let q: () -> Void = linear(batch, c, c)
    let proj: () -> Void = linear(batch, c, c)
    let fc1: () -> Void = linear(batch, c, h)
    let fc2: () -> Void = linear(batch, h, c)
    let firstProbs: Tensor = Tensor([batch, heads, t])
    let (firstAtt, firstGrad): (Tensor, Tensor) = (Tensor([batch, c]), random([batch, c]))
    let (firstIn, firstOut, firstMean, firstRstd): (Tensor, Tensor, Tensor, Tensor) = (
      random([batch, c]), Tensor([batch, c]), Tensor([batch]), Tensor([batch])
    )
    let (firstHidden, firstAct, firstDact): (Tensor, Tensor, Tensor) = (
      random([batch, h], std: 3), Tensor([batch, h]), random([batch, h])
    )
    kernels.append(
      KernelCall(label: "last block: [CLS] rows", calls: 1) {
        q()
        Attention.firstQueryForward(out: firstAtt, probs: firstProbs, qkv: qkv, shape: shape, keyValid: nil)
        if backward {
          Attention.firstQueryBackward(dqkv: dqkv, dout: firstGrad, qkv: qkv, probs: firstProbs, shape: shape)
        }
        proj()
        for _ in 0..<2 {  // ln2 and the final norm
          LayerNorm.forward(out: firstOut, mean: firstMean, rstd: firstRstd, x: firstIn, weight: lw, bias: lb)
        }
        fc1()
        if lastIsPReLU {
          PReLU.forward(out: firstAct, x: firstHidden, alpha: 0.5)
          if backward {
            PReLU.backward(dx: firstDact, dout: firstHidden, x: firstHidden, alpha: 0.5, write: .overwrite)
          }
        } else {
          GELU.forward(out: firstAct, x: firstHidden)
          if backward { GELU.backward(dx: firstDact, dout: firstHidden, x: firstHidden, write: .overwrite) }
        }
        fc2()
      })
  }
  // The head: gpt's tied projection to the vocabulary at every position; a classifier's
  // small linear on one pooled row per example.
  let headRows: Int = languageModel ? rows : batch
  kernels.append(
    KernelCall(
      label: "head \(c)→\(cfg.outputs)", calls: 1,
      body: linear(headRows, c, cfg.outputs, bias: !languageModel)))
  if backward {
    let logits: Tensor = random([headRows, cfg.outputs])
    let (lossProbs, losses, dlogits): (Tensor, Tensor, Tensor) = (
      Tensor([headRows, cfg.outputs]), Tensor([headRows]), Tensor([headRows, cfg.outputs])
    )
    let targets: [Int32] = (0..<headRows).map { _ in Int32(rng.int(below: cfg.outputs)) }
    kernels.append(
      KernelCall(label: "cross-entropy", calls: 1) {
        _ = CrossEntropy.forward(losses: losses, probs: lossProbs, logits: logits, targets: targets)
        CrossEntropy.backward(dlogits: dlogits, probs: lossProbs, targets: targets, scale: 1 / Float(headRows))
      })
    let params: [Parameter] = ModelRegistry.build(m.architecture, seed: 1).parameters.all
    let moments: [(Tensor, Tensor)] = params.map { (Tensor($0.shape), Tensor($0.shape)) }
    let adam: AdamW = AdamW()
    kernels.append(
      KernelCall(label: "grad norm + AdamW", calls: 1) {
        _ = GradientClipping.globalNorm(params.map(\.grad))
        for (p, (m, v)) in zip(params, moments) {
          adam.update(param: p.value, grad: p.grad, m: m, v: v, lr: 1e-3, step: 1)
        }
      })
  }
  return kernels.filter { $0.calls > 0 }.map { k in
    (k.label, k.calls, Double(k.calls) * medianSeconds(budget: backward ? 0.3 : 0.15, k.body))
  }
}
