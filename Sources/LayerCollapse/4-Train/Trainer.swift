import Kernels

/// Optimizer and schedule settings (`train.*` in a config).
public struct OptimizerSettings: Sendable, Equatable, Codable {
  public var learningRate: Double
  public var minLearningRate: Double
  public var warmupSteps: Int
  public var totalSteps: Int
  public var weightDecay: Double
  public var beta1: Double
  public var beta2: Double
  public var epsilon: Double
  /// Global gradient-norm clip; 0 turns clipping off.
  public var gradClip: Double

  public init(
    learningRate: Double = 1e-3, minLearningRate: Double = 0, warmupSteps: Int = 0, totalSteps: Int,
    weightDecay: Double = 0.01, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
    gradClip: Double = 1
  ) {
    self.learningRate = learningRate
    self.minLearningRate = minLearningRate
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
    self.weightDecay = weightDecay
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.gradClip = gradClip
  }
}

/// What one optimizer step did.
public struct StepReport: Sendable, Equatable {
  public var step: Int
  public var loss: Float
  public var penalty: Double
  public var gradNorm: Float
  public var learningRate: Double
  public var alphas: [Int: Float]
  /// The loss or the gradient norm was not finite: the step was not applied (parameters,
  /// optimizer state and α are as before it), and training cannot go on from here.
  public var diverged: Bool = false
}

/// AdamW state per parameter, keyed by parameter name (as in checkpoints).
public final class OptimizerState {
  public var step: Int = 0
  public let m: [String: Tensor]
  public let v: [String: Tensor]

  public init(_ parameters: ParameterSet) {
    var m: [String: Tensor] = [:]
    var v: [String: Tensor] = [:]
    for p in parameters.all {
      m[p.name] = Tensor(p.shape)
      v[p.name] = Tensor(p.shape)
    }
    self.m = m
    self.v = v
  }
}

/// One model, its optimizer, schedule and regularizer: `step` does forward, loss,
/// penalty, backward, clipping and the update.
public final class Trainer {
  public let model: any Model
  public let regularizer: Regularizer
  public let settings: OptimizerSettings
  public let state: OptimizerState
  let optimizer: AdamW
  let schedule: LearningRateSchedule
  /// Knowledge distillation (`train.distill_from`): a trained model in evaluation mode
  /// whose logits on each batch, computed in the same step, soften the student's loss.
  public var teacher: Teacher?

  public struct Teacher {
    public let model: any Model
    public let weight: Float
    public let temperature: Float
    /// Per channel, `x · scale + shift` turns the student's normalized images into the
    /// teacher's (each model was trained on its own mean and std); nil when they agree.
    public let renormalize: (scale: [Float], shift: [Float])?

    public init(
      model: any Model, weight: Float, temperature: Float, renormalize: (scale: [Float], shift: [Float])? = nil
    ) {
      self.model = model
      self.weight = weight
      self.temperature = temperature
      self.renormalize = renormalize
    }

    /// The per-channel map from images normalized with `student` to the same images
    /// normalized with `teacher`: (x·σs + μs − μt) / σt.
    public static func renormalization(from student: ChannelStats, to teacher: ChannelStats) -> (
      scale: [Float], shift: [Float]
    ) {
      let channels = min(student.mean.count, teacher.mean.count)
      let scale = (0..<channels).map { student.std[$0] / teacher.std[$0] }
      let shift = (0..<channels).map { (student.mean[$0] - teacher.mean[$0]) / teacher.std[$0] }
      return (scale, shift)
    }

    /// The teacher's logits on `input` (evaluation mode), as a target for the student's
    /// loss; images first normalized as the teacher's were.
    public func target(_ input: ModelInput) -> DistillationTarget {
      var seen = input
      if let r = renormalize, case .images(let images) = input, images.rank == 4, images.shape[1] == r.scale.count {
        let (channels, plane) = (images.shape[1], images.shape[2] * images.shape[3])
        var values: [Float] = images.array
        for i in values.indices {
          let c: Int = (i / plane) % channels
          values[i] = values[i] * r.scale[c] + r.shift[c]
        }
        seen = .images(Tensor(images.shape, values))
      }
      return DistillationTarget(logits: model.forward(seen), weight: weight, temperature: temperature)
    }
  }

  public init(model: any Model, regularizer: Regularizer, settings: OptimizerSettings) {
    self.model = model
    self.regularizer = regularizer
    self.settings = settings
    self.state = OptimizerState(model.parameters)
    self.optimizer = AdamW(
      beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, weightDecay: settings.weightDecay)
    self.schedule = LearningRateSchedule(
      peak: Float(settings.learningRate), minimum: Float(settings.minLearningRate),
      warmupSteps: settings.warmupSteps, totalSteps: max(settings.totalSteps, settings.warmupSteps))
  }

  public func learningRate(at step: Int) -> Double { Double(schedule.rate(at: step)) }

  /// One training step on a batch. `rng` drives dropout.
  public func step(_ input: ModelInput, targets: [Int32], rng: inout RNG) -> StepReport {
    let params = model.parameters
    params.zeroGradients()
    let soft = teacher?.target(input)
    model.forward(input, training: true, rng: &rng)
    let loss = model.loss(targets: targets, teacher: soft)
    model.backward()
    return update(loss: loss)
  }

  /// Σ over micro-batches of (counted rows · gradient), before the allreduce.
  private var accumulated: Tensor?

  /// One optimizer step on this process's share of a global batch, split into
  /// micro-batches (`train.accumulate`), in a group of processes (MPI ranks).
  ///
  /// Each micro-batch's gradient is of its mean loss; weighted by its counted rows
  /// (examples, or target tokens), summed over micro-batches and, by one allreduce of the
  /// flat gradient buffer, over ranks, then divided by the global count, it is the
  /// gradient of the mean loss over the whole global batch: the same function however
  /// the batch is split. The penalty, clipping and update then run on every rank alike.
  /// `rng` drives this process's dropout.
  public func step(_ batches: [Batch], group: ProcessGroup, rng: inout RNG) throws -> StepReport {
    let params = model.parameters
    let grads = params.gradients
    let sum = accumulated ?? Tensor(grads.shape)
    accumulated = sum
    sum.zero()
    var lossSum = 0.0
    var counted = 0.0
    for b in batches where b.examples > 0 {
      params.zeroGradients()
      let soft = teacher?.target(b.input)
      model.forward(b.input, training: true, rng: &rng)
      let loss = model.loss(targets: b.targets, teacher: soft)
      model.backward()
      let n = Double(CrossEntropy.countedRows(b.targets))
      lossSum += Double(loss) * n
      counted += n
      Elementwise.accumulate(sum, grads, scale: Float(n))
    }
    let totals = try group.sum([lossSum, counted])
    let total = max(totals[1], 1)
    grads.copy(from: sum)
    Elementwise.scale(grads, by: Float(1 / total))
    try group.allreduceSum(grads)
    // BatchNorm's running statistics moved with each rank's own examples: their mean over
    // the ranks keeps every rank's copy the same (the same sum on every rank).
    if group.size > 1 {
      for p in params.all where p.role == .buffer {
        try group.allreduceSum(p.value)
        Elementwise.scale(p.value, by: 1 / Float(group.size))
      }
    }
    return update(loss: Float(totals[0] / total))
  }

  /// The rest of a step, once the gradients of the loss are in place: the penalty and
  /// its gradient, clipping, the α pull and the AdamW update.
  private func update(loss: Float) -> StepReport {
    let params = model.parameters
    let penalty = regularizer.penalty(model)
    regularizer.addGradient(model)
    let norm = GradientClipping.globalNorm([params.gradients])  // every gradient, as one buffer
    // Clipping scales each gradient as AdamW reads it (the gradients are left unscaled).
    let clipScale = GradientClipping.factor(norm: norm, maxNorm: Float(settings.gradClip))
    let lr = learningRate(at: state.step)
    func alphas() -> [Int: Float] { Dictionary(uniqueKeysWithValues: model.alphas.map { ($0.unit, $0.alpha) }) }
    guard loss.isFinite && norm.isFinite else {
      return StepReport(
        step: state.step, loss: loss, penalty: penalty, gradNorm: norm, learningRate: lr, alphas: alphas(),
        diverged: true)
    }
    let alphaLR = lr * regularizer.settings.alphaLearningRateScale
    regularizer.pull(model, lr: alphaLR)
    state.step += 1
    let decoupled = regularizer.settings.mode == .decoupled
    for p in params.all where p.role.trained {
      let isAlpha = p.role == .slope
      let decay = isAlpha ? !decoupled : p.decay
      optimizer.update(
        param: p.value, grad: p.grad, m: state.m[p.name]!, v: state.v[p.name]!, lr: isAlpha ? alphaLR : lr,
        step: state.step, decay: decay, gradScale: clipScale)
    }
    return StepReport(
      step: state.step, loss: loss, penalty: penalty, gradNorm: norm, learningRate: lr, alphas: alphas())
  }
}
