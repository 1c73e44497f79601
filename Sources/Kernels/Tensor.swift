/// A dense, row-major float32 tensor: it owns its memory, or is a view into a buffer
/// another object owns (a parameter inside a model's flat parameter buffer).
///
/// Reference semantics on purpose: layers keep activations between forward and
/// backward, and the optimizer updates parameters in place, so a tensor is a
/// buffer with a shape, never silently copied.
public final class Tensor {
  public let shape: [Int]
  public let count: Int
  public let data: UnsafeMutablePointer<Float>
  /// What owns the memory of a view (`init(viewing:shape:owner:)`), kept alive by it;
  /// nil when this tensor owns its memory.
  private let owner: AnyObject?

  /// A tensor of `shape` with every element set to `fill`.
  public init(_ shape: [Int], fill: Float = 0) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
    self.shape = shape
    self.count = shape.reduce(1, *)
    self.data = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    self.owner = nil
    data.initialize(repeating: fill, count: max(count, 1))
  }

  /// A view of the `shape`-many floats at `pointer`, inside memory that `owner` holds
  /// (and this tensor keeps alive): a parameter within a model's one contiguous buffer.
  public init(viewing pointer: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
    self.shape = shape
    self.count = shape.reduce(1, *)
    self.data = pointer
    self.owner = owner
  }

  /// A tensor of `shape` holding `values` (row-major).
  public convenience init(_ shape: [Int], _ values: [Float]) {
    self.init(shape)
    precondition(values.count == count, "shape \(shape) holds \(count) values, got \(values.count)")
    values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
  }

  deinit { if owner == nil { data.deallocate() } }

  /// Number of dimensions.
  public var rank: Int { shape.count }

  /// Size of the last dimension (the row length in row-major order).
  public var lastDim: Int { shape.last ?? 1 }

  /// Flat element access.
  public subscript(i: Int) -> Float {
    get {
      precondition(i >= 0 && i < count, "index \(i) out of range for shape \(shape)")
      return data[i]
    }
    set {
      precondition(i >= 0 && i < count, "index \(i) out of range for shape \(shape)")
      data[i] = newValue
    }
  }

  /// A copy of the elements as an array.
  public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

  public func zero() { data.update(repeating: 0, count: count) }

  public func fill(_ value: Float) { data.update(repeating: value, count: count) }

  /// Copies the elements of `other`, which must hold the same number of elements.
  public func copy(from other: Tensor) {
    precondition(other.count == count, "copy: \(other.shape) into \(shape)")
    data.update(from: other.data, count: count)
  }

  /// A deep copy with the same shape.
  public func clone() -> Tensor {
    let t = Tensor(shape)
    t.copy(from: self)
    return t
  }

  /// Traps when the shape differs from `expected`: a programming error in the caller.
  public func expectShape(_ expected: [Int], _ name: @autoclosure () -> String) {
    precondition(shape == expected, "\(name()): expected shape \(expected), got \(shape)")
  }
}

extension Tensor: CustomStringConvertible {
  public var description: String {
    let head = (0..<min(count, 6)).map { String(data[$0]) }.joined(separator: ", ")
    return "Tensor\(shape)[\(head)\(count > 6 ? ", …" : "")]"
  }
}

/// How a backward pass writes the gradient of its input. `.accumulate` adds into it (the
/// default, so residual branches and shared weights need no special casing); `.overwrite`
/// replaces it, which saves zeroing a scratch buffer and reading it back. Element-wise
/// kernels in `.overwrite` mode may write the gradient over their `dout`.
public enum GradientWrite: Sendable {
  case accumulate
  case overwrite
}
