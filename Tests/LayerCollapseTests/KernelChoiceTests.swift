import Foundation
import Testing

/// `scripts/faster_coretype.sh` (reading `layercollapse --version`), which `make reproduce`
/// asks whether OpenBLAS fell back to its generic kernels on this CPU, and which kernels to
/// test (`make test-coretype`) and then use instead.
struct KernelChoiceTests {
  /// Runs `scripts/NAME BINARY` with this process's environment changed by `environment`
  /// (a nil value removes the variable); its exit status and the core type it printed.
  static func script(_ name: String, _ binary: String, environment: [String: String?] = [:]) throws -> (
    code: Int32, core: String
  ) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [Parity.root.appendingPathComponent("scripts/" + name).path, binary]
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
  }

  /// faster_coretype.sh's answer, with no OPENBLAS_CORETYPE but the one `environment` sets.
  static func choice(for binary: String, environment: [String: String] = [:]) throws -> (code: Int32, core: String) {
    var env: [String: String?] = ["OPENBLAS_CORETYPE": nil]
    for (k, v) in environment { env[k] = v }
    return try script("faster_coretype.sh", binary, environment: env)
  }

  /// An executable shell script at `path` that runs `body`: a stand-in for the binary.
  static func fakeBinary(_ path: String, _ body: String) throws {
    try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
  }

  /// The CPU's flags, as the script reads them.
  static let flags: Set<Substring> = {
    let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let line = text.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
    return Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" }))
  }()

  /// The newest kernels this CPU runs, or "" when it has neither AVX-512 nor AVX2.
  static var newest: String {
    if ["avx512f", "avx512vl", "avx512bw"].allSatisfy({ flags.contains(Substring($0)) }) { return "SkylakeX" }
    return flags.contains("avx2") && flags.contains("fma") ? "Haswell" : ""
  }

  @Test func namesTheCPUsOwnKernelsOnlyWhereOpenBLASFellBack() throws {
    // The real binary forced onto the generic kernels OpenBLAS falls back to.
    #expect(try Self.choice(for: CLI.binary, environment: ["OPENBLAS_CORETYPE": "Prescott"]) == (0, Self.newest))
    // Kernels OpenBLAS picks for a CPU it knows: nothing to change.
    if Self.flags.contains("avx") {
      #expect(try Self.choice(for: CLI.binary, environment: ["OPENBLAS_CORETYPE": "Sandybridge"]) == (0, ""))
    }
    // A binary that cannot answer is an error, not a silent "keep the generic kernels".
    let dir = NSTemporaryDirectory() + "lc-kernels-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let fake = dir + "/fake"
    try Self.fakeBinary(fake, "echo 'faster kernels: Haswell'\nexit 5\n")
    #expect(try Self.choice(for: fake).code != 0)
  }

  /// `scripts/other_coretype.sh BINARY`: the kernels `make test-coretype` reruns the numeric
  /// suites under. They must differ from the ones `make test` ran with (the binary's
  /// `kernels X`, which an OPENBLAS_CORETYPE in the environment decides), or the rerun
  /// tests nothing new: it named Haswell on every AVX-512 CPU, also where Haswell's were
  /// already in use.
  static func other(for binary: String) throws -> (code: Int32, core: String) {
    try script("other_coretype.sh", binary)
  }

  @Test func testCoretypeRerunsUnderOtherKernelsThanTheOnesInUse() throws {
    let dir = NSTemporaryDirectory() + "lc-kernels-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let avx512 = ["avx512f", "avx512vl", "avx512bw", "avx512dq"].allSatisfy { Self.flags.contains(Substring($0)) }
    let avx2 = Self.flags.contains("avx2") && Self.flags.contains("fma")
    // What this CPU's flags allow for each set of kernels in use.
    let expected: [String: String] =
      avx512
      ? [
        "Haswell": "SkylakeX", "Zen": "SkylakeX", "Prescott": "SkylakeX", "SkylakeX": "Haswell",
        "Cooperlake": "Haswell",
      ]
      : avx2
        ? ["Haswell": "Sandybridge", "Zen": "Sandybridge", "Prescott": "Haswell", "Sandybridge": "Haswell"]
        : ["Prescott": "Nehalem", "Nehalem": "Core2"]
    for (inUse, other) in expected {
      let fake = dir + "/fake-" + inUse
      try Self.fakeBinary(fake, "echo 'layercollapse 0.1.0'\necho 'OpenBLAS 0.3.21 DYNAMIC_ARCH, kernels \(inUse)'\n")
      #expect(try Self.other(for: fake) == (0, other), "kernels in use: \(inUse)")
    }
    // The real binary, with whatever kernels this environment gives it.
    let version = try CLI.run(["--version"]).stdout
    let inUse = version.components(separatedBy: ", kernels ").last?.split(separator: "\n").first.map(String.init) ?? ""
    let real = try Self.other(for: CLI.binary)
    #expect(real.code == 0 && !real.core.isEmpty && real.core != inUse, "\(real) for \(inUse)")
    // A binary that names no kernels is an error, not a guess.
    let mute = dir + "/mute"
    try Self.fakeBinary(mute, "echo 'layercollapse 0.1.0'\n")
    #expect(try Self.other(for: mute).code != 0)
  }
}
