import Foundation
import Kernels
import LayerCollapse
import Testing

/// Hostile input (issue 13): sizes that cannot fit, contradicting overrides, bad flags,
/// damaged files, kills at every write, two processes on one run, divergence, full disks.
/// Each failure must be a clear message with its documented exit code, and nothing
/// already written may be lost.
@Suite struct HardeningTests {
  /// Sizes no machine can hold are refused by `validate` and `train` before anything is
  /// allocated (the process would otherwise die in the allocator), naming the keys and
  /// the memory needed; `train` leaves no run directory behind.
  @Test(arguments: [
    "model.d_model=100000", "model.layers=100000", "model.mlp_hidden=16000000",
    "train.batch_size=1000000000",
  ])
  func sizesThatCannotFitAreRefused(override: String) throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let key = String(override.prefix { $0 != "=" })
    for command in ["validate", "train"] {
      let r = try CLI.run([command, config, override])
      #expect(r.code == 78, "\(command) \(override): \(r.stderr)")
      #expect(r.stderr.contains("does not fit in this machine's memory") && r.stderr.contains("GiB"), "\(r.stderr)")
      #expect(r.stderr.contains(key), "\(command) names \(key): \(r.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/run"))
    // The arithmetic guard: a size beyond any machine is a range error, not an overflow.
    let huge = try CLI.run(["validate", config, "model.d_model=9223372036854775807"])
    #expect(huge.code == 78 && huge.stderr.contains("model.d_model"), "\(huge.stderr)")
  }

  /// Counts whose products with a sequence length, the steps of an epoch or a VGG head's
  /// width would overflow Int are range errors naming the key (each used to trap in that
  /// product): `validate` and `train` exit 78 and start nothing.
  @Test(arguments: [
    ("gpt", "train.epochs=5000000000000000000", "in 0...1048576"),
    ("gpt", "data.holdout=100000000000000000", "in 0...1099511627776"),
    ("gpt", "data.train_limit=100000000000000000", "in 0...1099511627776"),
    ("vit", "train.steps=9223372036854775807", "in 0...1099511627776"),
    ("vgg", "model.mlp_hidden=4294967296", "in 0...16777216"),
    ("vgg", "model.conv=[9223372036854775807]", "a channel count (1…65536)"),
  ])
  func countsBeyondAnyRunAreRangeErrors(base: String, override: String, expected: String) throws {
    let ws = try Workspace()
    let text =
      switch base {
      case "gpt": Workspace.gpt
      case "vit": Workspace.vit
      default:
        "data:\n  task: cifar10\n  root: $DIR/data\nmodel:\n  kind: vgg\n  conv: [8, M]\noutput:\n  dir: $DIR/run\n"
      }
    let config = try ws.config("c.yaml", text)
    let key = String(override.prefix { $0 != "=" })
    for command in ["validate", "train"] {
      let r = try CLI.run([command, config, override])
      #expect(
        r.code == 78 && r.stderr.contains(key) && r.stderr.contains(expected), "\(command) \(override): \(r.stderr)")
    }
    #expect(
      !FileManager.default.fileExists(atPath: ws.dir + "/run")
        && !FileManager.default.fileExists(atPath: ws.dir + "/gpt"))
  }

  /// A stopped run whose summary.csv is no longer text: --resume refuses (65) before it
  /// cuts either log back, so metrics.jsonl keeps every line it had.
  @Test func resumeWithAnUnreadableLogChangesNothing() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let stopped = try CLI.run(["train", config, "train.epochs=1", "log.every=1", "--stop-after", "6"])
    #expect(stopped.code == 130, "\(stopped.stderr)")
    // A line past the checkpoint's step, as a killed run leaves: the one a resume would cut.
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: ws.dir + "/run/metrics.jsonl"))
    log.seekToEndOfFile()
    log.write(Data("{\"step\":7}\n".utf8))
    try log.close()
    let metrics = try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/metrics.jsonl"))
    let summary = try FileHandle(forWritingTo: URL(fileURLWithPath: ws.dir + "/run/summary.csv"))
    summary.seekToEndOfFile()
    summary.write(Data([0xFF, 0x0A]))
    try summary.close()
    let resumed = try CLI.run(["train", config, "train.epochs=1", "log.every=1", "--resume"])
    #expect(resumed.code == 65 && resumed.stderr.contains("summary.csv") && resumed.stderr.contains("not UTF-8"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/metrics.jsonl")) == metrics)
  }

  /// `eval` overrides may change where the data is read, never the model's shape: a
  /// contradicting key is a config error naming it, and `eval --help` lists the allowed.
  @Test func evalRefusesOverridesThatContradictTheModel() throws {
    let ws = try Workspace()
    #expect(try CLI.run(["train", try ws.config("v.yaml", Workspace.vit), "train.epochs=1"]).code == 0)
    let ckpt = ws.dir + "/run/last.h5"
    for bad in ["data.max_len=64", "model.d_model=32", "model.patch_size=4", "lc.blocks=2"] {
      let r = try CLI.run(["eval", ckpt, bad])
      let key = String(bad.prefix { $0 != "=" })
      #expect(
        r.code == 78 && r.stderr.contains(key) && r.stderr.contains("cannot change after training"), "\(r.stderr)")
    }
    // A typo of a key eval takes is named as one, with the key meant.
    let typo = try CLI.run(["eval", ckpt, "data.eval_limt=5"])
    #expect(
      typo.code == 78 && typo.stderr.contains("unknown key data.eval_limt")
        && typo.stderr.contains("Did you mean `data.eval_limit`?"), "\(typo.stderr)")
    let fine = try CLI.run(["eval", ckpt, "data.eval_limit=5", "train.eval_batch_size=2", "-o", ws.dir + "/e.json"])
    #expect(fine.code == 0, "\(fine.stderr)")
    let help = try CLI.run(["eval", "--help"])
    #expect(help.code == 0 && help.stdout.contains("data.eval_limit") && help.stdout.contains("refused"))
  }

  /// A fine-tune of a language model at another data.level than its stored vocabulary's:
  /// the key is named, with the level to set.
  @Test func initFromAtAnotherDataLevel() throws {
    let ws = try Workspace()
    let config = try ws.config("g.yaml", Workspace.gpt)
    #expect(try CLI.run(["train", config]).code == 0)
    let r = try CLI.run([
      "train", config, "data.level=byte", "train.init_from=\(ws.dir)/gpt/last.h5", "output.dir=\(ws.dir)/byte",
    ])
    #expect(
      r.code == 78 && r.stderr.contains("data.level: data.level does not match the checkpoint's vocabulary")
        && r.stderr.contains("expected character") && r.stderr.contains("Set data.level: character"), "\(r.stderr)")
  }

  /// Flags out of range are usage errors (64), before any work.
  @Test func flagsOutOfRangeExit64() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    for args in [
      ["train", config, "--stop-after", "0"], ["train", config, "--stop-after", "-1"],
      ["train", config, "--resume", "--overwrite"], ["collapse", ws.dir + "/x.h5", "--probe", "-5"],
      ["generate", ws.dir + "/x.h5", "--prompt", "a", "--temperature", "inf"],
      ["generate", ws.dir + "/x.h5", "--prompt", "a", "--seed", "-1"],
      ["generate", ws.dir + "/x.h5", "--prompt", "a", "--temperature", "1e-320"],
      ["import", ws.dir, "-o", ws.dir + "/x.h5", "--classes", "2000000000"],
      ["compress", ws.dir + "/x.h5", "--max-drop", "1", "--holdout", "9223372036854775807"],
    ] {
      let r = try CLI.run(args)
      #expect(r.code == 64, "\(args): \(r.code) \(r.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: ws.dir + "/run"))
  }

  /// `generate` with a negative seed (64), and on a checkpoint holding a NaN weight (65,
  /// naming the tensor: every command refuses to load non-finite weights).
  @Test func generateRefusesNegativeSeedAndNaNWeights() throws {
    let ws = try Workspace()
    #expect(try CLI.run(["train", try ws.config("g.yaml", Workspace.gpt)]).code == 0)
    let ckpt = ws.dir + "/gpt/last.h5"
    let negative = try CLI.run(["generate", ckpt, "--prompt", "abc", "--seed", "-1"])
    #expect(negative.code == 64 && negative.stderr.contains("seed"), "\(negative.stderr)")
    #expect(try CLI.run(["generate", ckpt, "--prompt", "abc", "--tokens", "5"]).code == 0)
    let f = try HDF5File(reading: ckpt)
    var w = try f.readFloats(at: "/params/blocks/1/mlp/fc2/weight")
    try f.close()
    w.values[3] = .nan
    try rewrite(ckpt) { try $0.writeFloats(w.values, shape: w.shape, at: "/params/blocks/1/mlp/fc2/weight") }
    for args in [["generate", ckpt, "--prompt", "abc"], ["eval", ckpt], ["inspect", ckpt]] {
      let r = try CLI.run(args)
      #expect(r.code == 65 && r.stderr.contains("blocks.1.mlp.fc2.weight") && r.stderr.contains("non-finite"))
    }
  }

  /// The directory of a path as NSString gives it, without its trap on one-character names
  /// (Foundation 6.x on Linux: `-o c` crashed compress with signal 4).
  @Test func parentOfAPath() {
    let cases: [(String, String)] = [
      ("c", ""), (".", ""), ("c/", ""), ("ab", ""), ("a/c", "a"), ("./c", "."), ("/c", "/"), ("/", "/"),
      ("a/b/", "a"), ("a//b", "a"), ("/a/b/c.h5", "/a/b"), ("", ""),
    ]
    for (path, parent) in cases { #expect(Paths.parent(path) == parent, "\(path)") }
  }

  /// A record that does not decode names the key as the file spells it and what was wrong,
  /// not the decoder's Swift types.
  @Test func jsonErrorsNameTheKey() throws {
    let dir = NSTemporaryDirectory() + "lc-json-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let cases: [(String, String)] = [
      (#"{"checkpoint": "x"}"#, "missing key `kind`"),
      (#"{"checkpoint": 3}"#, "expected a string at `checkpoint`"),
      ("{oops", "not valid JSON at line 1, column 2"),
      ("{\"checkpoint\": \"x\",\n  ,}", "not valid JSON at line 2, column 3"),
      (#"{"checkpoint": "x", "kind": "zzz"}"#, "a value that does not fit at `kind`"),
    ]
    for (text, expected) in cases {
      try text.write(toFile: dir + "/e.json", atomically: true, encoding: .utf8)
      do {
        _ = try EvalRecord.read(dir + "/e.json")
        Issue.record("\(text): read")
      } catch let e as LCError {
        #expect(e.exitCode == 65 && e.description.contains(expected), "\(e)")
        #expect(!e.description.contains("CodingKeys"), "\(e)")
      }
    }
  }

  /// One-character relative outputs, in a directory of their own: each command writes them.
  @Test func oneCharacterRelativeOutputs() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    #expect(try CLI.run(["train", config, "train.epochs=1", "output.dir=r"], in: ws.dir).code == 0)
    let runs: [[String]] = [
      ["collapse", "r/last.h5", "--force", "0", "-o", "c/d"], ["export", "r/last.h5", "-o", "e"],
      ["report", "r", "-o", "p"], ["eval", "r/last.h5", "-o", "v/w"],
    ]
    for args in runs {
      let r = try CLI.run(args, in: ws.dir)
      #expect(r.code == 0, "\(args): \(r.stderr.suffix(300))")
    }
    for file in ["r/last.h5", "c/d", "e/config.json", "p/results.md", "v/w"] {
      #expect(FileManager.default.fileExists(atPath: ws.dir + "/" + file), "\(file)")
    }
  }

  /// A truncated checkpoint is bad data (65) "not a valid checkpoint"; a directory where a
  /// file is expected says so; `--resume` with no checkpoint yet points at `--overwrite`.
  @Test func damagedFilesAndWrongPaths() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    let data = try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/last.h5"))
    for keep in [data.count / 2, data.count - 100] {
      let cut = ws.dir + "/cut.h5"
      try data.prefix(keep).write(to: URL(fileURLWithPath: cut))
      let r = try CLI.run(["eval", cut])
      #expect(r.code == 65 && r.stderr.contains("not a valid checkpoint") && r.stderr.contains("cut.h5"), "\(r.stderr)")
    }
    let dir = try CLI.run(["inspect", ws.dir + "/run"])
    #expect(dir.code == 66 && dir.stderr.contains("is a directory"), "\(dir.stderr)")
    let out = try CLI.run(["eval", ws.dir + "/run/best.h5", "-o", ws.dir + "/run"])
    #expect(out.code == 73 && out.stderr.contains("is a directory, not a file"), "\(out.stderr)")
    // eval -o replaces an earlier evaluation record only: not a file of the user's, nor a
    // device or pipe (the rename would take its place), even with --overwrite for import.
    try "notes".write(toFile: ws.dir + "/notes.txt", atomically: true, encoding: .utf8)
    let notes = try CLI.run(["eval", ws.dir + "/run/best.h5", "-o", ws.dir + "/notes.txt"])
    #expect(notes.code == 73 && notes.stderr.contains("not an evaluation record"), "\(notes.stderr)")
    #expect(try String(contentsOfFile: ws.dir + "/notes.txt", encoding: .utf8) == "notes")
    #expect(mkfifo(ws.dir + "/pipe", 0o644) == 0)
    let pipe = try CLI.run(["eval", ws.dir + "/run/best.h5", "-o", ws.dir + "/pipe"])
    #expect(pipe.code == 73 && pipe.stderr.contains("not a regular file"), "\(pipe.stderr)")
    // A pipe as a checkpoint to read or replace: refused at once (opening it blocked).
    let fromPipe = try CLI.run(["eval", ws.dir + "/pipe"])
    #expect(fromPipe.code == 66 && fromPipe.stderr.contains("is not an HDF5 file"), "\(fromPipe.stderr)")
    let ontoPipe = try CLI.run(["collapse", ws.dir + "/run/best.h5", "--force", "0", "-o", ws.dir + "/pipe"])
    #expect(ontoPipe.code == 73 && !ontoPipe.stderr.contains("--overwrite"), "\(ontoPipe.stderr)")
    let ontoPipeAnyway = try CLI.run([
      "collapse", ws.dir + "/run/best.h5", "--force", "0", "-o", ws.dir + "/pipe", "--overwrite",
    ])
    #expect(ontoPipeAnyway.code == 73 && ontoPipeAnyway.stderr.contains("not a regular file"), "\(ontoPipeAnyway)")
    let empty = try CLI.run(["eval", ws.dir + "/run/best.h5", "-o", ""])
    #expect(empty.code == 64 && empty.stderr.contains("the output path is empty"), "\(empty.stderr)")
    // A device given as the config or the data: named as what it is, not an I/O failure.
    let device = try CLI.run(["validate", "/dev/null"])
    #expect(device.code == 66 && device.stderr.contains("not a config file"), "\(device.stderr)")
    // A run directory or a checkpoint where the config goes: said so, with where to look.
    let directory = try CLI.run(["validate", ws.dir + "/run"])
    #expect(
      directory.code == 66 && directory.stderr.contains("got a directory")
        && directory.stderr.contains("\(ws.dir)/run/config.yaml"), "\(directory.stderr)")
    let checkpoint = try CLI.run(["train", ws.dir + "/run/best.h5"])
    #expect(
      checkpoint.code == 78 && checkpoint.stderr.contains("not a config")
        && checkpoint.stderr.contains("train.init_from=\(ws.dir)/run/best.h5"), "\(checkpoint.stderr)")
    // A config through a pipe (the shell's process substitution) reads as the file would.
    let shell = Process()
    shell.executableURL = URL(fileURLWithPath: "/bin/bash")
    shell.arguments = ["-c", "\"$0\" validate <(cat \"$1\") > \"$2\"", CLI.binary, config, ws.dir + "/piped.txt"]
    try shell.run()
    shell.waitUntilExit()
    let piped = try String(contentsOfFile: ws.dir + "/piped.txt", encoding: .utf8)
    let direct = try CLI.run(["validate", config]).stdout
    #expect(shell.terminationStatus == 0 && piped == direct, "\(piped)")
    // Data through a pipe, read by both points of a sweep: the pipe gives its bytes once,
    // so the second point reads what the first kept (it read an empty corpus before).
    let sweep = try ws.config("g.yaml", Workspace.gpt + "sweep:\n  train.lr: [0.001, 0.002]\n")
    let pipedData = Process()
    pipedData.executableURL = URL(fileURLWithPath: "/bin/bash")
    pipedData.arguments = [
      "-c", "\"$0\" train \"$1\" data.path=<(cat \"$2\") > /dev/null 2>&1", CLI.binary, sweep,
      ws.dir + "/data/corpus.txt",
    ]
    try pipedData.run()
    pipedData.waitUntilExit()
    #expect(pipedData.terminationStatus == 0)
    for lr in ["0.001", "0.002"] {
      #expect(FileManager.default.fileExists(atPath: ws.dir + "/gpt/train.lr=\(lr)/last.h5"), "\(lr)")
    }
    try FileManager.default.removeItem(atPath: ws.dir + "/run/last.h5")
    let resume = try CLI.run(["train", config, "train.epochs=1", "--resume"])
    #expect(resume.code == 66 && resume.stderr.contains("--overwrite"), "\(resume.stderr)")
    // `report` on a run whose summary.csv is binary: bad data naming the file.
    try Data([0, 159, 146, 150, 0, 1, 2]).write(to: URL(fileURLWithPath: ws.dir + "/run/summary.csv"))
    let report = try CLI.run(["report", ws.dir + "/run", "-o", ws.dir + "/out"])
    #expect(report.code == 65 && report.stderr.contains("summary.csv") && report.stderr.contains("not a text file"))
  }

  /// Killed (SIGKILL) just before each checkpoint rename, at the first and at a later
  /// evaluation: every file left is loadable, best.h5 is never older than the best step
  /// last.h5 records, a stale `.tmp` is cleaned up, and resuming (or, killed before the
  /// first last.h5, starting over) ends with the same bits as a run never killed.
  @Test(arguments: [
    "before-rename:config.yaml", "before-rename:best.h5", "before-rename:last.h5",
    "before-rename:last.h5#3",
  ])
  func killAtEveryWriteLeavesConsistentCheckpoints(point: String) throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    #expect(try CLI.run(["train", config, "output.dir=\(ws.dir)/whole"]).code == 0)
    let run = ws.dir + "/killed"
    let killed = try CLI.run(["train", config, "output.dir=\(run)"], environment: ["LAYERCOLLAPSE_CRASH_AT": point])
    let fm = FileManager.default
    if killed.code == 0 {
      // No second best in this run: the point was never reached (nothing to check).
      Issue.record("the run never reached \(point)")
      return
    }
    #expect(killed.code == 9, "killed by SIGKILL at \(point): \(killed.code) \(killed.stderr.suffix(300))")
    let file = String(point.dropFirst("before-rename:".count).prefix { $0 != "#" })
    #expect(fm.fileExists(atPath: "\(run)/\(file).tmp"), "the kill left \(file).tmp")
    if !fm.fileExists(atPath: run + "/config.yaml") {
      // Killed before the run existed: it starts as new, without --overwrite.
      #expect(try CLI.run(["train", config, "output.dir=\(run)"]).code == 0)
    } else if fm.fileExists(atPath: run + "/last.h5") {
      let last = try Checkpoint.load(run + "/last.h5").progress!
      let best = try Checkpoint.load(run + "/best.h5").progress!
      #expect(best.globalStep >= last.bestStep!, "best.h5 at step \(best.globalStep), last.h5 says \(last.bestStep!)")
      let resumed = try CLI.run(["train", config, "output.dir=\(run)", "--resume"])
      #expect(resumed.code == 0, "\(resumed.stderr)")
    } else {
      let again = try CLI.run(["train", config, "output.dir=\(run)", "--resume"])
      #expect(again.code == 66 && again.stderr.contains("--overwrite"))
      #expect(try CLI.run(["train", config, "output.dir=\(run)", "--overwrite"]).code == 0)
    }
    #expect(!(try fm.contentsOfDirectory(atPath: run)).contains { $0.hasSuffix(".tmp") })
    for name in ["last.h5", "best.h5"] {
      let a = try Checkpoint.load("\(ws.dir)/whole/\(name)")
      let b = try Checkpoint.load("\(run)/\(name)")
      #expect(a.progress!.globalStep == b.progress!.globalStep && a.progress!.bestStep == b.progress!.bestStep)
      for p in a.model.parameters.all {
        #expect(p.value.array == b.model.parameters[p.name]!.value.array, "\(name) \(p.name)")
      }
    }
  }

  /// A second `train` on a run directory in use, fresh or `--resume`, is refused at once
  /// (73) naming the holder; SIGTERM, as a scheduler sends it, saves and exits 143; the
  /// lock dies with its holder, so the run then resumes.
  @Test func oneProcessPerRunDirectoryAndSIGTERM() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let (p, err, started) = try CLI.startTraining(config, until: "step 3/")
    var seen = started
    for extra in [["--overwrite"], ["--resume"], []] {
      let second = try CLI.run(["train", config, "train.steps=1000000"] + extra)
      #expect(
        second.code == 73 && second.stderr.contains("another layercollapse process"), "\(extra): \(second.stderr)")
      #expect(second.stderr.contains("process \(p.processIdentifier)"), "names the holder: \(second.stderr)")
    }
    seen += CLI.interrupt(p, reading: err, terminate: true)
    #expect(p.terminationStatus == 143, "\(seen.suffix(400))")
    #expect(seen.contains("SIGTERM") && seen.contains("--resume"))
    let saved = try Checkpoint.load(ws.dir + "/run/last.h5")
    #expect(saved.progress!.globalStep >= 3)
    let resumed = try CLI.run([
      "train", config, "train.steps=1000000", "log.every=1", "--resume", "--stop-after",
      "\(saved.progress!.globalStep + 1)",
    ])
    #expect(resumed.code == 130 && resumed.stderr.contains("resuming at step"), "\(resumed.stderr)")
  }

  /// A run that diverges stops with exit 70 naming the step, applies no non-finite update,
  /// keeps the last good checkpoint, and every JSON it wrote parses.
  @Test func divergenceStopsTheRunAndKeepsTheLastGoodCheckpoint() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    // The decoupled pull α ← α − 2·lr·λ·(α − 1) overshoots by a factor |1 − 2·lr·λ| = 5999
    // a step when 2·lr·λ > 2: α passes the float range within a dozen steps.
    let r = try CLI.run(["train", config, "lc.mode=decoupled", "lc.lambda=1000000", "train.epochs=50"])
    #expect(r.code == 70 && r.stderr.contains("training diverged at step"), "\(r.code) \(r.stderr.suffix(500))")
    #expect(!r.stderr.contains("EncodingError"))
    if FileManager.default.fileExists(atPath: ws.dir + "/run/last.h5") {
      let kept = try Checkpoint.load(ws.dir + "/run/last.h5")  // loads: every weight finite
      #expect(r.stderr.contains("last.h5 (step \(kept.progress!.globalStep)) is kept"), "\(r.stderr)")
    }
    let lines = try String(contentsOfFile: ws.dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "\(line)") }
  }

  /// JSON has no NaN or infinity: they are written as strings and read back.
  @Test func nonFiniteNumbersInJSON() throws {
    let ws = try Workspace()
    let record = EvalRecord(
      checkpoint: "x.h5", architecture: Architecture(config: Fixtures.config(.vit)),
      metrics: Metrics(examples: 3, loss: .infinity, accuracy: .nan, accuracyStandardError: 0, examplesPerSecond: 1),
      step: 1)
    try record.write(to: ws.dir + "/e.json")
    let text = try String(contentsOfFile: ws.dir + "/e.json", encoding: .utf8)
    #expect(text.contains("\"Infinity\"") && text.contains("\"NaN\""))
    let back = try EvalRecord.read(ws.dir + "/e.json")
    #expect(back.metrics.loss == .infinity && back.metrics.accuracy.isNaN)
  }

  /// `data.train_limit` holds for a text corpus too: the first N windows of the training
  /// split (N·T + 1 tokens), so an epoch is N windows and batches come from that stretch.
  @Test func trainLimitHoldsForACorpus() throws {
    let ws = try Workspace()
    let path = try ws.config("g.yaml", Workspace.gpt)
    func data(_ overrides: [String]) throws -> TaskData {
      var tree = try ConfigTree.load(path: path)
      _ = try tree.apply(try ConfigOverride.parse(overrides))
      return try TaskLoader.load(try RunSettings.decode(tree).settings.data).0
    }
    let all = try data([])
    let limited = try data(["data.train_limit=3"])
    #expect(all.trainCount == 1674)  // 90 % of the 1,860-character corpus
    #expect(limited.trainCount == 3 * 16 + 1 && limited.stepsPerEpoch(batchSize: 1) == 3)
    #expect(limited.evalCount == all.evalCount)
  }
}

/// A small tmpfs the tests can fill up, to see what a full disk does. Mounting needs root
/// (CI runs as root); elsewhere the suite is skipped and says why.
final class SmallFileSystem {
  let path: String

  /// Whether this process may mount one (root, and a kernel that lets it).
  static let available: Bool = {
    guard getuid() == 0, let fs = try? SmallFileSystem(kilobytes: 64) else { return false }
    _ = fs
    return true
  }()

  init(kilobytes: Int) throws {
    path = NSTemporaryDirectory() + "lc-full-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/mount")
    p.arguments = ["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", path]
    p.standardError = Pipe()
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      try? FileManager.default.removeItem(atPath: path)
      throw CocoaError(.fileWriteNoPermission)
    }
  }

  deinit {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/umount")
    p.arguments = [path]
    try? p.run()
    p.waitUntilExit()
    try? FileManager.default.removeItem(atPath: path)
  }

  /// Fills the file system with a filler file until only about `bytes` are left.
  func fill(leaving bytes: Int) throws {
    var s = statvfs()
    guard statvfs(path, &s) == 0 else { throw CocoaError(.fileReadUnknown) }
    let free = Int(s.f_bavail) * Int(s.f_frsize)
    let filler = max(0, free - bytes)
    #expect(
      FileManager.default.createFile(atPath: path + "/filler-" + UUID().uuidString, contents: Data(count: filler)),
      "could not create a test file")
  }
}

@Suite(.enabled(if: SmallFileSystem.available, "needs root to mount a small tmpfs (CI runs as root)"))
struct DiskFullTests {
  /// A full disk while writing a checkpoint, a JSON record, a config or a report: exit 74
  /// naming the file, the previous file intact, no temporary file left behind (and no
  /// crash inside libhdf5, which builds the file in memory).
  @Test func fullDiskExits74AndKeepsThePreviousFiles() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    let fs = try SmallFileSystem(kilobytes: 1024)
    let fm = FileManager.default
    // A run directory on the small file system, stopped early, to resume there.
    let run = fs.path + "/run"
    let stopped = try CLI.run(["train", config, "output.dir=\(run)", "--stop-after", "5"])
    #expect(stopped.code == 130, "\(stopped.stderr)")
    let before = try Data(contentsOf: URL(fileURLWithPath: run + "/last.h5"))
    try fs.fill(leaving: 24 * 1024)  // the logs fit, a checkpoint (~170 KB) does not

    let resumed = try CLI.run(["train", config, "output.dir=\(run)", "--resume"])
    #expect(resumed.code == 74 && resumed.stderr.contains("disk full"), "\(resumed.stderr)")
    #expect(resumed.stderr.contains(run + "/best.h5") || resumed.stderr.contains(run + "/last.h5"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: run + "/last.h5")) == before)
    _ = try Checkpoint.load(run + "/last.h5")

    let trained = ws.dir + "/run/last.h5"
    let collapsed = try CLI.run(["collapse", trained, "-o", fs.path + "/c.h5"])
    #expect(collapsed.code == 74 && collapsed.stderr.contains(fs.path + "/c.h5"), "\(collapsed.stderr)")
    try fs.fill(leaving: 0)
    let json = try CLI.run(["eval", trained, "-o", fs.path + "/e.json"])
    #expect(json.code == 74 && json.stderr.contains(fs.path + "/e.json"), "\(json.stderr)")
    let fresh = try CLI.run(["train", config, "output.dir=\(fs.path)/new"])
    #expect(fresh.code == 74 && fresh.stderr.contains("config.yaml"), "\(fresh.stderr)")
    let report = try CLI.run(["report", ws.dir + "/run", "-o", fs.path + "/report"])
    #expect(report.code == 74 && report.stderr.contains(fs.path + "/report"), "\(report.stderr)")
    for dir in [fs.path, run] {
      let names = try fm.contentsOfDirectory(atPath: dir)
      #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(dir): \(names)")
    }
  }
}

/// `train --overwrite` removes what the earlier run left that `report` would read as the
/// new run's (its collapse, the records made from its checkpoints), keeps the user's own
/// files and the checkpoint the new run starts from, and says what it removed.
@Suite struct OverwriteTests {
  @Test func overwriteRemovesTheEarlierRunsRecords() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    let run = ws.dir + "/run"
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    #expect(try CLI.run(["collapse", run + "/last.h5", "--force", "1"]).code == 0)
    try FileManager.default.copyItem(atPath: run + "/last.h5", toPath: run + "/start.h5")
    #expect(try CLI.run(["eval", run + "/collapsed.h5"]).code == 0)
    try "mine".write(toFile: run + "/notes.txt", atomically: true, encoding: .utf8)
    try "text".write(toFile: run + "/last.sample.txt", atomically: true, encoding: .utf8)
    let before = try FileManager.default.contentsOfDirectory(atPath: run)
    #expect(before.contains("collapsed.json") && before.contains("collapsed.eval.json") && before.contains("eval.json"))
    // A bad config removes nothing: the new run is checked before anything goes.
    let bad = try CLI.run(["train", config, "data.path=absent", "--overwrite"])
    #expect(bad.code == 66 || bad.code == 78, "\(bad.stderr)")
    #expect(Set(try FileManager.default.contentsOfDirectory(atPath: run)) == Set(before))
    let again = try CLI.run([
      "train", config, "train.epochs=1", "lc.lambda=0.5", "train.init_from=\(run)/start.h5", "--overwrite",
      "--stop-after", "1",
    ])
    #expect(again.code == 0 || again.code == 130, "\(again.stderr)")
    let after = Set(try FileManager.default.contentsOfDirectory(atPath: run))
    for gone in ["collapsed.h5", "collapsed.json", "collapsed.eval.json", "eval.json", "last.sample.txt", "best.h5"] {
      #expect(!after.contains(gone), "\(gone) left: \(after.sorted())")
    }
    #expect(after.contains("notes.txt") && after.contains("start.h5"), "\(after.sorted())")
    let note = again.stdout + again.stderr
    #expect(note.contains("--overwrite removed the earlier run's") && note.contains("collapsed.json"), "\(note)")
  }
}

/// A sweep stopped in its first point goes on with `--resume`: the stopped point continues
/// and the point never started starts (it was "nothing to resume", 66).
@Suite struct SweepResumeTests {
  @Test func resumedSweepStartsThePointsNotYetRun() throws {
    let ws = try Workspace()
    let config = try ws.config("s.yaml", Workspace.vit + "sweep:\n  lc.lambda: [0.5, 1]\n")
    let stopped = try CLI.run(["train", config, "train.epochs=1", "--stop-after", "2"])
    #expect(stopped.code == 130, "\(stopped.stderr)")
    let fm = FileManager.default
    #expect(fm.fileExists(atPath: ws.dir + "/run/lc.lambda=0.5/last.h5"))
    #expect(!fm.fileExists(atPath: ws.dir + "/run/lc.lambda=1"))
    let resumed = try CLI.run(["train", config, "train.epochs=1", "--resume"])
    #expect(resumed.code == 0, "\(resumed.stderr)")
    #expect(resumed.stderr.contains("sweep point lc.lambda=1 was not started: starting it"), "\(resumed.stderr)")
    for point in ["lc.lambda=0.5", "lc.lambda=1"] {
      #expect(fm.fileExists(atPath: ws.dir + "/run/\(point)/eval.json"), "\(point)")
    }
  }

  /// `--overwrite` stopped in the first point leaves the later points holding the earlier
  /// sweep's runs (replaced only when each starts): `--resume` starts those again, instead
  /// of refusing them as runs of another config (78), and the list of them goes at the end.
  @Test func overwriteStoppedMidSweepResumes() throws {
    let ws = try Workspace()
    let config = try ws.config("s.yaml", Workspace.vit + "sweep:\n  lc.lambda: [0.5, 1]\n")
    // An override of the swept key would change nothing: refused by validate and train alike.
    for command in ["validate", "train"] {
      let r = try CLI.run([command, config, "lc.lambda=3"])
      #expect(
        r.code == 78 && r.stderr.contains("override `lc.lambda=3` sets a key the sweep varies")
          && r.stderr.contains("sweep.lc.lambda=[3]"), "\(command): \(r.stderr)")
    }
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    let stopped = try CLI.run(["train", config, "train.epochs=1", "train.lr=5e-4", "--overwrite", "--stop-after", "2"])
    #expect(stopped.code == 130, "\(stopped.stderr)")
    let pending = ws.dir + "/run/" + SweepOverwrite.fileName
    #expect(try String(contentsOfFile: pending, encoding: .utf8) == "lc.lambda=1\n")
    let resumed = try CLI.run(["train", config, "train.epochs=1", "train.lr=5e-4", "--resume"])
    #expect(resumed.code == 0, "\(resumed.stderr)")
    #expect(
      resumed.stderr.contains("sweep point lc.lambda=1: the stopped --overwrite had not replaced it"),
      "\(resumed.stderr)")
    for point in ["lc.lambda=0.5", "lc.lambda=1"] {
      let text = try String(contentsOfFile: ws.dir + "/run/\(point)/config.yaml", encoding: .utf8)
      #expect(text.contains("lr: 0.0005"), "\(point): \(text)")
    }
    #expect(!FileManager.default.fileExists(atPath: pending))
    // A value taken out of the sweep: its run stays, and the sweep says so once.
    let fewer = try ws.config("f.yaml", Workspace.vit + "sweep:\n  lc.lambda: [0.5]\n")
    let narrowed = try CLI.run(["train", fewer, "train.epochs=1", "train.lr=5e-4", "--resume"])
    #expect(
      narrowed.code == 0 && narrowed.stderr.contains("also holds lc.lambda=1, not in this sweep's values"),
      "\(narrowed.stderr)")
    #expect(FileManager.default.fileExists(atPath: ws.dir + "/run/lc.lambda=1/eval.json"))
  }

  /// A point killed before its first checkpoint (config.yaml and logs, no last.h5) has
  /// nothing to resume and nothing to lose: `--resume` starts it again instead of stopping
  /// the whole sweep with 66, and the finished point stands untouched.
  @Test func pointStoppedBeforeItsFirstCheckpointStartsAgain() throws {
    let ws = try Workspace()
    let config = try ws.config("s.yaml", Workspace.vit + "sweep:\n  lc.lambda: [0.5, 1]\n")
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    let fm = FileManager.default
    let finished = try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/lc.lambda=0.5/last.h5"))
    for name in ["last.h5", "best.h5", "eval.json"] { try? fm.removeItem(atPath: ws.dir + "/run/lc.lambda=1/" + name) }
    #expect(fm.fileExists(atPath: ws.dir + "/run/lc.lambda=1/config.yaml"))
    let resumed = try CLI.run(["train", config, "train.epochs=1", "--resume"])
    #expect(resumed.code == 0, "\(resumed.stderr)")
    #expect(
      resumed.stderr.contains("sweep point lc.lambda=1 stopped before its first checkpoint: starting it again"),
      "\(resumed.stderr)")
    #expect(fm.fileExists(atPath: ws.dir + "/run/lc.lambda=1/eval.json"))
    #expect(try Data(contentsOf: URL(fileURLWithPath: ws.dir + "/run/lc.lambda=0.5/last.h5")) == finished)
  }
}

/// A checkpoint whose stored architecture, vocabulary or optimizer state no run could have
/// written (a damaged or edited file) is bad data at load, naming what is wrong: each of
/// these trapped or aborted in the build or the forward pass, or hung.
@Suite struct DamagedCheckpointTests {
  static func saved(_ kind: ModelKind, _ dir: String, vocabulary: Vocabulary? = nil, step: Int? = nil) throws -> String
  {
    let model = ModelRegistry.build(Architecture(config: Fixtures.config(kind)), seed: 1)
    var optimizer: OptimizerState? = nil
    if let s = step {
      optimizer = OptimizerState(model.parameters)
      optimizer?.step = s
    }
    let path = dir + "/\(kind.rawValue).h5"
    try Checkpoint(model: model, configText: "", vocabulary: vocabulary, optimizer: optimizer).save(to: path)
    return path
  }

  @Test func impossibleArchitecturesAreBadData() throws {
    let dir = NSTemporaryDirectory() + "lc-damaged-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let cases: [(ModelKind, String, String, String)] = [
      (.encoder, "\"heads\":2", "\"heads\":3", "heads 3 do not divide d_model 8"),
      (.bert, "\"heads\":2", "\"heads\":3", "heads 3 do not divide"),
      (.mixer, "\"token_mlp_hidden\":12", "\"token_mlp_hidden\":-8", "token_mlp_hidden -8 outside"),
      (.vgg, "\"pooled_size\":", "\"pooled_size\":-", "pooled_size -"),
      (.gpt, "\"vocab_size\":", "\"vocab_size\":11258999068426", "vocab_size 11258999068426"),
      (.encoder, "\"layer_norm_epsilon\":", "\"layer_norm_epsilon\":-", "layer_norm_eps -"),
    ]
    for (kind, from, to, expected) in cases {
      let path = try Self.saved(kind, dir)
      try rewrite(path) { g in
        let json = try g.readString(at: "/meta/architecture")
        #expect(json.contains(from), "\(kind): \(json)")
        try g.writeString(json.replacingOccurrences(of: from, with: to), at: "/meta/architecture")
      }
      do {
        _ = try Checkpoint.load(path)
        Issue.record("\(kind) \(to): loaded")
      } catch let e as LCError {
        #expect(e.exitCode == 65 && e.description.contains("stored architecture is inconsistent"), "\(e)")
        #expect(e.description.contains(expected), "\(kind): \(e)")
      }
    }
  }

  /// A stored run whose data.max_len exceeds the model's (an edited file; eval refuses the
  /// override itself) is a config error before any data is read: the data path here does
  /// not exist, and the message is about the length, not the missing file.
  @Test func sequencesLongerThanTheModelReads() throws {
    let dir = NSTemporaryDirectory() + "lc-damaged-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ckpt = try Checkpoint.load(try Self.saved(.encoder, dir))
    let text =
      "data:\n  task: sst2\n  path: \(dir)/none\n  max_len: 7\nmodel:\n  kind: encoder\noutput:\n  dir: \(dir)/r\n"
    let settings = try RunSettings.decode(try ConfigTree.parse(text, file: "c.yaml")).settings
    do {
      _ = try ckpt.loadData(settings.data)
      Issue.record("data.max_len 7 for a model of 6 positions: loaded")
    } catch let e as LCError {
      #expect(e.exitCode == 78 && e.description.contains("data.max_len"), "\(e)")
      #expect(e.description.contains("expected at most 6 tokens, got 7"), "\(e)")
    }
  }

  /// Stored architectures whose per-unit lists agree with their sizes, and that still ask
  /// what no run wrote: a VGG head of one junction (its groups index two), 1-channel
  /// images (every image task is RGB), a Mixer whose collapsed token MLPs are 16384 × 16384
  /// linears (256 of them: ~256 GiB that the uncollapsed estimate missed).
  @Test func architecturesBeyondWhatRunsWrite() throws {
    let dir = NSTemporaryDirectory() + "lc-damaged-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let cases: [(ModelKind, String, (inout [String: Any]) -> Void, Int, String)] = [
      (
        .vgg, "layers 1 (a VGG head has 2 junctions)",
        { a in
          var c = a["config"] as! [String: Any]
          c["layers"] = 1
          a["config"] = c
          for key in ["activations", "collapsed", "approximate"] { a[key] = Array((a[key] as! [Any]).prefix(1)) }
        }, 65, "stored architecture is inconsistent"
      ),
      (
        .vit, "image_channels 1 outside 3…3",
        { a in
          var c = a["config"] as! [String: Any]
          c["image_channels"] = 1
          a["config"] = c
        }, 65, "stored architecture is inconsistent"
      ),
      (
        .mixer, "GiB",
        { a in
          var c = a["config"] as! [String: Any]
          (c["layers"], c["image_size"], c["patch_size"], c["token_mlp_hidden"]) = (256, 128, 1, 1)
          a["config"] = c
          a["activations"] = [Any](repeating: (a["activations"] as! [Any])[0], count: 512)
          a["collapsed"] = (0..<512).map { $0 % 2 == 0 }  // the token MLPs
          a["approximate"] = [Bool](repeating: false, count: 512)
        }, 65, "too large for this machine's memory"
      ),
    ]
    for (kind, expected, edit, code, what) in cases {
      let path = try Self.saved(kind, dir)
      try rewrite(path) { g in
        let json = try g.readString(at: "/meta/architecture")
        var object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        edit(&object)
        let edited = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        try g.writeString(edited, at: "/meta/architecture")
      }
      for read in [{ _ = try Checkpoint.load(path) }, { _ = try Checkpoint.architecture(path) }] {
        do {
          try read()
          if what.contains("memory") { continue }  // the architecture alone is readable
          Issue.record("\(kind) \(expected): read")
        } catch let e as LCError {
          #expect(e.exitCode == code && e.description.contains(what), "\(kind): \(e)")
          #expect(e.description.contains(expected), "\(kind): \(e)")
        }
      }
    }
  }

  /// A Hugging Face directory whose tensors have the right count of rows but not the right
  /// shape: BERT's query, key and value stack into one product, and a value one column
  /// short (query's trailing axes, summed rows right) is refused, not stacked into a
  /// wrongly sized buffer.
  @Test func importedTensorsThatDoNotStack() throws {
    let dir = NSTemporaryDirectory() + "lc-damaged-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let exported = try CLI.run(["export", try Self.saved(.bert, dir), "-o", dir + "/hf", "--format", "hf"])
    #expect(exported.code == 0, "\(exported.stderr)")
    let file = try SafeTensorsFile(path: dir + "/hf/model.safetensors")
    let value = try #require(file.names.first { $0.hasSuffix("encoder.layer.0.attention.self.value.weight") })
    #expect(try file.tensor(value).shape == [8, 8])
    let tensors = try file.names.map { name in
      (name: name, tensor: name == value ? Tensor([8, 7]) : try file.tensor(name))
    }
    try SafeTensorsFile.write(tensors, to: dir + "/hf/model.safetensors")
    let r = try CLI.run(["import", dir + "/hf", "-o", dir + "/x.h5", "--task", "sst2"])
    #expect(r.code == 65 && r.stderr.contains("does not fit"), "\(r.stderr)")
    #expect(r.stderr.contains("[8, 8] + [8, 8] + [8, 7]"), "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/x.h5"))
  }

  @Test func vocabularyAndOptimizerStateOutOfRange() throws {
    let dir = NSTemporaryDirectory() + "lc-damaged-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // The encoder fixture's embedding has 11 rows: 12 words would index past it.
    let words = try Tokenizer(tokens: Tokenizer.reservedTokens + (0..<8).map { "w\($0)" })
    #expect(words.count == 12)
    let long = try Self.saved(.encoder, dir, vocabulary: .words(words))
    do {
      _ = try Checkpoint.load(long)
      Issue.record("a vocabulary longer than the embedding loaded")
    } catch let e as LCError {
      #expect(e.exitCode == 65 && e.description.contains("more token ids than the model's embedding has rows"), "\(e)")
    }
    // A stored image normalization with a zero deviation: the file's fault (65), though the
    // same numbers given as data.std would be a config error (78).
    let vit = try Self.saved(
      .vit, dir, vocabulary: .imageNormalization(ChannelStats(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])))
    try rewrite(vit) { g in
      let json = try g.readString(at: "/meta/vocabulary")
      #expect(json.contains("0.25"), "\(json)")
      try g.writeString(json.replacingOccurrences(of: "0.25", with: "0"), at: "/meta/vocabulary")
    }
    do {
      _ = try Checkpoint.load(vit)
      Issue.record("a zero standard deviation loaded")
    } catch let e as LCError {
      #expect(e.exitCode == 65 && e.description.contains("invalid normalization"), "\(e)")
    }
    for step in [-5, 1 << 62] {
      let path = try Self.saved(.gpt, dir, step: step)
      do {
        _ = try Checkpoint.load(path)
        Issue.record("step \(step): loaded")
      } catch let e as LCError {
        #expect(e.exitCode == 65 && e.description.contains("optimizer's step count is out of range"), "\(e)")
      }
    }
  }
}

/// Checkpoints edited with h5py into shapes our writer never makes: a group linked into
/// itself (listing it would recurse without end) and an optimizer step count stored as a
/// chunked dataset of 2⁶² values (a few bytes on disk; reading it whole would allocate
/// 32 EiB). Both are bad data naming the dataset, refused before anything is read.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch venv (h5py) not found: run `make torch-env`"))
struct CraftedHDF5Tests {
  static let edit = """
    import sys, h5py
    path, what = sys.argv[1], sys.argv[2]
    with h5py.File(path, "r+") as f:
        if what == "cycle":
            f["params/loop"] = f["params"]
        else:
            del f["optimizer/step"]
            f.create_dataset("optimizer/step", shape=(2**62,), chunks=(1,), dtype="i8")
    """

  @Test func linkCyclesAndHugeExtentsAreBadData() throws {
    let dir = NSTemporaryDirectory() + "lc-crafted-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (what, expected) in [
      ("cycle", "groups nested deeper than 32 levels"), ("huge", "dataset holds more values than expected"),
    ] {
      let path = try DamagedCheckpointTests.saved(.gpt, dir, step: 3)
      let r = try Parity.run(Parity.python, ["-c", Self.edit, path, what])
      try #require(r.code == 0, "h5py could not edit the file: \(r.output)")
      let inspect = try CLI.run(["inspect", path])
      #expect(inspect.code == 65 && inspect.stderr.contains(expected), "\(what): \(inspect.stderr)")
    }
  }
}
