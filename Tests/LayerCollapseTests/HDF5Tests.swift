import Foundation
import Kernels
import LayerCollapse
import Testing

/// A fresh directory under the system temp directory; the caller removes it.
private func makeScratchDirectory() throws -> String {
  let dir: String = NSTemporaryDirectory() + "lc-hdf5-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  return dir
}

/// Deterministic, non-trivial float values.
private func sampleFloats(_ count: Int, seed: Int) -> [Float] {
  (0..<count).map { i in Float((i * 37 + seed * 11) % 101) * 0.25 - 12.5 }
}

/// The LCError thrown by `body`, or nil.
private func lcError(_ body: () throws -> Void) -> LCError? {
  do {
    try body()
    return nil
  } catch {
    return error as? LCError
  }
}

private func h5dumpPath() -> String? {
  let dirs: [String] = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(
    String.init)
  for dir in dirs where FileManager.default.isExecutableFile(atPath: dir + "/h5dump") { return dir + "/h5dump" }
  return nil
}

@Suite struct HDF5Tests {
  static let oddShapes: [[Int]] = [[], [1], [13], [0], [2, 0, 3], [3, 5, 7], [1, 1, 1, 1], [2, 1, 3, 1, 2]]

  @Test func floatTensorsRoundTripWithOddShapes() throws {
    let dir: String = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path: String = dir + "/floats.h5"
    let shapes: [[Int]] = HDF5Tests.oddShapes
    try HDF5File.writeAtomically(to: path) { file in
      for (i, shape) in shapes.enumerated() {
        let values: [Float] = sampleFloats(shape.reduce(1, *), seed: i)
        try file.writeFloats(values, shape: shape, at: "/arrays/\(i)")
        try file.writeTensor(Tensor(shape, values), at: "tensors/\(i)/weight")
      }
    }
    let file: HDF5File = try HDF5File(reading: path)
    for (i, shape) in shapes.enumerated() {
      let values: [Float] = sampleFloats(shape.reduce(1, *), seed: i)
      let read: (values: [Float], shape: [Int]) = try file.readFloats(at: "/arrays/\(i)")
      #expect(read.shape == shape)
      #expect(read.values == values)
      #expect(try file.readFloats(at: "/tensors/\(i)/weight", shape: shape) == values)
      #expect(try file.shape(of: "/tensors/\(i)/weight") == shape)
      let tensor: Tensor = try file.readTensor(at: "/tensors/\(i)/weight")
      #expect(tensor.shape == shape)
      #expect(tensor.array == values)
      let target: Tensor = Tensor(shape, fill: 99)
      try file.read(into: target, from: "/arrays/\(i)")
      #expect(target.array == values)
    }
    try file.close()
  }

  @Test func integersStringsAndAttributesRoundTrip() throws {
    let dir: String = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path: String = dir + "/mixed.h5"
    let signed: [Int64] = [0, -1, 42, Int64.min, Int64.max]
    let unsigned: [UInt64] = [0, 1, UInt64.max, 0x9e37_79b9_7f4a_7c15]
    let text: String = "layercollapse — λ=0.1 ✓"
    try HDF5File.writeAtomically(to: path) { file in
      try file.writeInt64s(signed, at: "/meta/signed")
      try file.writeInt64s([1, 2, 3, 4, 5, 6], shape: [2, 3], at: "/meta/grid")
      try file.writeInt64s([7], shape: [], at: "/meta/step")
      try file.writeUInt64s(unsigned, at: "/rng/states")
      try file.writeUInt64s([], at: "/rng/none")
      try file.writeString(text, at: "/meta/note")
      try file.writeString("", at: "/meta/empty")
      try file.writeString("first", at: "/meta/replaced")
      try file.writeString("second", at: "/meta/replaced")
      try file.setAttribute("format", string: "layercollapse-checkpoint", on: "/")
      try file.setAttribute("version", int64: 1)
      try file.setAttribute("version", int64: 2)
      try file.setAttribute("unit", string: text, on: "/meta/signed")
      try file.setAttribute("blocks", int64: -3, on: "/meta")
    }
    let file: HDF5File = try HDF5File(reading: path)
    #expect(try file.readInt64s(at: "/meta/signed") == signed)
    #expect(try file.readInt64s(at: "/meta/grid") == [1, 2, 3, 4, 5, 6])
    #expect(try file.shape(of: "/meta/grid") == [2, 3])
    #expect(try file.readInt64s(at: "/meta/step") == [7])
    #expect(try file.shape(of: "/meta/step") == [])
    #expect(try file.readUInt64s(at: "/rng/states") == unsigned)
    #expect(try file.readUInt64s(at: "/rng/none") == [])
    #expect(try file.readString(at: "/meta/note") == text)
    #expect(try file.readString(at: "/meta/empty") == "")
    #expect(try file.readString(at: "/meta/replaced") == "second")
    #expect(try file.stringAttribute("format") == "layercollapse-checkpoint")
    #expect(try file.int64Attribute("version", on: "/") == 2)
    #expect(try file.stringAttribute("unit", on: "/meta/signed") == text)
    #expect(try file.int64Attribute("blocks", on: "/meta") == -3)
    // Signedness is checked: RNG states are never silently clipped.
    if case .badData(let d) = lcError({ _ = try file.readInt64s(at: "/rng/states") }) {
      #expect(d.expected == "signed integers")
      #expect(d.got == "unsigned 64-bit integers")
    } else {
      Issue.record("reading uint64 as int64 should be .badData")
    }
  }

  @Test func listsDatasetsRecursivelySorted() throws {
    let dir: String = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path: String = dir + "/tree.h5"
    try HDF5File.writeAtomically(to: path) { file in
      try file.writeFloats([1], shape: [1], at: "/params/blocks/10/mlp/fc1/weight")
      try file.writeFloats([1], shape: [1], at: "/params/blocks/2/mlp/fc1/weight")
      try file.writeFloats([1], shape: [1], at: "/params/blocks/2/attn/qkv")
      try file.writeFloats([1], shape: [1], at: "/params/embedding")
      try file.writeInt64s([3], at: "/meta/step")
      try file.writeString("x", at: "/meta/config")
    }
    let file: HDF5File = try HDF5File(reading: path)
    #expect(
      try file.datasetPaths() == [
        "/meta/config", "/meta/step", "/params/blocks/10/mlp/fc1/weight", "/params/blocks/2/attn/qkv",
        "/params/blocks/2/mlp/fc1/weight", "/params/embedding",
      ])
    #expect(
      try file.datasetPaths(under: "/params/blocks/2") == [
        "/params/blocks/2/attn/qkv", "/params/blocks/2/mlp/fc1/weight",
      ])
    #expect(try file.datasetPaths(under: "params/blocks/10/") == ["/params/blocks/10/mlp/fc1/weight"])
    #expect(file.exists("/params/blocks/2"))
    #expect(file.exists("/params/embedding"))
    #expect(!file.exists("/params/blocks/3/mlp"))
    #expect(file.exists("/"))
    #expect(lcError({ _ = try file.datasetPaths(under: "/nope") }) != nil)
  }

  @Test func atomicWriteReplacesTheFileAndLeavesNoTemporary() throws {
    let dir: String = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path: String = dir + "/ckpt.h5"
    try HDF5File.writeAtomically(to: path) { file in try file.writeInt64s([1], at: "/meta/step") }
    try HDF5File.writeAtomically(to: path) { file in try file.writeInt64s([2], at: "/meta/step") }
    #expect(try HDF5File(reading: path).readInt64s(at: "/meta/step") == [2])
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.h5"])

    // A failure half-way leaves the previous file untouched and removes the temporary.
    struct Crash: Error {}
    #expect(throws: Crash.self) {
      try HDF5File.writeAtomically(to: path) { file in
        try file.writeInt64s([3], at: "/meta/step")
        throw Crash()
      }
    }
    #expect(try HDF5File(reading: path).readInt64s(at: "/meta/step") == [2])
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.h5"])

    // A library error inside the body is passed on as it is.
    let error: LCError? = lcError {
      try HDF5File.writeAtomically(to: path) { file in
        try file.writeFloats([1, 2, 3], shape: [2, 2], at: "/bad")
      }
    }
    guard case .other(let d) = error else {
      Issue.record("expected .other, got \(String(describing: error))")
      return
    }
    #expect(d.location == path + ":/bad")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.h5"])
  }

  @Test func errorsNameTheFileAndTheDataset() throws {
    let dir: String = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }

    let missing: String = dir + "/missing.h5"
    guard case .missingInput(let m) = lcError({ _ = try HDF5File(reading: missing) }) else {
      Issue.record("missing file should be .missingInput")
      return
    }
    #expect(m.location == missing)

    let text: String = dir + "/notes.h5"
    try "not hdf5\n".write(toFile: text, atomically: true, encoding: .utf8)
    guard case .badData(let n) = lcError({ _ = try HDF5File(reading: text) }) else {
      Issue.record("a text file should be .badData")
      return
    }
    #expect(n.location == text)
    #expect(n.what == "not a valid HDF5 file")

    guard case .cannotCreate(let c) = lcError({ _ = try HDF5File(creating: dir + "/no/such/dir/x.h5") }) else {
      Issue.record("creating in a missing directory should be .cannotCreate")
      return
    }
    #expect(c.location == dir + "/no/such/dir/x.h5")

    let path: String = dir + "/ok.h5"
    try HDF5File.writeAtomically(to: path) { file in
      try file.writeFloats(sampleFloats(6, seed: 1), shape: [2, 3], at: "/params/w")
      try file.writeString("s", at: "/meta/name")
    }
    let file: HDF5File = try HDF5File(reading: path)

    let absent: LCError? = lcError { _ = try file.readFloats(at: "/params/blocks/0/mlp/fc1/weight") }
    #expect(
      absent == .badData(ErrorDetail(what: "dataset not found", location: path + ":/params/blocks/0/mlp/fc1/weight")))

    let wrongShape: LCError? = lcError { _ = try file.readFloats(at: "/params/w", shape: [3, 2]) }
    #expect(
      wrongShape
        == .badData(
          ErrorDetail(
            what: "dataset has the wrong shape", location: path + ":/params/w", expected: "shape [3, 2]",
            got: "shape [2, 3]")))
    #expect(lcError({ try file.read(into: Tensor([6]), from: "/params/w") })?.exitCode == 65)

    guard case .badData(let t) = lcError({ _ = try file.readFloats(at: "/meta/name") }) else {
      Issue.record("reading a string as floats should be .badData")
      return
    }
    #expect(t.location == path + ":/meta/name")
    #expect(t.got == "strings")

    guard case .badData(let g) = lcError({ _ = try file.readFloats(at: "/params") }) else {
      Issue.record("reading a group as a dataset should be .badData")
      return
    }
    #expect(g.what == "not a dataset")
    #expect(lcError({ _ = try file.stringAttribute("nope") }) != nil)
    #expect(lcError({ try file.writeInt64s([1], at: "/x") }) != nil, "read-only file")
    try file.close()
    #expect(lcError({ _ = try file.shape(of: "/params/w") }) != nil, "closed file")
  }

  @Test(.enabled(if: h5dumpPath() != nil, "h5dump not found on PATH (apt-get install hdf5-tools)"))
  func h5dumpPrintsTheValuesWritten() throws {
    let dir: String = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path: String = dir + "/dump.h5"
    let values: [Float] = [0.5, -2.25, 3, 1024, 0.125, -7]
    try HDF5File.writeAtomically(to: path) { file in
      try file.writeTensor(Tensor([2, 3], values), at: "/params/blocks/0/mlp/fc1/weight")
      try file.writeUInt64s([UInt64.max, 5], at: "/rng/state")
      try file.writeString("layercollapse run 7", at: "/meta/name")
    }
    func dump(_ dataset: String) throws -> String {
      let process: Process = Process()
      process.executableURL = URL(fileURLWithPath: h5dumpPath()!)
      process.arguments = ["-d", dataset, path]
      let pipe: Pipe = Pipe()
      process.standardOutput = pipe
      try process.run()
      let data: Data = pipe.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      #expect(process.terminationStatus == 0)
      return String(decoding: data, as: UTF8.self)
    }
    let floats: String = try dump("/params/blocks/0/mlp/fc1/weight")
    #expect(floats.contains("H5T_IEEE_F32LE"), "\(floats)")
    #expect(floats.contains("SIMPLE { ( 2, 3 ) / ( 2, 3 ) }"), "\(floats)")
    // The DATA block: lines like "(0,0): 0.5, -2.25, 3,".
    guard let start = floats.range(of: "DATA {") else {
      Issue.record("no DATA block in \(floats)")
      return
    }
    let block: Substring = floats[start.upperBound...].prefix(while: { $0 != "}" })
    let numbers: [Float] = block.split(separator: "\n").flatMap { line -> [Float] in
      let body: Substring = line.split(separator: ":", maxSplits: 1).last ?? ""
      return body.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
    }
    #expect(numbers == values, "\(floats)")

    let rng: String = try dump("/rng/state")
    #expect(rng.contains("H5T_STD_U64LE"), "\(rng)")
    #expect(rng.contains("18446744073709551615, 5"), "\(rng)")
    let name: String = try dump("/meta/name")
    #expect(name.contains("\"layercollapse run 7\""), "\(name)")
    #expect(name.contains("STRSIZE H5T_VARIABLE"), "\(name)")
  }
}
