import Foundation
import Kernels
import LayerCollapse
import Testing

/// Splitting a global batch: over ranks (`ProcessGroup.share`), into micro-batches
/// (`train.accumulate`), and the step that sums them. No MPI needed.
@Suite struct BatchSplitTests {
  /// Every example goes to exactly one rank, in order, shares differing by at most one.
  @Test func sharesPartitionTheBatch() {
    for count in [1, 7, 16, 33] {
      for size in 1...5 where size <= count {
        let shares = (0..<size).map { ProcessGroup.share(of: count, rank: $0, size: size) }
        #expect(shares.first?.lowerBound == 0 && shares.last?.upperBound == count)
        for (a, b) in zip(shares, shares.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        let sizes = shares.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 1, "\(count) over \(size): \(sizes)")
      }
    }
  }

  /// `Batch.examples` keeps each example with its targets: a class label, or a
  /// language model's T next tokens.
  @Test(arguments: [ModelKind.vit, .gpt])
  func slicingKeepsTargetsWithTheirExamples(kind: ModelKind) {
    var rng = RNG(seed: 1, stream: "slice")
    let cfg = Fixtures.config(kind)
    let (input, targets) = Fixtures.batch(cfg, batch: 5, rng: &rng)
    let batch = Batch(input: input, targets: targets, examples: 5)
    let part = batch.examples(1..<3)
    let perExample = targets.count / 5
    #expect(part.examples == 2)
    #expect(part.targets == Array(targets[perExample..<(3 * perExample)]))
    switch (part.input, input) {
    case (.images(let p), .images(let all)):
      let size = all.count / 5
      #expect(Array(p.array) == Array(all.array[size..<(3 * size)]))
    case (.tokens(let p, _, let b, _), .tokens(let all, _, _, let t)):
      #expect(b == 2 && p == Array(all[t..<(3 * t)]))
    default:
      Issue.record("the slice changed the input's kind")
    }
    #expect(batch.examples(2..<2).examples == 0)
  }

  /// K micro-batches, each gradient weighted by its counted rows, are one step on the
  /// whole batch: the same loss and gradients up to rounding (the products run on fewer
  /// rows and the sums go in another order: each gradient element moves by a few ε
  /// relative to the terms summed into it, far below 1e-4 of the largest gradient, where
  /// an unweighted or double-counted micro-batch moves it by O(1) of itself).
  @Test(arguments: [ModelKind.vit, .encoder, .gpt, .mixer])
  func microBatchesMatchOneBatch(kind: ModelKind) throws {
    var rng = RNG(seed: 9, stream: "accumulate")
    let cfg = Fixtures.config(kind)
    var arch = Architecture(config: cfg)
    arch.activations[arch.unitCount - 1] = .prelu
    let (input, targets) = Fixtures.batch(cfg, batch: 6, rng: &rng)
    let batch = Batch(input: input, targets: targets, examples: 6)
    func trainer() -> Trainer {
      let model = ModelRegistry.build(arch, seed: 4, alphaInit: 0.3)
      return Trainer(
        model: model,
        regularizer: Regularizer(
          settings: LayerCollapseSettings(lambda: 0.5, blocks: 1), units: [arch.unitCount - 1]),
        settings: OptimizerSettings(learningRate: 1e-3, totalSteps: 10, gradClip: 0))
    }
    let whole = trainer()
    var unused = RNG(state: 0)
    let one = whole.step(batch.input, targets: batch.targets, rng: &unused)
    for parts in [2, 3, 4] {
      let split = trainer()
      let micro = (0..<parts).map { batch.examples(ProcessGroup.share(of: 6, rank: $0, size: parts)) }
      let many = try split.step(micro, group: .single, rng: &unused)
      #expect(abs(many.loss - one.loss) <= 1e-5 * abs(one.loss), "\(parts) parts: loss \(many.loss) vs \(one.loss)")
      let d = relativeDifference(split.model.parameters.gradients, whole.model.parameters.gradients)
      #expect(d < 1e-4, "\(parts) parts: gradients differ by \(d)")
      #expect(abs(many.gradNorm - one.gradNorm) <= 1e-4 * one.gradNorm)
    }
  }

  /// `train.accumulate` in a run: the same loss curve as one batch a step, and its own
  /// checks on the config.
  @Test func accumulateInARun() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let plain = try CLI.run(["train", config, "train.epochs=1", "model.dropout=0", "log.every=1"])
    #expect(plain.code == 0, "\(plain.stderr)")
    let accumulated = try CLI.run([
      "train", config, "train.epochs=1", "model.dropout=0", "log.every=1", "train.accumulate=4",
      "output.dir=\(ws.dir)/acc",
    ])
    #expect(accumulated.code == 0, "\(accumulated.stderr)")
    #expect(accumulated.stderr.contains("4 micro-batches"))
    let a = try MetricsLog.read(ws.dir + "/run/metrics.jsonl")
    let b = try MetricsLog.read(ws.dir + "/acc/metrics.jsonl")
    #expect(a.count == b.count && !a.isEmpty)
    for (x, y) in zip(a, b) {
      #expect(abs(x.loss - y.loss) <= 1e-3 * abs(x.loss), "step \(x.step): loss \(x.loss) vs \(y.loss)")
    }
    let tooMany = try CLI.run(["train", config, "train.accumulate=17", "output.dir=\(ws.dir)/bad"])
    #expect(tooMany.code == 78 && tooMany.stderr.contains("train.accumulate"))
  }

  /// A build without MPI started by a launcher refuses, saying how to build with MPI,
  /// instead of training the whole run N times side by side.
  @Test func launcherWithoutMPIIsAUsageError() throws {
    guard !ProcessGroup.mpiAvailable else { return }
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let r = try CLI.run(["train", config], environment: ["OMPI_COMM_WORLD_SIZE": "2"])
    #expect(r.code == 64)
    #expect(r.stderr.contains("this build has no MPI") && r.stderr.contains("make build MPI=1"))
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/run"))
  }
}

/// The per-step lines of a run's metrics.jsonl.
enum MetricsLog {
  struct Line {
    var step: Int
    var loss: Double
    var gradNorm: Double
  }

  static func read(_ path: String) throws -> [Line] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
      guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let step = object["step"] as? Int, let loss = object["loss"] as? Double,
        let norm = object["grad_norm"] as? Double
      else { return nil }
      return Line(step: step, loss: loss, gradNorm: norm)
    }
  }
}

/// Data-parallel training under mpirun: `make test-mpi` builds the MPI variant and runs
/// this suite with LAYERCOLLAPSE_MPI_BIN naming it (CI does). Two ranks on loopback.
@Suite(
  .serialized,
  .enabled(
    if: MPIRun.binary != nil,
    "LAYERCOLLAPSE_MPI_BIN not set: the MPI suite runs under `make test-mpi` (CI runs it)"))
struct MPITests {
  /// A tiny SST-2-style set in `ws` (sentences whose label follows one word).
  static func sentences(_ ws: Workspace) throws -> String {
    let dir = ws.dir + "/data/sst"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let words = ["a", "film", "story", "with", "the", "plot", "actors", "very", "quite", "an"]
    var rng = RNG(seed: 5, stream: "sentences")
    for (file, count) in [("train.tsv", 96), ("dev.tsv", 32)] {
      var text = "sentence\tlabel\n"
      for i in 0..<count {
        let body = (0..<(3 + rng.int(below: 6))).map { _ in words[rng.int(below: words.count)] }
        text += (body + [i % 2 == 0 ? "good" : "bad"]).joined(separator: " ") + "\t\(i % 2)\n"
      }
      try text.write(toFile: dir + "/" + file, atomically: true, encoding: .utf8)
    }
    return """
      seed: 2
      data:
        task: sst2
        root: $DIR/data
        path: sst
        max_len: 12
      model:
        kind: encoder
        d_model: 16
        heads: 2
        layers: 2
        pooling: cls
      lc:
        lambda: 1
        blocks: 1
      train:
        steps: 6
        batch_size: 15
        lr: 3e-3
        eval_every: 3
        train_eval_limit: 16
      log:
        every: 1
      output:
        dir: $DIR/run

      """
  }

  /// The config of `kind` for these tests (`short` sets the run's length).
  static func config(_ kind: ModelKind, _ ws: Workspace) throws -> String {
    switch kind {
    case .encoder: try ws.config("e.yaml", try sentences(ws))
    case .gpt: try ws.config("g.yaml", Workspace.gpt)
    case .mixer: try ws.config("m.yaml", Workspace.vit.replacingOccurrences(of: "kind: vit", with: "kind: mixer"))
    case .vit, .bert, .vgg: try ws.config("v.yaml", Workspace.vit)
    }
  }

  /// 6 steps of 15 examples (shares of 7 and 8: they need not be equal), a loss line a
  /// step, and no dropout: each rank draws its own masks, so with dropout the runs differ
  /// by design.
  static let short = ["train.steps=6", "train.batch_size=15", "train.eval_every=3", "log.every=1", "model.dropout=0"]

  /// N = 2 ranks with global batch B against one process with batch B: the same loss and
  /// gradient norm at every step, and the same final weights, up to rounding.
  ///
  /// The tolerance: each rank's products run on its share of the rows, and the gradient is
  /// summed in another order (per rank, then across): every gradient element moves by a
  /// few ε (2⁻²⁴) relative to the terms summed into it. Loss and norm at a step depend on
  /// the weights that earlier steps produced; AdamW's update of an element is at most
  /// ~lr whatever the gradient's size, so a gradient within rounding of zero can move its
  /// weight by up to 2·lr a step the other way. That bounds the weights by 2·lr·steps and
  /// leaves the loss within 1e-3 relative over 6 steps (measured: ~1e-7). A rank that
  /// takes the wrong share, or a gradient summed instead of averaged, is off by O(10 %)
  /// in the first step's loss or by 2× in its gradient norm.
  @Test(arguments: [ModelKind.vit, .encoder, .gpt, .mixer])
  func twoRanksMatchOneProcess(kind: ModelKind) throws {
    let ws = try Workspace()
    let config = try Self.config(kind, ws)
    let one = try CLI.run(["train", config] + Self.short + ["output.dir=\(ws.dir)/one"])
    #expect(one.code == 0, "\(one.stderr)")
    let two = try MPIRun.run(ranks: 2, ["train", config] + Self.short + ["output.dir=\(ws.dir)/two"])
    #expect(two.code == 0, "\(two.stderr)")
    #expect(two.stderr.contains("2 processes (MPI)"), "the banner names the world size")
    let a = try MetricsLog.read(ws.dir + "/one/metrics.jsonl")
    let b = try MetricsLog.read(ws.dir + "/two/metrics.jsonl")
    #expect(a.count == 6 && b.count == 6)
    for (x, y) in zip(a, b) {
      #expect(abs(x.loss - y.loss) <= 1e-3 * abs(x.loss), "\(kind) step \(x.step): loss \(x.loss) vs \(y.loss)")
      #expect(
        abs(x.gradNorm - y.gradNorm) <= 1e-3 * abs(x.gradNorm),
        "\(kind) step \(x.step): gradient norm \(x.gradNorm) vs \(y.gradNorm)")
    }
    let d = try MPIRun.maxWeightDifference(ws.dir + "/one/last.h5", ws.dir + "/two/last.h5")
    #expect(d <= 2 * 3e-3 * 6, "\(kind): weights differ by up to \(d)")
    // The final evaluation, split over the ranks and reduced, as one process's.
    let (e1, e2) = (try MPIRun.evalLoss(ws.dir + "/one/eval.json"), try MPIRun.evalLoss(ws.dir + "/two/eval.json"))
    #expect(abs(e1 - e2) <= 1e-3 * abs(e1), "\(kind): evaluation loss \(e1) vs \(e2)")
  }

  /// A run stopped after 3 steps resumes at any world size: 2 ranks → 1 process and
  /// 1 → 2 end within the tolerance above of an unstopped run; 2 → 2 ends bit for bit.
  @Test func resumeAcrossWorldSizes() throws {
    let ws = try Workspace()
    let config = try Self.config(.vit, ws)
    func train(_ ranks: Int, _ dir: String, _ extra: [String] = []) throws -> CLI.Result {
      let args = ["train", config] + Self.short + ["output.dir=\(ws.dir)/\(dir)"] + extra
      return ranks == 1 ? try CLI.run(args) : try MPIRun.run(ranks: ranks, args)
    }
    #expect(try train(2, "straight").code == 0)
    for (first, second) in [(2, 1), (1, 2), (2, 2)] {
      let dir = "r\(first)\(second)"
      let stopped = try train(first, dir, ["--stop-after", "3"])
      #expect(stopped.code == 130, "\(first) → \(second): stop \(stopped.code) \(stopped.stderr)")
      let resumed = try train(second, dir, ["--resume"])
      #expect(resumed.code == 0, "\(first) → \(second): resume \(resumed.stderr)")
      let d = try MPIRun.maxWeightDifference(ws.dir + "/straight/last.h5", ws.dir + "/\(dir)/last.h5")
      if first == second {
        #expect(d == 0, "2 ranks stopped and resumed at 2: weights differ by \(d)")
      } else {
        #expect(d <= 2 * 3e-3 * 6, "\(first) → \(second): weights differ by \(d)")
      }
    }
  }

  /// Ranks started with different configs refuse to train together, naming the cause.
  @Test func differentConfigsAreRefused() throws {
    let ws = try Workspace()
    let config = try Self.config(.vit, ws)
    let r = try MPIRun.run(
      contexts: [
        ["train", config, "output.dir=\(ws.dir)/x"], ["train", config, "output.dir=\(ws.dir)/x", "train.lr=0.1"],
      ])
    #expect(r.code != 0)
    #expect(r.stderr.contains("the ranks run different configs"), "\(r.stderr)")
  }

  /// Ranks running different executables refuse to train together (here the same build
  /// with one byte appended: it runs the same, but is not the same file).
  @Test func differentBinariesAreRefused() throws {
    let ws = try Workspace()
    let config = try Self.config(.vit, ws)
    let copy = ws.dir + "/layercollapse-other"
    var bytes = try Data(contentsOf: URL(fileURLWithPath: MPIRun.binary ?? ""))
    bytes.append(0)
    try bytes.write(to: URL(fileURLWithPath: copy))
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy)
    let args = ["train", config, "output.dir=\(ws.dir)/x"]
    let r = try MPIRun.run(contexts: [args, args], binaries: [MPIRun.binary ?? "", copy])
    #expect(r.code != 0)
    #expect(r.stderr.contains("different layercollapse executables"), "\(r.stderr)")
  }

  /// A global batch smaller than ranks × micro-batches is a config error naming the key.
  @Test func batchSmallerThanTheRanksIsRefused() throws {
    let ws = try Workspace()
    let config = try Self.config(.vit, ws)
    let r = try MPIRun.run(ranks: 2, ["train", config, "train.batch_size=3", "train.accumulate=2"])
    #expect(r.code == 78, "\(r.stderr)")
    #expect(r.stderr.contains("train.batch_size") && r.stderr.contains("2 ranks × train.accumulate 2"))
  }

  /// A rank that dies (SIGKILL) ends the job with an error instead of leaving the other
  /// waiting in its allreduce.
  @Test func aDeadRankEndsTheJob() throws {
    let ws = try Workspace()
    let config = try Self.config(.vit, ws)
    let started = Date()
    var found = false
    let r = try MPIRun.run(
      ranks: 2, ["train", config, "train.steps=100000", "log.every=1000", "output.dir=\(ws.dir)/dead"]
    ) { job in
      found = MPIRun.kill(rank: 1, of: job)
      if !found { job.terminate() }
    }
    #expect(found, "no rank 1 process found to kill")
    #expect(r.code != 0)
    #expect(Date().timeIntervalSince(started) < 120, "the job hung after a rank died")
  }

  /// SIGTERM to one rank (here rank 1, which writes nothing) stops every rank after the
  /// same step; rank 0 saves last.h5 once, and the run resumes from it under mpirun.
  /// (SIGTERM to mpirun reaches every rank too, but a process this test runner starts
  /// inherits its blocked SIGTERM.)
  @Test func sigtermStopsEveryRankAfterTheSameStep() throws {
    let ws = try Workspace()
    let config = try Self.config(.vit, ws)
    let args = [
      "train", config, "train.steps=100000", "train.eval_every=100000", "log.every=10", "output.dir=\(ws.dir)/term",
    ]
    let r = try MPIRun.run(ranks: 2, args) { job in
      if !(MPIRun.wait(for: ws.dir + "/term/metrics.jsonl", job) && MPIRun.kill(rank: 1, of: job, signal: SIGTERM)) {
        job.terminate()
      }
    }
    #expect(r.code != 0)
    #expect(r.stderr.contains("stopped after step"), "\(r.stderr.suffix(600))")
    #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("saved ") }.count == 1, "rank 0 alone saves, once")
    let saved = try Checkpoint.load(ws.dir + "/term/last.h5")
    let step = try #require(saved.progress?.globalStep)
    let resumed = try MPIRun.run(ranks: 2, args + ["--resume", "--stop-after", "\(step + 2)"])
    #expect(resumed.code == 130, "\(resumed.stderr.suffix(600))")
    #expect(try Checkpoint.load(ws.dir + "/term/last.h5").progress?.globalStep == step + 2)
  }
}

/// mpirun with the settings every test uses: loopback only, no binding (Open MPI pins each
/// rank to a core by default, starving OpenBLAS), root allowed (containers), one BLAS
/// thread a rank.
enum MPIRun {
  static var binary: String? { ProcessInfo.processInfo.environment["LAYERCOLLAPSE_MPI_BIN"] }

  static let options = [
    "--bind-to", "none", "--oversubscribe", "--allow-run-as-root", "--mca", "btl", "self,vader", "--mca",
    "oob_tcp_if_include", "lo", "-x", "OPENBLAS_NUM_THREADS=1",
  ]

  /// `during`, when given, runs while the job does (and may signal it).
  static func run(ranks: Int, _ args: [String], during: ((Process) -> Void)? = nil) throws -> CLI.Result {
    try launch(options + ["-np", "\(ranks)", binary ?? "layercollapse"] + args, during: during)
  }

  /// One rank per argument list (MPMD: `mpirun -np 1 A : -np 1 B`), each run by the
  /// binary at the same index of `binaries` (default: the MPI build).
  static func run(contexts: [[String]], binaries: [String]? = nil) throws -> CLI.Result {
    var args = options
    for (i, c) in contexts.enumerated() {
      args += (i > 0 ? [":"] : []) + ["-np", "1", binaries?[i] ?? binary ?? "layercollapse"] + c
    }
    return try launch(args, during: nil)
  }

  /// Runs mpirun with its output in files (a pipe nobody drains while we wait would fill
  /// and block mpirun, and with it the job).
  private static func launch(_ args: [String], during: ((Process) -> Void)?) throws -> CLI.Result {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["mpirun"] + args
    let base = NSTemporaryDirectory() + "lc-mpirun-" + UUID().uuidString
    #expect(FileManager.default.createFile(atPath: base + ".out", contents: nil), "could not create a test file")
    #expect(FileManager.default.createFile(atPath: base + ".err", contents: nil), "could not create a test file")
    defer {
      try? FileManager.default.removeItem(atPath: base + ".out")
      try? FileManager.default.removeItem(atPath: base + ".err")
    }
    p.standardOutput = FileHandle(forWritingAtPath: base + ".out")
    p.standardError = FileHandle(forWritingAtPath: base + ".err")
    try p.run()
    during?(p)
    p.waitUntilExit()
    return CLI.Result(
      code: p.terminationStatus, stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
      stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
  }

  /// Sends `signal` to rank `rank` once it runs; whether it found it within a minute.
  static func kill(rank: Int, of job: Process, signal: Int32 = SIGKILL) -> Bool {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && job.isRunning {
      Thread.sleep(forTimeInterval: 0.5)
      for pid in rankProcesses() where environment(of: pid)["OMPI_COMM_WORLD_RANK"] == "\(rank)" {
        Foundation.kill(pid, signal)
        return true
      }
    }
    return false
  }

  /// Waits up to a minute for `path` to exist.
  static func wait(for path: String, _ job: Process) -> Bool {
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && job.isRunning {
      if FileManager.default.fileExists(atPath: path) { return true }
      Thread.sleep(forTimeInterval: 0.2)
    }
    return false
  }

  /// The pids of running processes of the MPI binary.
  private static func rankProcesses() -> [pid_t] {
    guard let bin = binary, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else {
      return []
    }
    let target = URL(fileURLWithPath: bin).resolvingSymlinksInPath().path
    return entries.compactMap { Int32($0) }.filter { pid in
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) == target
    }
  }

  private static func environment(of pid: pid_t) -> [String: String] {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
    var env: [String: String] = [:]
    for entry in data.split(separator: 0) {
      let text = String(decoding: entry, as: UTF8.self)
      if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
    }
    return env
  }

  /// The evaluation loss an eval.json records.
  static func evalLoss(_ path: String) throws -> Double {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    guard let record = object as? [String: Any], let metrics = record["metrics"] as? [String: Any],
      let loss = metrics["loss"] as? Double
    else { throw CocoaError(.fileReadCorruptFile) }
    return loss
  }

  /// The largest |a − b| over every parameter of two checkpoints of the same model.
  static func maxWeightDifference(_ a: String, _ b: String) throws -> Float {
    let (x, y) = (try Checkpoint.load(a).model.parameters, try Checkpoint.load(b).model.parameters)
    var d: Float = 0
    for p in x.all {
      guard let q = y[p.name], q.shape == p.shape else { return .infinity }
      for i in 0..<p.value.count { d = max(d, abs(p.value.data[i] - q.value.data[i])) }
    }
    return d
  }
}
