// `make bench`: throughput figures, printed as tables. Not a test: nothing here asserts.
import Foundation
import Kernels

/// Median wall time of `body` over repeated runs lasting at least `budget` seconds.
func medianSeconds(budget: Double = 0.4, minRuns: Int = 5, _ body: () -> Void) -> Double {
  body()  // warm-up: thread pool start, page faults
  var times: [Double] = []
  let clock = ContinuousClock()
  let start = clock.now
  while times.count < minRuns || (clock.now - start) < .seconds(budget) {
    let t0 = clock.now
    body()
    let d = clock.now - t0
    times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
  }
  times.sort()
  return times[times.count / 2]
}

struct GEMMCase {
  var label: String
  var transA: Bool
  var transB: Bool
  var m: Int
  var n: Int
  var k: Int
}

/// The matrix products of one MLP layer (d_model 128, hidden 512, 2048 tokens), forward
/// and backward, and two square sizes.
let gemmCases: [GEMMCase] = [
  GEMMCase(label: "fc1 forward  x·W1ᵀ", transA: false, transB: true, m: 2048, n: 512, k: 128),
  GEMMCase(label: "fc1 dx       dy·W1", transA: false, transB: false, m: 2048, n: 128, k: 512),
  GEMMCase(label: "fc1 dW       dyᵀ·x", transA: true, transB: false, m: 512, n: 128, k: 2048),
  GEMMCase(label: "fc2 forward  h·W2ᵀ", transA: false, transB: true, m: 2048, n: 128, k: 512),
  GEMMCase(label: "square 512", transA: false, transB: false, m: 512, n: 512, k: 512),
  GEMMCase(label: "square 1024", transA: false, transB: false, m: 1024, n: 1024, k: 1024),
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

func threadCounts() -> [Int] {
  if let s = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(s), n > 0 { return [n] }
  return [1, 2]
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
  let fill = String(repeating: " ", count: max(0, width - s.count))
  return right ? fill + s : s + fill
}

let threads = threadCounts()
print("GEMM throughput, GFLOP/s (median of repeated runs; OpenBLAS: \(BLASThreads.configuration))")
print("")
var header = "| " + pad("product", 22) + " | " + pad("m×k · k×n", 22)
for t in threads { header += " | " + pad("\(t) thread" + (t == 1 ? "" : "s"), 9, right: true) }
print(header + " |")
print("|" + String(repeating: "-", count: 24) + "|" + String(repeating: "-", count: 24) + String(repeating: "|----------:", count: threads.count) + "|")
for c in gemmCases {
  var row = "| " + pad(c.label, 22) + " | " + pad("\(c.m)×\(c.k) · \(c.k)×\(c.n)", 22)
  for t in threads {
    BLASThreads.set(t)
    row += " | " + pad(String(format: "%.1f", gemmGFLOPS(c)), 9, right: true)
  }
  print(row + " |")
}
