// swift-tools-version:6.0
// layercollapse: train small transformers on the CPU and compress them with LayerCollapse.
import PackageDescription

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Opt-in CPU tuning for the Kernels target: `LC_TARGET_CPU=x86-64-v3 swift build -c release`
// (or `native`) lets the SIMD kernels use AVX2/FMA. Unset, the package builds for the
// baseline target and runs on any x86-64 (or arm64) machine.
let kernelsSettings: [SwiftSetting] = {
  guard let cpu = getenv("LC_TARGET_CPU").map({ String(cString: $0) }), !cpu.isEmpty else { return [] }
  return [.unsafeFlags(["-target-cpu", cpu])]
}()

let package = Package(
  name: "layercollapse",
  products: [
    .executable(name: "layercollapse", targets: ["layercollapse"]),
    .library(name: "LayerCollapse", targets: ["LayerCollapse"]),
  ],
  targets: [
    // C libraries, each behind a module map and a small shim header.
    .systemLibrary(
      name: "COpenBLAS", pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(
      name: "CHDF5", pkgConfig: "hdf5",
      providers: [.apt(["libhdf5-dev"])]),
    // Every unsafe buffer and BLAS call lives here. No I/O, no printing.
    .target(name: "Kernels", dependencies: ["COpenBLAS"], swiftSettings: kernelsSettings),
    // The pipeline: config -> data -> model -> train -> checkpoint -> collapse -> evaluate -> report.
    .target(name: "LayerCollapse", dependencies: ["Kernels", "CHDF5"]),
    // The only code that prints and calls exit.
    .executableTarget(name: "layercollapse", dependencies: ["LayerCollapse"]),
    .executableTarget(name: "lc-bench", dependencies: ["Kernels", "LayerCollapse"]),
    .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
    .testTarget(name: "LayerCollapseTests", dependencies: ["LayerCollapse", "Kernels"]),
  ],
  swiftLanguageModes: [.v6]
)
