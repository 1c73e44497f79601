import Foundation
import Kernels

/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N
/// bytes of JSON `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
/// {string: string}}`, then the raw little-endian data, offsets relative to its start.
///
/// Reading checks everything the header claims before any tensor is touched: a header
/// longer than the file or than `maxHeaderBytes`, JSON that does not parse, an unknown
/// dtype, a negative dimension, offsets outside the data or overlapping another tensor,
/// and a byte count that does not fit the shape are each `.badData` (exit 65) naming the
/// file and the tensor. F32, F16, BF16 and F64 read as float32; integer tensors (a
/// checkpoint's `position_ids`) are listed but not converted.
public struct SafeTensorsFile {
  public enum DType: String, Sendable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f64 = "F64"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    public var size: Int {
      switch self {
      case .f64, .i64: 8
      case .f32, .i32: 4
      case .f16, .bf16, .i16: 2
      case .i8, .u8, .bool: 1
      }
    }

    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .f64 }
  }

  public struct Entry: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range in the data section.
    public var range: Range<Int>
  }

  /// Headers beyond this are refused (the format's own reader caps it at 100 MB).
  public static let maxHeaderBytes = 100_000_000

  public let path: String
  public let entries: [String: Entry]
  public let metadata: [String: String]
  private let bytes: Data
  private let dataStart: Int

  /// Reads and checks a file (`path`).
  public init(path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      let exists = FileManager.default.fileExists(atPath: path)
      throw exists
        ? LCError.io(ErrorDetail(what: "cannot read the safetensors file", location: path))
        : LCError.missingInput(
          ErrorDetail(
            what: "safetensors file not found", location: path,
            hint: "A sharded model needs every shard its model.safetensors.index.json names"))
    }
    try self.init(bytes: data, path: path)
  }

  /// Checks `bytes` as a safetensors file called `path` in messages.
  public init(bytes: Data, path: String) throws {
    func bad(_ what: String, _ tensor: String? = nil, expected: String = "", got: String = "") -> LCError {
      LCError.badData(
        ErrorDetail(
          what: (tensor.map { "tensor \($0): " } ?? "") + what, location: path, expected: expected, got: got,
          hint: "The file is damaged or not safetensors; fetch or export it again"))
    }
    self.path = path
    self.bytes = bytes
    guard bytes.count >= 8 else {
      throw bad("too short for a safetensors header", expected: "at least 8 bytes", got: "\(bytes.count)")
    }
    var length: UInt64 = 0
    for i in 0..<8 { length |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
    guard length <= UInt64(Self.maxHeaderBytes), Int(length) <= bytes.count - 8 else {
      throw bad(
        "the header length does not fit the file", expected: "at most \(min(Self.maxHeaderBytes, bytes.count - 8))",
        got: "\(length)")
    }
    dataStart = 8 + Int(length)
    let header = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + dataStart))
    guard let object = try? JSONSerialization.jsonObject(with: header), let top = object as? [String: Any] else {
      throw bad("the header is not a JSON object")
    }
    let available = bytes.count - dataStart
    var entries: [String: Entry] = [:]
    var metadata: [String: String] = [:]
    for (name, value) in top {
      if name == "__metadata__" {
        guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object of strings") }
        for (k, v) in m {
          guard let s = v as? String else { throw bad("__metadata__ value of \(k) is not a string") }
          metadata[k] = s
        }
        continue
      }
      guard let fields = value as? [String: Any] else { throw bad("not an object", name) }
      guard let dtypeText = fields["dtype"] as? String else { throw bad("no dtype", name) }
      guard let dtype = DType(rawValue: dtypeText) else {
        throw bad("unknown dtype", name, expected: "F32, F16, BF16, F64 or an integer type", got: dtypeText)
      }
      guard let shapeValues = fields["shape"] as? [Any], let shape = Self.integers(shapeValues),
        shape.allSatisfy({ $0 >= 0 })
      else { throw bad("the shape is not a list of non-negative integers", name, got: "\(fields["shape"] ?? "none")") }
      guard let offsetValues = fields["data_offsets"] as? [Any], let offsets = Self.integers(offsetValues),
        offsets.count == 2
      else { throw bad("data_offsets is not [begin, end]", name, got: "\(fields["data_offsets"] ?? "none")") }
      let (begin, end) = (offsets[0], offsets[1])
      guard begin >= 0 && begin <= end && end <= available else {
        throw bad(
          "data_offsets lie outside the data", name, expected: "within 0...\(available)", got: "[\(begin), \(end)]")
      }
      var count = 1
      for d in shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow else { throw bad("the shape is too large", name, got: "\(shape)") }
        count = product
      }
      let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.size)
      guard !overflow && needed == end - begin else {
        throw bad(
          "the byte count does not fit the shape", name,
          expected: "\(count) × \(dtype.size) bytes for \(shape) \(dtype.rawValue)", got: "\(end - begin) bytes")
      }
      entries[name] = Entry(name: name, dtype: dtype, shape: shape, range: begin..<end)
    }
    // By (begin, end), as the reference reader: an empty tensor at another's offset comes first.
    let sorted = entries.values.sorted {
      ($0.range.lowerBound, $0.range.upperBound, $0.name) < ($1.range.lowerBound, $1.range.upperBound, $1.name)
    }
    for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
      throw bad(
        "its data overlaps tensor \(a.name)", b.name, expected: "disjoint byte ranges",
        got: "[\(b.range.lowerBound), \(b.range.upperBound)) within [\(a.range.lowerBound), \(a.range.upperBound))")
    }
    // The tensors fill the data section exactly, one after another, as the reference
    // reader requires: a header length off by a few bytes would otherwise shift every
    // tensor and read as wrong weights without a word.
    var covered = 0
    for e in sorted {
      guard e.range.lowerBound == covered else {
        throw bad(
          "its data does not follow the previous tensor's", e.name, expected: "data_offsets beginning at \(covered)",
          got: "\(e.range.lowerBound)")
      }
      covered = e.range.upperBound
    }
    guard covered == available else {
      throw bad(
        "the data section is not the tensors' bytes", expected: "\(covered) bytes after the header",
        got: "\(available)")
    }
    self.entries = entries
    self.metadata = metadata
  }

  private static func integers(_ values: [Any]) -> [Int]? {
    var out: [Int] = []
    for v in values {
      guard let n = v as? NSNumber else { return nil }
      let d = n.doubleValue
      guard d == d.rounded() && abs(d) < 9e15 else { return nil }  // whole numbers a Double holds exactly
      out.append(Int(d))
    }
    return out
  }

  /// Tensor names, sorted.
  public var names: [String] { entries.keys.sorted() }

  /// Tensor `name` as float32 (converted from F16, BF16 or F64).
  public func tensor(_ name: String) throws -> Tensor {
    guard let e = entries[name] else {
      throw LCError.badData(ErrorDetail(what: "no tensor \(name)", location: path, expected: name, got: "absent"))
    }
    guard e.dtype.isFloat else {
      throw LCError.badData(
        ErrorDetail(what: "tensor \(name) holds \(e.dtype.rawValue), not a float type", location: path))
    }
    let count = e.shape.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    let start = bytes.startIndex + dataStart + e.range.lowerBound
    bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
      let base = start - bytes.startIndex
      switch e.dtype {
      case .f32:
        for i in 0..<count {
          values[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self).littleEndian)
        }
      case .f64:
        for i in 0..<count {
          values[i] = Float(
            Double(bitPattern: raw.loadUnaligned(fromByteOffset: base + 8 * i, as: UInt64.self).littleEndian))
        }
      case .f16:
        for i in 0..<count {
          values[i] = Float(
            Float16(bitPattern: raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self).littleEndian))
        }
      case .bf16:
        for i in 0..<count {
          let high = UInt32(raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self).littleEndian)
          values[i] = Float(bitPattern: high << 16)
        }
      default: break
      }
    }
    return Tensor(e.shape.isEmpty ? [1] : e.shape, values)
  }

  /// Writes float32 `tensors` (in the given order) and `metadata` atomically to `path`.
  /// The header is padded with spaces so that the data starts 8-byte aligned, as the
  /// format's own writer does.
  public static func write(
    _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String
  )
    throws
  {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var offset = 0
    for (name, t) in tensors {
      header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]]
      offset += 4 * t.count
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while (8 + json.count) % 8 != 0 { json.append(0x20) }
    var out = Data(capacity: 8 + json.count + offset)
    var length = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
    out.append(json)
    for (_, t) in tensors {
      var values = t.array.map { $0.bitPattern.littleEndian }
      values.withUnsafeMutableBytes { out.append(contentsOf: $0) }
    }
    try AtomicFile.write(out, to: path)
  }

  /// The tensors of a sharded checkpoint: `model.safetensors.index.json`'s `weight_map`
  /// names each tensor's shard in the same directory. Returns each shard read once, and
  /// which shard holds which tensor.
  public static func readSharded(index path: String) throws -> (
    files: [String: SafeTensorsFile], shardOf: [String: String]
  ) {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw LCError.missingInput(ErrorDetail(what: "cannot read the shard index", location: path))
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let map = object["weight_map"] as? [String: String]
    else {
      throw LCError.badData(
        ErrorDetail(what: "not a safetensors index", location: path, expected: "{\"weight_map\": {tensor: file}}"))
    }
    let dir = Paths.parent(path)
    var files: [String: SafeTensorsFile] = [:]
    for shard in Set(map.values).sorted() {
      guard !shard.contains("/") else {
        throw LCError.badData(ErrorDetail(what: "shard \(shard) is not a file beside the index", location: path))
      }
      files[shard] = try SafeTensorsFile(path: dir + "/" + shard)
    }
    for (tensor, shard) in map where files[shard]?.entries[tensor] == nil {
      throw LCError.badData(
        ErrorDetail(what: "the index places tensor \(tensor) in \(shard), which does not hold it", location: path))
    }
    return (files, map)
  }
}
