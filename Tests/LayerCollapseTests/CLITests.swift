import Foundation
import Kernels
import LayerCollapse
import Testing

/// The command line as a user meets it: each test spawns the built binary.
@Suite struct CLITests {
  @Test func everyCommandHasHelpWithExamples() throws {
    let top = try CLI.run(["--help"])
    #expect(top.code == 0 && top.stdout.contains("Exit codes: 0 success, 64 usage"))
    for command in [
      "train", "collapse", "eval", "inspect", "validate", "generate", "report", "export", "import", "compress",
    ] {
      let r = try CLI.run([command, "--help"])
      #expect(r.code == 0, "\(command)")
      #expect(r.stdout.contains("usage: layercollapse \(command)") && r.stdout.contains("examples:"), "\(command)")
      // Every option the help lists is in its usage line.
      let usage = r.stdout.split(separator: "\n").first.map(String.init) ?? ""
      let options =
        r.stdout.components(separatedBy: "\noptions:\n").last?.split(separator: "\n")
        .compactMap { $0.hasPrefix("  -") ? $0.dropFirst(2).split(separator: " ").first.map(String.init) : nil } ?? []
      for option in options where option != "--help" {
        #expect(usage.contains(option + " ") || usage.contains(option + "]"), "\(command): \(option) not in \(usage)")
      }
    }
  }

  /// `--version`: the release, then OpenBLAS's build and the kernels it runs here (the
  /// ones `OPENBLAS_CORETYPE` names when set).
  @Test func versionNamesTheReleaseAndTheKernels() throws {
    let r = try CLI.run(["--version"], environment: ["OPENBLAS_CORETYPE": "Haswell"])
    let lines = r.stdout.split(separator: "\n")
    #expect(r.code == 0 && r.stderr.isEmpty)
    #expect(lines.first == "layercollapse \(layercollapseVersion)")
    #expect(lines.count == 2 && lines[1].hasPrefix("OpenBLAS ") && lines[1].hasSuffix(", kernels Haswell"))
  }

  @Test func usageErrorsExit64() throws {
    let none = try CLI.run([])
    #expect(none.code == 64)
    let unknown = try CLI.run(["trian"])
    #expect(
      unknown.code == 64 && unknown.stderr.contains("unknown command trian")
        && unknown.stderr.contains("Did you mean train?"))
    let option = try CLI.run(["collapse", "x.h5", "--thresold", "0.1"])
    #expect(option.code == 64 && option.stderr.contains("Did you mean --threshold?"))
    // A setting written as an option: its key=value form.
    let setting = try CLI.run(["train", "c.yaml", "--steps", "10"])
    #expect(setting.code == 64 && setting.stderr.contains("key=value: train.steps=10"), "\(setting.stderr)")
    let dashed = try CLI.run(["eval", "x.h5", "--eval-limit=64"])
    #expect(dashed.code == 64 && dashed.stderr.contains("data.eval_limit=64"), "\(dashed.stderr)")
    let missing = try CLI.run(["eval"])
    #expect(missing.code == 64 && missing.stderr.contains("missing CHECKPOINT.h5"))
    let value = try CLI.run(["collapse", "x.h5", "--threshold"])
    #expect(value.code == 64 && value.stderr.contains("--threshold needs a value"))
    // One option with two values is ambiguous; the same value twice is not.
    let twice = try CLI.run(["collapse", "x.h5", "--threshold", "0.3", "--threshold=0.1"])
    #expect(
      twice.code == 64 && twice.stderr.contains("option --threshold given twice")
        && twice.stderr.contains("0.3 and 0.1"), "\(twice.stderr)")
    #expect(try CLI.run(["collapse", "x.h5", "--threshold", "0.3", "--threshold", "0.3"]).code == 66)
    // A setting typed without its `=` is named as one.
    let spaced = try CLI.run(["train", "c.yaml", "train.lr", "3e-4"])
    #expect(spaced.code == 64 && spaced.stderr.contains("key=value (e.g. train.lr=VALUE)"), "\(spaced.stderr)")
    let file = try CLI.run(["train", "c.yaml", "d.yaml"])
    #expect(file.code == 64 && !file.stderr.contains("Settings are given"), "\(file.stderr)")
    // A setting where the file goes is named as one, whichever file is then missing.
    for args in [["train", "lc.lambda=3", "c.yaml"], ["compress", "--max-drop", "1", "train.lr=5e-4"]] {
      let r = try CLI.run(args)
      let setting = args.first { $0.contains("=") } ?? ""
      #expect(
        r.code == 64 && r.stderr.contains("\(setting) is a setting, given where")
          && r.stderr.contains("come after the file"), "\(args): \(r.stderr)")
    }
    // No doubled prefix; `help train` is train's help.
    #expect(none.stderr.contains("layercollapse: error: no command given"), "\(none.stderr)")
    let help = try CLI.run(["help", "train"])
    let trainHelp = try CLI.run(["train", "--help"])
    #expect(help.code == 0 && help.stdout == trainHelp.stdout)
    #expect(help.stdout.contains("CONFIG.yaml") && !help.stdout.contains("Exit codes: 0 success"), "\(help.stdout)")
  }

  /// Every problem of a config is reported at once, each with file:line, and exit 78.
  @Test func badConfigReportsEveryProblem() throws {
    let ws = try Workspace()
    let path = try ws.config(
      "bad.yaml",
      """
      data:
        task: cifar10
      model:
        kind: vit
        d_model: 30
        heads: 4
      lc:
        lamda: 0.5
        threshold: -1
      train:
        lr: fast
      output:
        dir: x

      """)
    let r = try CLI.run(["validate", path])
    #expect(r.code == 78)
    #expect(r.stderr.contains("4 problems") || r.stderr.contains("problems"))
    #expect(r.stderr.contains("bad.yaml:6") && r.stderr.contains("heads must divide d_model"))
    #expect(r.stderr.contains("bad.yaml:8") && r.stderr.contains("did you mean `lc.lambda`"))
    #expect(r.stderr.contains("bad.yaml:9") && r.stderr.contains("lc.threshold"))
    #expect(r.stderr.contains("bad.yaml:11") && r.stderr.contains("train.lr"))
  }

  @Test func configSyntaxAndMissingFiles() throws {
    let ws = try Workspace()
    let path = try ws.config("syntax.yaml", "model:\n  kind: vit\n - list\n")
    let syntax = try CLI.run(["validate", path])
    #expect(syntax.code == 78 && syntax.stderr.contains("syntax.yaml:3"))
    let missing = try CLI.run(["train", ws.dir + "/nope.yaml"])
    #expect(missing.code == 66 && missing.stderr.contains("nope.yaml"))
    let noData = try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "data.path=missing"])
    #expect(noData.code == 66 && noData.stderr.contains("missing"))
  }

  @Test func badCheckpointsExit65() throws {
    let ws = try Workspace()
    let missing = try CLI.run(["inspect", ws.dir + "/none.h5"])
    #expect(missing.code == 66 && missing.stderr.contains("none.h5"))
    let text = ws.dir + "/text.h5"
    try "not hdf5".write(toFile: text, atomically: true, encoding: .utf8)
    let notHDF5 = try CLI.run(["eval", text])
    #expect(
      notHDF5.code == 65 && notHDF5.stderr.contains("text.h5") && notHDF5.stderr.contains("not a valid checkpoint"))
    let other = ws.dir + "/other.h5"
    try HDF5File.writeAtomically(to: other) { try $0.writeFloats([1], shape: [1], at: "/x") }
    let foreign = try CLI.run(["inspect", other])
    #expect(
      foreign.code == 65 && foreign.stderr.contains("not a layercollapse checkpoint")
        && foreign.stderr.contains("got no format attribute"), "\(foreign.stderr)")
    // A `format` that is a number: said so, not "no format attribute".
    let numbered = ws.dir + "/numbered.h5"
    try HDF5File.writeAtomically(to: numbered) { try $0.setAttribute("format", int64: 1) }
    let number = try CLI.run(["inspect", numbered])
    #expect(
      number.code == 65
        && number.stderr.contains("got a format attribute that is not one string (attribute is not a string)"),
      "\(number.stderr)")
    // A real checkpoint with one tensor reshaped: the message names the parameter and both shapes.
    #expect(try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1"]).code == 0)
    let broken = ws.dir + "/broken.h5"
    try FileManager.default.copyItem(atPath: ws.dir + "/run/last.h5", toPath: broken)
    let f = try HDF5File(reading: broken)
    let bias = try f.readFloats(at: "/params/head/bias").values
    try f.close()
    let g = try HDF5File(creating: ws.dir + "/tmp.h5")
    try g.close()
    try FileManager.default.removeItem(atPath: ws.dir + "/tmp.h5")
    try rewrite(broken) { try $0.writeFloats(bias + [0], shape: [bias.count + 1], at: "/params/head/bias") }
    let shape = try CLI.run(["inspect", broken])
    // CIFAR-10 format: 10 classes, so the head bias is [10]; the file now holds [11].
    #expect(shape.code == 65 && shape.stderr.contains("parameter head.bias has the wrong shape"), "\(shape.stderr)")
    #expect(shape.stderr.contains("[10]") && shape.stderr.contains("[11]"), "\(shape.stderr)")
  }

  /// Stopping after step 5 and resuming gives the same weights, moments and metrics as
  /// a run that never stopped, bit for bit (fixed thread count: OPENBLAS_NUM_THREADS=1).
  @Test func stopAndResumeIsBitIdentical() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let whole = try CLI.run(["train", config, "output.dir=\(ws.dir)/whole"])
    #expect(whole.code == 0, "\(whole.stderr)")
    // Two overrides of keys the file leaves out (at their default values: the same run).
    let stopped = try CLI.run([
      "train", config, "output.dir=\(ws.dir)/parts", "train.min_lr=0", "train.warmup_steps=0", "--stop-after", "5",
    ])
    #expect(stopped.code == 130 && stopped.stderr.contains("stopped after step 5"))
    #expect(!stopped.stderr.contains("error"), "a requested stop is not an error: \(stopped.stderr)")
    let atStop = try Checkpoint.load(ws.dir + "/parts/last.h5").progress!
    #expect(atStop.globalStep == 5 && atStop.epoch == 0)  // 8 steps per epoch
    let again = try CLI.run(["train", config, "output.dir=\(ws.dir)/parts"])
    #expect(again.code == 73 && again.stderr.contains("--resume"))
    // The same command with --resume keeps --stop-after 5: the run is there already.
    let behind = try CLI.run([
      "train", config, "output.dir=\(ws.dir)/parts", "train.min_lr=0", "train.warmup_steps=0", "--stop-after", "5",
      "--resume",
    ])
    #expect(
      behind.code == 64 && behind.stderr.contains("--stop-after 5 is not beyond the step the run resumes at")
        && behind.stderr.contains("expected a step after 5"), "\(behind.stderr)")
    #expect(try Checkpoint.load(ws.dir + "/parts/last.h5").progress!.globalStep == 5)
    // Resuming with other settings names what changed and how to train on from the run.
    let changed = try CLI.run(["train", config, "output.dir=\(ws.dir)/parts", "train.epochs=3", "--resume"])
    #expect(changed.code == 78 && changed.stderr.contains("train.epochs: 2 → 3"), "\(changed.stderr)")
    #expect(changed.stderr.contains("train.init_from=\(ws.dir)/parts/last.h5"), "\(changed.stderr)")
    // A copy of the stopped run resumes where it now lives (output.dir is not a change, nor
    // how often it logs).
    try FileManager.default.copyItem(atPath: ws.dir + "/parts", toPath: ws.dir + "/moved")
    let moved = try CLI.run([
      "train", ws.dir + "/moved/config.yaml", "output.dir=\(ws.dir)/moved", "log.every=3", "--resume",
    ])
    #expect(moved.code == 0 && moved.stderr.contains("resuming at step 5"), "\(moved.stderr)")
    let movedConfig = try String(contentsOfFile: ws.dir + "/moved/config.yaml", encoding: .utf8)
    #expect(movedConfig.contains("dir: \(ws.dir)/moved\n"), "its config.yaml names where it lives: \(movedConfig)")
    // The same overrides in another order are the same config.
    let resumed = try CLI.run([
      "train", config, "output.dir=\(ws.dir)/parts", "train.warmup_steps=0", "train.min_lr=0", "--resume",
    ])
    #expect(resumed.code == 0 && resumed.stderr.contains("resuming at step 5"), "\(resumed.stderr)")
    let a = try Checkpoint.load(ws.dir + "/whole/last.h5")
    let b = try Checkpoint.load(ws.dir + "/parts/last.h5")
    let c = try Checkpoint.load(ws.dir + "/moved/last.h5")
    for p in a.model.parameters.all {
      let q = b.model.parameters[p.name]!
      #expect(p.value.array.map(\.bitPattern) == q.value.array.map(\.bitPattern), "\(p.name)")
      #expect(p.value.array.map(\.bitPattern) == c.model.parameters[p.name]!.value.array.map(\.bitPattern))
      #expect(a.optimizer!.v[p.name]!.array.map(\.bitPattern) == b.optimizer!.v[p.name]!.array.map(\.bitPattern))
    }
    #expect(a.progress!.globalStep == b.progress!.globalStep && a.progress!.bestScore == b.progress!.bestScore)
    #expect(b.progress!.globalStep == 16 && b.progress!.epoch == 2)
    let summaryA = try String(contentsOfFile: ws.dir + "/whole/summary.csv", encoding: .utf8)
    let summaryB = try String(contentsOfFile: ws.dir + "/parts/summary.csv", encoding: .utf8)
    #expect(summaryA == summaryB)
    // Epochs are counted from 1 in the files, as on the console: evaluated every 4 steps,
    // the two 8-step epochs are epochs 1 and 2 ("eval step 8 epoch 1").
    let evalRows = summaryA.split(separator: "\n").dropFirst().map {
      $0.split(separator: ",").prefix(2).joined(separator: ",")
    }
    #expect(evalRows == ["4,1", "8,1", "12,2", "16,2"], "\(summaryA)")
    #expect(whole.stderr.contains("eval step 8 epoch 1:"), "\(whole.stderr)")
    // The same steps are logged, once each: the resumed run cut its log back to step 4
    // (the last checkpoint before the stop is at step 5, the stop itself).
    func steps(_ run: String) throws -> [Int] {
      try String(contentsOfFile: ws.dir + "/\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
        Int($0.split(separator: "\"step\":")[1].prefix { $0.isNumber })!
      }
    }
    #expect(try steps("whole") == steps("parts"))
    #expect(try steps("whole") == [1, 2, 4, 6, 8, 10, 12, 14, 16])
    // A finished run (a sweep's finished point) resumed with --stop-after behind it stands.
    let record = try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/whole/eval.json"))
    let finished = try CLI.run(["train", config, "output.dir=\(ws.dir)/whole", "--resume", "--stop-after", "5"])
    #expect(
      finished.code == 0 && finished.stderr.contains("finished (step 16 of 16): kept as it is"), "\(finished.stderr)")
    // Untouched: its final evaluation is not run and written again.
    #expect(try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/whole/eval.json")) == record)
  }

  /// train → collapse → eval → inspect, and the resolved config reruns as is.
  @Test func pipelineAndOutputs() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let train = try CLI.run(["train", config, "lc.lambda=20", "lc.mode=decoupled"])
    #expect(train.code == 0)
    for file in ["config.yaml", "metrics.jsonl", "summary.csv", "last.h5", "best.h5", "eval.json"] {
      #expect(FileManager.default.fileExists(atPath: ws.dir + "/run/" + file), "\(file)")
    }
    #expect(
      train.stderr.contains("layercollapse train → ") && train.stderr.contains("BLAS threads 1, OpenBLAS kernels ")
        && train.stderr.contains(", seed 3"))
    let collapse = try CLI.run(["collapse", ws.dir + "/run/best.h5", "--force", "0"])
    #expect(
      collapse.code == 0 && collapse.stdout.contains("forced (approximate)") && collapse.stdout.contains("APPROXIMATES")
    )
    let record = try CollapseRecord.read(ws.dir + "/run/collapsed.json")
    #expect(record.blocks[0].merged && record.parametersAfter < record.parametersBefore)
    #expect(record.blocks[0].approximate == true && record.approximate)
    // inspect and export say so too: the model carries it.
    let shown = try CLI.run(["inspect", ws.dir + "/run/collapsed.h5"])
    #expect(
      shown.code == 0 && shown.stdout.contains("collapsed (a single linear, merged approximately)")
        && shown.stdout.contains("note: units merged approximately"), "\(shown.stdout)")
    let exported = try CLI.run(["export", ws.dir + "/run/collapsed.h5", "-o", ws.dir + "/approx-export"])
    #expect(exported.code == 0 && exported.stdout.contains("blocks.0.mlp merged approximately"), "\(exported.stdout)")
    let exportConfig = try String(contentsOfFile: ws.dir + "/approx-export/config.json", encoding: .utf8)
    #expect(exportConfig.contains("\"approximate\":[true,false]"), "\(exportConfig)")
    #expect(!(try CLI.run(["inspect", ws.dir + "/run/best.h5"])).stdout.contains("approximately"))
    // An earlier collapse is replaced; a run's training checkpoint (it could resume from
    // it), a file that is no checkpoint or a missing directory only with --overwrite / never,
    // and before any work is done.
    #expect(try CLI.run(["collapse", ws.dir + "/run/best.h5", "--force", "0"]).code == 0)
    let last = try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/last.h5"))
    let inPlace = try CLI.run(["collapse", ws.dir + "/run/last.h5", "-o", ws.dir + "/run/last.h5"])
    #expect(inPlace.code == 73 && inPlace.stderr.contains("refusing to replace an existing file"), "\(inPlace.stderr)")
    #expect(inPlace.stderr.contains("optimizer state") && inPlace.stderr.contains("--overwrite"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/last.h5")) == last)
    let text = try CLI.run(["collapse", ws.dir + "/run/last.h5", "-o", ws.dir + "/run/config.yaml"])
    #expect(text.code == 73 && text.stderr.contains("not a layercollapse checkpoint"), "\(text.stderr)")
    let nowhere = try CLI.run(["collapse", ws.dir + "/run/last.h5", "-o", ws.dir + "/run/config.yaml/c.h5"])
    #expect(nowhere.code == 73 && nowhere.stderr.contains("got an existing file"), "\(nowhere.stderr)")
    // A directory that does not exist yet is made.
    let made = try CLI.run(["collapse", ws.dir + "/run/best.h5", "--force", "0", "-o", ws.dir + "/new/dir/c.h5"])
    #expect(made.code == 0 && FileManager.default.fileExists(atPath: ws.dir + "/new/dir/c.json"), "\(made.stderr)")
    #expect(!nowhere.stdout.contains("collapse with threshold"))
    // Nor may the record written beside the output replace another file (the run's eval.json).
    let record2 = try CLI.run(["collapse", ws.dir + "/run/best.h5", "-o", ws.dir + "/run/eval.h5"])
    #expect(
      record2.code == 73 && record2.stderr.contains("eval.json, where the collapse record goes"), "\(record2.stderr)")
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/run/eval.h5"))
    let forced = try CLI.run(["collapse", ws.dir + "/run/best.h5", "-o", ws.dir + "/run/last.h5", "--overwrite"])
    #expect(forced.code == 0, "\(forced.stderr)")
    // An output directory under a file: each command names the file (not Foundation's text).
    for args in [
      ["train", config, "output.dir=\(ws.dir)/run/config.yaml/again"],
      ["export", ws.dir + "/run/best.h5", "-o", ws.dir + "/run/config.yaml/x"],
      ["report", ws.dir + "/run", "-o", ws.dir + "/run/config.yaml/x"],
    ] {
      let r = try CLI.run(args)
      #expect(r.code == 73 && r.stderr.contains("run/config.yaml` is a file, not a directory"), "\(args): \(r.stderr)")
    }
    // A threshold of 1 or more would merge even a ReLU: refused, pointing at --force.
    let wide = try CLI.run(["collapse", ws.dir + "/run/best.h5", "--threshold", "1.5"])
    #expect(wide.code == 64 && wide.stderr.contains("0 < T < 1") && wide.stderr.contains("--force"), "\(wide.stderr)")
    let eval = try CLI.run(["eval", ws.dir + "/run/collapsed.h5"])
    #expect(eval.code == 0 && eval.stdout.contains("accuracy"))
    let evalRecord = try EvalRecord.read(ws.dir + "/run/collapsed.eval.json")
    // The images are normalized as in training (stored with the model), whatever part of the
    // training split an evaluation reads: it had recomputed the statistics from it.
    let fewer = try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "data.train_limit=10", "-o", ws.dir + "/few.json"])
    #expect(fewer.code == 0, "\(fewer.stderr)")
    let a = try EvalRecord.read(ws.dir + "/few.json").metrics
    #expect(
      a.accuracy == evalRecord.metrics.accuracy && a.loss == evalRecord.metrics.loss, "\(a) vs \(evalRecord.metrics)")
    // A partial or train-split evaluation does not replace the one report reads.
    #expect(try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "data.eval_limit=8"]).code == 0)
    #expect(try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "--split", "train"]).code == 0)
    #expect(try EvalRecord.read(ws.dir + "/run/collapsed.eval.json") == evalRecord)
    // The run's own limit, however spelled, is the whole evaluation: it goes where report reads.
    let stored =
      try RunSettings.decode(
        try ConfigTree.parse(
          try String(contentsOfFile: ws.dir + "/run/config.yaml", encoding: .utf8), file: "config.yaml")
      ).settings.data.evalLimit ?? 0
    try FileManager.default.removeItem(atPath: ws.dir + "/run/collapsed.eval.json")
    #expect(try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "data.eval_limit=\(stored).0"]).code == 0)
    let again = try EvalRecord.read(ws.dir + "/run/collapsed.eval.json").metrics  // (its timings differ)
    #expect(again.examples == evalRecord.metrics.examples && again.loss == evalRecord.metrics.loss)
    #expect(try EvalRecord.read(ws.dir + "/run/collapsed.limit8.eval.json").metrics.examples == 8)
    // A limit above the split's size keeps every example, as the run's own evaluation did
    // (its 24): said, and the record goes where report reads, not to a limit1000000 file.
    let over = try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "data.eval_limit=1000000"])
    #expect(
      over.code == 0 && over.stderr.contains("data.eval_limit=1000000 is at or above the eval split's 24 images")
        && over.stdout.contains("wrote \(ws.dir)/run/collapsed.eval.json"), "\(over)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: ws.dir + "/run").allSatisfy { !$0.contains("1000000") })
    // Exactly the split's size is the whole split too (the limit cut nothing).
    let exact = try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "data.eval_limit=24"])
    #expect(exact.code == 0 && exact.stdout.contains("wrote \(ws.dir)/run/collapsed.eval.json"), "\(exact)")
    #expect(try EvalRecord.read(ws.dir + "/run/collapsed.train.eval.json").metrics.examples > 24)
    #expect(evalRecord.collapsedBlocks.contains(0) && evalRecord.metrics.examples == 24)
    // The train split with another train_limit: a record of its own, the whole split's kept.
    let trainRecord = try EvalRecord.read(ws.dir + "/run/collapsed.train.eval.json")
    let limited = try CLI.run(["eval", ws.dir + "/run/collapsed.h5", "--split", "train", "data.train_limit=10"])
    #expect(limited.code == 0 && limited.stdout.contains("collapsed.train.trainlimit10.eval.json"), "\(limited)")
    #expect(try EvalRecord.read(ws.dir + "/run/collapsed.train.eval.json") == trainRecord)
    // collapse replacing collapsed.h5 (from another input) removes the records of the model
    // it held, and only those: -o's few.json and another checkpoint's record stay.
    try FileManager.default.copyItem(
      atPath: ws.dir + "/run/collapsed.eval.json", toPath: ws.dir + "/run/collapsed.v2.eval.json")
    // collapsed.limit3.h5's own record has the name collapsed.h5's limit-3 record would: it
    // says which checkpoint it is of, and stays; so does a text of the user's.
    let otherRecord = try String(contentsOfFile: ws.dir + "/run/collapsed.eval.json", encoding: .utf8)
      .replacingOccurrences(of: "collapsed.h5", with: "collapsed.limit3.h5")
    try otherRecord.write(toFile: ws.dir + "/run/collapsed.limit3.eval.json", atomically: true, encoding: .utf8)
    try "my notes\n".write(toFile: ws.dir + "/run/collapsed.sample.txt", atomically: true, encoding: .utf8)
    // (Another input's collapse is replaced only with --overwrite.)
    let refused = try CLI.run(["collapse", ws.dir + "/run/last.h5", "-o", ws.dir + "/run/collapsed.h5"])
    #expect(refused.code == 73 && refused.stderr.contains("a collapse of"), "\(refused.stderr)")
    let recollapse = try CLI.run([
      "collapse", ws.dir + "/run/last.h5", "-o", ws.dir + "/run/collapsed.h5", "--overwrite",
    ])
    #expect(recollapse.code == 0 && recollapse.stdout.contains("it described the model"), "\(recollapse)")
    let left = try FileManager.default.contentsOfDirectory(atPath: ws.dir + "/run").filter { $0.hasPrefix("collapsed") }
    #expect(
      left.sorted() == [
        "collapsed.h5", "collapsed.json", "collapsed.limit3.eval.json", "collapsed.sample.txt",
        "collapsed.v2.eval.json",
      ], "\(left)")
    #expect(FileManager.default.fileExists(atPath: ws.dir + "/few.json"))
    let inspect = try CLI.run(["inspect", ws.dir + "/run/best.h5", "--config"])
    #expect(
      inspect.code == 0 && inspect.stdout.contains("blocks.1.mlp.act.alpha") && inspect.stdout.contains("lambda: 20"))
    #expect(inspect.stdout.contains("images       normalized with mean ("), "\(inspect.stdout)")
    // The run's resolved config trains again as is.
    // validate also checks the files the config names, as train would next.
    let files = try CLI.run(["validate", config, "train.distill_from=\(ws.dir)/nope.h5", "data.path=absent"])
    // Exit 66 (missing input), as train's for the same files; a config problem stays 78.
    #expect(files.code == 66 && files.stderr.contains("train.distill_from names no file"), "\(files.stderr)")
    #expect(files.stderr.contains("the data is not there") && files.stderr.contains("/absent"), "\(files.stderr)")
    let oneFile = try CLI.run(["validate", config, "data.path=absent"])
    #expect(oneFile.code == 66 && oneFile.stderr.contains("the data is not there"), "\(oneFile.stderr)")
    let typo = try CLI.run(["validate", config, "data.path=absent", "train.lr=fast"])
    #expect(typo.code == 78 && typo.stderr.contains("train.lr"), "\(typo.stderr)")
    let rerun = try CLI.run(["validate", ws.dir + "/run/config.yaml"])
    #expect(rerun.code == 0)
    let first = try CLI.run(["validate", config, "lc.lambda=20", "lc.mode=decoupled"])
    #expect(rerun.stdout == first.stdout)
  }

  /// h5dump, an independent HDF5 reader, sees the tensor we wrote at its documented path.
  @Test func h5dumpReadsACheckpointTensor() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump") else {
      Issue.record("h5dump missing: `make setup` installs hdf5-tools")
      return
    }
    let ws = try Workspace()
    #expect(try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1"]).code == 0)
    let c = try Checkpoint.load(ws.dir + "/run/last.h5")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/h5dump")
    p.arguments = ["-d", "/params/head/bias", "-m", "%.9g", ws.dir + "/run/last.h5"]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(text.contains("H5T_IEEE_F32LE") && text.contains("SIMPLE { ( 10 ) / ( 10 ) }"))
    // One "(i): value," line per element.
    let numbers = text.split(separator: "\n").compactMap { line -> Float? in
      guard let colon = line.firstIndex(of: ":"), line.trimmingCharacters(in: .whitespaces).hasPrefix("(") else {
        return nil
      }
      return Float(line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " ,")))
    }
    #expect(numbers == c.model.parameters["head.bias"]!.value.array)
  }

  @Test func generateWithAGPT() throws {
    let ws = try Workspace()
    let train = try CLI.run(["train", try ws.config("g.yaml", Workspace.gpt)])
    #expect(train.code == 0, "\(train.stderr)")
    let gen = try CLI.run(["generate", ws.dir + "/gpt/last.h5", "--prompt", "abc", "--tokens", "20", "--seed", "4"])
    #expect(gen.code == 0 && gen.stdout.hasPrefix("abc") && gen.stdout.count == 3 + 20 + 1)
    let same = try CLI.run(["generate", ws.dir + "/gpt/last.h5", "--prompt", "abc", "--tokens", "20", "--seed", "4"])
    #expect(same.stdout == gen.stdout)
    // Streamed a token at a time, the text is the whole continuation's: the library's
    // draw with the same seed, decoded at once, and each token seen as it is drawn.
    let c = try Checkpoint.load(ws.dir + "/gpt/last.h5")
    guard case .corpus(let vocab)? = c.vocabulary, let gpt = c.model as? Transformer else {
      Issue.record("not a gpt with a corpus vocabulary")
      return
    }
    var rng = RNG(seed: 4, stream: "generate")
    var seen: [Int32] = []
    let drawn = try gpt.generate(
      prompt: try vocab.encode("abc"), count: 20, sampling: SamplingSettings(temperature: 0.8, topK: 40), rng: &rng,
      onToken: { seen.append($0) })
    #expect(seen == drawn && gen.stdout == "abc" + vocab.decode(drawn) + "\n", "\(gen.stdout)")
    let noPrompt = try CLI.run(["generate", ws.dir + "/gpt/last.h5"])
    #expect(noPrompt.code == 64 && noPrompt.stderr.contains("--prompt"))
    // An empty prompt starts from <|endoftext|> where the vocabulary has one; a character
    // vocabulary has none.
    let empty = try CLI.run(["generate", ws.dir + "/gpt/last.h5", "--prompt", ""])
    #expect(empty.code == 64 && empty.stderr.contains("no <|endoftext|> to start from"), "\(empty.stderr)")
    let cold = try CLI.run(["generate", ws.dir + "/gpt/last.h5", "--prompt", "abc", "--temperature", "0"])
    #expect(cold.code == 64 && cold.stderr.contains("use --top-k 1"), "\(cold.stderr)")
    let unknownChar = try CLI.run(["generate", ws.dir + "/gpt/last.h5", "--prompt", "ABC"])
    #expect(unknownChar.code == 65)
  }
}

/// Rewrites an HDF5 file in place through `body` (opened for writing by copying).
func rewrite(_ path: String, _ body: (HDF5File) throws -> Void) throws {
  let src = try HDF5File(reading: path)
  var tensors: [(String, [Float], [Int])] = []
  var strings: [(String, String)] = []
  for d in try src.datasetPaths() {
    if d.hasPrefix("/meta") || d == "/state/progress" {
      strings.append((d, try src.readString(at: d)))
    } else if d.hasPrefix("/params") {
      let (v, s) = try src.readFloats(at: d)
      tensors.append((d, v, s))
    }
  }
  let format = try src.stringAttribute("format")
  let version = try src.int64Attribute("version")
  try src.close()
  try HDF5File.writeAtomically(to: path) { f in
    try f.setAttribute("format", string: format)
    try f.setAttribute("version", int64: version)
    for (d, s) in strings { try f.writeString(s, at: d) }
    for (d, v, s) in tensors { try f.writeFloats(v, shape: s, at: d) }
    try body(f)
  }
}

@Suite struct InterruptTests {
  /// A real Ctrl-C (SIGINT) during training: the run finishes its step, saves last.h5,
  /// says how to resume, and exits 130; the saved state resumes.
  @Test func sigintSavesAndExits130() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let (p, err, started) = try CLI.startTraining(config, until: "step 3/")
    let seen = started + CLI.interrupt(p, reading: err)
    #expect(p.terminationStatus == 130, "\(seen.suffix(400))")
    #expect(seen.contains("stopping after this step") && seen.contains("--resume"))
    let saved = try Checkpoint.load(ws.dir + "/run/last.h5")
    #expect(saved.progress!.globalStep >= 3 && saved.optimizer != nil)
  }

  /// One interrupt delivered twice at once (`timeout -s INT` signals the child and then
  /// its process group) is one Ctrl-C: the run saves, and the notice is printed once.
  /// (Signals sent back to back merge into one before the handler runs; 10 ms apart they
  /// did not, and the second killed the run unsaved.)
  @Test func duplicateSignalIsOneInterrupt() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let (p, err, started) = try CLI.startTraining(config, until: "step 3/")
    kill(p.processIdentifier, SIGINT)
    Thread.sleep(forTimeInterval: 0.01)
    let seen = started + CLI.interrupt(p, reading: err)
    #expect(p.terminationStatus == 130, "\(seen.suffix(400))")
    #expect(seen.components(separatedBy: "stopping after this step").count == 2, "\(seen.suffix(600))")
    #expect(seen.contains("--resume"))
    #expect(try Checkpoint.load(ws.dir + "/run/last.h5").progress!.globalStep >= 3)
  }
}

@Suite struct ReportCommandTests {
  /// A report written over an earlier one into the same directory removes the figures
  /// the earlier one linked and this one does not (a run fewer), and nothing else.
  @Test func anEarlierReportsStaleFiguresAreRemoved() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    for (dir, lambda) in [("a", "1"), ("b", "5")] {
      let r = try CLI.run(["train", config, "train.epochs=1", "lc.lambda=\(lambda)", "output.dir=\(ws.dir)/\(dir)"])
      #expect(r.code == 0, "\(r.stderr)")
    }
    let out = ws.dir + "/out"
    #expect(try CLI.run(["report", ws.dir + "/a", ws.dir + "/b", "-o", out]).code == 0)
    try "mine".write(toFile: out + "/figures/notes.svg", atomically: true, encoding: .utf8)
    func figures() throws -> Set<String> {
      Set(try FileManager.default.contentsOfDirectory(atPath: out + "/figures").filter { $0.hasSuffix(".svg") })
    }
    let before = try figures()
    #expect(try CLI.run(["report", ws.dir + "/a", "-o", out]).code == 0)
    let after = try figures()
    let md = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
    #expect(after.count < before.count, "\(before) → \(after)")
    for f in after where f != "notes.svg" {
      #expect(md.contains("(figures/" + f + ")"), "\(f) is not in results.md")
    }
    #expect(after.contains("notes.svg"))  // not a report's: kept
  }

  /// A runs root with experiment 2's layout gets its section, the bands are checked, and
  /// a result outside its band fails the command with exit 1 naming it.
  @Test func experimentSectionAndBands() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let root = ws.dir + "/root"
    #expect(try CLI.run(["train", config, "output.dir=\(root)/cifar/plain", "lc.lambda=0", "lc.blocks=0"]).code == 0)
    // Without scripts/reproduce.sh's marker the same directories are just runs.
    #expect(try CLI.run(["report", root, "-o", ws.dir + "/unmarked"]).code == 0)
    let unmarked = try String(contentsOfFile: ws.dir + "/unmarked/results.md", encoding: .utf8)
    #expect(unmarked.contains("## Runs") && !unmarked.contains("## 2. CIFAR-10"), "\(unmarked)")
    // An earlier report is replaced; a results.md of the user's only with --overwrite.
    #expect(try CLI.run(["report", root, "-o", ws.dir + "/unmarked"]).code == 0)
    try FileManager.default.createDirectory(atPath: ws.dir + "/docs", withIntermediateDirectories: true)
    try "# My notes\n".write(toFile: ws.dir + "/docs/results.md", atomically: true, encoding: .utf8)
    let mine = try CLI.run(["report", root, "-o", ws.dir + "/docs"])
    #expect(mine.code == 73 && mine.stderr.contains("\"# My notes\"") && mine.stderr.contains("--overwrite"), "\(mine)")
    #expect(try String(contentsOfFile: ws.dir + "/docs/results.md", encoding: .utf8) == "# My notes\n")
    #expect(try CLI.run(["report", root, "-o", ws.dir + "/docs", "--overwrite"]).code == 0)
    try "scripts/reproduce.sh full, seed 1\n".write(
      toFile: root + "/" + ExperimentReport.rootMarker, atomically: true, encoding: .utf8)
    #expect(
      try CLI.run(["train", config, "output.dir=\(root)/cifar/lc", "lc.mode=decoupled", "lc.lambda=400"]).code == 0)
    #expect(try CLI.run(["collapse", "\(root)/cifar/lc/last.h5"]).code == 0)
    for c in ["plain/best.h5", "lc/last.h5", "lc/collapsed.h5"] {
      #expect(try CLI.run(["eval", "\(root)/cifar/\(c)"]).code == 0)
    }
    let bands = try ws.config(
      "bands.yaml",
      """
      cifar:
        collapsed_blocks: [1, 1]
        collapse_cost: [-0.01, 0.01]
        plain_best_accuracy: [0.99, 1.0]

      """)
    let r = try CLI.run(["report", root, "-o", ws.dir + "/out", "--check", bands])
    #expect(r.code == 1, "\(r.stderr)")
    #expect(r.stdout.contains("ok   cifar.collapsed_blocks = 1") && r.stdout.contains("ok   cifar.collapse_cost = 0"))
    #expect(
      r.stdout.contains("FAIL cifar.plain_best_accuracy") && r.stderr.contains("1 of 3 results outside their bands"))
    let md = try String(contentsOfFile: ws.dir + "/out/results.md", encoding: .utf8)
    #expect(md.contains("## 2. CIFAR-10 small set, ViT") && md.contains("| LayerCollapse, collapsed"))
    #expect(md.contains("1 of 2 blocks merged") && md.contains("Reference implementation"))
    for f in ["results.csv", "figures/cifar-loss.svg", "figures/cifar-accuracy.svg", "figures/cifar-alpha.svg"] {
      #expect(FileManager.default.fileExists(atPath: ws.dir + "/out/" + f), "\(f)")
    }
    let csv = try String(contentsOfFile: ws.dir + "/out/results.csv", encoding: .utf8)
    #expect(csv.hasPrefix("experiment,row,metric,value,standard_error\n") && csv.contains("cifar,collapsed,accuracy,"))
  }

  /// A record counts for the checkpoint it describes: `eval -o` does not put another
  /// checkpoint's evaluation in a run's record, `report` ignores one named for a checkpoint
  /// it does not describe, and a collapse that changed nothing costs exactly 0 (against
  /// eval.json, not summary.csv's six digits).
  @Test func recordsBelongToTheirCheckpoint() throws {
    let ws = try Workspace()
    #expect(try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1"]).code == 0)
    let run = ws.dir + "/run/"
    #expect(try CLI.run(["collapse", run + "last.h5", "--threshold", "1e-6"]).code == 0)
    let before = try Data(contentsOf: URL(fileURLWithPath: run + "eval.json"))
    let over = try CLI.run(["eval", run + "collapsed.h5", "-o", run + "eval.json"])
    #expect(
      over.code == 73 && over.stderr.contains("evaluation record of another checkpoint")
        && over.stderr.contains("last.h5"), "\(over.stderr)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: run + "eval.json")) == before)
    #expect(try CLI.run(["eval", run + "collapsed.h5", "-o", run + "collapsed.eval.json"]).code == 0)
    try FileManager.default.copyItem(atPath: run + "collapsed.eval.json", toPath: run + "best.eval.json")
    let dir = try RunDirectory.read(ws.dir + "/run")
    #expect(dir.evals["best"] == nil && dir.evals["collapsed"] != nil && dir.evals["final"] != nil)
    // An output where nothing can be created fails before any work, as the write would after.
    let proc = try CLI.run(["collapse", run + "last.h5", "-o", "/proc/lc-nowhere.h5"])
    #expect(proc.code == 73 && !proc.stdout.contains("collapse with threshold"), "\(proc.stdout)\(proc.stderr)")
    let procEval = try CLI.run(["eval", run + "last.h5", "-o", "/proc/lc-nowhere.eval.json"])
    #expect(procEval.code == 73 && !procEval.stdout.contains("split"), "\(procEval.stdout)\(procEval.stderr)")
    let bands = try ws.config("zero.yaml", "run:\n  run:\n    collapse_cost: [0, 0]\n")
    let checked = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out", "--check", bands])
    #expect(checked.code == 0, "\(checked.stdout)\(checked.stderr)")
    // The same of best.h5, whose accuracy only summary.csv holds (six digits): read back as
    // the count of examples it rounds, so a collapse that changed nothing still costs 0.
    // Other data gets a record of its own, which names what it measured; the run's stays.
    try FileManager.default.copyItem(atPath: ws.dir + "/data/cifar", toPath: ws.dir + "/data/cifar-copy")
    let runRecord = try Data(contentsOf: URL(fileURLWithPath: run + "eval.json"))
    let elsewhere = try CLI.run(["eval", run + "last.h5", "data.path=cifar-copy"])
    #expect(
      elsewhere.code == 0 && elsewhere.stdout.contains("wrote \(run)last.data-cifar-copy.eval.json"), "\(elsewhere)")
    #expect(try EvalRecord.read(run + "last.data-cifar-copy.eval.json").data == ws.dir + "/data/cifar-copy")
    #expect(try Data(contentsOf: URL(fileURLWithPath: run + "eval.json")) == runRecord)
    #expect(try EvalRecord.read(run + "eval.json").data == ws.dir + "/data/cifar")
    // A directory of other files (here the data root, with the corpus) is another task's
    // data, not a dataset to fetch: the message says what is there.
    let wrongData = try CLI.run(["eval", run + "last.h5", "data.path=."])
    #expect(
      wrongData.code == 66 && wrongData.stderr.contains("holds cifar, cifar-copy, corpus.txt")
        && wrongData.stderr.contains("Check data.path") && wrongData.stderr.contains("perhaps another task's data"),
      "\(wrongData.stderr)")
    // collapsed.h5 holds last.h5's collapse: best.h5's replaces it only with --overwrite.
    let other = try CLI.run(["collapse", run + "best.h5", "--threshold", "1e-6"])
    #expect(other.code == 73 && other.stderr.contains("a collapse of \(run)last.h5"), "\(other.stderr)")
    #expect(try CLI.run(["collapse", run + "last.h5", "--threshold", "1e-6"]).code == 0, "the same one's: replaced")
    #expect(try CLI.run(["collapse", run + "best.h5", "--threshold", "1e-6", "--overwrite"]).code == 0)
    // Relative paths: another run's last.h5 has the same name, and is still another checkpoint.
    try FileManager.default.copyItem(atPath: ws.dir + "/run", toPath: ws.dir + "/run2")
    #expect(try CLI.run(["collapse", "run/last.h5", "-o", "mine.h5"], in: ws.dir).code == 0)
    let twin = try CLI.run(["collapse", "run2/last.h5", "-o", "mine.h5"], in: ws.dir)
    #expect(twin.code == 73 && twin.stderr.contains("a collapse of \(ws.dir)/run/last.h5"), "\(twin.stderr)")
    #expect(try CLI.run(["eval", run + "collapsed.h5", "-o", run + "collapsed.eval.json"]).code == 0)
    let fromBest = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out", "--check", bands])
    #expect(fromBest.code == 0, "\(fromBest.stdout)\(fromBest.stderr)")
  }

  /// A stopped run (no eval.json) is marked as such in the runs table, and gives no final
  /// result for a CI band to pass on.
  @Test func stoppedRunIsNotReportedAsFinished() throws {
    let ws = try Workspace()
    let stopped = try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1", "--stop-after", "4"])
    #expect(stopped.code == 130, "\(stopped.stderr)")
    let bands = try ws.config("final.yaml", "run:\n  run:\n    final_accuracy: [0, 1]\n")
    let r = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out", "--check", bands])
    #expect(r.code == 1, "\(r.stdout)\(r.stderr)")
    let md = try String(contentsOfFile: ws.dir + "/out/results.md", encoding: .utf8)
    #expect(md.contains(" (stopped)") && md.contains("did not reach its last step"), "\(md)")
    // Its parameters come from its last.h5 (it wrote no eval.json to take them from).
    let parameters = try Checkpoint.architecture(ws.dir + "/run/last.h5").parameterCount
    #expect(md.contains(" \(NumberFormat.count(parameters)) | 4 (stopped) "), "\(md)")
    // Stopped before its first evaluation: still stopped, at the step it logged last.
    let early = try CLI.run([
      "train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1", "train.eval_every=100", "log.every=1",
      "output.dir=\(ws.dir)/early", "--stop-after", "2",
    ])
    #expect(early.code == 130, "\(early.stderr)")
    #expect(try CLI.run(["report", ws.dir + "/early", "-o", ws.dir + "/out-early"]).code == 0)
    let earlyMD = try String(contentsOfFile: ws.dir + "/out-early/results.md", encoding: .utf8)
    #expect(earlyMD.contains("| 2 (stopped) |"), "\(earlyMD)")
  }

  /// Any run directories: a runs table and curves; a bad bands file is a config error.
  @Test func plainRunDirectoriesAndBadBands() throws {
    let ws = try Workspace()
    #expect(try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1"]).code == 0)
    let r = try CLI.run(["report", ws.dir, "-o", ws.dir + "/out"])
    #expect(r.code == 0, "\(r.stderr)")
    let md = try String(contentsOfFile: ws.dir + "/out/results.md", encoding: .utf8)
    #expect(md.contains("## Runs") && md.contains(ws.dir + "/run") && md.contains("figures/loss.svg"))
    // The footer names the kernels OpenBLAS ran (its build string names only its build target).
    #expect(md.contains("MAX_THREADS") && md.contains(", kernels \(BLASThreads.coreName)."), "\(md.suffix(300))")
    // The α figure labels its threshold as configured (lc.threshold 0.05), not as a widened Float.
    let figures = try FileManager.default.contentsOfDirectory(atPath: ws.dir + "/out/figures")
    let svgs = try figures.map { try String(contentsOfFile: ws.dir + "/out/figures/" + $0, encoding: .utf8) }
    let alpha = svgs.filter { $0.contains("collapse threshold") }
    #expect(!alpha.isEmpty && alpha.allSatisfy { $0.contains("collapse threshold 1 − 0.05<") }, "\(figures)")
    // Nothing within the threshold: the same model, and a note on what would merge units.
    let unmerged = try CLI.run(["collapse", ws.dir + "/run/last.h5", "--threshold", "1e-6", "-o", ws.dir + "/same.h5"])
    #expect(unmerged.code == 0 && unmerged.stdout.contains("note: no unit merged"), "\(unmerged.stdout)")
    // A warm-up longer than the run: its learning rate never peaks, and train says so.
    let warm = try CLI.run([
      "train", try ws.config("w.yaml", Workspace.vit), "train.steps=2", "train.warmup_steps=100",
      "output.dir=\(ws.dir)/warm",
    ])
    #expect(warm.code == 0 && warm.stderr.contains("train.warmup_steps (100) exceeds the run's 2 steps"))
    // λ belongs to runs whose regularizer pulled a unit: none for a run without LayerCollapse units.
    let plain = try CLI.run([
      "train", try ws.config("p.yaml", Workspace.vit), "train.steps=2", "lc.blocks=0", "output.dir=\(ws.dir)/plain",
    ])
    #expect(plain.code == 0, "\(plain.stderr)")
    #expect(try CLI.run(["report", ws.dir + "/run", ws.dir + "/plain", "-o", ws.dir + "/out-l"]).code == 0)
    let lambdas = try String(contentsOfFile: ws.dir + "/out-l/results.csv", encoding: .utf8)
    #expect(lambdas.contains("run,run,lambda,1,") && !lambdas.contains("run,plain,lambda"), "\(lambdas)")
    // A collapse and its eval join the run's row, results.csv and the results bands can hold
    // (`run.<name>.<metric>`), so a CI job can gate on its own runs.
    #expect(try CLI.run(["collapse", ws.dir + "/run/last.h5", "--force", "0"]).code == 0)
    #expect(try CLI.run(["eval", ws.dir + "/run/collapsed.h5"]).code == 0)
    let bands = try ws.config(
      "bands.yaml",
      """
      run:
        run:
          final_accuracy: [0.0, 1.0]
          collapsed_units: [1, 1]
          parameter_ratio: [0.5, 0.999]
          collapse_cost: [-1.0, 1.0]
          lambda: [1, 1]

      """)
    let checked = try CLI.run(["report", ws.dir, "-o", ws.dir + "/out3", "--check", bands])
    #expect(checked.code == 0, "\(checked.stdout) \(checked.stderr)")
    #expect(checked.stdout.contains("ok   run.run.collapsed_units = 1"), "\(checked.stdout)")
    let runsMD = try String(contentsOfFile: ws.dir + "/out3/results.md", encoding: .utf8)
    #expect(runsMD.contains("1 of 2 units") && runsMD.contains("approximate"), "\(runsMD)")
    // What tells the two runs apart besides λ has a column (run and warm: steps, warm-up).
    #expect(runsMD.contains("other settings") && runsMD.contains("train.warmup_steps=100"), "\(runsMD)")
    // Sweep points sort by their numbers' values, not as text.
    #expect(
      ["lc.lambda=300", "lc.lambda=0.1", "lc.lambda=50", "lc.lambda=1e-3"].sorted(by: RunDirectory.naturalOrder)
        == ["lc.lambda=1e-3", "lc.lambda=0.1", "lc.lambda=50", "lc.lambda=300"])
    let runsCSV = try String(contentsOfFile: ws.dir + "/out3/results.csv", encoding: .utf8)
    for metric in [
      "final_accuracy", "parameters", "collapsed_units", "mac_ratio", "collapsed_accuracy", "collapse_cost",
    ] {
      #expect(runsCSV.contains("\nrun,run,\(metric),"), "\(metric): \(runsCSV)")
    }
    #expect(ExperimentReport.resultKey("sweep/lc.lambda=0.1") == "sweep_lc_lambda_0_1")
    // Two runs whose names give one key: refused, naming both.
    let fm = FileManager.default
    try fm.createDirectory(atPath: ws.dir + "/two", withIntermediateDirectories: true)
    try fm.copyItem(atPath: ws.dir + "/run", toPath: ws.dir + "/two/x.y")
    try fm.copyItem(atPath: ws.dir + "/run", toPath: ws.dir + "/two/x_y")
    let clash = try CLI.run(["report", ws.dir + "/two", "-o", ws.dir + "/out4"])
    #expect(clash.code == 64 && clash.stderr.contains("two runs share the result key run.x_y"), "\(clash.stderr)")
    let bad = try ws.config("bad-bands.yaml", "cifar:\n  collapse_cost: 3\n")
    let b = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out2", "--check", bad])
    #expect(b.code == 78 && b.stderr.contains("bad-bands.yaml:2") && b.stderr.contains("got 3"), "\(b.stderr)")
    // A gate that checks nothing is refused; a misspelled result names the nearest key.
    let empty = try ws.config("empty-bands.yaml", "# nothing yet\n")
    let e = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out2", "--check", empty])
    #expect(e.code == 78 && e.stderr.contains("holds no band"), "\(e.stderr)")
    let typo = try ws.config("typo-bands.yaml", "run:\n  run:\n    final_acuracy: [0.0, 1.0]\n")
    let t = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out2", "--check", typo])
    #expect(t.code == 1 && t.stdout.contains("did you mean run.run.final_accuracy?"), "\(t.stdout)")
    // A bands file that is missing or a directory is called a bands file (not a config),
    // and nothing is written.
    for (path, what) in [(ws.dir + "/no-bands.yaml", "bands file not found"), (ws.dir, "not a bands file")] {
      let r = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out6", "--check", path])
      #expect(r.code == 66 && r.stderr.contains(what) && r.stderr.contains("configs/expected.yaml"), "\(r.stderr)")
      #expect(!r.stderr.contains("config file") && !FileManager.default.fileExists(atPath: ws.dir + "/out6"))
    }
    let none = try CLI.run(["report", ws.dir + "/nothing"])
    #expect(none.code == 66)
    // A collapse of best.h5 at another threshold says so in the run's row (its α are last.h5's).
    let other = try CLI.run(["collapse", ws.dir + "/run/best.h5", "--threshold", "0.5", "--overwrite"])
    #expect(other.code == 0, "\(other.stderr)")
    #expect(try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out5"]).code == 0)
    let row = try String(contentsOfFile: ws.dir + "/out5/results.md", encoding: .utf8)
    #expect(row.contains(", of best.h5, threshold 0.5"), "\(row)")
  }
}
