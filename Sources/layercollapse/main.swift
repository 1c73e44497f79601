// The layercollapse command line: the only code that prints or exits.
import Foundation
import Kernels
import LayerCollapse

let topUsage = """
  usage: layercollapse <command> [arguments]

  Train small transformers on the CPU and compress them with LayerCollapse (arXiv 2311.17943).

  commands:
  \(Specs.all.map { "  " + $0.name.padding(toLength: 10, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n"))

  Run `layercollapse <command> --help` for a command's options and examples,
  `layercollapse --version` for the release and the OpenBLAS kernels in use.
  Exit codes: 0 success, 64 usage, 65 bad data, 66 missing input, 70 training diverged,
  73 cannot create output, 74 I/O error (e.g. disk full), 78 bad config, 130 interrupted
  by Ctrl-C (143 by SIGTERM) after saving a checkpoint, 1 anything else.
  """

func run(_ args: [String]) throws {
  guard let name = args.first else {
    Out.err(topUsage)
    throw LCError.usage(ErrorDetail(what: "no command given", location: ""))
  }
  if name == "--help" || name == "-h" || name == "help" {
    // `help train` is `train --help`.
    if name == "help", args.count > 1, let spec = Specs.all.first(where: { $0.name == args[1] }) {
      Out.print(spec.usage)
    } else {
      Out.print(topUsage)
    }
    return
  }
  if name == "--version" {
    Out.print(versionText())
    return
  }
  guard let spec = Specs.all.first(where: { $0.name == name }) else {
    let guess = DidYouMean.suggestion(for: name, among: Specs.all.map(\.name))
    throw LCError.usage(
      ErrorDetail(
        what: "unknown command \(name)", location: "",
        expected: Specs.all.map(\.name).joined(separator: ", "),
        hint: (guess.map { "Did you mean \($0)? " } ?? "") + "Run `layercollapse --help`"))
  }
  let a = try Arguments(Array(args.dropFirst()), spec: spec)
  if a.help {
    Out.print(spec.usage)
    return
  }
  switch name {
  case "train": try Commands.train(a)
  case "collapse": try Commands.collapse(a)
  case "eval": try Commands.eval(a)
  case "inspect": try Commands.inspect(a)
  case "validate": try Commands.validate(a)
  case "generate": try Commands.generate(a)
  case "report": try Commands.report(a)
  case "export": try Commands.export(a)
  case "import": try Commands.importModel(a)
  case "compress": try Commands.compress(a)
  default: break
  }
}

/// The release, the OpenBLAS build and the kernels it runs here, and (a line of its own,
/// which `scripts/faster_coretype.sh` reads for `make reproduce`) the faster kernels this
/// CPU could run when OpenBLAS fell back to generic ones.
func versionText() -> String {
  let core = BLASThreads.coreName
  var lines = ["layercollapse \(layercollapseVersion)", "\(BLASThreads.configuration), kernels \(core)"]
  if let better = CPUFeatures.fasterBLASCore(than: core) {
    lines.append(
      "faster kernels: \(better) (OpenBLAS did not recognize this CPU; OPENBLAS_CORETYPE=\(better) "
        + "after `CORETYPE=\(better) make test-coretype` passes, README Performance)")
  }
  return lines.joined(separator: "\n")
}

/// The process group of a `train` under mpirun, for the exit path.
final class Session: @unchecked Sendable {
  static let shared = Session()
  var group: ProcessGroup = .single
}

/// Ends MPI, if a run started it, and exits. An error every rank meets alike (a stop
/// request, divergence: the ranks agree on both) ends each rank normally, and only rank 0
/// reports it; any other error is this rank's alone, while the others wait for it in the
/// next allreduce: it is reported with the rank, and MPI_Abort ends the whole job.
func finish(_ code: Int32, error: LCError? = nil) -> Never {
  let group = Session.shared.group
  if let e = error {
    let shared: Bool
    switch e {
    case .interrupted, .diverged: shared = true
    default: shared = false
    }
    if group.isRoot || !shared {
      let details = e.details
      // A stop (Ctrl-C, SIGTERM, --stop-after) was asked for and saved: no "error:" label.
      var label = details.count > 1 ? "error (\(details.count) problems): " : "error: "
      if case .interrupted = e { label = "" }
      let rank = group.size > 1 ? " (rank \(group.rank) of \(group.size))" : ""
      Out.err("layercollapse\(rank): \(label)" + (details.count > 1 ? "" : details[0].message))
      if details.count > 1 { for d in details { Out.err("  " + d.message) } }
    }
    if !shared && group.size > 1 { group.abort(code: code) }
  }
  group.finish()
  exit(code)
}

do {
  try run(Array(CommandLine.arguments.dropFirst()))
  finish(0)
} catch let e as LCError {
  if case .interrupted = e, let signal = InterruptFlag.shared.receivedSignal { finish(128 + signal, error: e) }
  finish(e.exitCode, error: e)
} catch {
  Out.err("layercollapse: error: \(error)")
  if Session.shared.group.size > 1 { Session.shared.group.abort(code: 1) }
  finish(1)
}
