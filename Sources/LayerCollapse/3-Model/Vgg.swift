import Kernels

/// VGG (`model.kind: vgg`, image tasks), as torchvision's `vgg11`/`vgg13`/`vgg16` (and
/// their `_bn` variants) build it:
///
///     features:   per entry of `convLayers`, a 3×3 convolution (padding 1) → [BatchNorm2d]
///                 → ReLU, or (0) a 2×2 max pool
///     avgpool:    adaptive average pooling to `pooledSize`², flattened
///     classifier: fc1 → [BN1d] → act1 → dropout → fc2 → [BN1d] → act2 → dropout → fc3
///
/// The head's two activations are the LayerCollapse units (0: act1, 1: act2): a PReLU
/// with α pulled to 1 (the paper starts VGG heads at α = 0, exactly ReLU). Once collapsed,
/// the linears around it are one: the head's linears form groups of consecutive original
/// linears, each stored under its first member's name (`classifier.fc1`, with the merged
/// (out, in) shape), a BatchNorm before a merged junction folded in with its running
/// statistics. The convolutions are never merged (a 3×3·3×3 merge is not a compression).
///
/// Parameter names follow torchvision's features indices (`features.0.weight`,
/// `features.1.running_mean` with BatchNorm) and name the head's parts
/// (`classifier.fc1.weight`, `classifier.bn1.weight`, `classifier.act1.alpha`).
public final class VGG: Model {
  public let architecture: Architecture
  public let parameters: ParameterSet
  let features: [FeatureLayer]
  let groups: [HeadGroup]

  enum FeatureLayer {
    case conv(Conv2dModule, BatchNormModule?)
    case pool
  }

  // The last forward.
  private var batch = 0  // images the trunk's buffers hold
  private var headBatch = 0  // rows the head's buffers hold
  private var sides: [Int] = []  // input side of each feature layer, then the last output's
  private var widths: [Int] = []  // input channels of each feature layer, then the last output's
  private var convOut: [Tensor] = []  // per layer: conv output (conv) or pool output (pool)
  private var normOut: [Tensor] = []  // per conv layer with BatchNorm: its output
  private var reluOut: [Tensor] = []  // per conv layer: after ReLU (the next layer's input)
  private var poolIndices: [[Int32]] = []
  private var images = Tensor([0])
  private var pooled = Tensor([0])  // (B, C·p·p)
  private var logits = Tensor([0])
  private var lastLogits = Tensor([0])
  private let crossEntropy = CrossEntropyLoss()
  /// The backward's gradient buffers, kept across steps (fresh megabyte buffers cost a
  /// page fault per page every step).
  private let scratch = ScratchPool()

  /// A VGG of `architecture`; with `sharing`, one that reads those parameters (of a model
  /// of the same architecture) instead of its own, initialized by nobody.
  init(_ architecture: Architecture, sharing: ParameterSet?) {
    self.architecture = architecture
    let cfg = architecture.config
    var ps = sharing.map { ParameterSet(sharing: $0) } ?? ParameterSet()
    var layers: [FeatureLayer] = []
    var channels = cfg.imageChannels
    var index = 0  // torchvision's index into `features`
    for width in cfg.convLayers {
      if width == 0 {
        layers.append(.pool)
        index += 1
        continue
      }
      let conv = Conv2dModule("features.\(index)", inputs: channels, outputs: width, params: &ps)
      index += 1
      var norm: BatchNormModule? = nil
      if cfg.convBatchNorm {
        norm = BatchNormModule("features.\(index)", features: width, params: &ps)
        index += 1
      }
      index += 1  // the ReLU
      layers.append(.conv(conv, norm))
      channels = width
    }
    features = layers
    groups = VGGFamily.headGroups(architecture).map { g in
      HeadGroup(g, architecture: architecture, params: &ps)
    }
    ps.seal()
    parameters = ps
    guard !ps.isShared else { return }
    for p in ps.with(role: .normScale) { p.value.fill(1) }
    for layer in features {
      if case .conv(_, let norm?) = layer { norm.resetStatistics() }
    }
    for g in groups { g.norm?.resetStatistics() }
  }

  public convenience init(_ architecture: Architecture) { self.init(architecture, sharing: nil) }

  /// The units' activations and slopes.
  func group(endingAtJunction unit: Int) -> HeadGroup? { groups.first { $0.last == unit + 1 } }

  public func alphaParameter(unit: Int) -> Parameter? { group(endingAtJunction: unit)?.activation?.alpha }
  public func chain(unit: Int) -> [(weight: Parameter, bias: Parameter)]? { nil }
  public func collapsedLinear(unit: Int) -> (weight: Parameter, bias: Parameter)? { nil }
  public func unitProbe(unit: Int) -> (input: Tensor, output: Tensor)? { nil }

  /// The head's groups merged where `units` now collapse: each run of groups joined by a
  /// merged junction becomes one linear (a BatchNorm before a merged junction folded in
  /// with its running statistics, `ChainMerge`), written into `merged`'s group of the same
  /// first linear.
  public func writeCollapsed(units: [Int], into merged: any Model) {
    guard let target = merged as? VGG else { preconditionFailure("a VGG collapses into a VGG") }
    var current = groups[0].affine()
    var first = groups[0].first
    for (k, g) in groups.enumerated().dropFirst() {
      let junction = groups[k - 1].last - 1
      if units.contains(junction) {
        let before = groups[k - 1].norm.map { ChainMerge.foldBatchNorm(current, $0.statistics) } ?? current
        current = ChainMerge.compose(before, g.affine())
      } else {
        target.write(current, groupStartingAt: first)
        current = g.affine()
        first = g.first
      }
    }
    target.write(current, groupStartingAt: first)
  }

  func write(_ map: AffineMap, groupStartingAt first: Int) {
    guard let g = groups.first(where: { $0.first == first }) else {
      preconditionFailure("no head group starts at fc\(first)")
    }
    g.linear.weight.value.copy(from: map.weight)
    g.linear.bias?.value.copy(from: map.bias)
  }

  // MARK: forward

  @discardableResult
  public func forward(_ input: ModelInput, training: Bool, rng: inout RNG) -> Tensor {
    guard case .images(let x) = input else { preconditionFailure("a vgg reads images, not tokens") }
    let h = head(trunk(x, training: training), training: training, rng: &rng)
    logits = h
    lastLogits = h
    return h
  }

  /// The convolutional layers and the pooling before the head: images (N, C, S, S) ->
  /// features (N, C'·p·p), the model's own buffer until the next call. `epilogues`
  /// (inference with no backward to follow, `fusedEpilogues`): each convolution writes its
  /// BatchNorm's and ReLU's output directly, the same bits as the three passes, two passes
  /// over the activations fewer.
  private func trunk(_ x: Tensor, training: Bool, epilogues: [Conv2d.Epilogue?]? = nil) -> Tensor {
    let cfg = config
    x.expectShape([x.shape[0], cfg.imageChannels, cfg.imageSize, cfg.imageSize], "images")
    prepare(batch: x.shape[0])
    images = x
    var current = x
    for (i, layer) in features.enumerated() {
      let (side, c) = (sides[i], widths[i])
      switch layer {
      case .conv(let conv, let norm):
        if let epilogue = epilogues?[i] {
          conv.forward(out: reluOut[i], x: current, epilogue: epilogue)
          current = reluOut[i]
          continue
        }
        conv.forward(out: convOut[i], x: current)
        let shape = BatchNorm.Shape(batch: batch, channels: widths[i + 1], spatial: side * side)
        if let bn = norm, training {
          // BatchNorm with its ReLU on the way out; the backward gates by the ReLU's output.
          bn.forwardTraining(out: reluOut[i], x: convOut[i], shape: shape, relu: true)
        } else {
          var pre = convOut[i]
          if let bn = norm {
            bn.forward(out: normOut[i], x: pre, shape: shape, training: false)
            pre = normOut[i]
          }
          Activation.relu.forward(out: reluOut[i], x: pre)
        }
        current = reluOut[i]
      case .pool:
        MaxPool2d.forward(
          y: convOut[i], indices: &poolIndices[i], x: current, planes: batch * c, height: side, width: side, k: 2)
        current = convOut[i]
      }
    }
    let (last, p) = (sides[features.count], cfg.pooledSize)
    AdaptiveAvgPool2d.forward(
      y: pooled, x: current, planes: batch * widths[features.count], height: last, width: last, outHeight: p,
      outWidth: p)
    return pooled
  }

  /// The classifier on features (N, C'·p·p) -> logits (N, classes).
  private func head(_ features: Tensor, training: Bool, rng: inout RNG) -> Tensor {
    let rows = features.shape[0]
    if rows != headBatch {
      for g in groups { g.prepare(batch: rows) }
      headBatch = rows
    }
    var h = features
    for g in groups { h = g.forward(h, training: training, dropout: config.dropout, rng: &rng) }
    return h
  }

  /// Images per trunk pass in `infer`: the patches of 8 32×32 images (about 1 MB at
  /// experiment 8's widths) stay in cache between im2col and the product that reads them.
  /// On the bench's batch of 256 at one thread: 4 or 8 images 83–90 ms, 16 86 ms, 32 95 ms.
  public static let trunkChunk = 8

  /// Trunks for `infer`'s threads after the first: models of this architecture that read
  /// this one's parameters (`workerModels`). Each thread runs whole passes on one core
  /// (`spreadPasses`); a pass split over the threads spent a fifth of its time handing out
  /// parts (the bench's batch of 256 at 2 threads: 53 ms in passes of 16 images).
  private var helpers: [VGG] = []

  /// The trunk in passes of `trunkChunk` images (fused: no backward follows an `infer`),
  /// spread over the threads, then the head once on all their features: its weights
  /// (most of the parameters) are read once, not once per pass.
  @discardableResult
  public func infer(_ input: ModelInput, rowsPerChunk: Int) -> Tensor {
    guard case .images(let x) = input else { preconditionFailure("a vgg reads images, not tokens") }
    let b = x.shape[0]
    let per = Self.trunkChunk
    let passes = (b + per - 1) / per
    let threads = min(Parallel.threads, passes)
    let width = VGGFamily.featureWidth(config)
    let all = Tensor([b, width])
    let workers = workerModels(self, helpers: &helpers, threads: threads) { VGG(architecture, sharing: parameters) }
    let epilogues = fusedEpilogues()  // the helpers read the same parameters
    spreadPasses(passes, over: workers) { p, model in
      let start = p * per
      let n = min(per, b - start)
      let chunk = b <= per ? input : input.samples(start..<(start + n), paddedTo: per)
      guard case .images(let part) = chunk else { preconditionFailure("images split into images") }
      let features = model.trunk(part, training: false, epilogues: epilogues)
      Rows.copy(n, width: width, from: features, row: 0, to: all, row: start)
    }
    var unused = RNG(state: 0)
    let h = head(all, training: false, rng: &unused)
    lastLogits = h
    return h
  }

  /// Per feature layer, what its convolution applies on the way out in inference: the
  /// BatchNorm's running-statistics map (identity without one) and the ReLU; nil for pools.
  /// Computed once per `infer`, not in every pass.
  private func fusedEpilogues() -> [Conv2d.Epilogue?] {
    features.map { layer in
      guard case .conv(let conv, let norm) = layer else { return nil }
      let o = conv.outputs
      let (scale, shift) = norm?.inferenceAffine() ?? ([Float](repeating: 1, count: o), [Float](repeating: 0, count: o))
      return Conv2d.Epilogue(scale: scale, shift: shift, relu: true)
    }
  }

  private func prepare(batch b: Int) {
    guard b != batch else { return }
    batch = b
    let cfg = config
    sides = [cfg.imageSize]
    widths = [cfg.imageChannels]
    convOut = []
    normOut = []
    reluOut = []
    poolIndices = []
    for layer in features {
      let (side, c) = (sides[sides.count - 1], widths[widths.count - 1])
      switch layer {
      case .conv(let conv, let norm):
        let o = conv.outputs
        conv.prepare(Conv2d.Shape(batch: b, channels: c, height: side, width: side, outChannels: o))
        convOut.append(Tensor([b, o, side, side]))
        normOut.append(norm == nil ? Tensor([0]) : Tensor([b, o, side, side]))
        reluOut.append(Tensor([b, o, side, side]))
        sides.append(side)
        widths.append(o)
      case .pool:
        convOut.append(Tensor([b, c, side / 2, side / 2]))
        normOut.append(Tensor([0]))
        reluOut.append(Tensor([0]))
        sides.append(side / 2)
        widths.append(c)
      }
      poolIndices.append([])
    }
    pooled = Tensor([b, VGGFamily.featureWidth(cfg)])
  }

  // MARK: loss, backward

  public func loss(targets: [Int32], teacher: DistillationTarget?) -> Float {
    crossEntropy.forward(logits: lastLogits, targets: targets, teacher: teacher)
  }

  public var probabilities: Tensor { crossEntropy.probabilities }

  public func backward() {
    precondition(lastLogits === logits, "backward after a chunked infer(): run forward(_:training:rng:) first")
    var d = Tensor(logits.shape)
    crossEntropy.backward(dlogits: d)
    for g in groups.reversed() { d = g.backward(d) }
    let cfg = config
    let (last, p) = (sides[features.count], cfg.pooledSize)
    var dcurrent = scratch.tensor("trunk.dout", [batch, widths[features.count], last, last])
    dcurrent.zero()
    AdaptiveAvgPool2d.backward(
      dx: dcurrent, dy: d, planes: batch * widths[features.count], height: last, width: last, outHeight: p,
      outWidth: p)
    for (i, layer) in features.enumerated().reversed() {
      let (side, c) = (sides[i], widths[i])
      let input = i == 0 ? images : output(of: i - 1)
      switch layer {
      case .conv(let conv, let norm):
        let dconv = scratch.tensor("features.\(i).dconv", convOut[i].shape)
        if let bn = norm {
          // The ReLU's backward inside BatchNorm's: gated where the ReLU's output is > 0,
          // which is where its input was.
          bn.backward(
            dx: dconv, dout: dcurrent, x: convOut[i], write: .overwrite, reluOutput: reluOut[i],
            shape: BatchNorm.Shape(batch: batch, channels: widths[i + 1], spatial: side * side))
        } else {
          _ = Activation.relu.backward(dx: dconv, dout: dcurrent, x: convOut[i], alpha: 0, write: .overwrite)
        }
        let dx: Tensor? = i == 0 ? nil : scratch.tensor("features.\(i).dx", input.shape)
        conv.backward(dx: dx, dout: dconv)
        if let dx = dx { dcurrent = dx }
      case .pool:
        let dx = scratch.tensor("features.\(i).dx", input.shape)
        MaxPool2d.backward(
          dx: dx, dy: dcurrent, indices: poolIndices[i], planes: batch * c, height: side, width: side, k: 2,
          write: .overwrite)
        dcurrent = dx
      }
    }
  }

  /// What feature layer i handed the next one in the last forward: its ReLU's output, or
  /// a pool's.
  private func output(of i: Int) -> Tensor {
    if case .pool = features[i] { return convOut[i] }
    return reluOut[i]
  }
}

/// A convolution layer that owns its weight (O, C, k, k) and bias, and the im2col buffers
/// of its last forward.
final class Conv2dModule {
  let weight: Parameter
  let bias: Parameter
  let outputs: Int
  private var shape = Conv2d.Shape(batch: 0, channels: 0, height: 0, width: 0, outChannels: 0)
  private var cols = Tensor([0])
  private var rows = Tensor([0])
  private var dyRows = Tensor([0])
  private var dcols = Tensor([0])

  /// torchvision's initialization: weights N(0, 2/(O·k·k)) (Kaiming, fan-out, ReLU), bias 0.
  init(_ name: String, inputs: Int, outputs: Int, kernel: Int = 3, params: inout ParameterSet) {
    self.outputs = outputs
    weight = params.add(
      name + ".weight", [outputs, inputs, kernel, kernel], role: .weight,
      initStd: (2 / Float(outputs * kernel * kernel)).squareRoot())
    bias = params.add(name + ".bias", [outputs], role: .bias)
  }

  func prepare(_ s: Conv2d.Shape) {
    guard s != shape else { return }
    shape = s
    cols = Tensor([s.patch, s.rows])
    rows = Tensor([s.outChannels, s.rows])
    dyRows = Tensor([0])
    dcols = Tensor([0])
  }

  func forward(out: Tensor, x: Tensor, epilogue: Conv2d.Epilogue? = nil) {
    Conv2d.forward(y: out, x: x, w: weight.value, b: bias.value, cols: cols, rows: rows, epilogue: epilogue, shape)
  }

  /// dout -> dx (written; nil for the first layer), dW and db added.
  func backward(dx: Tensor?, dout: Tensor) {
    if dyRows.shape != rows.shape {  // the first backward at this shape
      dyRows = Tensor(rows.shape)
      dcols = Tensor(Conv2d.dcolsShape(shape))
    }
    Conv2d.backward(
      dx: dx, dw: weight.grad, db: bias.grad, dy: dout, cols: cols, w: weight.value, dyRows: dyRows, dcols: dcols,
      dxWrite: .overwrite, shape)
  }
}

/// BatchNorm (2d over images, 1d over features) with its scale, shift and running
/// statistics (`running_mean`, `running_var`: role `.buffer`, saved, never trained).
final class BatchNormModule {
  let gamma: Parameter
  let beta: Parameter
  let runningMean: Parameter
  let runningVariance: Parameter
  static let momentum: Float = 0.1
  static let epsilon: Float = 1e-5
  private var mean = Tensor([0])
  private var invStd = Tensor([0])

  init(_ name: String, features: Int, params: inout ParameterSet) {
    gamma = params.add(name + ".weight", [features], role: .normScale)
    beta = params.add(name + ".bias", [features], role: .normShift)
    runningMean = params.add(name + ".running_mean", [features], role: .buffer)
    runningVariance = params.add(name + ".running_var", [features], role: .buffer)
    mean = Tensor([features])
    invStd = Tensor([features])
  }

  /// PyTorch's fresh statistics: mean 0, variance 1.
  func resetStatistics() {
    runningMean.value.zero()
    runningVariance.value.fill(1)
  }

  var statistics: BatchNormStatistics {
    BatchNormStatistics(
      scale: gamma.value, shift: beta.value, runningMean: runningMean.value, runningVariance: runningVariance.value,
      epsilon: Self.epsilon)
  }

  /// Evaluation's per-channel map (`BatchNorm.inferenceAffine`).
  func inferenceAffine() -> (scale: [Float], shift: [Float]) {
    BatchNorm.inferenceAffine(
      gamma: gamma.value, beta: beta.value, runningMean: runningMean.value, runningVariance: runningVariance.value,
      epsilon: Self.epsilon)
  }

  func forward(out: Tensor, x: Tensor, shape: BatchNorm.Shape, training: Bool) {
    if training {
      forwardTraining(out: out, x: x, shape: shape, relu: false)
    } else {
      BatchNorm.forwardInference(
        y: out, x: x, gamma: gamma.value, beta: beta.value, runningMean: runningMean.value,
        runningVariance: runningVariance.value, epsilon: Self.epsilon, shape)
    }
  }

  /// Training mode with a ReLU after it, both in one pass (`BatchNorm.forwardTraining`).
  func forwardTraining(out: Tensor, x: Tensor, shape: BatchNorm.Shape, relu: Bool) {
    BatchNorm.forwardTraining(
      y: out, x: x, gamma: gamma.value, beta: beta.value, mean: mean, invStd: invStd,
      runningMean: runningMean.value, runningVariance: runningVariance.value, momentum: Self.momentum,
      epsilon: Self.epsilon, relu: relu, shape)
  }

  /// The training forward's gradients: dx (added, or written), dγ and dβ (added); with
  /// `reluOutput`, dout is the gradient after a ReLU whose output that is.
  func backward(
    dx: Tensor, dout: Tensor, x: Tensor, write: GradientWrite = .accumulate, reluOutput: Tensor? = nil,
    shape: BatchNorm.Shape
  ) {
    BatchNorm.backward(
      dx: dx, dgamma: gamma.grad, dbeta: beta.grad, dy: dout, x: x, gamma: gamma.value, mean: mean, invStd: invStd,
      write: write, reluOutput: reluOutput, shape)
  }
}

/// One linear of the head (or several merged: original linears `first...last`), with the
/// BatchNorm, activation and dropout that follow it unless it is the last.
final class HeadGroup {
  let first: Int
  let last: Int
  let linear: LinearModule
  let norm: BatchNormModule?
  let activation: ActivationModule?
  let dropout: DropoutModule?
  private var input = Tensor([0])
  private var z = Tensor([0])  // linear output
  private var normed = Tensor([0])
  private var activated = Tensor([0])

  init(_ g: VGGFamily.Group, architecture: Architecture, params: inout ParameterSet) {
    (first, last) = (g.first, g.last)
    // torchvision: N(0, 0.01) weights, zero biases.
    linear = LinearModule(
      "classifier.fc\(g.first)", inputs: g.inputs, outputs: g.outputs, params: &params, initStd: 0.01)
    let isLast = g.last == 3
    let headNorm = architecture.config.headBatchNorm && !isLast
    norm = headNorm ? BatchNormModule("classifier.bn\(g.last)", features: g.outputs, params: &params) : nil
    activation =
      isLast ? nil : ActivationModule("classifier.act\(g.last)", architecture.activations[g.last - 1], params: &params)
    dropout = isLast ? nil : DropoutModule()
  }

  func affine() -> AffineMap { AffineMap(weight: linear.weight.value, bias: linear.bias!.value) }

  func prepare(batch b: Int) {
    let n = linear.weight.shape[0]
    z = Tensor([b, n])
    normed = norm == nil ? Tensor([0]) : Tensor([b, n])
    activated = Tensor([b, n])
  }

  func forward(_ x: Tensor, training: Bool, dropout p: Float, rng: inout RNG) -> Tensor {
    input = x
    linear.forward(y: z, x: x)
    guard let act = activation, let drop = dropout else { return z }
    var pre = z
    if let bn = norm {
      bn.forward(out: normed, x: z, shape: BatchNorm.Shape(batch: z.shape[0], channels: z.shape[1]), training: training)
      pre = normed
    }
    act.forward(out: activated, x: pre)
    return drop.forward(activated, p: training ? p : 0, rng: &rng)
  }

  /// dout -> dx (a new tensor), parameter gradients added.
  func backward(_ dout: Tensor) -> Tensor {
    var dz = dout
    if let act = activation, let drop = dropout {
      let dactivated = Tensor(activated.shape)
      drop.backward(dx: dactivated, dout: dout)
      let pre = norm == nil ? z : normed
      let dpre = Tensor(pre.shape)
      act.backward(dx: dpre, dout: dactivated, x: pre, write: .overwrite)
      dz = dpre
      if let bn = norm {
        dz = Tensor(z.shape)
        bn.backward(dx: dz, dout: dpre, x: z, shape: BatchNorm.Shape(batch: z.shape[0], channels: z.shape[1]))
      }
    }
    let dx = Tensor(input.shape)
    linear.backward(dx: dx, dy: dz, x: input, write: .overwrite)
    return dx
  }
}

/// VGG's closed-form sizes; the model is `VGG`.
public enum VGGFamily: ModelFamily {
  /// The head's two junctions are the units; `config.layers` is 2.
  public static let unitsPerBlock = 1
  public static let junctions = 2

  /// torchvision's configurations ("M" = 0, a max pool).
  public static let presets: [Int: [Int]] = [
    11: [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
    13: [64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
    16: [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
  ]

  public static func unitName(_ unit: Int) -> String { "classifier.act\(unit + 1)" }

  public static func build(_ architecture: Architecture) -> any Model { VGG(architecture) }

  public static func fits(_ kind: ModelKind, task: DataTaskKind) -> Bool { task != .sst2 && task != .text }

  /// A run of the head's original linears merged into one.
  public struct Group: Sendable, Equatable {
    public var first: Int
    public var last: Int
    public var inputs: Int
    public var outputs: Int
  }

  /// The trunk's output: channels of the last convolution (or the image's).
  static func trunkChannels(_ c: ModelConfig) -> Int { c.convLayers.last(where: { $0 > 0 }) ?? c.imageChannels }

  /// Values per image the trunk hands the head: its channels pooled to `pooledSize`².
  static func featureWidth(_ c: ModelConfig) -> Int { trunkChannels(c) * c.pooledSize * c.pooledSize }

  /// The head's linears as groups, given which junctions are collapsed.
  public static func headGroups(_ a: Architecture) -> [Group] {
    headGroups(a.config, collapsed: a.collapsed)
  }

  static func headGroups(_ c: ModelConfig, collapsed: [Bool]) -> [Group] {
    let inputs = [featureWidth(c), c.mlpHidden, c.mlpHidden]
    let outputs = [c.mlpHidden, c.mlpHidden, c.classes]
    var groups = [Group(first: 1, last: 1, inputs: inputs[0], outputs: outputs[0])]
    for j in 0..<junctions {
      if collapsed.count > j && collapsed[j] {
        groups[groups.count - 1].last = j + 2
        groups[groups.count - 1].outputs = outputs[j + 1]
      } else {
        groups.append(Group(first: j + 2, last: j + 2, inputs: inputs[j + 1], outputs: outputs[j + 1]))
      }
    }
    return groups
  }

  /// The head's trainable parameters for these collapse flags: each group's linear, and
  /// each remaining BatchNorm's scale and shift, and PReLU slopes.
  static func headParameters(_ a: Architecture, collapsed: [Bool]) -> Int {
    var n = 0
    for g in headGroups(a.config, collapsed: collapsed) {
      n += g.inputs * g.outputs + g.outputs
      if g.last < 3 {
        if a.config.headBatchNorm { n += 2 * g.outputs }
        if a.activations[g.last - 1] == .prelu { n += 1 }
      }
    }
    return n
  }

  /// The whole head's parameters with `unit`'s junction collapsed or not (the units share
  /// linears, so this is not a per-unit share: `Collapse` compares the two).
  public static func unitParameters(_ a: Architecture, unit: Int, collapsed: Bool) -> Int {
    var flags = a.collapsed
    flags[unit] = collapsed
    return headParameters(a, collapsed: flags)
  }

  /// Trainable parameters (BatchNorm running statistics are state, not counted, as
  /// torchvision's `parameters()`).
  public static func parameterCount(_ a: Architecture) -> Int {
    var n = 0
    var channels = a.config.imageChannels
    for w in a.config.convLayers where w > 0 {
      n += w * channels * 9 + w + (a.config.convBatchNorm ? 2 * w : 0)
      channels = w
    }
    return n + headParameters(a, collapsed: a.collapsed)
  }

  public static func macsPerExample(_ a: Architecture, time: Int?) -> Int {
    var n = 0
    var (channels, side) = (a.config.imageChannels, a.config.imageSize)
    for w in a.config.convLayers {
      if w == 0 {
        side /= 2
      } else {
        n += w * channels * 9 * side * side
        channels = w
      }
    }
    for g in headGroups(a) { n += g.inputs * g.outputs }
    return n
  }

  public static func macsComputedPerExample(_ a: Architecture, time: Int?) -> Int { macsPerExample(a, time: time) }

  /// Parameters with gradients and AdamW moments; per example, each convolution's output,
  /// BatchNorm and ReLU outputs and gradient, and its im2col patches.
  public static func trainingMemory(_ config: ModelConfig, batchSize: Int) -> MemoryEstimate {
    let p = Double(parameterCount(Architecture(config: config)))
    var perExample = 0.0
    var (channels, side) = (config.imageChannels, config.imageSize)
    for w in config.convLayers {
      if w == 0 {
        side = max(side / 2, 1)
        perExample += Double(channels * side * side)
      } else {
        perExample += Double(side * side) * (Double(w) * 5 + Double(channels * 9) * 2)
        channels = w
      }
    }
    perExample += 6 * Double(config.mlpHidden) + 3 * Double(config.classes)
    return MemoryEstimate(parameters: p, activationBytes: 4 * perExample * Double(batchSize))
  }

  /// `model.vgg` (11, 13, 16: torchvision's layers) or `model.conv` (`[64, M, 128, M]`),
  /// `model.width` (multiplies every convolution's channels), `model.batch_norm`,
  /// `model.pool_size` (2), `model.head_batch_norm`, `model.head_linears` (3, or 1: a
  /// single linear, the KD student's head); the head's width, dropout and activation are
  /// the shared keys, read with `sharedDefaults`. Refuses a list that pools the image
  /// below 1×1.
  public static func readConfig(_ r: ConfigReader, into config: inout ModelConfig) {
    let preset = r.int("model.vgg", default: 0, range: 0...19)
    let words = r.words("model.conv", default: [])
    let width = r.double("model.width", default: 1, range: 0.001...16)
    config.convBatchNorm = r.bool("model.batch_norm", default: false)
    config.headBatchNorm = r.bool("model.head_batch_norm", default: false)
    config.pooledSize = r.int("model.pool_size", default: 2, range: 1...64)
    config.headLinears = r.int("model.head_linears", default: 3, range: 1...3)
    r.require(
      config.headLinears != 2, at: "model.head_linears", "a VGG head has 3 linears, or 1 (the collapsed shape)",
      expected: "1 or 3", got: "2")
    config.layers = junctions
    config.heads = 1
    var layers: [Int] = []
    if !words.isEmpty {
      r.require(preset == 0, at: "model.conv", "set model.vgg or model.conv, not both", got: "model.vgg: \(preset)")
      for w in words {
        if w == "M" || w == "m" {
          layers.append(0)
        } else if let n = Int(w), n > 0, n <= 1 << 16 {
          layers.append(n)
        } else {
          r.addError(
            at: "model.conv", "a VGG layer is a channel count (1…65536) or M (a 2×2 max pool)",
            expected: "[64, M, 128, M, ...]", got: w)
        }
      }
    } else if let p = presets[preset] {
      layers = p
    } else {
      r.addError(
        at: "model.vgg", "unknown VGG configuration", expected: "11, 13 or 16 (or a model.conv list)",
        got: preset == 0 ? "neither model.vgg nor model.conv" : "\(preset)")
    }
    config.convLayers = layers.map { $0 == 0 ? 0 : max(1, Int((Double($0) * width).rounded())) }
    config.dModel = trunkChannels(config)
    let pools = layers.filter { $0 == 0 }.count
    var most = 0
    while config.imageSize >> (most + 1) >= 1 && most < 62 { most += 1 }
    r.require(
      pools <= most, at: words.isEmpty ? "model.vgg" : "model.conv",
      "\(pools) max pools take the \(config.imageSize)-pixel image below 1×1",
      expected: "at most \(most) pools (each halves the side; data.resize enlarges the image)", got: "\(pools)")
  }

  public static func fit(_ config: inout ModelConfig, outputs: Int, tokens: Int?) { config.classes = outputs }

  public static func startsCollapsed(_ config: ModelConfig) -> Bool { config.headLinears == 1 }

  public static func storedProblems(_ config: ModelConfig) -> [String] {
    var problems: [String] = []
    // The head's groups index one activation per junction: two, whatever else is stored.
    if config.layers != junctions { problems.append("layers \(config.layers) (a VGG head has \(junctions) junctions)") }
    if config.pooledSize < 1 { problems.append("pooled size \(config.pooledSize)") }
    if config.headLinears != 1 && config.headLinears != 3 { problems.append("\(config.headLinears) head linears") }
    if config.convLayers.isEmpty || config.convLayers.contains(where: { $0 < 0 }) {
      problems.append("convolution layers \(config.convLayers)")
    }
    let pools = config.convLayers.filter { $0 == 0 }.count
    if pools > 62 || config.imageSize >> pools < 1 {
      problems.append("\(pools) max pools take the \(config.imageSize)-pixel image below 1×1")
    }
    return problems
  }

  /// torchvision's VGG head: ReLU, dropout 0.5, 512 wide (CIFAR-sized); the paper starts its
  /// PReLUs at α = 0, exactly the ReLU they replace.
  public static var sharedDefaults: SharedModelDefaults {
    var d = SharedModelDefaults()
    d.activation = .relu
    d.dropout = 0.5
    d.mlpHidden = 512
    d.alphaInit = 0
    return d
  }

  public static func predictsEveryPosition(_ kind: ModelKind) -> Bool { false }

  public static func sequenceLength(_ config: ModelConfig) -> Int { 1 }

  public static func sizeDescription(_ c: ModelConfig) -> String {
    let layers = c.convLayers.map { $0 == 0 ? "M" : "\($0)" }.joined(separator: ", ")
    return "conv [\(layers)]\(c.convBatchNorm ? " with BatchNorm" : ""), pooled \(c.pooledSize)×\(c.pooledSize), "
      + "head \(c.mlpHidden)\(c.headBatchNorm ? " with BatchNorm" : "")"
  }

  public static func exampleBatch(_ config: ModelConfig, batch: Int, rng: inout RNG) -> (
    input: ModelInput, targets: [Int32]
  ) {
    ImageExamples.batch(config, batch: batch, rng: &rng)
  }
}
