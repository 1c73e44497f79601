// swift-tools-version:6.0
// layercollapse: train small transformers on the CPU and compress them with LayerCollapse.
import PackageDescription

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
    .target(name: "Kernels", dependencies: ["COpenBLAS"]),
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
