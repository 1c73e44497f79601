// Our side of the PyTorch comparison: one measurement per process, so each process's
// peak RSS is its own. The parent (Compare.swift) runs these and scripts/torch_bench.py
// in turn; both print one JSON line of the same form.
import Foundation
import Kernels
import LayerCollapse

/// Forward-pass times of one model (0 = full, 1 = collapsed) at one batch size.
struct ChildRun: Codable {
  var model: Int
  var batch: Int
  var ms: [Double]
}

/// The JSON line a measuring process prints (snake_case keys, as torch_bench.py writes).
struct ChildOutput: Codable {
  var stepMs: [Double]?
  var runs: [ChildRun]?
  /// VmHWM at the end: the process's peak resident set, kB.
  var peakRssKb: Int
  /// VmRSS before the model is built, kB.
  var startRssKb: Int?
  var threads: Int?
  var torch: String?
  /// Under mpirun: the ranks, and each timed step's time in the gradient allreduce.
  var ranks: Int?
  var allreduceMs: [Double]?
  /// With `--peak`: this process's SGEMM rate on a large square product, GFLOP/s, measured
  /// after the timed work and after the peak RSS was read.
  var gemmPeakGflops: Double?
}

let childUsage: String = """
  usage: lc-bench                                  all tables (what `make bench` runs)
         lc-bench --train-only SHAPE [options]     time training steps, print one JSON line
         lc-bench --infer-only SHAPE [options]     time forward passes, print one JSON line
  SHAPE: \(shapeNames). Options:
    --threads N         kernel threads, matrix products included (default 1)
    --warmup W          untimed steps (passes) before timing (default 2)
    --steps K           timed steps; with --infer-only one per --batch, or one for all
                        (default 10; without --batch: K at batch 256, 10·K at batch 1)
    --checkpoint PATH   the model (--infer-only: twice, full then collapsed); default: a
                        fresh model (--infer-only: α = 1 in the PReLU blocks, then collapsed)
    --batch PATH        a batch file (--infer-only: one per batch size); default: random
    --peak              then time a \(peakSide)³ SGEMM (the machine's matrix-product peak)
  """

/// The shapes `--train-only` and `--infer-only` take (`modelCases`).
var shapeNames: String { modelCases.map(\.name).joined(separator: ", ") }

/// Parsed `--train-only` / `--infer-only` arguments.
struct ChildOptions {
  var train: Bool
  var shape: ModelCase
  var threads: Int = 1
  var warmup: Int = 2
  var steps: [Int] = []
  var checkpoints: [String] = []
  var batches: [String] = []
  /// The MPI ranks this process is one of, under mpirun (`--train-only` only).
  var group: ProcessGroup = .single
  /// `--peak`: measure the SGEMM peak after the timed work.
  var peak: Bool = false

  init(_ args: [String]) throws {
    guard args.count >= 2, let c = modelCase(named: args[1]) else {
      throw BenchError("\(args.first ?? "") needs a SHAPE: \(shapeNames)")
    }
    train = args[0] == "--train-only"
    shape = c
    var i: Int = 2
    func value() throws -> String {
      guard i + 1 < args.count else { throw BenchError("\(args[i]) needs a value") }
      i += 1
      return args[i]
    }
    func positive() throws -> Int {
      let name: String = args[i]
      let s: String = try value()
      guard let n = Int(s), n >= 0 else { throw BenchError("\(name) \(s): not a count") }
      return n
    }
    while i < args.count {
      switch args[i] {
      case "--threads": threads = max(1, try positive())
      case "--warmup": warmup = try positive()
      case "--steps": steps.append(max(1, try positive()))
      case "--checkpoint": checkpoints.append(try value())
      case "--batch": batches.append(try value())
      case "--peak": peak = true
      default: throw BenchError("unknown option \(args[i])")
      }
      i += 1
    }
    if train && (checkpoints.count > 1 || batches.count > 1) {
      throw BenchError("--train-only takes at most one --checkpoint and one --batch")
    }
    if !train && !(checkpoints.isEmpty || checkpoints.count == 2) {
      throw BenchError("--infer-only takes two --checkpoint (full, collapsed) or none")
    }
    if train { group = try ProcessGroup.fromEnvironment() }
  }
}

/// A field of /proc/self/status in kB (VmHWM, VmRSS); -1 where there is none.
func processStatusKB(_ field: String) -> Int {
  guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
  for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
    let parts: [Substring] = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
    if parts.count >= 2, let kb = Int(parts[1]) { return kb }
  }
  return -1
}

func milliseconds(_ body: () -> Void) -> Double {
  let clock: ContinuousClock = ContinuousClock()
  let t0: ContinuousClock.Instant = clock.now
  body()
  return seconds(clock.now - t0) * 1000
}

func runChild(_ o: ChildOptions) throws -> ChildOutput {
  let startRSS: Int = processStatusKB("VmRSS")
  BLASThreads.set(o.threads)
  var rng: RNG = RNG(seed: 1, stream: "bench data")
  var output: ChildOutput = ChildOutput(peakRssKb: 0, startRssKb: startRSS, threads: BLASThreads.count)
  if o.train {
    let model: any Model =
      try o.checkpoints.first.map { try Checkpoint.load($0).model }
      ?? ModelRegistry.build(o.shape.architecture, seed: 1)
    let prelu: [Int] = (0..<model.architecture.unitCount).filter { model.alphaParameter(unit: $0) != nil }
    let trainer: Trainer = benchTrainer(model, preluUnits: prelu)
    let (input, targets): (ModelInput, [Int32]) =
      try o.batches.first.map { try readBatch($0) } ?? syntheticBatch(o.shape, batch: o.shape.batch, rng: &rng)
    let steps: Int = o.steps.first ?? 10
    var times: [Double] = []
    if o.group.size == 1 {
      for k in 0..<(o.warmup + steps) {
        let ms: Double = milliseconds { _ = trainer.step(input, targets: targets, rng: &rng) }
        if k >= o.warmup { times.append(ms) }
      }
    } else {
      // Data parallel: this rank's share of the batch, one allreduce a step.
      let whole: Batch = Batch(input: input, targets: targets, examples: batchSize(input))
      let share: Batch = whole.examples(ProcessGroup.share(of: whole.examples, rank: o.group.rank, size: o.group.size))
      var allreduce: [Double] = []
      for k in 0..<(o.warmup + steps) {
        let before: Double = o.group.allreduceSeconds
        var failure: Error? = nil
        let ms: Double = milliseconds {
          do { _ = try trainer.step([share], group: o.group, rng: &rng) } catch { failure = error }
        }
        if let failure { throw failure }
        if k >= o.warmup {
          times.append(ms)
          allreduce.append((o.group.allreduceSeconds - before) * 1000)
        }
      }
      output.ranks = o.group.size
      output.allreduceMs = allreduce
    }
    output.stepMs = times
  } else {
    var models: [any Model] = []
    if o.checkpoints.isEmpty {
      let full: any Model = ModelRegistry.build(o.shape.architecture, seed: 1, alphaInit: 1)
      models = [full, Collapse.run(full).model]
    } else {
      models = try o.checkpoints.map { try Checkpoint.load($0).model }
    }
    var batches: [ModelInput] = []
    var steps: [Int] = []
    if o.batches.isEmpty {
      let k: Int = o.steps.first ?? 10
      batches = [syntheticBatch(o.shape, batch: 1, rng: &rng).0, syntheticBatch(o.shape, batch: 256, rng: &rng).0]
      steps = [10 * k, k]
    } else {
      batches = try o.batches.map { try readBatch($0).0 }
      steps = o.batches.indices.map { i in i < o.steps.count ? o.steps[i] : (o.steps.last ?? 10) }
    }
    var runs: [ChildRun] = []
    for (input, count) in zip(batches, steps) {
      var records: [ChildRun] = models.indices.map { ChildRun(model: $0, batch: batchSize(input), ms: []) }
      for k in 0..<(o.warmup + count) {
        for (m, model) in models.enumerated() {
          let ms: Double = milliseconds { model.infer(input) }
          if k >= o.warmup { records[m].ms.append(ms) }
        }
      }
      runs += records
    }
    output.runs = runs
  }
  output.peakRssKb = processStatusKB("VmHWM")
  if o.peak { output.gemmPeakGflops = sgemmPeakGFLOPS() }
  return output
}

/// The side of the square product `--peak` times: large enough that packing and edges
/// are a small share, as a machine's SGEMM peak is usually quoted.
let peakSide: Int = 2048

/// Median rate of five \(peakSide)³ products (after one untimed) at the current threads.
func sgemmPeakGFLOPS() -> Double {
  let n: Int = peakSide
  var rng: RNG = RNG(seed: 1, stream: "bench peak")
  let (a, b, c): (Tensor, Tensor, Tensor) = (Tensor([n, n]), Tensor([n, n]), Tensor([n, n]))
  rng.fillNormal(a)
  rng.fillNormal(b)
  var times: [Double] = []
  for k in 0..<6 {
    let ms: Double = milliseconds {
      GEMM.multiply(
        transA: false, transB: false, m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
    }
    if k > 0 { times.append(ms) }
  }
  times.sort()
  return 2 * Double(n) * Double(n) * Double(n) / (times[times.count / 2] / 1000) / 1e9
}

/// Runs `--train-only` / `--infer-only` and exits: 0 with the JSON line (rank 0's under
/// mpirun), 2 on a usage error.
func childMain(_ args: [String]) -> Never {
  do {
    let options: ChildOptions = try ChildOptions(args)
    let encoder: JSONEncoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys]
    let line: String = String(decoding: try encoder.encode(try runChild(options)), as: UTF8.self)
    if options.group.isRoot { print(line) }
    options.group.finish()
    exit(0)
  } catch {
    FileHandle.standardError.write(Data("lc-bench: \(error)\n\n\(childUsage)\n".utf8))
    exit(2)
  }
}
