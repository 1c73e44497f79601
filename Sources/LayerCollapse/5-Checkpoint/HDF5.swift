import CHDF5
import Foundation
import Kernels

/// An HDF5 file, open for reading or for writing: the only code that talks to the HDF5 C
/// library. Every handle it opens is closed before the call returns, except the file's own,
/// which `close()` or deinit closes. HDF5's own error printing is switched off; failures
/// come back as `LCError`, located as `file.h5:/params/blocks/0/mlp/fc1/weight`.
///
/// Object paths are absolute (`/params/x`; a missing leading `/` is added). Writing a
/// dataset creates the groups above it and replaces a dataset already at that path.
///
/// Errors: a missing file is `.missingInput`; a file that is not HDF5, a missing dataset or
/// attribute, or one holding the wrong kind of data is `.badData`; a dataset whose shape is
/// not the one asked for is `.other` (a checkpoint that does not fit the model); a file that
/// cannot be created is `.cannotCreate`; a failing read or write is `.io`.
public final class HDF5File {
  public let path: String
  public let isWritable: Bool
  private var id: hid_t

  /// Opens an existing file for reading.
  public init(reading path: String) throws {
    HDF5File.quiet()
    self.path = path
    self.isWritable = false
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw LCError.missingInput(ErrorDetail(what: "HDF5 file not found", location: path))
    }
    guard !isDirectory.boolValue else {
      throw LCError.missingInput(
        ErrorDetail(
          what: "is a directory, not an HDF5 file", location: path, expected: "a file such as run/best.h5",
          hint: "Name a checkpoint inside it, e.g. \(path.hasSuffix("/") ? path : path + "/")best.h5"))
    }
    if let other = Paths.notAFile(path) {  // a pipe would block the open until a writer came
      throw LCError.missingInput(
        ErrorDetail(what: "is not an HDF5 file", location: path, expected: "a regular file", got: "\(other)"))
    }
    guard FileManager.default.isReadableFile(atPath: path) else {
      throw LCError.io(ErrorDetail(what: "cannot read HDF5 file (permission denied)", location: path))
    }
    guard H5Fis_hdf5(path) > 0 else {
      throw LCError.badData(
        ErrorDetail(
          what: "not a valid HDF5 file", location: path,
          expected: "an HDF5 file such as a checkpoint written by this tool"))
    }
    let fid: hid_t = H5Fopen(path, lc_h5f_acc_rdonly(), lc_h5p_default())
    guard fid >= 0 else {
      // The signature is there but the file cannot be opened: truncated or damaged.
      throw LCError.badData(
        ErrorDetail(
          what: "not a valid HDF5 file (truncated or damaged)", location: path,
          expected: "a complete HDF5 file", hint: "The file was cut short or modified; use another copy"))
    }
    self.id = fid
  }

  /// Creates a file for writing, replacing any file at `path`. A crash while writing leaves a
  /// broken file: use `writeAtomically(to:_:)` for anything worth keeping.
  public init(creating path: String) throws {
    HDF5File.quiet()
    self.path = path
    self.isWritable = true
    let fid: hid_t = H5Fcreate(path, lc_h5f_acc_trunc(), lc_h5p_default(), lc_h5p_default())
    guard fid >= 0 else {
      let dir: String = Paths.parent(path)
      let hint: String =
        FileManager.default.fileExists(atPath: dir.isEmpty ? "." : dir)
        ? "Check the permissions of the directory" : "The directory `\(dir)` does not exist"
      throw LCError.cannotCreate(ErrorDetail(what: "cannot create HDF5 file", location: path, hint: hint))
    }
    self.id = fid
  }

  deinit {
    if id >= 0 { _ = H5Fclose(id) }
  }

  /// Flushes and closes the file. Later calls on it throw; closing again does nothing.
  public func close() throws {
    guard id >= 0 else { return }
    let status: herr_t = H5Fclose(id)
    id = -1
    guard status >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot close HDF5 file (data may not be written)", location: path))
    }
  }

  /// Builds a file in memory (HDF5's core driver, no backing store): nothing touches the
  /// disk until `image()` hands the finished bytes to `AtomicFile`.
  private init(inMemory name: String) throws {
    HDF5File.quiet()
    self.path = name
    self.isWritable = true
    let fapl: hid_t = H5Pcreate(lc_h5p_file_access())
    guard fapl >= 0, H5Pset_fapl_core(fapl, 1 << 20, false) >= 0 else {
      if fapl >= 0 { _ = H5Pclose(fapl) }
      throw LCError.io(ErrorDetail(what: "cannot set up an in-memory HDF5 file", location: name))
    }
    defer { _ = H5Pclose(fapl) }
    // Named apart from `name`, which may be open for reading in this process.
    let fid: hid_t = H5Fcreate(name + " (in memory)", lc_h5f_acc_trunc(), lc_h5p_default(), fapl)
    guard fid >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot create an in-memory HDF5 file", location: name))
    }
    self.id = fid
  }

  /// The bytes of a file built in memory, as they would be on disk.
  private func image() throws -> [UInt8] {
    guard H5Fflush(id, lc_h5f_scope_global()) >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot finish the HDF5 file in memory", location: path))
    }
    let size: Int = H5Fget_file_image(id, nil, 0)
    guard size > 0 else { throw LCError.io(ErrorDetail(what: "cannot read back the HDF5 file image", location: path)) }
    var bytes: [UInt8] = [UInt8](repeating: 0, count: size)
    let copied: Int = bytes.withUnsafeMutableBytes { H5Fget_file_image(id, $0.baseAddress, size) }
    guard copied == size else {
      throw LCError.io(ErrorDetail(what: "cannot read back the HDF5 file image", location: path))
    }
    return bytes
  }

  /// Writes a file by calling `body` on an HDF5 file built in memory, then writes its bytes
  /// with `AtomicFile` (to `path.tmp`, synced, renamed over `path`): `path` is always either
  /// the old file or the complete new one, and a full disk is an error naming the file,
  /// never a crash inside the HDF5 library (which only ever writes to memory here).
  public static func writeAtomically(to path: String, _ body: (HDF5File) throws -> Void) throws {
    let file: HDF5File = try HDF5File(inMemory: path)
    let bytes: [UInt8]
    do {
      try body(file)
      bytes = try file.image()
      try file.close()
    } catch {
      try? file.close()
      throw error
    }
    try bytes.withUnsafeBytes { try AtomicFile.write($0, to: path) }
  }

  // MARK: - Datasets

  /// Writes float32 values (row-major) as a dataset of `shape`; `[]` is a scalar.
  public func writeFloats(_ values: [Float], shape: [Int], at objectPath: String) throws {
    try values.withUnsafeBytes { raw in
      try writeDataset(
        objectPath, type: lc_h5t_native_float(), shape: shape, count: values.count, data: raw.baseAddress)
    }
  }

  /// Writes a tensor as a float32 dataset of its shape.
  public func writeTensor(_ tensor: Tensor, at objectPath: String) throws {
    try writeDataset(
      objectPath, type: lc_h5t_native_float(), shape: tensor.shape, count: tensor.count,
      data: UnsafeRawPointer(tensor.data))
  }

  /// Writes int64 values; `shape` defaults to one dimension of `values.count`.
  public func writeInt64s(_ values: [Int64], shape: [Int]? = nil, at objectPath: String) throws {
    try values.withUnsafeBytes { raw in
      try writeDataset(
        objectPath, type: lc_h5t_native_int64(), shape: shape ?? [values.count], count: values.count,
        data: raw.baseAddress)
    }
  }

  /// Writes uint64 values (e.g. RNG states); `shape` defaults to one dimension.
  public func writeUInt64s(_ values: [UInt64], shape: [Int]? = nil, at objectPath: String) throws {
    try values.withUnsafeBytes { raw in
      try writeDataset(
        objectPath, type: lc_h5t_native_uint64(), shape: shape ?? [values.count], count: values.count,
        data: raw.baseAddress)
    }
  }

  /// Writes a string as a scalar dataset (variable-length, UTF-8).
  public func writeString(_ value: String, at objectPath: String) throws {
    let p: String = try checkedPath(objectPath, forWriting: true)
    let type: hid_t = try HDF5File.makeStringType(location: location(p))
    defer { _ = H5Tclose(type) }
    let dataset: hid_t = try createDataset(p, type: type, shape: [])
    defer { _ = H5Dclose(dataset) }
    let status: herr_t = value.withCString { cString in
      var pointer: UnsafePointer<CChar>? = cString
      return withUnsafePointer(to: &pointer) {
        H5Dwrite(dataset, type, lc_h5s_all(), lc_h5s_all(), lc_h5p_default(), $0)
      }
    }
    guard status >= 0 else { throw LCError.io(ErrorDetail(what: "cannot write string dataset", location: location(p))) }
  }

  /// A float dataset's values (row-major) and shape. Float64 data is converted.
  public func readFloats(at objectPath: String) throws -> (values: [Float], shape: [Int]) {
    try withDataset(objectPath, expecting: lc_h5t_class_float(), "float numbers") { dataset, shape, p in
      let count: Int = shape.reduce(1, *)
      let values: [Float] = try readArray(dataset, type: lc_h5t_native_float(), count: count, p)
      return (values, shape)
    }
  }

  /// A float dataset's values, which must have exactly `shape`.
  public func readFloats(at objectPath: String, shape expected: [Int]) throws -> [Float] {
    try withDataset(objectPath, expecting: lc_h5t_class_float(), "float numbers") { dataset, shape, p in
      try checkShape(shape, expected, p)
      let count: Int = shape.reduce(1, *)
      return try readArray(dataset, type: lc_h5t_native_float(), count: count, p) as [Float]
    }
  }

  /// `count` elements of `dataset` converted to the memory type `type`.
  private func readArray<T>(_ dataset: hid_t, type: hid_t, count: Int, _ p: String) throws -> [T] {
    try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
      initialized = 0
      try read(dataset, type: type, into: UnsafeMutableRawPointer(buffer.baseAddress), count, p)
      initialized = count
    }
  }

  /// A float dataset as a new tensor of its shape.
  public func readTensor(at objectPath: String) throws -> Tensor {
    try withDataset(objectPath, expecting: lc_h5t_class_float(), "float numbers") { dataset, shape, p in
      let tensor: Tensor = Tensor(shape)
      try read(dataset, type: lc_h5t_native_float(), into: UnsafeMutableRawPointer(tensor.data), tensor.count, p)
      return tensor
    }
  }

  /// Reads a float dataset into `tensor`, whose shape it must have (e.g. a model parameter).
  public func read(into tensor: Tensor, from objectPath: String) throws {
    try withDataset(objectPath, expecting: lc_h5t_class_float(), "float numbers") { dataset, shape, p in
      try checkShape(shape, tensor.shape, p)
      try read(dataset, type: lc_h5t_native_float(), into: UnsafeMutableRawPointer(tensor.data), tensor.count, p)
    }
  }

  /// A signed integer dataset's values (row-major), as int64; more than `limit` of them is
  /// a damaged file (65), refused before anything is allocated.
  public func readInt64s(at objectPath: String, limit: Int = 1 << 20) throws -> [Int64] {
    try withDataset(objectPath, expecting: lc_h5t_class_integer(), "signed integers", unsigned: false) {
      dataset, shape, p in
      let count: Int = try checkCount(shape, limit: limit, p)
      return try readArray(dataset, type: lc_h5t_native_int64(), count: count, p) as [Int64]
    }
  }

  /// An unsigned integer dataset's values (row-major), as uint64; at most `limit`.
  public func readUInt64s(at objectPath: String, limit: Int = 1 << 20) throws -> [UInt64] {
    try withDataset(objectPath, expecting: lc_h5t_class_integer(), "unsigned integers", unsigned: true) {
      dataset, shape, p in
      let count: Int = try checkCount(shape, limit: limit, p)
      return try readArray(dataset, type: lc_h5t_native_uint64(), count: count, p) as [UInt64]
    }
  }

  /// The number of values of `shape` (its product stays inside Int: `withDataset`), at most `limit`.
  private func checkCount(_ shape: [Int], limit: Int, _ p: String) throws -> Int {
    let count: Int = shape.reduce(1, *)
    guard count <= limit else {
      throw LCError.badData(
        ErrorDetail(
          what: "dataset holds more values than expected", location: location(p), expected: "at most \(limit)",
          got: "shape \(shape)"))
    }
    return count
  }

  /// A string dataset holding one string (variable or fixed length).
  public func readString(at objectPath: String) throws -> String {
    try withDataset(objectPath, expecting: lc_h5t_class_string(), "a string") { dataset, _, p in
      let fileType: hid_t = H5Dget_type(dataset)
      let space: hid_t = H5Dget_space(dataset)
      defer {
        _ = H5Tclose(fileType)
        _ = H5Sclose(space)
      }
      return try HDF5File.readOneString(fileType: fileType, space: space, location: location(p)) { memType, buffer in
        H5Dread(dataset, memType, lc_h5s_all(), lc_h5s_all(), lc_h5p_default(), buffer)
      }
    }
  }

  /// The shape of a dataset, without reading its data; `[]` for a scalar.
  public func shape(of objectPath: String) throws -> [Int] {
    try withDataset(objectPath, expecting: nil, "data") { _, shape, _ in shape }
  }

  /// True when a group or dataset exists at the path.
  public func exists(_ objectPath: String) -> Bool {
    HDF5File.quiet()
    guard id >= 0, let p = try? checkedPath(objectPath, forWriting: false) else { return false }
    var prefix: String = ""
    for part in p.split(separator: "/") {
      prefix += "/" + part
      if H5Lexists(id, prefix, lc_h5p_default()) <= 0 { return false }
    }
    return true
  }

  /// True when the object at `objectPath` (the file's root by default) has an attribute
  /// `name`, of whatever type.
  public func hasAttribute(_ name: String, on objectPath: String = "/") -> Bool {
    guard exists(objectPath), let p = try? checkedPath(objectPath, forWriting: false) else { return false }
    let object: hid_t = H5Oopen(id, p, lc_h5p_default())
    guard object >= 0 else { return false }
    defer { _ = H5Oclose(object) }
    return H5Aexists(object, name) > 0
  }

  /// The paths of every dataset below `group`, recursively, sorted.
  public func datasetPaths(under group: String = "/") throws -> [String] {
    let p: String = try checkedPath(group, forWriting: false)
    return try withObject(p, kind: lc_h5i_group(), "group", other: "a dataset") { object in
      var out: [String] = []
      try collectDatasets(in: object, prefix: p == "/" ? "" : p, into: &out)
      return out.sorted()
    }
  }

  /// Opens the object at the absolute path `p`, which must exist and be of `kind`
  /// (`noun` names it in errors, `other` names what it is instead), for `body`.
  private func withObject<T>(
    _ p: String, kind: H5I_type_t, _ noun: String, other: String, _ body: (hid_t) throws -> T
  ) throws -> T {
    guard exists(p) else {
      throw LCError.badData(ErrorDetail(what: "\(noun) not found", location: location(p)))
    }
    let object: hid_t = H5Oopen(id, p, lc_h5p_default())
    guard object >= 0 else { throw LCError.io(ErrorDetail(what: "cannot open \(noun)", location: location(p))) }
    defer { _ = H5Oclose(object) }
    guard H5Iget_type(object) == kind else {
      throw LCError.badData(
        ErrorDetail(what: "not a \(noun)", location: location(p), expected: "a \(noun)", got: other))
    }
    return try body(object)
  }

  private func collectDatasets(in group: hid_t, prefix: String, into out: inout [String], depth: Int = 0) throws {
    // Links can make a group its own descendant; no file this project writes nests deeper.
    guard depth < 32 else {
      throw LCError.badData(
        ErrorDetail(
          what: "groups nested deeper than 32 levels (a link cycle?)", location: location(prefix),
          hint: "The file was modified or written by an incompatible tool"))
    }
    var info: H5G_info_t = H5G_info_t()
    guard H5Gget_info(group, &info) >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot list group", location: location(prefix.isEmpty ? "/" : prefix)))
    }
    for i in 0..<info.nlinks {
      let length: Int = H5Lget_name_by_idx(
        group, ".", lc_h5_index_name(), lc_h5_iter_inc(), i, nil, 0, lc_h5p_default())
      guard length >= 0 else { continue }
      var bytes: [CChar] = [CChar](repeating: 0, count: length + 1)
      _ = H5Lget_name_by_idx(group, ".", lc_h5_index_name(), lc_h5_iter_inc(), i, &bytes, length + 1, lc_h5p_default())
      let name: String = HDF5File.string(fromNulTerminated: bytes)
      let child: hid_t = H5Oopen(group, name, lc_h5p_default())
      guard child >= 0 else { continue }  // a dangling link
      defer { _ = H5Oclose(child) }
      let type: H5I_type_t = H5Iget_type(child)
      if type == lc_h5i_group() {
        try collectDatasets(in: child, prefix: prefix + "/" + name, into: &out, depth: depth + 1)
      } else if type == lc_h5i_dataset() {
        out.append(prefix + "/" + name)
      }
    }
  }

  // MARK: - Attributes

  /// Sets a string attribute (scalar, variable-length UTF-8) on a group or dataset.
  public func setAttribute(_ name: String, string value: String, on objectPath: String = "/") throws {
    let type: hid_t = try HDF5File.makeStringType(location: location(objectPath))
    defer { _ = H5Tclose(type) }
    try writeAttribute(name, type: type, on: objectPath) { attribute in
      value.withCString { cString in
        var pointer: UnsafePointer<CChar>? = cString
        return withUnsafePointer(to: &pointer) { H5Awrite(attribute, type, $0) }
      }
    }
  }

  /// Sets an int64 attribute (scalar) on a group or dataset.
  public func setAttribute(_ name: String, int64 value: Int64, on objectPath: String = "/") throws {
    try writeAttribute(name, type: lc_h5t_native_int64(), on: objectPath) { attribute in
      var v: Int64 = value
      return H5Awrite(attribute, lc_h5t_native_int64(), &v)
    }
  }

  /// A string attribute holding one string (variable or fixed length).
  public func stringAttribute(_ name: String, on objectPath: String = "/") throws -> String {
    try withAttribute(name, on: objectPath) { attribute, attributeLocation in
      let fileType: hid_t = H5Aget_type(attribute)
      let space: hid_t = H5Aget_space(attribute)
      defer {
        _ = H5Tclose(fileType)
        _ = H5Sclose(space)
      }
      guard H5Tget_class(fileType) == lc_h5t_class_string() else {
        throw LCError.badData(
          ErrorDetail(what: "attribute is not a string", location: attributeLocation, expected: "a string"))
      }
      return try HDF5File.readOneString(fileType: fileType, space: space, location: attributeLocation) {
        memType, buffer in
        H5Aread(attribute, memType, buffer)
      }
    }
  }

  /// An integer attribute holding one value, as int64.
  public func int64Attribute(_ name: String, on objectPath: String = "/") throws -> Int64 {
    try withAttribute(name, on: objectPath) { attribute, attributeLocation in
      let fileType: hid_t = H5Aget_type(attribute)
      let space: hid_t = H5Aget_space(attribute)
      defer {
        _ = H5Tclose(fileType)
        _ = H5Sclose(space)
      }
      guard H5Tget_class(fileType) == lc_h5t_class_integer(), H5Sget_simple_extent_npoints(space) == 1 else {
        throw LCError.badData(
          ErrorDetail(what: "attribute is not a single integer", location: attributeLocation, expected: "one integer"))
      }
      var value: Int64 = 0
      guard H5Aread(attribute, lc_h5t_native_int64(), &value) >= 0 else {
        throw LCError.io(ErrorDetail(what: "cannot read attribute", location: attributeLocation))
      }
      return value
    }
  }

  private func writeAttribute(
    _ name: String, type: hid_t, on objectPath: String, _ write: (hid_t) -> herr_t
  ) throws {
    let p: String = try checkedPath(objectPath, forWriting: true)
    let attributeLocation: String = location(p) + "@" + name
    let object: hid_t = try openObject(p)
    defer { _ = H5Oclose(object) }
    if H5Aexists(object, name) > 0 && H5Adelete(object, name) < 0 {
      throw LCError.io(ErrorDetail(what: "cannot replace attribute", location: attributeLocation))
    }
    let space: hid_t = H5Screate(lc_h5s_scalar())
    guard space >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot create dataspace", location: attributeLocation))
    }
    defer { _ = H5Sclose(space) }
    let attribute: hid_t = H5Acreate2(object, name, type, space, lc_h5p_default(), lc_h5p_default())
    guard attribute >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot create attribute", location: attributeLocation))
    }
    defer { _ = H5Aclose(attribute) }
    guard write(attribute) >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot write attribute", location: attributeLocation))
    }
  }

  private func withAttribute<T>(_ name: String, on objectPath: String, _ body: (hid_t, String) throws -> T) throws -> T
  {
    let p: String = try checkedPath(objectPath, forWriting: false)
    let attributeLocation: String = location(p) + "@" + name
    let object: hid_t = try openObject(p)
    defer { _ = H5Oclose(object) }
    guard H5Aexists(object, name) > 0 else {
      throw LCError.badData(ErrorDetail(what: "attribute not found", location: attributeLocation))
    }
    let attribute: hid_t = H5Aopen(object, name, lc_h5p_default())
    guard attribute >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot open attribute", location: attributeLocation))
    }
    defer { _ = H5Aclose(attribute) }
    return try body(attribute, attributeLocation)
  }

  // MARK: - Helpers

  /// Turns off HDF5's printing of its error stack (per thread in a thread-safe build).
  private static func quiet() { _ = H5Eset_auto2(lc_h5e_default(), nil, nil) }

  private func location(_ objectPath: String) -> String { "\(path):\(objectPath)" }

  /// The absolute form of `objectPath`; checks that the file is open (and writable).
  private func checkedPath(_ objectPath: String, forWriting: Bool) throws -> String {
    HDF5File.quiet()
    guard id >= 0 else { throw LCError.other(ErrorDetail(what: "HDF5 file is closed", location: path)) }
    if forWriting && !isWritable {
      throw LCError.other(ErrorDetail(what: "HDF5 file is open for reading only", location: location(objectPath)))
    }
    var p: String = objectPath.hasPrefix("/") ? objectPath : "/" + objectPath
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    let parts: [Substring] = p.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    if p != "/" && parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
      throw LCError.other(
        ErrorDetail(what: "invalid object path", location: location(objectPath), expected: "e.g. `/params/x`"))
    }
    return p
  }

  private func openObject(_ p: String) throws -> hid_t {
    guard exists(p) else { throw LCError.badData(ErrorDetail(what: "object not found", location: location(p))) }
    let object: hid_t = H5Oopen(id, p, lc_h5p_default())
    guard object >= 0 else { throw LCError.io(ErrorDetail(what: "cannot open object", location: location(p))) }
    return object
  }

  private func writeDataset(_ objectPath: String, type: hid_t, shape: [Int], count: Int, data: UnsafeRawPointer?)
    throws
  {
    let p: String = try checkedPath(objectPath, forWriting: true)
    let expected: Int = shape.reduce(1, *)
    guard shape.allSatisfy({ $0 >= 0 }), expected == count else {
      throw LCError.other(
        ErrorDetail(
          what: "values do not fill the shape", location: location(p), expected: "\(expected) values for \(shape)",
          got: "\(count)"))
    }
    let dataset: hid_t = try createDataset(p, type: type, shape: shape)
    defer { _ = H5Dclose(dataset) }
    if count > 0, let data {
      guard H5Dwrite(dataset, type, lc_h5s_all(), lc_h5s_all(), lc_h5p_default(), data) >= 0 else {
        throw LCError.io(ErrorDetail(what: "cannot write dataset", location: location(p)))
      }
    }
  }

  /// A new dataset at `p` (replacing one already there), with the groups above it.
  private func createDataset(_ p: String, type: hid_t, shape: [Int]) throws -> hid_t {
    if exists(p) && H5Ldelete(id, p, lc_h5p_default()) < 0 {
      throw LCError.io(ErrorDetail(what: "cannot replace existing dataset", location: location(p)))
    }
    let space: hid_t
    if shape.isEmpty {
      space = H5Screate(lc_h5s_scalar())
    } else {
      let dims: [hsize_t] = shape.map { hsize_t($0) }
      space = H5Screate_simple(Int32(dims.count), dims, nil)
    }
    guard space >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot create dataspace of shape \(shape)", location: location(p)))
    }
    defer { _ = H5Sclose(space) }
    let linkProperties: hid_t = H5Pcreate(lc_h5p_link_create())
    guard linkProperties >= 0 else {
      throw LCError.io(ErrorDetail(what: "cannot create dataset", location: location(p)))
    }
    defer { _ = H5Pclose(linkProperties) }
    _ = H5Pset_create_intermediate_group(linkProperties, 1)
    let dataset: hid_t = H5Dcreate2(id, p, type, space, linkProperties, lc_h5p_default(), lc_h5p_default())
    guard dataset >= 0 else {
      throw LCError.io(
        ErrorDetail(
          what: "cannot create dataset", location: location(p), hint: "Is a part of the path already a dataset?"))
    }
    return dataset
  }

  /// Opens the dataset at `objectPath`, checks its type class, and calls `body` with the
  /// dataset, its shape and its absolute path.
  private func withDataset<T>(
    _ objectPath: String, expecting typeClass: H5T_class_t?, _ typeName: String, unsigned: Bool? = nil,
    _ body: (hid_t, [Int], String) throws -> T
  ) throws -> T {
    let p: String = try checkedPath(objectPath, forWriting: false)
    return try withObject(p, kind: lc_h5i_dataset(), "dataset", other: "a group") { dataset in
      let type: hid_t = H5Dget_type(dataset)
      guard type >= 0 else { throw LCError.badData(ErrorDetail(what: "cannot read datatype", location: location(p))) }
      defer { _ = H5Tclose(type) }
      if let typeClass {
        var ok: Bool = H5Tget_class(type) == typeClass
        if ok, let unsigned { ok = (H5Tget_sign(type) == lc_h5t_sgn_none()) == unsigned }
        guard ok else {
          throw LCError.badData(
            ErrorDetail(
              what: "dataset holds the wrong kind of data", location: location(p), expected: typeName,
              got: HDF5File.describe(type)))
        }
      }
      let space: hid_t = H5Dget_space(dataset)
      guard space >= 0 else { throw LCError.badData(ErrorDetail(what: "cannot read dataspace", location: location(p))) }
      defer { _ = H5Sclose(space) }
      let rank: Int32 = H5Sget_simple_extent_ndims(space)
      guard rank >= 0 else { throw LCError.badData(ErrorDetail(what: "cannot read dataspace", location: location(p))) }
      var dims: [hsize_t] = [hsize_t](repeating: 0, count: Int(rank))
      if rank > 0 { _ = H5Sget_simple_extent_dims(space, &dims, nil) }
      // A damaged or crafted file can claim any extent (a chunked dataset of 2⁶² elements
      // is a few bytes): the shape and its product must stay inside Int.
      var shape: [Int] = []
      var count: Int = 1
      for d in dims {
        let overflow: Bool
        if let n = Int(exactly: d) {
          shape.append(n)
          (count, overflow) = count.multipliedReportingOverflow(by: n)
        } else {
          overflow = true
        }
        guard !overflow else {
          throw LCError.badData(
            ErrorDetail(what: "dataset extent out of range", location: location(p), got: "dimensions \(dims)"))
        }
      }
      return try body(dataset, shape, p)
    }
  }

  private func read(_ dataset: hid_t, type: hid_t, into buffer: UnsafeMutableRawPointer?, _ count: Int, _ p: String)
    throws
  {
    guard count > 0 else { return }
    guard H5Dread(dataset, type, lc_h5s_all(), lc_h5s_all(), lc_h5p_default(), buffer) >= 0 else {
      // The file opened, so a failing read is data the file does not hold: cut short or damaged.
      throw LCError.badData(
        ErrorDetail(what: "cannot read dataset (the file is truncated or damaged)", location: location(p)))
    }
  }

  /// A dataset of another shape than its reader needs is a damaged or foreign file (65).
  private func checkShape(_ shape: [Int], _ expected: [Int], _ p: String) throws {
    guard shape == expected else {
      throw LCError.badData(
        ErrorDetail(
          what: "dataset has the wrong shape", location: location(p), expected: "shape \(expected)",
          got: "shape \(shape)"))
    }
  }

  private static func makeStringType(location: String) throws -> hid_t {
    let type: hid_t = H5Tcopy(lc_h5t_c_s1())
    guard type >= 0, H5Tset_size(type, lc_h5t_variable()) >= 0, H5Tset_cset(type, lc_h5t_cset_utf8()) >= 0,
      H5Tset_strpad(type, lc_h5t_str_nullterm()) >= 0
    else {
      if type >= 0 { _ = H5Tclose(type) }
      throw LCError.io(ErrorDetail(what: "cannot create string type", location: location))
    }
    return type
  }

  /// Reads the single string of a dataset or attribute through `read(memoryType, buffer)`.
  private static func readOneString(
    fileType: hid_t, space: hid_t, location: String, _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t
  ) throws -> String {
    let points: Int64 = Int64(H5Sget_simple_extent_npoints(space))
    guard points == 1 else {
      throw LCError.badData(ErrorDetail(what: "expected a single string", location: location, got: "\(points) values"))
    }
    let memType: hid_t = H5Tcopy(lc_h5t_c_s1())
    guard memType >= 0 else { throw LCError.io(ErrorDetail(what: "cannot create string type", location: location)) }
    defer { _ = H5Tclose(memType) }
    _ = H5Tset_cset(memType, H5Tget_cset(fileType))
    if H5Tis_variable_str(fileType) > 0 {
      _ = H5Tset_size(memType, lc_h5t_variable())
      var pointer: UnsafeMutablePointer<CChar>? = nil
      let status: herr_t = withUnsafeMutablePointer(to: &pointer) { read(memType, UnsafeMutableRawPointer($0)) }
      guard status >= 0 else { throw LCError.io(ErrorDetail(what: "cannot read string", location: location)) }
      let value: String = pointer.map { String(cString: $0) } ?? ""
      _ = withUnsafeMutablePointer(to: &pointer) { H5Dvlen_reclaim(memType, space, lc_h5p_default(), $0) }
      return value
    }
    let size: Int = H5Tget_size(fileType)
    _ = H5Tset_size(memType, size + 1)
    _ = H5Tset_strpad(memType, lc_h5t_str_nullterm())
    var bytes: [CChar] = [CChar](repeating: 0, count: size + 1)
    let status: herr_t = bytes.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }
    guard status >= 0 else { throw LCError.io(ErrorDetail(what: "cannot read string", location: location)) }
    return string(fromNulTerminated: bytes)
  }

  private static func string(fromNulTerminated bytes: [CChar]) -> String {
    String(decoding: bytes.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// "32-bit floats", "signed 64-bit integers", "a string", for messages.
  private static func describe(_ type: hid_t) -> String {
    let bits: Int = H5Tget_size(type) * 8
    let typeClass: H5T_class_t = H5Tget_class(type)
    if typeClass == lc_h5t_class_float() { return "\(bits)-bit floats" }
    if typeClass == lc_h5t_class_integer() {
      return (H5Tget_sign(type) == lc_h5t_sgn_none() ? "unsigned " : "signed ") + "\(bits)-bit integers"
    }
    if typeClass == lc_h5t_class_string() { return "strings" }
    return "HDF5 type class \(typeClass.rawValue)"
  }
}
