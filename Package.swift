// swift-tools-version:6.1
// layercollapse: train small transformers on the CPU and compress them with LayerCollapse.
import PackageDescription

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// CPU tuning for the Kernels target. The package is built from source on the machine that
// runs it, so when this machine's CPU has AVX2 and FMA (x86-64 since 2013) the SIMD kernels
// are compiled for it (`-target-cpu haswell`: 8-lane AVX instead of 4-lane SSE, about 2×
// on the element-wise kernels; OpenBLAS picks its own kernels at run time either way).
// `LC_TARGET_CPU=<cpu>` overrides the choice (`x86-64` for a portable build); SwiftPM does
// not notice a changed environment, so `rm -rf .build` after changing it.
func hostHasAVX2AndFMA() -> Bool {
  #if os(Linux) && arch(x86_64)
    guard let file = fopen("/proc/cpuinfo", "r") else { return false }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 8192)
    while fgets(&line, Int32(line.count), file) != nil {
      let length = line.firstIndex(of: 0) ?? line.count
      let text = String(decoding: line[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
      guard text.hasPrefix("flags") else { continue }
      let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }))
      return flags.contains("avx2") && flags.contains("fma")
    }
  #endif
  return false
}

// `LC_FMA` tells the kernels that fused multiply-add is an instruction (FastMath's
// `muladd`); an `LC_TARGET_CPU` other than a baseline x86-64 level is taken to have it.
let kernelsSettings: [SwiftSetting] = {
  if let cpu = getenv("LC_TARGET_CPU").map({ String(cString: $0) }), !cpu.isEmpty {
    let baseline = ["x86-64", "x86-64-v2", "generic"].contains(cpu)
    return [.unsafeFlags(["-target-cpu", cpu])] + (baseline ? [] : [.define("LC_FMA")])
  }
  return hostHasAVX2AndFMA() ? [.unsafeFlags(["-target-cpu", "haswell"]), .define("LC_FMA")] : []
}()

let package = Package(
  name: "layercollapse",
  products: [
    .executable(name: "layercollapse", targets: ["layercollapse"]),
    .library(name: "LayerCollapse", targets: ["LayerCollapse"]),
  ],
  // Data-parallel training under mpirun needs MPI at build time: `make build MPI=1`
  // (`swift build --traits MPI`). Without the trait nothing links or needs MPI.
  traits: [
    .trait(name: "MPI", description: "Data-parallel training across processes and machines with MPI (Open MPI, MPICH)")
  ],
  targets: [
    // C libraries, each behind a module map and a small shim header.
    .systemLibrary(
      name: "COpenBLAS", pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(
      name: "CHDF5", pkgConfig: "hdf5",
      providers: [.apt(["libhdf5-dev"])]),
    // The C library's thread-placement calls (nothing to link).
    .systemLibrary(name: "CAffinity"),
    // MPI, for the MPI trait only.
    .systemLibrary(
      name: "CMPI", pkgConfig: "mpi",
      providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
    // Every unsafe buffer and BLAS call lives here. No I/O, no printing.
    .target(name: "Kernels", dependencies: ["COpenBLAS", "CAffinity"], swiftSettings: kernelsSettings),
    // The pipeline: config -> data -> model -> train -> checkpoint -> collapse -> evaluate -> report.
    .target(
      name: "LayerCollapse",
      dependencies: ["Kernels", "CHDF5", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
    // The only code that prints and calls exit.
    .executableTarget(name: "layercollapse", dependencies: ["LayerCollapse"]),
    .executableTarget(name: "lc-bench", dependencies: ["Kernels", "LayerCollapse"]),
    .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
    .testTarget(name: "LayerCollapseTests", dependencies: ["LayerCollapse", "Kernels"]),
  ],
  swiftLanguageModes: [.v6]
)
