// `make bench`: throughput figures, printed as tables. Not a test: nothing here asserts.
// Sections: the GEMM table, our training steps, each model kernel by kernel, and ours vs
// PyTorch (Compare.swift) with the project's targets. `--train-only` / `--infer-only`
// (Child.swift) are the measuring processes of the comparison.
import Foundation
import Kernels
import LayerCollapse

let arguments: [String] = Array(CommandLine.arguments.dropFirst())
if let first = arguments.first {
  if first == "--train-only" || first == "--infer-only" { childMain(arguments) }
  if first == "--help" || first == "-h" {
    print(childUsage)
    exit(0)
  }
  FileHandle.standardError.write(Data("lc-bench: unknown argument \(first)\n\n\(childUsage)\n".utf8))
  exit(2)
}

let allSections: [String] = ["gemm", "steps", "profile", "compare", "distributed"]
let sections: [String] = environmentList("LC_BENCH_SECTIONS") ?? allSections
let cases: [ModelCase]
do {
  for s in sections where !allSections.contains(s) {
    throw BenchError("LC_BENCH_SECTIONS: unknown section \(s) (known: \(allSections.joined(separator: ", ")))")
  }
  cases = try selectedModelCases()
} catch {
  FileHandle.standardError.write(Data("lc-bench: \(error)\n".utf8))
  exit(2)
}

/// What a GEMM-table product stands for in the GEMM-share estimate.
enum GEMMRole {
  case mlpForward
  case mlpBackward
  case other
}

struct GEMMCase {
  var label: String
  var role: GEMMRole
  var transA: Bool
  var transB: Bool
  var m: Int
  var n: Int
  var k: Int
}

/// The matrix products of one MLP layer (d_model 128, hidden 512, 2048 tokens), forward
/// and backward, and two square sizes.
let gemmCases: [GEMMCase] = [
  GEMMCase(label: "fc1 forward  x·W1ᵀ", role: .mlpForward, transA: false, transB: true, m: 2048, n: 512, k: 128),
  GEMMCase(label: "fc1 dx       dy·W1", role: .mlpBackward, transA: false, transB: false, m: 2048, n: 128, k: 512),
  GEMMCase(label: "fc1 dW       dyᵀ·x", role: .mlpBackward, transA: true, transB: false, m: 512, n: 128, k: 2048),
  GEMMCase(label: "fc2 forward  h·W2ᵀ", role: .mlpForward, transA: false, transB: true, m: 2048, n: 128, k: 512),
  GEMMCase(label: "square 512", role: .other, transA: false, transB: false, m: 512, n: 512, k: 512),
  GEMMCase(label: "square 1024", role: .other, transA: false, transB: false, m: 1024, n: 1024, k: 1024),
]

func gemmGFLOPS(_ c: GEMMCase) -> Double {
  var rng = RNG(seed: 1, stream: "bench")
  let a = Tensor([c.m * c.k])
  let b = Tensor([c.k * c.n])
  let out = Tensor([c.m * c.n])
  rng.fillNormal(a)
  rng.fillNormal(b)
  let seconds = medianSeconds {
    GEMM.multiply(
      transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k,
      a: a.data, lda: c.transA ? c.m : c.k, b: b.data, ldb: c.transB ? c.k : c.n, c: out.data, ldc: c.n)
  }
  return 2.0 * Double(c.m) * Double(c.n) * Double(c.k) / seconds / 1e9
}

let threads: [Int] = threadCounts()
var gemmRates: [String: [Int: Double]] = [:]  // label -> threads -> GFLOP/s

// MARK: GEMM table

if sections.contains("gemm") {
  print("GEMM throughput, GFLOP/s (median of repeated runs; OpenBLAS: \(BLASThreads.configuration))")
  print("")
  printThreadTableHeader([("product", 22), ("m×k · k×n", 22)], threads: threads)
  for c in gemmCases {
    var row = "| " + pad(c.label, 22) + " | " + pad("\(c.m)×\(c.k) · \(c.k)×\(c.n)", 22)
    for t in threads {
      BLASThreads.set(t)
      let rate: Double = gemmGFLOPS(c)
      gemmRates[c.label, default: [:]][t] = rate
      row += " | " + pad(String(format: "%.1f", rate), 9, right: true)
    }
    print(row + " |")
  }
}

/// Total FLOPs / total time of the GEMM-table products with one of `roles`, per thread count.
func aggregateRate(_ roles: [GEMMRole], rates gemmRates: [String: [Int: Double]], threads: [Int]) -> [Int: Double] {
  var out: [Int: Double] = [:]
  for t in threads {
    var flops: Double = 0
    var time: Double = 0
    for c in gemmCases where roles.contains(c.role) {
      guard let rate = gemmRates[c.label]?[t] else { continue }
      let f: Double = 2 * Double(c.m) * Double(c.n) * Double(c.k) / 1e9
      flops += f
      time += f / rate
    }
    if time > 0 { out[t] = flops / time }
  }
  return out
}

let gemmReference: GEMMReference? =
  sections.contains("gemm")
  ? GEMMReference(
    training: aggregateRate([.mlpForward, .mlpBackward], rates: gemmRates, threads: threads),
    inference: aggregateRate([.mlpForward], rates: gemmRates, threads: threads)) : nil

// MARK: model training steps

if sections.contains("steps") {
  print("")
  print("Training step, ms (median), PReLU in the last 2 blocks, penalty on (in this process)")
  print("")
  printThreadTableHeader([("model", 12)], threads: threads)
  for c in cases {
    var row = "| " + pad(c.label, 12)
    for t in threads {
      BLASThreads.set(t)
      let trainer: Trainer = benchTrainer(ModelRegistry.build(c.architecture, seed: 1), preluUnits: c.preluUnits)
      var rng = RNG(seed: 1, stream: "bench data")
      let (input, targets) = syntheticBatch(c, batch: c.batch, rng: &rng)
      let seconds = medianSeconds(budget: 2, minRuns: 5) { _ = trainer.step(input, targets: targets, rng: &rng) }
      row += " | " + pad(String(format: "%.1f", seconds * 1000), 9, right: true)
    }
    print(row + " |")
  }
}

// MARK: profile

if sections.contains("profile") {
  for c in cases where c.isTransformer || c.config.kind == .vgg {
    let kernels = c.isTransformer ? breakdown : convBreakdown
    print("")
    print(
      "Where the time goes, \(c.label): each kernel timed alone × its calls (per training step at batch"
        + " \(c.batch), forward + backward / per batch-1 forward pass), ms")
    print("")
    var titles: [(String, Int, Bool)] = [("kernel", 24, false), ("calls", 7, true)]
    var steps: [[(label: String, calls: Int, seconds: Double)]] = []
    var passes: [[(label: String, calls: Int, seconds: Double)]] = []
    for t in threads {
      BLASThreads.set(t)
      titles.append(("step, " + threadLabel(t), 9, true))
      steps.append(kernels(c, c.batch, true))
    }
    for t in threads {
      BLASThreads.set(t)
      titles.append(("batch 1, " + threadLabel(t), 9, true))
      passes.append(kernels(c, 1, false))
    }
    let table: TableWriter = TableWriter(titles)
    table.printHeader()
    // Steps to 0.1 ms; batch-1 passes, a small fraction of a step's work, to 0.001 ms.
    for (i, kernel) in steps[0].enumerated() {
      let pass = passes[0].first { $0.label == kernel.label }
      let calls: String =
        pass.map { $0.calls == kernel.calls ? "\($0.calls)" : "\(kernel.calls) / \($0.calls)" }
        ?? "\(kernel.calls) / 0"
      var cells: [String] = [kernel.label, calls]
      cells += steps.map { fixed($0[i].seconds * 1000, 1) }
      cells += passes.map { col in col.first { $0.label == kernel.label }.map { fixed($0.seconds * 1000, 3) } ?? "—" }
      table.printRow(cells)
    }
    table.printRow(
      ["sum", ""] + steps.map { fixed(partsSum($0) * 1000, 1) } + passes.map { fixed(partsSum($0) * 1000, 3) })
  }
}

/// The kernels' total, without the rows that restate others ("  of the …" shares, a
/// "whole model" measurement).
func partsSum(_ rows: [(label: String, calls: Int, seconds: Double)]) -> Double {
  rows.filter { !$0.label.hasPrefix("  of") && !$0.label.hasPrefix("whole") }.reduce(0) { $0 + $1.seconds }
}

// MARK: data parallel (MPI)

if sections.contains("distributed") {
  print("")
  if !ProcessGroup.mpiAvailable {
    print("Data-parallel training: skipped, this lc-bench has no MPI (`make bench MPI=1` builds it with MPI).")
  } else if let c = cases.first(where: { $0.name == "vit" }) ?? cases.first {
    print("Data-parallel training (MPI, this machine), \(c.label), global batch \(c.batch), median step:")
    print("")
    let selfPath: String =
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let steps: Int = Int(ProcessInfo.processInfo.environment["LC_BENCH_STEPS"] ?? "") ?? 20
    do {
      for row in try distributedTable(c, selfPath: selfPath, steps: steps) { print(row) }
    } catch {
      print("  (failed: \(error))")
    }
  }
}

// MARK: ours vs PyTorch, targets

if sections.contains("compare") {
  let selfPath: String =
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  let checks: [TargetCheck]
  do {
    checks = try compareWithPyTorch(
      cases: cases, settings: CompareSettings(threads: threads), gemm: gemmReference, selfPath: selfPath)
  } catch {
    FileHandle.standardError.write(Data("lc-bench: the comparison failed: \(error)\n".utf8))
    exit(1)
  }
  print("")
  print(
    "Targets (project issues: minilm 16, vgg 15, the others 7); \"MISSED by x %\" = how far below the target,"
      + " as a share of the target:")
  for c in checks { print("  " + c.text) }
  if !checks.contains(where: { $0.text.contains("PyTorch") }) {
    print("  (ours vs PyTorch targets not checked: the PyTorch comparison was skipped)")
  }
  if gemmReference == nil {
    print("  (GEMM-share targets not checked: LC_BENCH_SECTIONS leaves out the GEMM table)")
  }
  let outOfReach: Int = checks.filter(\.aboveCeiling).count
  print(
    "\(checks.filter(\.met).count) of \(checks.count) targets met"
      + (outOfReach > 0 ? "; \(outOfReach) of the missed lie above their ceiling on this machine." : "."))
  if sections.contains("profile") {
    print("Where the time goes: the kernel breakdowns above.")
  }
}
