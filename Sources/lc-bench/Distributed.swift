// `make bench MPI=1`: data-parallel training on this machine. One model's training step
// as 1 rank × 1 thread, 1 rank × 2 threads and 2 ranks × 1 thread, each in processes of
// its own (`--train-only`, the ranks under mpirun), with the time each step spends in the
// gradient allreduce.
import Foundation
import LayerCollapse

/// The rows of the data-parallel table for case `c`, `steps` timed steps each.
func distributedTable(_ c: ModelCase, selfPath: String, steps: Int) throws -> [String] {
  let args: [String] = ["--train-only", c.name, "--steps", "\(steps)", "--threads", "1"]
  let log: String = NSTemporaryDirectory() + "lc-bench-distributed-\(getpid()).txt"
  defer { try? FileManager.default.removeItem(atPath: log) }
  let oneByOne: ChildOutput = try measure(selfPath, args, threads: 1, stderrPath: log)
  let oneByTwo: ChildOutput = try measure(
    selfPath, Array(args.dropLast()) + ["2"], threads: 2, stderrPath: log)
  var mpirun: [String] = ["mpirun", "--bind-to", "none", "--oversubscribe", "--mca", "btl", "self,vader"]
  if getuid() == 0 { mpirun.append("--allow-run-as-root") }
  mpirun += ["-x", "OPENBLAS_NUM_THREADS=1", "-np", "2", selfPath] + args
  let twoRanks: ChildOutput = try measure("/usr/bin/env", mpirun, threads: 1, stderrPath: log)

  func median(_ xs: [Double]) -> Double {
    let s: [Double] = xs.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
  }
  let base: Double = median(oneByOne.stepMs ?? [])
  var rows: [String] = [
    "| setup              | step ms | examples/s | allreduce ms | efficiency |",
    "|--------------------|---------|------------|--------------|------------|",
  ]
  for (label, output, workers) in [
    ("1 rank × 1 thread", oneByOne, 1), ("1 rank × 2 threads", oneByTwo, 2), ("2 ranks × 1 thread", twoRanks, 2),
  ] {
    let ms: Double = median(output.stepMs ?? [])
    let reduce: String =
      output.allreduceMs.map { a in
        String(format: "%.2f (%.0f %%)", median(a), 100 * median(a) / ms)
      } ?? "—"
    rows.append(
      "| " + pad(label, 18) + " | " + pad(String(format: "%.1f", ms), 7, right: true) + " | "
        + pad(String(format: "%.0f", Double(c.batch) / ms * 1000), 10, right: true) + " | "
        + pad(reduce, 12, right: true)
        + " | " + pad(String(format: "%.2f", base / ms / Double(workers)), 10, right: true) + " |")
  }
  let parameters: Int = c.architecture.parameterCount
  rows.append("")
  rows.append(
    "Efficiency: examples/s per worker (rank × thread) over 1 rank × 1 thread. Each step allreduces "
      + "\(parameters) gradients (\(String(format: "%.1f", Double(4 * parameters) / 1e6)) MB); between "
      + "machines budget that divided by the link's bandwidth (README, \"Training on several processes or machines\").")
  return rows
}
