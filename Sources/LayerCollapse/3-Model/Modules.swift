import Kernels

// Modules: layers that own their parameters (with roles), their initialization and the
// activations their backward needs, forward and backward side by side. Families compose
// them (`Mixer`); `Kernels` does the arithmetic. The transformer's `Block` predates them
// and keeps its own tuned code paths (the pruned last block, shared inference buffers).

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

/// A fully connected layer `y = x·Wᵀ + b`, W (out, in).
final class LinearModule {
  let weight: Parameter
  let bias: Parameter

  init(_ name: String, inputs: Int, outputs: Int, params: inout ParameterSet, initStd: Float? = nil) {
    weight = params.add(name + ".weight", [outputs, inputs], role: .weight, initStd: initStd)
    bias = params.add(name + ".bias", [outputs], role: .bias)
  }

  /// x: (N, in) -> y: (N, out).
  func forward(y: Tensor, x: Tensor) { Linear.forward(y: y, x: x, w: weight.value, b: bias.value) }

  /// dy: (N, out) -> dx (N, in) written (`.overwrite`) or added; dW, db added.
  func backward(dx: Tensor?, dy: Tensor, x: Tensor, write: GradientWrite) {
    Linear.backward(dx: dx, dw: weight.grad, db: bias.grad, dy: dy, x: x, w: weight.value, dxWrite: write)
  }
}

/// A LayerCollapse unit: `fc1 (d→h) → act → dropout → fc2 (h→d)`, or, once collapsed,
/// a single `linear (d→d)`. A PReLU's slope α is one learnable scalar (`act.alpha`).
final class CollapsibleMLP {
  enum Form {
    case full(fc1: LinearModule, fc2: LinearModule, activation: Activation, alpha: Parameter?)
    case collapsed(LinearModule)
  }

  let form: Form
  private(set) var input = Tensor([0])  // (N, d): the last forward's x
  private(set) var output = Tensor([0])  // (N, d)
  private var hidden = Tensor([0])  // (N, h) before the activation
  private var activated = Tensor([0])
  private var dropped = Tensor([0])
  private var mask = Tensor([0])
  private var dhidden = Tensor([0])
  private var dactivated = Tensor([0])
  private var ddropped = Tensor([0])
  private var dropout: Float = 0

  init(
    _ name: String, features d: Int, hidden h: Int, activation: Activation, collapsed: Bool,
    params: inout ParameterSet
  ) {
    if collapsed {
      form = .collapsed(LinearModule(name + ".linear", inputs: d, outputs: d, params: &params))
    } else {
      let fc1 = LinearModule(name + ".fc1", inputs: d, outputs: h, params: &params)
      let alpha = activation == .prelu ? params.add(name + ".act.alpha", [1], role: .slope) : nil
      let fc2 = LinearModule(name + ".fc2", inputs: h, outputs: d, params: &params)
      form = .full(fc1: fc1, fc2: fc2, activation: activation, alpha: alpha)
    }
  }

  var alpha: Parameter? {
    if case .full(_, _, _, let a) = form { return a }
    return nil
  }

  var chain: [(weight: Parameter, bias: Parameter)]? {
    guard case .full(let fc1, let fc2, _, _) = form else { return nil }
    return [(fc1.weight, fc1.bias), (fc2.weight, fc2.bias)]
  }

  var collapsedLinear: (weight: Parameter, bias: Parameter)? {
    guard case .collapsed(let l) = form else { return nil }
    return (l.weight, l.bias)
  }

  /// x: (N, d) -> the returned (N, d) output (valid until the next forward). Keeps `x`.
  func forward(_ x: Tensor, dropout p: Float, rng: inout RNG) -> Tensor {
    input = x
    dropout = p
    if output.shape != x.shape { output = Tensor(x.shape) }
    switch form {
    case .collapsed(let l):
      l.forward(y: output, x: x)
    case .full(let fc1, let fc2, let activation, let alpha):
      let rows = x.count / x.lastDim
      let h = fc1.weight.shape[0]
      if hidden.count != rows * h {
        hidden = Tensor([rows, h])
        activated = Tensor([rows, h])
      }
      fc1.forward(y: hidden, x: x)
      activation.forward(out: activated, x: hidden, alpha: alpha?.value[0] ?? 0)
      var fc2In = activated
      if p > 0 {
        if dropped.count != activated.count {
          dropped = Tensor(activated.shape)
          mask = Tensor(activated.shape)
        }
        Dropout.forward(out: dropped, mask: mask, x: activated, p: p, rng: &rng)
        fc2In = dropped
      }
      fc2.forward(y: output, x: fc2In)
    }
    return output
  }

  /// dout: (N, d) -> dx (N, d), overwritten; parameter gradients added.
  func backward(dx: Tensor, dout: Tensor) {
    switch form {
    case .collapsed(let l):
      l.backward(dx: dx, dy: dout, x: input, write: .overwrite)
    case .full(let fc1, let fc2, let activation, let alpha):
      if dhidden.count != hidden.count {
        dhidden = Tensor(hidden.shape)
        dactivated = Tensor(hidden.shape)
        ddropped = Tensor(hidden.shape)
      }
      if dropout > 0 {
        fc2.backward(dx: ddropped, dy: dout, x: dropped, write: .overwrite)
        dactivated.zero()
        Dropout.backward(dx: dactivated, dout: ddropped, mask: mask)
      } else {
        fc2.backward(dx: dactivated, dy: dout, x: activated, write: .overwrite)
      }
      let dAlpha = activation.backward(
        dx: dhidden, dout: dactivated, x: hidden, alpha: alpha?.value[0] ?? 0, write: .overwrite)
      if let a = alpha { a.grad.data[0] += dAlpha }
      fc1.backward(dx: dx, dy: dhidden, x: input, write: .overwrite)
    }
  }
}
