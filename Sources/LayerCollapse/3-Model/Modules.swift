import Kernels

// Modules: layers that own their parameters (each with a role), the activations their
// backward needs, and their forward and backward side by side. Families compose them
// (`Transformer`, `Mixer`); `Kernels` does the arithmetic.
//
// Buffers follow one convention. A module's `prepare` allocates what a forward of that
// many rows writes and, when a backward follows, keeps; `borrow(from:)` makes a module
// share another's buffers, for inference, where modules run one after another and one
// set serves them all. Gradient scratch is overwritten by every backward and lives in a
// `ScratchPool` the model shares among its modules (one backward runs at a time).

/// Gradient scratch, by name and shape: a module asks for what its backward overwrites,
/// and every module of a model shares the pool, so a buffer is allocated once per shape.
final class ScratchPool {
  private var buffers: [String: Tensor] = [:]

  /// A buffer of `shape` under `name` (its contents are whatever the last user left).
  func tensor(_ name: String, _ shape: [Int]) -> Tensor {
    let key = "\(name)\(shape)"
    if let t = buffers[key] { return t }
    let t = Tensor(shape)
    buffers[key] = t
    return t
  }
}

/// Mean cross-entropy of a model's logits: the softmax and per-row losses of the last
/// `forward` and its targets, for `backward`.
final class CrossEntropyLoss {
  private(set) var probabilities = Tensor([0])
  private var losses = Tensor([0])
  private var targets: [Int32] = []
  private let distillation = DistillationTerm()

  /// logits (N, K), targets (N; `CrossEntropy.ignoreIndex` skips a row) -> the mean loss,
  /// mixed with a teacher's soft targets when `teacher` is given.
  func forward(logits: Tensor, targets: [Int32], teacher: DistillationTarget? = nil) -> Float {
    precondition(targets.count == logits.shape[0], "\(targets.count) targets for \(logits.shape[0]) rows")
    self.targets = targets
    if probabilities.shape != logits.shape {
      probabilities = Tensor(logits.shape)
      losses = Tensor([logits.shape[0]])
    }
    let ce = CrossEntropy.forward(losses: losses, probs: probabilities, logits: logits, targets: targets)
    return distillation.forward(crossEntropy: ce, logits: logits, targets: targets, teacher: teacher)
  }

  /// dlogits (N, K), overwritten: d(mean loss)/d(logits) of the last forward.
  func backward(dlogits: Tensor) {
    dlogits.zero()
    let counted = Float(max(CrossEntropy.countedRows(targets), 1))
    CrossEntropy.backward(
      dlogits: dlogits, probs: probabilities, targets: targets, scale: distillation.crossEntropyWeight / counted)
    distillation.backward(dlogits: dlogits, targets: targets)
  }
}

/// A teacher's logits for the rows of a batch, and how a loss mixes them in
/// (`train.distill_from`): `(1 − weight)·CE + weight·T²·KL(teacher_T ‖ student_T)`.
public struct DistillationTarget {
  public let logits: Tensor
  public let weight: Float
  public let temperature: Float

  public init(logits: Tensor, weight: Float, temperature: Float) {
    self.logits = logits
    self.weight = weight
    self.temperature = temperature
  }
}

/// The distillation part of a loss: the soft distributions of its last forward.
final class DistillationTerm {
  private var teacher: DistillationTarget?
  private var studentSoft = Tensor([0])
  private var teacherSoft = Tensor([0])

  /// The cross-entropy's share of the loss: 1 − weight, or 1 without a teacher.
  var crossEntropyWeight: Float { 1 - (teacher?.weight ?? 0) }

  /// The mixed loss of the cross-entropy `crossEntropy` and, with a teacher, its KL term.
  func forward(crossEntropy: Float, logits: Tensor, targets: [Int32], teacher: DistillationTarget?) -> Float {
    self.teacher = teacher
    guard let t = teacher else { return crossEntropy }
    if studentSoft.shape != logits.shape {
      studentSoft = Tensor(logits.shape)
      teacherSoft = Tensor(logits.shape)
    }
    let kl = Distillation.forward(
      studentSoft: studentSoft, teacherSoft: teacherSoft, student: logits, teacher: t.logits,
      temperature: t.temperature, targets: targets)
    return (1 - t.weight) * crossEntropy + t.weight * t.temperature * t.temperature * kl
  }

  /// Adds the KL term's gradient (weight·T²·d KL/d logits, over the counted rows).
  func backward(dlogits: Tensor, targets: [Int32]) {
    guard let t = teacher else { return }
    let counted = Float(max(CrossEntropy.countedRows(targets), 1))
    Distillation.backward(
      dlogits: dlogits, studentSoft: studentSoft, teacherSoft: teacherSoft, temperature: t.temperature,
      targets: targets, scale: t.weight * t.temperature * t.temperature / counted)
  }
}

/// A lookup table (V, C): row `ids[i]` becomes output row i.
final class EmbeddingModule {
  let table: Parameter

  init(_ name: String, count: Int, features: Int, params: inout ParameterSet) {
    table = params.add(name + ".weight", [count, features], role: .embedding)
  }

  /// ids (N) -> out (N, C), written, or added with `accumulate`.
  func forward(out: Tensor, ids: [Int32], accumulate: Bool = false) {
    Embedding.forward(out: out, ids: ids, table: table.value, accumulate: accumulate)
  }

  /// dout (N, C) -> d(table) rows added.
  func backward(dout: Tensor, ids: [Int32]) { Embedding.backward(dtable: table.grad, dout: dout, ids: ids) }
}

/// LayerNorm over the last dimension: `weight` (norm scale) and `bias` (norm shift), its
/// own ε, and the per-row mean and 1/σ of its last forward.
final class LayerNormModule {
  let weight: Parameter
  let bias: Parameter
  let epsilon: Float
  private var mean = Tensor([0])
  private var rstd = Tensor([0])

  init(_ name: String, features: Int, params: inout ParameterSet, epsilon: Float = LayerNorm.epsilon) {
    weight = params.add(name + ".weight", [features], role: .normScale)
    bias = params.add(name + ".bias", [features], role: .normShift)
    self.epsilon = epsilon
  }

  /// x: (N, C) -> out: (N, C).
  func forward(out: Tensor, x: Tensor) {
    let rows = x.count / weight.shape[0]
    if mean.count != rows {
      mean = Tensor([rows])
      rstd = Tensor([rows])
    }
    LayerNorm.forward(
      out: out, mean: mean, rstd: rstd, x: x, weight: weight.value, bias: bias.value, epsilon: epsilon)
  }

  /// dout: (N, C) -> dx += d(input), for the last forward's `x`.
  func backward(dx: Tensor, dout: Tensor, x: Tensor) {
    LayerNorm.backward(
      dx: dx, dweight: weight.grad, dbias: bias.grad, dout: dout, x: x, weight: weight.value, mean: mean, rstd: rstd)
  }
}

/// A fully connected layer `y = x·Wᵀ + b`, W (out, in); the bias is optional.
final class LinearModule {
  let weight: Parameter
  let bias: Parameter?

  /// `initStd`: the weight's initial standard deviation when not the default.
  init(_ name: String, inputs: Int, outputs: Int, bias: Bool = true, params: inout ParameterSet, initStd: Float? = nil)
  {
    weight = params.add(name + ".weight", [outputs, inputs], role: .weight, initStd: initStd)
    self.bias = bias ? params.add(name + ".bias", [outputs], role: .bias) : nil
  }

  /// x: (N, in) -> y: (N, out).
  func forward(y: Tensor, x: Tensor) { Linear.forward(y: y, x: x, w: weight.value, b: bias?.value) }

  /// y = x·Wᵀ + b for the output columns `outputs` and the input rows `rowStride` apart
  /// (see `Linear.forward(y:x:w:b:outputs:rowStride:)`).
  func forward(y: Tensor, x: Tensor, outputs: Range<Int>, rowStride: Int = 1) {
    Linear.forward(y: y, x: x, w: weight.value, b: bias?.value, outputs: outputs, rowStride: rowStride)
  }

  /// dy: (N, out) -> dx (N, in) written (`.overwrite`) or added (nil: not needed); dW, db added.
  func backward(dx: Tensor?, dy: Tensor, x: Tensor, write: GradientWrite) {
    Linear.backward(dx: dx, dw: weight.grad, db: bias?.grad, dy: dy, x: x, w: weight.value, dxWrite: write)
  }

  /// The backward of the partial forward: only the output columns `outputs`, rows
  /// `rowStride` apart.
  func backward(dx: Tensor, dy: Tensor, x: Tensor, outputs: Range<Int>, rowStride: Int = 1, write: GradientWrite) {
    Linear.backward(
      dx: dx, dw: weight.grad, db: bias?.grad, dy: dy, x: x, w: weight.value, outputs: outputs, rowStride: rowStride,
      dxWrite: write)
  }
}

/// An element-wise activation; a PReLU owns its one learnable slope α (role `.slope`).
final class ActivationModule {
  let kind: Activation
  let alpha: Parameter?

  init(_ name: String, _ kind: Activation, params: inout ParameterSet) {
    self.kind = kind
    alpha = kind == .prelu ? params.add(name + ".alpha", [1], role: .slope) : nil
  }

  /// x -> out, same shape (`out` may be `x`: in place).
  func forward(out: Tensor, x: Tensor) { kind.forward(out: out, x: x, alpha: alpha?.value[0] ?? 0) }

  /// dout -> dx (`write`), for the forward's input `x`; dα added.
  func backward(dx: Tensor, dout: Tensor, x: Tensor, write: GradientWrite) {
    let dAlpha = kind.backward(dx: dx, dout: dout, x: x, alpha: alpha?.value[0] ?? 0, write: write)
    if let a = alpha { a.grad[0] += dAlpha }
  }
}

/// Inverted dropout. No parameters; keeps the mask of its last forward.
final class DropoutModule {
  /// The probability of the last forward (0: the input passed through).
  private(set) var p: Float = 0
  /// What the last forward returned.
  private(set) var output = Tensor([0])
  private var dropped = Tensor([0])
  private var mask = Tensor([0])

  /// x -> x itself when `p` is 0, else the dropped copy (valid until the next forward).
  func forward(_ x: Tensor, p: Float, rng: inout RNG) -> Tensor {
    self.p = p
    guard p > 0 else {
      output = x
      return x
    }
    if dropped.shape != x.shape {
      dropped = Tensor(x.shape)
      mask = Tensor(x.shape)
    }
    Dropout.forward(out: dropped, mask: mask, x: x, p: p, rng: &rng)
    output = dropped
    return dropped
  }

  /// dout -> dx, overwritten.
  func backward(dx: Tensor, dout: Tensor) {
    if p > 0 {
      dx.zero()
      Dropout.backward(dx: dx, dout: dout, mask: mask)
    } else {
      dx.copy(from: dout)
    }
  }
}

/// A LayerCollapse unit: `fc1 (d→h) → act → dropout → fc2 (h→d)`, or, once collapsed,
/// a single `linear (d→d)`. A PReLU's slope α is one learnable scalar (`act.alpha`).
final class CollapsibleMLP {
  enum Form {
    case full(fc1: LinearModule, act: ActivationModule, dropout: DropoutModule, fc2: LinearModule)
    case collapsed(LinearModule)
  }

  let form: Form
  let hiddenWidth: Int
  /// The last forward's input and output: the collapse report's probe.
  private(set) var input = Tensor([0])
  private(set) var output = Tensor([0])
  private var hidden = Tensor([0])  // (N, h) before the activation
  private var activated = Tensor([0])  // (N, h) after it (`hidden` itself in inference)

  /// `outputStd`: the initial standard deviation of the weight that writes the output
  /// (fc2, or the collapsed linear) when not the default.
  init(
    _ name: String, features d: Int, hidden h: Int, activation: Activation, collapsed: Bool,
    params: inout ParameterSet, outputStd: Float? = nil
  ) {
    hiddenWidth = h
    if collapsed {
      form = .collapsed(LinearModule(name + ".linear", inputs: d, outputs: d, params: &params, initStd: outputStd))
    } else {
      let fc1 = LinearModule(name + ".fc1", inputs: d, outputs: h, params: &params)
      let act = ActivationModule(name + ".act", activation, params: &params)
      let fc2 = LinearModule(name + ".fc2", inputs: h, outputs: d, params: &params, initStd: outputStd)
      form = .full(fc1: fc1, act: act, dropout: DropoutModule(), fc2: fc2)
    }
  }

  var isCollapsed: Bool {
    if case .collapsed = form { return true }
    return false
  }

  var alpha: Parameter? {
    if case .full(_, let act, _, _) = form { return act.alpha }
    return nil
  }

  var chain: [(weight: Parameter, bias: Parameter)]? {
    guard case .full(let fc1, _, _, let fc2) = form, let b1 = fc1.bias, let b2 = fc2.bias else { return nil }
    return [(fc1.weight, b1), (fc2.weight, b2)]
  }

  var collapsedLinear: (weight: Parameter, bias: Parameter)? {
    guard case .collapsed(let l) = form, let b = l.bias else { return nil }
    return (l.weight, b)
  }

  /// Allocates the hidden activations for `rows` rows; without `backward` the activation
  /// runs in place (one (N, h) buffer instead of two). A collapsed MLP needs none.
  func prepare(rows: Int, backward: Bool) {
    guard !isCollapsed else { return }
    hidden = Tensor([rows, hiddenWidth])
    activated = backward ? Tensor([rows, hiddenWidth]) : hidden
  }

  /// Shares `owner`'s hidden activations (inference: one MLP runs at a time).
  func borrow(from owner: CollapsibleMLP) {
    (hidden, activated) = (owner.hidden, owner.activated)
  }

  /// x: (N, d) -> out: (N, d). Keeps `x` and `out` (the probe).
  func forward(out: Tensor, x: Tensor, dropout p: Float, rng: inout RNG) {
    input = x
    output = out
    switch form {
    case .collapsed(let l):
      l.forward(y: out, x: x)
    case .full(let fc1, let act, let dropout, let fc2):
      fc1.forward(y: hidden, x: x)  // (N, h)
      act.forward(out: activated, x: hidden)
      fc2.forward(y: out, x: dropout.forward(activated, p: p, rng: &rng))  // (N, d)
    }
  }

  /// dout: (N, d) -> dx (N, d), overwritten; parameter gradients added.
  func backward(dx: Tensor, dout: Tensor, scratch: ScratchPool) {
    switch form {
    case .collapsed(let l):
      l.backward(dx: dx, dy: dout, x: input, write: .overwrite)
    case .full(let fc1, let act, let dropout, let fc2):
      let dactivated = scratch.tensor("mlp.dactivated", hidden.shape)
      let dhidden = scratch.tensor("mlp.dhidden", hidden.shape)
      if dropout.p > 0 {
        let ddropped = scratch.tensor("mlp.ddropped", hidden.shape)
        fc2.backward(dx: ddropped, dy: dout, x: dropout.output, write: .overwrite)
        dropout.backward(dx: dactivated, dout: ddropped)
      } else {
        fc2.backward(dx: dactivated, dy: dout, x: activated, write: .overwrite)
      }
      act.backward(dx: dhidden, dout: dactivated, x: hidden, write: .overwrite)
      fc1.backward(dx: dx, dy: dhidden, x: input, write: .overwrite)
    }
  }
}
