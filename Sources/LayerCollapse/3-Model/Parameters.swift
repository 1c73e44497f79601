import Kernels

/// One learnable tensor, its gradient, and its path-like name (`blocks.3.mlp.fc1.weight`).
/// The same name keys the optimizer state, the checkpoint, logs and error messages.
public final class Parameter {
  public let name: String
  public let value: Tensor
  public let grad: Tensor
  /// Subject to weight decay (matrices and embeddings; not biases, norms or α).
  public let decay: Bool

  public init(_ name: String, _ shape: [Int], decay: Bool) {
    self.name = name
    self.value = Tensor(shape)
    self.grad = Tensor(shape)
    self.decay = decay
  }

  public var shape: [Int] { value.shape }
}

/// The model's parameters in a fixed order (the order they are created in).
public struct ParameterSet {
  public private(set) var all: [Parameter] = []
  private var index: [String: Int] = [:]

  public init() {}

  /// Adds a parameter; names are unique.
  @discardableResult
  mutating func add(_ name: String, _ shape: [Int], decay: Bool) -> Parameter {
    precondition(index[name] == nil, "duplicate parameter \(name)")
    let p = Parameter(name, shape, decay: decay)
    index[name] = all.count
    all.append(p)
    return p
  }

  public subscript(name: String) -> Parameter? { index[name].map { all[$0] } }

  public var names: [String] { all.map(\.name) }

  /// Total number of scalar parameters.
  public var elementCount: Int { all.reduce(0) { $0 + $1.value.count } }

  public func zeroGradients() { for p in all { p.grad.zero() } }
}
