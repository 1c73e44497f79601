import Foundation
import Kernels
import LayerCollapse

/// Turns training events into output: a live bar on a terminal, plain lines otherwise.
final class ProgressPrinter {
  let live: Bool
  private var barShown = false
  private var runStart = Date()

  init(live: Bool = Out.stderrIsTerminal) { self.live = live }

  func handle(_ event: TrainingEvent) {
    switch event {
    case .started(let b): banner(b)
    case .resumed(let step): line("resuming at step \(step)")
    case .step(let s): live ? bar(s) : line(plain(s))
    case .evaluated(let e): line(evaluation(e))
    case .saved(let path): if !live { line("saved \(path)") }
    }
  }

  /// Clears the bar, prints a line, and lets the next step redraw the bar.
  func line(_ s: String) {
    if barShown {
      Out.err("\r\u{1B}[2K", newline: false)
      barShown = false
    }
    Out.err(s)
  }

  func finish() {
    if barShown { Out.err("") }
    barShown = false
  }

  private func banner(_ b: RunBanner) {
    let s = b.settings
    let c = b.architecture.config
    var lines = ["layercollapse train → \(b.runDir)"]
    lines.append(
      "  data    \(s.data.task.rawValue) (\(s.data.resolvedPath)): \(Format.count(b.trainExamples)) train "
        + "\(b.exampleUnits.train), \(Format.count(b.evalExamples)) eval \(b.exampleUnits.eval)")
    lines.append(
      "  model   \(c.kind.rawValue) \(c.sizeDescription), "
        + "\(c.activation.rawValue), dropout \(c.dropout); \(Format.count(b.parameters)) parameters, "
        + "\(Format.large(b.macsPerExample)) MACs/example")
    if b.lcUnits.isEmpty {
      lines.append(
        b.collapsedSelection.isEmpty
          ? "  lc      off (no unit selected: lc.blocks, lc.units or lc.fraction make PReLU units for λ to pull)"
          : "  lc      off: the units lc.* selects, \(b.collapsedSelection), are collapsed already (train.init_from)")
    } else {
      lines.append(
        "  lc      λ \(s.lc.lambda), units \(b.lcUnits) as PReLU (α₀ \(s.lc.alphaInit)), threshold \(s.lc.threshold), "
          + "mode \(s.lc.mode.rawValue)"
          + (b.collapsedSelection.isEmpty ? "" : "; \(b.collapsedSelection) collapsed already"))
    }
    if !b.unpulledUnits.isEmpty {
      lines.append(
        "  note    units \(b.unpulledUnits) are PReLU from train.init_from but not selected by lc.*: their α trains "
          + "without the pull toward 1 (select them with lc.units to keep it)")
    }
    let o = s.train.optimizer
    lines.append(
      "  train   \(Format.count(b.totalSteps)) step\(b.totalSteps == 1 ? "" : "s") (\(b.stepsPerEpoch)/epoch), batch \(s.train.batchSize), "
        + "lr \(o.learningRate) (warm-up \(o.warmupSteps), cosine to \(o.minLearningRate)), wd \(o.weightDecay), "
        + "clip \(o.gradClip)")
    if let i = b.initFrom { lines.append("  init    weights from \(i)") }
    if !b.replaced.isEmpty {
      lines.append("  note    --overwrite removed the earlier run's \(b.replaced.joined(separator: ", "))")
    }
    if !s.train.distillFrom.isEmpty {
      lines.append(
        "  distil  from \(s.train.distillFrom): (1 − \(s.train.distillWeight))·CE + \(s.train.distillWeight)·T²·KL, "
          + "T = \(s.train.distillTemperature)")
    }
    if b.worldSize > 1 || b.accumulate > 1 {
      let micro = b.accumulate > 1 ? " in \(b.accumulate) micro-batches of ≤ \(b.rankBatch)" : " of ≤ \(b.rankBatch)"
      lines.append(
        "  ranks   \(b.worldSize) process\(b.worldSize == 1 ? "" : "es") (MPI) × \(b.blasThreads) thread\(b.blasThreads == 1 ? "" : "s"); "
          + "each step a share of the batch\(micro) per process, one gradient allreduce")
    }
    lines.append("  runtime BLAS threads \(b.blasThreads), OpenBLAS kernels \(BLASThreads.coreName), seed \(s.seed)")
    if o.warmupSteps > b.totalSteps {
      lines.append(
        "  note    train.warmup_steps (\(o.warmupSteps)) exceeds the run's \(b.totalSteps) steps: the learning rate "
          + "reaches about \(String(format: "%.2g", o.learningRate * Double(b.totalSteps) / Double(o.warmupSteps))), not "
          + "\(o.learningRate)")
    }
    if let better = CPUFeatures.fasterBLASCore(than: BLASThreads.coreName) {
      lines.append(
        "  note    OpenBLAS did not recognize this CPU and runs its generic \(BLASThreads.coreName) kernels; "
          + "OPENBLAS_CORETYPE=\(better) is likely several times faster (README, Performance)")
    }
    runStart = Date()
    for l in lines { line(l) }
  }

  private func plain(_ s: StepLog) -> String {
    var t = String(format: "step %d/%d epoch %d loss %.4f", s.step, s.totalSteps, s.epoch, s.loss)
    if let a = s.meanAlpha { t += String(format: " penalty %.4f mean α %.3f", s.penalty, a) }
    t += String(format: " lr %.2e %.0f ex/s eta %@", s.learningRate, s.examplesPerSecond, Format.duration(s.etaSeconds))
    return t
  }

  private func bar(_ s: StepLog) {
    let width = 24
    let filled = Int(Double(width) * Double(s.epochStep) / Double(max(s.stepsPerEpoch, 1)))
    let b = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
    var t = String(format: "epoch %d %@ %d/%d loss %.4f", s.epoch, b, s.epochStep, s.stepsPerEpoch, s.loss)
    if let a = s.meanAlpha { t += String(format: " pen %.4f ᾱ %.3f", s.penalty, a) }
    t += String(format: " %.0f ex/s ETA %@", s.examplesPerSecond, Format.duration(s.etaSeconds))
    Out.err("\r\u{1B}[2K" + t, newline: false)
    barShown = true
  }

  private func evaluation(_ e: EvaluationLog) -> String {
    var t = "eval step \(e.step) epoch \(e.epoch): \(Format.metrics(e.eval))"
    if let tr = e.train { t += String(format: "; train accuracy %.2f %%", 100 * tr.accuracy) }
    if !e.alphas.isEmpty { t += "; α " + Format.alphas(e.alphas) }
    if e.isBest { t += " (best)" }
    return t
  }
}

/// Ctrl-C (SIGINT) or a scheduler's SIGTERM asks the run to stop at the next step
/// boundary and save; a second one kills. The process then exits 128 + the signal's number
/// (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the signal killed.
final class InterruptFlag: @unchecked Sendable {
  static let shared = InterruptFlag()

  private let lock = NSLock()
  private var received: Int32? = nil
  /// When the first signal came (DispatchTime's nanoseconds).
  private var receivedAt: UInt64 = 0
  private var sources: [DispatchSourceSignal] = []

  /// Signals this soon after the first are the same interrupt delivered twice, not a
  /// second Ctrl-C: `timeout -s INT` signals its child and then its process group, which
  /// holds the child too, within microseconds. A person's second Ctrl-C comes later.
  static let duplicateWindowNanoseconds: UInt64 = 100_000_000

  var isRaised: Bool { receivedSignal != nil }

  /// The first signal that raised the flag.
  var receivedSignal: Int32? {
    lock.lock()
    defer { lock.unlock() }
    return received
  }

  /// What a signal means: the first, a duplicate of it, or a second interrupt.
  private enum Arrival { case first, duplicate, second }

  /// Records `number`'s arrival.
  private func raise(_ number: Int32) -> Arrival {
    lock.lock()
    defer { lock.unlock() }
    let now = DispatchTime.now().uptimeNanoseconds
    guard received != nil else {
      received = number
      receivedAt = now
      return .first
    }
    return now - receivedAt < Self.duplicateWindowNanoseconds ? .duplicate : .second
  }

  /// From now on SIGINT and SIGTERM raise the flag (and say so on stderr) instead of killing.
  func install() {
    guard sources.isEmpty else { return }
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let s = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue.global())
      s.setEventHandler { [self] in
        switch self.raise(number) {
        case .first: break
        case .duplicate: return
        // At once, nothing saved, with the status a shell gives a process the signal
        // ended. (Re-raising the signal looped under libdispatch, printing the notice
        // below hundreds of times before the process died.)
        case .second: _exit(128 + number)
        }
        let name = number == SIGTERM ? "SIGTERM" : "Ctrl-C"
        guard Session.shared.group.isRoot else { return }  // under mpirun, one message
        Out.err("\nlayercollapse: \(name): stopping after this step and saving (again to kill)")
      }
      s.resume()
      sources.append(s)
    }
  }
}

/// What this CPU can run, for the banner's hint when OpenBLAS falls back to its generic
/// kernels on a CPU it does not know (Debian 12's OpenBLAS 0.3.21 on CPUs newer than it).
enum CPUFeatures {
  static let flags: Set<Substring> = {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return [] }
    return Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" }))
  }()

  /// A faster OpenBLAS core type this CPU can run, when OpenBLAS chose a generic one.
  static func fasterBLASCore(than core: String) -> String? {
    guard ["Prescott", "Core2", "Nehalem", "Penryn", "Dunnington", "Atom"].contains(core) else { return nil }
    if flags.contains("avx512f") && flags.contains("avx512vl") && flags.contains("avx512bw") { return "SkylakeX" }
    if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
    return nil
  }
}
