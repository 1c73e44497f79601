import Kernels

/// What a parameter is for. The optimizer, weight decay, initialization and the
/// LayerCollapse regularizer read the role, never the name: a new module names its
/// tensors as it likes and still trains correctly.
public enum ParameterRole: String, Sendable, CaseIterable {
  /// The matrix of a linear (or convolution) layer: decayed, initialized N(0, σ).
  case weight
  /// A bias: zero at start, not decayed.
  case bias
  /// A norm's scale γ: one at start, not decayed.
  case normScale
  /// A norm's shift β: zero at start, not decayed.
  case normShift
  /// A lookup table (tokens, positions): decayed, initialized N(0, 0.02).
  case embedding
  /// A learned vector such as ViT's [CLS]: initialized N(0, 0.02), not decayed.
  case token
  /// LayerCollapse's PReLU slope α: its own learning-rate scale and regularizer.
  case slope
  /// State that is saved but not trained, such as BatchNorm's running statistics.
  case buffer

  /// AdamW's weight decay applies (for `slope`, the regularizer mode decides).
  public var decays: Bool { self == .weight || self == .embedding }
  /// The optimizer updates it.
  public var trained: Bool { self != .buffer }
}

/// One learnable tensor, its gradient, its role, and its path-like name
/// (`blocks.3.mlp.fc1.weight`). The same name keys the optimizer state, the checkpoint,
/// logs and error messages. Once its `ParameterSet` is sealed, `value` and `grad` are
/// views into the set's two contiguous buffers.
public final class Parameter {
  public let name: String
  public let role: ParameterRole
  public let shape: [Int]
  /// The standard deviation a `weight` or `embedding` starts with, when the model
  /// wants another than its default (GPT-2 scales residual output projections by 1/√(2L)).
  public let initStd: Float?
  public private(set) var value: Tensor
  public private(set) var grad: Tensor

  init(_ name: String, _ shape: [Int], role: ParameterRole, initStd: Float? = nil) {
    self.name = name
    self.role = role
    self.shape = shape
    self.initStd = initStd
    self.value = Tensor(shape)
    self.grad = Tensor(shape)
  }

  /// Subject to weight decay (weights and embeddings; not biases, norms, tokens or α).
  public var decay: Bool { role.decays }

  /// Moves value and gradient into `storage` at `offset` (the values are kept).
  fileprivate func bind(to storage: FlatStorage, offset: Int) {
    let v = Tensor(viewing: storage.values + offset, shape: shape, owner: storage)
    v.copy(from: value)
    value = v
    grad = Tensor(viewing: storage.gradients + offset, shape: shape, owner: storage)
    grad.zero()
  }
}

/// The two buffers every parameter of a model lives in: values and gradients.
final class FlatStorage {
  let count: Int
  let values: UnsafeMutablePointer<Float>
  let gradients: UnsafeMutablePointer<Float>

  init(count: Int) {
    self.count = count
    values = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    values.initialize(repeating: 0, count: max(count, 1))
    gradients = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    gradients.initialize(repeating: 0, count: max(count, 1))
  }

  deinit {
    values.deallocate()
    gradients.deallocate()
  }
}

/// The model's parameters in a fixed order (the order they are created in). A model adds
/// them while it builds its modules, then `seal()`s the set: from then on every value
/// lies in one contiguous buffer and every gradient in another (`values`, `gradients`),
/// so zeroing, clipping, an all-reduce or an export is one pass over one buffer.
public struct ParameterSet {
  public private(set) var all: [Parameter] = []
  private var index: [String: Int] = [:]
  private var storage: FlatStorage?
  /// The set this one hands the parameters of (`init(sharing:)`), sealed.
  private var source: (parameters: [String: Parameter], storage: FlatStorage)?

  public init() {}

  /// A set for a second model of the same architecture that reads this one's parameters:
  /// `add` hands back `other`'s parameter of that name instead of a new one, and `seal`
  /// keeps `other`'s buffers. Nothing is allocated or copied, and the second model sees
  /// every change to the values. For helpers that run inference beside their owner on
  /// other threads; one that trained would write the owner's gradients.
  init(sharing other: ParameterSet) {
    guard let s = other.storage else { preconditionFailure("sharing an unsealed parameter set") }
    source = (Dictionary(uniqueKeysWithValues: other.all.map { ($0.name, $0) }), s)
  }

  /// Whether the parameters are another set's (`init(sharing:)`): a model must not
  /// initialize them.
  var isShared: Bool { source != nil }

  /// Adds a parameter; names are unique.
  @discardableResult
  mutating func add(_ name: String, _ shape: [Int], role: ParameterRole, initStd: Float? = nil) -> Parameter {
    precondition(storage == nil, "parameter \(name) added to a sealed set")
    precondition(index[name] == nil, "duplicate parameter \(name)")
    let p: Parameter
    if let source {
      guard let q = source.parameters[name], q.shape == shape, q.role == role else {
        preconditionFailure("shared parameter \(name) \(shape) \(role) not in the source set")
      }
      p = q
    } else {
      p = Parameter(name, shape, role: role, initStd: initStd)
    }
    index[name] = all.count
    all.append(p)
    return p
  }

  /// Moves every parameter into the two flat buffers, in order; values are kept. A
  /// shared set keeps its source's buffers.
  mutating func seal() {
    precondition(storage == nil, "parameter set sealed twice")
    if let source {
      precondition(all.count == source.parameters.count, "a shared set must take every parameter of its source")
      storage = source.storage
      return
    }
    let s = FlatStorage(count: elementCount)
    var offset = 0
    for p in all {
      p.bind(to: s, offset: offset)
      offset += p.value.count
    }
    storage = s
  }

  public subscript(name: String) -> Parameter? { index[name].map { all[$0] } }

  public var names: [String] { all.map(\.name) }

  /// Total number of scalar parameters.
  public var elementCount: Int { all.reduce(0) { $0 + $1.value.count } }

  /// Every value, in order, as one (N) tensor (a view; the set must be sealed).
  public var values: Tensor {
    let s = storage!
    return Tensor(viewing: s.values, shape: [s.count], owner: s)
  }

  /// Every gradient, in order, as one (N) tensor (a view; the set must be sealed).
  public var gradients: Tensor {
    let s = storage!
    return Tensor(viewing: s.gradients, shape: [s.count], owner: s)
  }

  /// The first parameter holding a non-finite value, and the element's index in it: one
  /// pass over the flat value buffer (the set must be sealed).
  public func firstNonFinite() -> (parameter: Parameter, index: Int)? {
    let s = storage!
    guard let flat = (0..<s.count).first(where: { !s.values[$0].isFinite }) else { return nil }
    var offset = 0
    for p in all {
      if flat < offset + p.value.count { return (p, flat - offset) }
      offset += p.value.count
    }
    return nil
  }

  /// The parameters of `role`.
  public func with(role: ParameterRole) -> [Parameter] { all.filter { $0.role == role } }

  public func zeroGradients() {
    if let s = storage { s.gradients.update(repeating: 0, count: s.count) } else { for p in all { p.grad.zero() } }
  }
}
