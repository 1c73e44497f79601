// `make bench`: throughput figures, printed as tables. Not a test: nothing here asserts.
import Foundation
import Kernels
import LayerCollapse

/// Median wall time of `body` over repeated runs lasting at least `budget` seconds.
func medianSeconds(budget: Double = 0.4, minRuns: Int = 5, _ body: () -> Void) -> Double {
  body()  // warm-up: thread pool start, page faults
  var times: [Double] = []
  let clock = ContinuousClock()
  let start = clock.now
  while times.count < minRuns || (clock.now - start) < .seconds(budget) {
    let t0 = clock.now
    body()
    let d = clock.now - t0
    times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
  }
  times.sort()
  return times[times.count / 2]
}

struct GEMMCase {
  var label: String
  var transA: Bool
  var transB: Bool
  var m: Int
  var n: Int
  var k: Int
}

/// The matrix products of one MLP layer (d_model 128, hidden 512, 2048 tokens), forward
/// and backward, and two square sizes.
let gemmCases: [GEMMCase] = [
  GEMMCase(label: "fc1 forward  x·W1ᵀ", transA: false, transB: true, m: 2048, n: 512, k: 128),
  GEMMCase(label: "fc1 dx       dy·W1", transA: false, transB: false, m: 2048, n: 128, k: 512),
  GEMMCase(label: "fc1 dW       dyᵀ·x", transA: true, transB: false, m: 512, n: 128, k: 2048),
  GEMMCase(label: "fc2 forward  h·W2ᵀ", transA: false, transB: true, m: 2048, n: 128, k: 512),
  GEMMCase(label: "square 512", transA: false, transB: false, m: 512, n: 512, k: 512),
  GEMMCase(label: "square 1024", transA: false, transB: false, m: 1024, n: 1024, k: 1024),
]

func gemmGFLOPS(_ c: GEMMCase) -> Double {
  var rng = RNG(seed: 1, stream: "bench")
  let a = Tensor([c.m * c.k])
  let b = Tensor([c.k * c.n])
  let out = Tensor([c.m * c.n])
  rng.fillNormal(a)
  rng.fillNormal(b)
  let seconds = medianSeconds {
    GEMM.multiply(
      transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k,
      a: a.data, lda: c.transA ? c.m : c.k, b: b.data, ldb: c.transB ? c.k : c.n, c: out.data, ldc: c.n)
  }
  return 2.0 * Double(c.m) * Double(c.n) * Double(c.k) / seconds / 1e9
}

func threadCounts() -> [Int] {
  if let s = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(s), n > 0 { return [n] }
  return [1, 2]
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
  let fill = String(repeating: " ", count: max(0, width - s.count))
  return right ? fill + s : s + fill
}

let threads = threadCounts()
print("GEMM throughput, GFLOP/s (median of repeated runs; OpenBLAS: \(BLASThreads.configuration))")
print("")
var header = "| " + pad("product", 22) + " | " + pad("m×k · k×n", 22)
for t in threads { header += " | " + pad("\(t) thread" + (t == 1 ? "" : "s"), 9, right: true) }
print(header + " |")
print(
  "|" + String(repeating: "-", count: 24) + "|" + String(repeating: "-", count: 24)
    + String(repeating: "|----------:", count: threads.count) + "|")
for c in gemmCases {
  var row = "| " + pad(c.label, 22) + " | " + pad("\(c.m)×\(c.k) · \(c.k)×\(c.n)", 22)
  for t in threads {
    BLASThreads.set(t)
    row += " | " + pad(String(format: "%.1f", gemmGFLOPS(c)), 9, right: true)
  }
  print(row + " |")
}

// MARK: model training steps

struct ModelCase {
  var label: String
  var config: ModelConfig
  var batch: Int
}

let modelCases: [ModelCase] = [
  ModelCase(
    label: "vit (a)",
    config: ModelConfig(
      kind: .vit, dModel: 128, heads: 4, layers: 4, mlpHidden: 512, classes: 10, imageSize: 32, patchSize: 4),
    batch: 64),
  ModelCase(
    label: "encoder (b)",
    config: ModelConfig(
      kind: .encoder, dModel: 128, heads: 4, layers: 4, mlpHidden: 512, maxLen: 64, vocabSize: 8192, classes: 2),
    batch: 32),
  ModelCase(
    label: "gpt (c)",
    config: ModelConfig(kind: .gpt, dModel: 128, heads: 4, layers: 4, mlpHidden: 512, maxLen: 128, vocabSize: 256),
    batch: 32),
]

func syntheticBatch(_ c: ModelCase, rng: inout RNG) -> (ModelInput, [Int32]) {
  let cfg = c.config
  switch cfg.kind {
  case .vit:
    let images = Tensor([c.batch, 3, 32, 32])
    rng.fillNormal(images)
    return (.images(images), (0..<c.batch).map { _ in Int32(rng.int(below: cfg.classes)) })
  case .encoder, .gpt:
    let n = c.batch * cfg.maxLen
    let ids = (0..<n).map { _ in Int32(rng.int(below: cfg.vocabSize)) }
    let targets = cfg.kind == .gpt ? ids : (0..<c.batch).map { _ in Int32(rng.int(below: cfg.classes)) }
    return (.tokens(ids: ids, valid: nil, batch: c.batch, time: cfg.maxLen), targets)
  }
}

print("")
print("Training step, ms (median), PReLU in the last 2 blocks, penalty on")
print("")
var header2 = "| " + pad("model", 12)
for t in threads { header2 += " | " + pad("\(t) thread" + (t == 1 ? "" : "s"), 9, right: true) }
print(header2 + " |")
for c in modelCases {
  var row = "| " + pad(c.label, 12)
  for t in threads {
    BLASThreads.set(t)
    let arch = Architecture(
      config: c.config, activations: [.gelu, .gelu, .prelu, .prelu], collapsed: [false, false, false, false])
    let model = Transformer(arch, seed: 1)
    let trainer = Trainer(
      model: model, regularizer: Regularizer(settings: LayerCollapseSettings(lambda: 1, blocks: 2), blocks: [2, 3]),
      settings: OptimizerSettings(learningRate: 1e-3, totalSteps: 1000))
    var rng = RNG(seed: 1, stream: "bench data")
    let (input, targets) = syntheticBatch(c, rng: &rng)
    let seconds = medianSeconds(budget: 2, minRuns: 5) { _ = trainer.step(input, targets: targets, rng: &rng) }
    row += " | " + pad(String(format: "%.1f", seconds * 1000), 9, right: true)
  }
  print(row + " |")
}

// MARK: where the time goes

/// One vit (a) training step rebuilt from its kernels at the same shapes, each timed on
/// its own (forward + backward) and multiplied by its calls per step.
func vitBreakdown() -> [(String, Double)] {
  let (b, t, c, h, heads, layers) = (64, 65, 128, 512, 4, 4)
  let rows = b * t
  var rng = RNG(seed: 2, stream: "breakdown")
  func random(_ shape: [Int], std: Float = 1) -> Tensor {
    let x = Tensor(shape)
    rng.fillNormal(x, std: std)
    return x
  }
  func linear(_ n: Int, _ i: Int, _ o: Int, dx: Bool = true) -> () -> Void {
    let (x, w, bias, y) = (random([n, i]), random([o, i], std: 0.02), random([o]), Tensor([n, o]))
    let (gx, gw, gb, dy) = (Tensor([n, i]), Tensor([o, i]), Tensor([o]), random([n, o]))
    return {
      Linear.forward(y: y, x: x, w: w, b: bias)
      Linear.backward(dx: dx ? gx : nil, dw: gw, db: gb, dy: dy, x: x, w: w)
    }
  }
  let x = random([rows, c])
  let (lnOut, mean, rstd, lw, lb) = (Tensor([rows, c]), Tensor([rows]), Tensor([rows]), random([c]), random([c]))
  let (dx, dw, db, g) = (Tensor([rows, c]), Tensor([c]), Tensor([c]), random([rows, c]))
  let shape = Attention.Shape(batch: b, time: t, channels: c, heads: heads)
  let qkv = random([rows, 3 * c])
  let (att, probs, dqkv) = (Tensor([rows, c]), Tensor([b, heads, t, t]), Tensor([rows, 3 * c]))
  let hx = random([rows, h])
  let (act, dact, hg) = (Tensor([rows, h]), Tensor([rows, h]), random([rows, h]))
  let scratch = [
    Tensor([rows, c]), Tensor([rows, c]), Tensor([rows, c]), Tensor([rows, 3 * c]), Tensor([rows, h]),
    Tensor([rows, h]),
  ]
  let arch = Architecture(
    config: modelCases[0].config, activations: [.gelu, .gelu, .prelu, .prelu], collapsed: [false, false, false, false])
  let params = Transformer(arch, seed: 1).parameters.all
  let moments = params.map { (Tensor($0.shape), Tensor($0.shape)) }
  let adam = AdamW()
  let parts: [(String, Int, () -> Void)] = [
    ("patch embed 48→128", 1, linear(b * (t - 1), 48, c, dx: false)),
    (
      "layernorm", 2 * layers + 1,
      {
        LayerNorm.forward(out: lnOut, mean: mean, rstd: rstd, x: x, weight: lw, bias: lb)
        LayerNorm.backward(dx: dx, dweight: dw, dbias: db, dout: g, x: x, weight: lw, mean: mean, rstd: rstd)
      }
    ),
    ("qkv 128→384", layers, linear(rows, c, 3 * c)),
    (
      "attention core", layers,
      {
        Attention.forward(out: att, probs: probs, qkv: qkv, shape: shape, causal: false, keyValid: nil)
        Attention.backward(dqkv: dqkv, dout: g, qkv: qkv, probs: probs, shape: shape)
      }
    ),
    ("proj 128→128", layers, linear(rows, c, c)),
    ("fc1 128→512", layers, linear(rows, c, h)),
    ("fc2 512→128", layers, linear(rows, h, c)),
    (
      "gelu", 2,
      {
        GELU.forward(out: act, x: hx)
        GELU.backward(dx: dact, dout: hg, x: hx)
      }
    ),
    (
      "prelu", 2,
      {
        PReLU.forward(out: act, x: hx, alpha: 0.5)
        PReLU.backward(dx: dact, dout: hg, x: hx, alpha: 0.5)
      }
    ),
    ("residual adds", 3 * layers, { Elementwise.add(out: dx, x, g) }),
    ("zeroing grad buffers", layers, { for s in scratch { s.zero() } }),
    (
      "grad norm + AdamW", 1,
      {
        _ = GradientClipping.globalNorm(params.map(\.grad))
        for (p, (m, v)) in zip(params, moments) {
          adam.update(param: p.value, grad: p.grad, m: m, v: v, lr: 1e-3, step: 1)
        }
      }
    ),
  ]
  return parts.map { name, calls, body in (name + " ×\(calls)", Double(calls) * medianSeconds(budget: 0.3, body)) }
}

print("")
print("Where a vit (a) step goes: each kernel timed alone (forward + backward) × calls per step, ms")
print("")
var header3 = "| " + pad("kernel", 28)
for t in threads { header3 += " | " + pad("\(t) thread" + (t == 1 ? "" : "s"), 9, right: true) }
print(header3 + " |")
print("|" + String(repeating: "-", count: 30) + String(repeating: "|----------:", count: threads.count) + "|")
var columns: [[(String, Double)]] = []
for t in threads {
  BLASThreads.set(t)
  columns.append(vitBreakdown())
}
for i in columns[0].indices {
  var row = "| " + pad(columns[0][i].0, 28)
  for col in columns { row += " | " + pad(String(format: "%.1f", col[i].1 * 1000), 9, right: true) }
  print(row + " |")
}
var total = "| " + pad("sum", 28)
for col in columns { total += " | " + pad(String(format: "%.1f", col.reduce(0) { $0 + $1.1 } * 1000), 9, right: true) }
print(total + " |")
