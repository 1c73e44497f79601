// Ours against PyTorch eager: training steps and forward passes of the same checkpoints on
// the same batches, each measurement in a process of its own, the two sides alternated.
import Foundation
import Kernels
import LayerCollapse

/// How much to measure (environment variables, see `make bench` in the README).
struct CompareSettings {
  /// Processes per side and configuration; sides alternate, and which goes first too.
  var rounds: Int = environmentInt("LC_BENCH_ROUNDS", 3)
  /// Timed training steps per process.
  var steps: Int = environmentInt("LC_BENCH_STEPS", 8)
  /// Untimed training steps per process before timing.
  var warmup: Int = environmentInt("LC_BENCH_WARMUP", 2)
  /// Timed batch-256 forward passes per process and model; batch 1 does 10× as many.
  /// Default 3, fewer when `steps` is small (steps / 2, at least 1).
  var inferSteps: Int
  var threads: [Int]

  init(threads: [Int]) {
    self.threads = threads
    inferSteps = environmentInt("LC_BENCH_INFER_STEPS", min(3, max(1, steps / 2)))
  }
}

/// The Python that runs scripts/torch_bench.py, or why there is none.
struct TorchSide {
  var python: String
  var script: String
  var version: String

  /// `LAYERCOLLAPSE_PYTHON`, else the venv `make torch-env` creates; nil and a reason when
  /// it does not import torch, h5py and numpy or the script is not found.
  static func find(selfPath: String) -> (TorchSide?, String) {
    let env: [String: String] = ProcessInfo.processInfo.environment
    let home: String = env["HOME"] ?? NSHomeDirectory()
    let python: String =
      env["LAYERCOLLAPSE_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
      ?? home + "/.cache/layercollapse/torch-venv/bin/python"
    guard FileManager.default.isExecutableFile(atPath: python) else { return (nil, "\(python) does not exist") }
    guard let script = findScript(selfPath: selfPath) else {
      return (nil, "scripts/torch_bench.py not found (run lc-bench from the repository root)")
    }
    let probe: (Int32, String, String)
    do {
      probe = try runProcess(
        python, ["-c", "import torch, h5py, numpy; print(torch.__version__)"], threads: 1, stderrPath: nil)
    } catch {
      return (nil, "\(python) does not start: \(error)")
    }
    guard probe.0 == 0 else {
      let last: String = probe.2.split(separator: "\n").last.map(String.init) ?? "exit \(probe.0)"
      return (nil, "\(python) cannot import torch, h5py and numpy (\(last))")
    }
    return (
      TorchSide(python: python, script: script, version: probe.1.trimmingCharacters(in: .whitespacesAndNewlines)), ""
    )
  }

  /// scripts/torch_bench.py under the working directory or a directory above the executable.
  static func findScript(selfPath: String) -> String? {
    let relative: String = "scripts/torch_bench.py"
    if FileManager.default.fileExists(atPath: relative) { return relative }
    var dir: URL = URL(fileURLWithPath: selfPath).deletingLastPathComponent()
    for _ in 0..<6 {
      let candidate: String = dir.appendingPathComponent(relative).path
      if FileManager.default.fileExists(atPath: candidate) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    return nil
  }
}

/// Runs a program with `threads` for OpenBLAS, OpenMP and MKL; returns (status, stdout, stderr).
/// stderr goes to a file (at `stderrPath`, or a temporary one) so a chatty child cannot block.
func runProcess(_ program: String, _ args: [String], threads: Int, stderrPath: String?) throws -> (
  Int32, String, String
) {
  let p: Process = Process()
  p.executableURL = URL(fileURLWithPath: program)
  p.arguments = args
  var env: [String: String] = ProcessInfo.processInfo.environment
  for name in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] { env[name] = String(threads) }
  p.environment = env
  let out: Pipe = Pipe()
  p.standardOutput = out
  let errPath: String = stderrPath ?? NSTemporaryDirectory() + "lc-bench-stderr-\(getpid()).txt"
  _ = FileManager.default.createFile(atPath: errPath, contents: nil)
  guard let errHandle = FileHandle(forWritingAtPath: errPath) else { throw BenchError("cannot write \(errPath)") }
  p.standardError = errHandle
  try p.run()
  let data: Data = out.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  try? errHandle.close()
  let err: String = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
  if stderrPath == nil { try? FileManager.default.removeItem(atPath: errPath) }
  return (p.terminationStatus, String(decoding: data, as: UTF8.self), err)
}

/// Runs one measuring process and decodes its JSON line; a failure says which and why.
func measure(_ program: String, _ args: [String], threads: Int, stderrPath: String) throws -> ChildOutput {
  let (status, out, err): (Int32, String, String) = try runProcess(
    program, args, threads: threads, stderrPath: stderrPath)
  let what: String = ([program] + args).joined(separator: " ")
  guard status == 0 else {
    let tail: String = err.split(separator: "\n").suffix(5).joined(separator: "\n")
    throw BenchError("\(what)\nexited with status \(status):\n\(tail)")
  }
  guard let line = out.split(separator: "\n").last else { throw BenchError("\(what)\nprinted nothing") }
  let decoder: JSONDecoder = JSONDecoder()
  decoder.keyDecodingStrategy = .convertFromSnakeCase
  let output: ChildOutput
  do {
    output = try decoder.decode(ChildOutput.self, from: Data(line.utf8))
  } catch {
    throw BenchError("\(what)\nprinted \(line.prefix(200)), not a result: \(error)")
  }
  if let n = output.threads, n != threads {
    throw BenchError("\(what)\nran with \(n) threads, not \(threads)")
  }
  return output
}

/// The files both sides read for one model: our checkpoints, the same models as
/// `layercollapse export` writes them (PyTorch's side loads these), and batches.
struct CaseFiles {
  var trainCheckpoint: String
  var trainBatch: String
  var fullCheckpoint: String
  var collapsedCheckpoint: String
  /// `ModelExport` directories of the three checkpoints' models (model.safetensors and
  /// config.json), which scripts/torch_bench.py rebuilds through load_exported.py.
  var trainExport: String
  var fullExport: String
  var collapsedExport: String
  /// (batch size, file), batch 1 first.
  var inferBatches: [(Int, String)]
  /// MACs per example our forward computes (`macsComputedPerExample`), and the usual count
  /// of every position (`macsPerExample`, what the collapse report gives).
  var macsFull: Int
  var macsCollapsed: Int
  var nominalMacsFull: Int
  var nominalMacsCollapsed: Int
  var collapsedBlocks: [Int]
  var logitDeviation: Float?
}

/// Writes the training checkpoint (seed 1, α = 0.01), the inference checkpoints (α = 1 in
/// the PReLU blocks, and that model collapsed by Collapse.run: exact, as the PReLU is the
/// identity) and the batches.
func prepareFiles(_ c: ModelCase, dir: String) throws -> CaseFiles {
  let base: String = dir + "/" + c.name
  let meta: String = "# lc-bench: synthetic \(c.name) model, not trained\n"
  let train: any Model = ModelRegistry.build(c.architecture, seed: 1)
  try Checkpoint(model: train, configText: meta, vocabulary: nil).save(to: base + "-train.h5")
  try ModelExport.write(train, vocabulary: nil, to: base + "-train.export")
  var rng: RNG = RNG(seed: 7, stream: "bench batches " + c.name)
  let (input, targets): (ModelInput, [Int32]) = syntheticBatch(c, batch: c.batch, rng: &rng)
  try writeBatch(input, targets: targets, to: base + "-batch\(c.batch).h5")

  let full: any Model = ModelRegistry.build(c.architecture, seed: 1, alphaInit: 1)
  let probe: ModelInput = syntheticBatch(c, batch: 2, rng: &rng).0
  let (collapsed, report): (any Model, CollapseReport) = Collapse.run(full, probe: probe)
  let merged: [Int] = report.blocks.filter { $0.decision.merged }.map(\.block)
  guard merged == c.preluUnits, !report.approximate else {
    throw BenchError("\(c.name): Collapse.run merged blocks \(merged), expected \(c.preluUnits) exactly")
  }
  try Checkpoint(model: full, configText: meta, vocabulary: nil).save(to: base + "-full.h5")
  try Checkpoint(model: collapsed, configText: meta, vocabulary: nil).save(to: base + "-collapsed.h5")
  try ModelExport.write(full, vocabulary: nil, to: base + "-full.export")
  try ModelExport.write(collapsed, vocabulary: nil, to: base + "-collapsed.export")
  var inferBatches: [(Int, String)] = []
  for b in c.inferBatches {
    let (x, y): (ModelInput, [Int32]) = syntheticBatch(c, batch: b, rng: &rng)
    try writeBatch(x, targets: y, to: base + "-batch\(b).h5")
    inferBatches.append((b, base + "-batch\(b).h5"))
  }
  return CaseFiles(
    trainCheckpoint: base + "-train.h5", trainBatch: base + "-batch\(c.batch).h5", fullCheckpoint: base + "-full.h5",
    collapsedCheckpoint: base + "-collapsed.h5", trainExport: base + "-train.export",
    fullExport: base + "-full.export", collapsedExport: base + "-collapsed.export", inferBatches: inferBatches,
    macsFull: full.architecture.macsComputedPerExample(),
    macsCollapsed: collapsed.architecture.macsComputedPerExample(), nominalMacsFull: report.macsBefore,
    nominalMacsCollapsed: report.macsAfter, collapsedBlocks: merged, logitDeviation: report.logitDeviation)
}

struct TrainResult {
  var model: ModelCase
  var threads: Int
  var ours: Summary
  var torch: Summary?
  var oursRSS: Int
  var torchRSS: Int?
  var torchStartRSS: Int?
  var macs: Int
}

struct InferResult {
  var model: ModelCase
  var threads: Int
  var batch: Int
  /// Median ms per forward pass.
  var oursFull: Double
  var oursCollapsed: Double
  var torchFull: Double?
  var torchCollapsed: Double?
  var macRatio: Double
  var macsFull: Int
  var macsCollapsed: Int
}

/// The fastest SGEMM rate measured in this run at each thread count (`--peak` in every
/// training process, ours and PyTorch's: the median of each side, the larger of the two).
struct SGEMMPeak {
  var ours: [Int: [Double]] = [:]
  var torch: [Int: [Double]] = [:]

  func rate(threads: Int) -> Double? {
    let medians: [Double] = [ours[threads], torch[threads]].compactMap { $0 }.filter { !$0.isEmpty }.map {
      Summary($0).median
    }
    return medians.max()
  }

  /// The most any implementation could gain over `torchMs`: PyTorch's time ÷ the time of
  /// `flops` matrix-product FLOPs at the peak rate, with nothing else done.
  func ceiling(torchMs: Double, flops: Double, threads: Int) -> Double? {
    guard let r = rate(threads: threads), r > 0, flops > 0 else { return nil }
    return torchMs / (flops / (r * 1e9) * 1000)
  }
}

/// Examples per second at a median of `ms` per batch.
func throughput(_ batch: Int, ms: Double) -> Double { Double(batch) / (ms / 1000) }

/// "3.9 GB"-style megabytes of a kB count, "n/a" when unknown.
func megabytes(_ kb: Int?) -> String {
  guard let kb = kb, kb >= 0 else { return "n/a" }
  return fixed(Double(kb) / 1024, 0)
}

/// The GEMM-table rates the share estimate compares with, GFLOP/s per thread count.
struct GEMMReference {
  /// fc1 forward, fc1 dx, fc1 dW, fc2 forward together (total FLOPs / total time).
  var training: [Int: Double]
  /// fc1 forward and fc2 forward together.
  var inference: [Int: Double]
}

/// One line of the targets list.
struct TargetCheck {
  var text: String
  var met: Bool
  /// Missed, and above the most this machine's SGEMM peak allows (`SGEMMPeak.ceiling`).
  var aboveCeiling: Bool = false
}

/// "met", or "MISSED by x %" (how far below the target, as a share of it).
func verdict(_ value: Double, target: Double) -> (String, Bool) {
  if value >= target { return ("met", true) }
  let short: Double = (target - value) / target * 100
  return ("MISSED by " + (short < 0.5 ? "<1" : fixed(short, 0)) + " %", false)
}

/// Alternates our processes with PyTorch's per configuration and prints the training and
/// inference tables and the targets; returns the target checks.
func compareWithPyTorch(
  cases: [ModelCase], settings s: CompareSettings, gemm: GEMMReference?, selfPath: String
) throws -> [TargetCheck] {
  let (torchSide, reason): (TorchSide?, String) = TorchSide.find(selfPath: selfPath)
  let dir: String = NSTemporaryDirectory() + "lc-bench-\(getpid())"
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(atPath: dir) }
  let logPath: String = dir + "/child-stderr.txt"

  print("")
  if let t = torchSide {
    print("Ours vs PyTorch \(t.version) eager (\(t.python))")
  } else {
    print("PyTorch comparison SKIPPED: \(reason).")
    print("Run `make torch-env` (or set LAYERCOLLAPSE_PYTHON) to enable it; our own figures follow.")
  }
  if torchSide != nil {
    print(
      "Both sides run the same weights and batch files (written here): ours from our checkpoint, PyTorch's from"
        + " the same model as `layercollapse export` writes it (model.safetensors + config.json, rebuilt by"
        + " scripts/load_exported.py); fp32, the same thread count (our kernel threads / torch.set_num_threads).")
    print(
      "Each measurement is a process of its own (peak RSS = its VmHWM); \(s.rounds) round(s) per configuration,"
        + " ours and PyTorch alternating, the first side swapped every round.")
  } else {
    print("Each measurement is a process of its own (peak RSS = its VmHWM); \(s.rounds) round(s) per configuration.")
  }

  var files: [String: CaseFiles] = [:]
  for c in cases { files[c.name] = try prepareFiles(c, dir: dir) }

  // MARK: training
  print("")
  print(
    "Training step, ms: \(s.warmup) untimed + \(s.steps) timed steps per process, × \(s.rounds) rounds;"
      + " median (min–max) over all timed steps. AdamW, clip 1, PReLU in the last half of the blocks, penalty on.")
  print("")
  let trainTable: TableWriter = TableWriter([
    ("model", 11, false), ("threads", 7, true), ("ours ms", 22, true), ("PyTorch ms", 22, true),
    ("ours ex/s", 9, true), ("PyTorch ex/s", 9, true), ("ours/PyTorch", 7, true), ("ours RSS MB", 7, true),
    ("PyTorch RSS MB", 7, true), ("GEMM share", 7, true),
  ])
  trainTable.printHeader()
  var trainResults: [TrainResult] = []
  var peak: SGEMMPeak = SGEMMPeak()
  for c in cases {
    let f: CaseFiles = files[c.name]!
    for t in s.threads {
      var ours: [Double] = []
      var torch: [Double] = []
      var oursRSS: Int = -1
      var torchRSS: Int = -1
      var torchStart: Int = -1
      for r in 0..<s.rounds {
        for side in (r % 2 == 0 ? [0, 1] : [1, 0]) {
          let common: [String] = [
            "--batch", f.trainBatch, "--threads", "\(t)", "--warmup", "\(s.warmup)", "--steps", "\(s.steps)", "--peak",
          ]
          if side == 0 {
            let o: ChildOutput = try measure(
              selfPath, ["--train-only", c.name, "--checkpoint", f.trainCheckpoint] + common, threads: t,
              stderrPath: logPath)
            ours += o.stepMs ?? []
            oursRSS = max(oursRSS, o.peakRssKb)
            if let g = o.gemmPeakGflops { peak.ours[t, default: []].append(g) }
          } else if let ts = torchSide {
            let o: ChildOutput = try measure(
              ts.python, [ts.script, "train", "--checkpoint", f.trainExport] + common, threads: t, stderrPath: logPath)
            torch += o.stepMs ?? []
            if let g = o.gemmPeakGflops { peak.torch[t, default: []].append(g) }
            torchRSS = max(torchRSS, o.peakRssKb)
            torchStart = max(torchStart, o.startRssKb ?? -1)
          }
        }
      }
      let result: TrainResult = TrainResult(
        model: c, threads: t, ours: Summary(ours), torch: torch.isEmpty ? nil : Summary(torch), oursRSS: oursRSS,
        torchRSS: torchSide == nil ? nil : torchRSS, torchStartRSS: torchSide == nil ? nil : torchStart,
        macs: f.macsFull)
      trainResults.append(result)
      let range: (Summary) -> String = { x in
        fixed(x.median, 1) + " (" + fixed(x.min, 1) + "–" + fixed(x.max, 1) + ")"
      }
      let oursRate: Double = throughput(c.batch, ms: result.ours.median)
      let torchRate: Double? = result.torch.map { throughput(c.batch, ms: $0.median) }
      var share: String = "n/a"
      if c.config.dModel == 128, let rate = gemm?.training[t] {
        let achieved: Double = 6 * Double(f.macsFull) * Double(c.batch) / (result.ours.median / 1000) / 1e9
        share = fixed(achieved / rate * 100, 0) + " %"
      }
      trainTable.printRow([
        c.label, "\(t)", range(result.ours), result.torch.map(range) ?? "—", fixed(oursRate, 0),
        torchRate.map { fixed($0, 0) } ?? "—", torchRate.map { fixed(oursRate / $0, 2) + "×" } ?? "—",
        megabytes(oursRSS), megabytes(result.torchRSS), share,
      ])
    }
  }
  print("")
  print(
    "ex/s = batch / median step. RSS = peak resident set of the measuring process (max over its rounds)"
      + (torchSide == nil
        ? "."
        : "; PyTorch's includes its libraries, about " + megabytes(trainResults.compactMap(\.torchStartRSS).max())
          + " MB right after `import torch`."))
  print(
    "GEMM share (an estimate): a training step does about 3 forward passes of matrix products (forward, dx, dW),"
      + " so 2·3·MACs·batch FLOPs (Architecture.macsComputedPerExample: the products our forward computes,"
      + " attention QKᵀ and PV included, a [CLS] model's last block for the first position only; everything"
      + " else ignored); divided by the median step time and by the GEMM table's aggregate rate for the same"
      + " d_model 128 / MLP 512 products (fc1 forward, fc1 dx, fc1 dW, fc2 forward: total FLOPs / total time) at"
      + " the same thread count.")

  // MARK: inference
  print("")
  print(
    "Inference, examples/s (median of \(s.inferSteps) timed passes per process at batch 256 (minilm: 128),"
      + " \(10 * s.inferSteps) at batch 1, after 1 untimed; × \(s.rounds) rounds); full vs the last half of the"
      + " blocks collapsed.")
  for c in cases {
    let f: CaseFiles = files[c.name]!
    let dev: String = f.logitDeviation.map { String(format: "%.1e", $0) } ?? "n/a"
    print(
      "  \(c.name): blocks \(f.collapsedBlocks.map(String.init).joined(separator: ", ")) collapsed exactly"
        + " (PReLU α set to 1, Collapse.run without force): max |Δlogit| / max |logit| = \(dev);"
        + " MACs/example computed \(f.macsFull) → \(f.macsCollapsed)"
        + (f.nominalMacsFull == f.macsFull
          ? "."
          : " (every position, as usually counted and as PyTorch computes them: \(f.nominalMacsFull) →"
            + " \(f.nominalMacsCollapsed), "
            + fixed(Double(f.nominalMacsFull) / Double(f.nominalMacsCollapsed), 2) + "×)."))
  }
  print("")
  let inferTable: TableWriter = TableWriter([
    ("model", 11, false), ("threads", 7, true), ("batch", 5, true), ("ours full", 9, true),
    ("ours collapsed", 9, true), ("ours speed-up", 7, true), ("MAC ratio", 6, true), ("speed-up / MAC ratio", 10, true),
    ("PyTorch full", 9, true), ("PyTorch collapsed", 9, true), ("PyTorch speed-up", 7, true),
    ("ours/PyTorch full", 7, true), ("ours/PyTorch collapsed", 7, true), ("GEMM share full", 7, true),
  ])
  inferTable.printHeader()
  var inferResults: [InferResult] = []
  var inferRSS: [String] = []
  for c in cases {
    let f: CaseFiles = files[c.name]!
    for t in s.threads {
      var ours: [Int: [[Double]]] = [:]  // batch -> [full ms, collapsed ms]
      var torch: [Int: [[Double]]] = [:]
      var oursRSS: Int = -1
      var torchRSS: Int = -1
      for r in 0..<s.rounds {
        for side in (r % 2 == 0 ? [0, 1] : [1, 0]) {
          var common: [String] = ["--threads", "\(t)", "--warmup", "1"]
          for (b, path) in f.inferBatches {
            common += ["--batch", path, "--steps", "\(b == 1 ? 10 * s.inferSteps : s.inferSteps)"]
          }
          var output: ChildOutput? = nil
          if side == 0 {
            let models = ["--checkpoint", f.fullCheckpoint, "--checkpoint", f.collapsedCheckpoint]
            output = try measure(
              selfPath, ["--infer-only", c.name] + models + common, threads: t, stderrPath: logPath)
          } else if let ts = torchSide {
            let models = ["--checkpoint", f.fullExport, "--checkpoint", f.collapsedExport]
            output = try measure(ts.python, [ts.script, "infer"] + models + common, threads: t, stderrPath: logPath)
          }
          if side == 0 {
            oursRSS = max(oursRSS, output?.peakRssKb ?? -1)
          } else {
            torchRSS = max(torchRSS, output?.peakRssKb ?? -1)
          }
          for run in output?.runs ?? [] {
            if side == 0 {
              ours[run.batch, default: [[], []]][run.model] += run.ms
            } else {
              torch[run.batch, default: [[], []]][run.model] += run.ms
            }
          }
        }
      }
      inferRSS.append(
        "\(c.name) \(threadLabel(t)) \(megabytes(oursRSS)) / \(torchSide == nil ? "—" : megabytes(torchRSS))")
      for (b, _) in f.inferBatches {
        let o: [[Double]] = ours[b] ?? [[], []]
        let p: [[Double]]? = torch[b]
        let result: InferResult = InferResult(
          model: c, threads: t, batch: b, oursFull: Summary(o[0]).median, oursCollapsed: Summary(o[1]).median,
          torchFull: p.map { Summary($0[0]).median }, torchCollapsed: p.map { Summary($0[1]).median },
          macRatio: Double(f.macsFull) / Double(f.macsCollapsed), macsFull: f.macsFull, macsCollapsed: f.macsCollapsed)
        inferResults.append(result)
        let speedUp: Double = result.oursFull / result.oursCollapsed
        let ofMAC: Double = speedUp / result.macRatio
        var share: String = "n/a"
        if b > 1, c.config.dModel == 128, let rate = gemm?.inference[t] {
          let achieved: Double = 2 * Double(f.macsFull) * Double(b) / (result.oursFull / 1000) / 1e9
          share = fixed(achieved / rate * 100, 0) + " %"
        }
        let torchRow: [String]
        if let tf = result.torchFull, let tc = result.torchCollapsed {
          torchRow = [
            fixed(throughput(b, ms: tf), 0), fixed(throughput(b, ms: tc), 0), fixed(tf / tc, 2) + "×",
            fixed(tf / result.oursFull, 2) + "×", fixed(tc / result.oursCollapsed, 2) + "×",
          ]
        } else {
          torchRow = ["—", "—", "—", "—", "—"]
        }
        inferTable.printRow(
          [
            c.label, "\(t)", "\(b)", fixed(throughput(b, ms: result.oursFull), 0),
            fixed(throughput(b, ms: result.oursCollapsed), 0), fixed(speedUp, 2) + "×",
            fixed(result.macRatio, 2) + "×", fixed(ofMAC, 2) + (ofMAC < 0.9 ? " LOW" : ""),
          ] + torchRow + [share])
      }
    }
  }
  print("")
  print(
    "speed-up = ours full ÷ ours collapsed time; MAC ratio = computed MACs (Architecture.macsComputedPerExample)"
      + " full ÷ collapsed;"
      + " LOW marks a speed-up below 0.9 × the MAC ratio. GEMM share (batch > 1 only; an estimate):"
      + " 2·MACs·batch FLOPs per forward pass ÷ median time ÷ the GEMM table's fc1 forward + fc2 forward rate."
  )
  print(
    "Peak RSS of the inference processes (full and collapsed model, batch 1 and the larger), MB, ours / PyTorch: "
      + inferRSS.joined(separator: "; ") + ".")

  let peaks: String = s.threads.compactMap { t in
    peak.rate(threads: t).map { fixed($0, 0) + " GFLOP/s at " + threadLabel(t) }
  }.joined(separator: ", ")
  if !peaks.isEmpty {
    print(
      "SGEMM peak (\(peakSide)³ products after each training process's timed steps; the faster of our OpenBLAS"
        + " and PyTorch's library, median over processes): \(peaks). A missed target's ceiling is PyTorch's time ÷"
        + " the time our matrix products (2·MACs computed per example·batch FLOPs, ×3 for a training step) would"
        + " take at that rate with nothing else done: on this machine no fp32 implementation of the same products"
        + " can go faster, so a target above its ceiling cannot be met here.")
  }
  var checks = targetChecks(
    train: trainResults, infer: inferResults, gemm: gemm, torchRan: torchSide != nil, peak: peak)
  // Issue 16: the MiniLM-size encoder's training process holds less memory than PyTorch's.
  for r in trainResults where r.model.name == "minilm" {
    guard let theirs = r.torchRSS, theirs > 0, r.oursRSS > 0 else { continue }
    let ratio: Double = Double(theirs) / Double(r.oursRSS)
    let (word, met): (String, Bool) = verdict(ratio, target: 1)
    checks.append(
      TargetCheck(
        text: "peak RSS training minilm \(threadLabel(r.threads)): \(megabytes(r.oursRSS)) MB vs PyTorch's "
          + "\(megabytes(theirs)) MB, target below PyTorch's: \(word)", met: met))
  }
  return checks
}

/// The project's targets (issue 7; per model case, `ModelCase.trainTarget`), one line each.
func targetChecks(
  train: [TrainResult], infer: [InferResult], gemm: GEMMReference?, torchRan: Bool, peak: SGEMMPeak = SGEMMPeak()
) -> [TargetCheck] {
  var checks: [TargetCheck] = []
  func add(
    _ text: String, _ value: Double, _ target: Double, _ shown: String, _ targetShown: String, ceiling: Double? = nil
  ) {
    let (word, met): (String, Bool) = verdict(value, target: target)
    var line: String = "\(text): \(shown), target \(targetShown): \(word)"
    var above: Bool = false
    if !met, let c = ceiling {
      above = c < target
      line += " (ceiling " + fixed(c, 2) + "×" + (above ? ": above it, out of reach here)" : ")")
    }
    checks.append(TargetCheck(text: line, met: met, aboveCeiling: above))
  }
  if torchRan {
    for r in train {
      guard let tm = r.torch?.median else { continue }
      let x: Double = tm / r.ours.median
      let target: Double = r.model.trainTarget
      let flops: Double = 6 * Double(r.macs) * Double(r.model.batch)
      add(
        "training \(r.model.name) \(threadLabel(r.threads))", x, target, fixed(x, 2) + "× PyTorch",
        fixed(target, 1) + "×", ceiling: peak.ceiling(torchMs: tm, flops: flops, threads: r.threads))
    }
    for r in infer {
      guard let tf = r.torchFull, let tc = r.torchCollapsed else { continue }
      let at: String = "\(r.model.name) batch \(r.batch) \(threadLabel(r.threads))"
      let target: Double = r.model.inferTarget
      let shown: String = fixed(target, 1) + "×"
      let (full, collapsed): (Double, Double) = (
        2 * Double(r.macsFull) * Double(r.batch), 2 * Double(r.macsCollapsed) * Double(r.batch)
      )
      add(
        "inference \(at) full", tf / r.oursFull, target, fixed(tf / r.oursFull, 2) + "× PyTorch", shown,
        ceiling: peak.ceiling(torchMs: tf, flops: full, threads: r.threads))
      add(
        "inference \(at) collapsed", tc / r.oursCollapsed, target, fixed(tc / r.oursCollapsed, 2) + "× PyTorch", shown,
        ceiling: peak.ceiling(torchMs: tc, flops: collapsed, threads: r.threads))
    }
  }
  if let g = gemm {
    // The GEMM table measures d_model 128 / MLP 512 products: a share only for cases of that size.
    for r in train where r.model.config.dModel == 128 {
      guard let rate = g.training[r.threads] else { continue }
      let achieved: Double =
        6 * Double(r.model.architecture.macsComputedPerExample()) * Double(r.model.batch)
        / (r.ours.median / 1000) / 1e9
      let share: Double = achieved / rate
      add(
        "GEMM share training \(r.model.name) \(threadLabel(r.threads))", share, 0.7,
        fixed(share * 100, 0) + " % (" + fixed(achieved, 1) + " of " + fixed(rate, 1) + " GFLOP/s)", "70 %")
    }
    for r in infer where r.batch > 1 && r.model.config.dModel == 128 {
      guard let rate = g.inference[r.threads] else { continue }
      let achieved: Double = 2 * Double(r.macsFull) * Double(r.batch) / (r.oursFull / 1000) / 1e9
      let share: Double = achieved / rate
      add(
        "GEMM share inference \(r.model.name) batch \(r.batch) \(threadLabel(r.threads))", share, 0.7,
        fixed(share * 100, 0) + " % (" + fixed(achieved, 1) + " of " + fixed(rate, 1) + " GFLOP/s)", "70 %")
    }
  }
  for r in infer {
    let speedUp: Double = r.oursFull / r.oursCollapsed
    add(
      "collapse \(r.model.name) batch \(r.batch) \(threadLabel(r.threads))", speedUp / r.macRatio, 0.9,
      "speed-up " + fixed(speedUp, 2) + "× for " + fixed(r.macRatio, 2) + "× fewer MACs ("
        + fixed(speedUp / r.macRatio, 2) + " of it)", "0.9 of it")
  }
  return checks
}
