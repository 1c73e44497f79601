import LayerCollapse
import Testing

@Suite struct ConfigSweepTests {
  @Test func expandsTheCartesianProductFirstKeySlowest() throws {
    let text: String = """
      model:
        layers: 2
        activation: gelu
      lc:
        lambda: 0.01
      sweep:
        lc.lambda: [0, 0.1, 1]   # three strengths
        model.activation: [gelu, relu]
      """
    let tree: ConfigTree = try ConfigTree.parse(text, file: "s.yaml")
    let points: [SweepPoint] = try tree.expandSweep()
    #expect(
      points.map(\.name) == [
        "lc.lambda=0,model.activation=gelu", "lc.lambda=0,model.activation=relu",
        "lc.lambda=0.1,model.activation=gelu", "lc.lambda=0.1,model.activation=relu",
        "lc.lambda=1,model.activation=gelu", "lc.lambda=1,model.activation=relu",
      ])
    let p: SweepPoint = points[3]
    #expect(p.tree.value("lc.lambda") == .double(0.1))
    #expect(p.tree.value("model.activation") == .string("relu"))
    #expect(p.tree.value("model.layers") == .int(2))
    #expect(p.tree.section("sweep") == nil)
    #expect(p.tree.valuePaths == ["model.layers", "model.activation", "lc.lambda"])
    #expect(p.tree.entry("lc.lambda")?.location.description == "s.yaml:7")
    #expect(p.settings.map(\.description) == ["lc.lambda = 0.1 (was 0.01)", "model.activation = relu (was gelu)"])
    // Each point is a complete config that a reader accepts.
    let reader: ConfigReader = ConfigReader(p.tree)
    _ = reader.int("model.layers")
    _ = reader.string("model.activation")
    _ = reader.double("lc.lambda")
    try reader.finish()
  }

  @Test func singleKeySweepNamesArePlain() throws {
    let tree: ConfigTree = try ConfigTree.parse("lc:\n  lambda: 0\nsweep:\n  lc.lambda: [0, 0.1, 1]\n", file: "s.yaml")
    #expect(try tree.expandSweep().map(\.name) == ["lc.lambda=0", "lc.lambda=0.1", "lc.lambda=1"])
  }

  /// A path value's "/" would nest the point's directory (and `report` would find no run
  /// there): it is spelled %2F, so each point is one directory below output.dir.
  @Test func pathValuesNameOneDirectory() throws {
    let tree: ConfigTree = try ConfigTree.parse(
      "output:\n  dir: runs/s\ndata:\n  root: d\nsweep:\n  data.root: [/data/a, b]\n", file: "s.yaml")
    let points = try tree.expandSweep()
    #expect(points.map(\.name) == ["data.root=%2Fdata%2Fa", "data.root=b"])
    #expect(try points[0].runTree().value("output.dir") == .string("runs/s/data.root=%2Fdata%2Fa"))
    #expect(try points[0].runTree().value("data.root") == .string("/data/a"))
  }

  /// Each named point trains in a directory of its own below output.dir, as `train` runs
  /// it and `validate` shows it; sweeping output.dir itself is refused.
  @Test func pointsRunBelowOutputDir() throws {
    let tree: ConfigTree = try ConfigTree.parse(
      "output:\n  dir: runs/s\nlc:\n  lambda: 0\nsweep:\n  lc.lambda: [0, 0.1]\n", file: "s.yaml")
    let dirs = try tree.expandSweep().map { try $0.runTree().value("output.dir") }
    #expect(dirs == [.string("runs/s/lc.lambda=0"), .string("runs/s/lc.lambda=0.1")])
    let plain: ConfigTree = try ConfigTree.parse("output:\n  dir: runs/s\n", file: "p.yaml")
    #expect(try plain.expandSweep()[0].runTree() == plain)
    let swept: ConfigTree = try ConfigTree.parse(
      "output:\n  dir: runs/s\nsweep:\n  output.dir: [a, b]\n", file: "o.yaml")
    var messages: [String] = []
    do { _ = try swept.expandSweep() } catch let error as LCError { messages = error.details.map(\.message) }
    #expect(
      messages.contains { $0.contains("sweep key `output.dir` is not swept") && $0.contains("o.yaml:4") }, "\(messages)"
    )
  }

  @Test func treeWithoutSweepIsOnePoint() throws {
    let tree: ConfigTree = try ConfigTree.parse("a: 1\n", file: "s.yaml")
    let points: [SweepPoint] = try tree.expandSweep()
    #expect(points.count == 1)
    #expect(points[0].name == "")
    #expect(points[0].tree == tree)
  }

  @Test func sweepErrorsAreAllReported() throws {
    let text: String = """
      lc:
        lambda: 0.1
      model:
        layers: 2
      sweep:
        lc.lamda: [0, 1]
        model: [1, 2]
        model.layers: 3
        lc.lambda: []
        other.key: [1]
      """
    let tree: ConfigTree = try ConfigTree.parse(text, file: "s.yaml")
    var messages: [String] = []
    do {
      _ = try tree.expandSweep()
    } catch let error as LCError {
      messages = error.details.map(\.message)
    }
    #expect(
      messages == [
        "s.yaml:6: sweep key `lc.lamda` is not a key of the config; expected a key set in the config file."
          + " Did you mean `lc.lambda`?",
        "s.yaml:7: sweep key `model` names a section, not a value; expected a key set in the config file",
        "s.yaml:8: sweep key `model.layers` needs a list of values; expected a flow list, e.g. `model.layers: [0, 0.1, 1]`",
        "s.yaml:9: sweep key `lc.lambda` has no values; expected a non-empty list",
        "s.yaml:10: sweep key `other.key` is not a key of the config; expected a key set in the config file",
      ])
  }

  /// A sweep of more points than anyone runs (here 10,201 and 101³ = 1,030,301) is refused
  /// before a tree is built, naming the section and each key's count; 10,000 still expands.
  @Test func aSweepOfTooManyPointsIsRefused() throws {
    func sweep(_ counts: [Int]) throws -> ConfigTree {
      var text = "a: 0\nb: 0\nc: 0\nsweep:\n"
      for (key, n) in zip(["a", "b", "c"], counts) {
        text += "  \(key): [\((0..<n).map(String.init).joined(separator: ", "))]\n"
      }
      return try ConfigTree.parse(text, file: "big.yaml")
    }
    #expect(try sweep([100, 100]).expandSweep().count == ConfigTree.maxSweepPoints)
    for (counts, got) in [([101, 101], "10201 (101 × 101)"), ([101, 101, 101], "1030301 (101 × 101 × 101)")] {
      var messages: [String] = []
      do { _ = try sweep(counts).expandSweep() } catch let error as LCError { messages = error.details.map(\.message) }
      #expect(
        messages.count == 1
          && messages[0].hasPrefix("big.yaml:4: the sweep has too many points; expected at most 10000 runs, got \(got)"),
        "\(messages)")
    }
  }

  /// A sweep key written as nested sections is shown in the dotted form a sweep takes.
  @Test func nestedSweepKeyShowsTheDottedForm() throws {
    let tree = try ConfigTree.parse("lc:\n  lambda: 0.1\nsweep:\n  lc:\n    lambda: [1, 2]\n", file: "n.yaml")
    var messages: [String] = []
    do { _ = try tree.expandSweep() } catch let error as LCError { messages = error.details.map(\.message) }
    #expect(messages.count == 1 && messages[0].contains("`lc.lambda: [...] (dotted, one line"), "\(messages)")
  }

  /// A key the file leaves at its default may be swept too, as an override may set it; a
  /// misspelt one is still an error with a suggestion among every setting.
  @Test func sweepsKeysLeftAtTheirDefaults() throws {
    let text =
      "model:\n  kind: encoder\ndata:\n  task: sst2\noutput:\n  dir: runs/x\nsweep:\n  train.lr: [1e-3, 3e-3]\n"
    let tree = try ConfigTree.parse(text, file: "s.yaml")
    let keys = RunSettings.settingKeys(of: tree)
    #expect(keys.contains("train.lr") && keys.contains("lc.lambda") && !keys.contains("sweep.train.lr"))
    let points = try tree.expandSweep(settingKeys: keys)
    #expect(points.map(\.name) == ["train.lr=0.001", "train.lr=0.003"])
    #expect(try RunSettings.decode(points[1].tree).settings.train.optimizer.learningRate == 3e-3)
    #expect(throws: LCError.self) { try tree.expandSweep() }  // without the settings' keys: only the file's
    let typo = try ConfigTree.parse(text.replacingOccurrences(of: "train.lr:", with: "train.lrr:"), file: "s.yaml")
    do {
      _ = try typo.expandSweep(settingKeys: RunSettings.settingKeys(of: typo))
      Issue.record("a misspelt sweep key was accepted")
    } catch let error as LCError {
      #expect(
        error.details.map(\.message) == [
          "s.yaml:8: sweep key `train.lrr` is not a key of the config; expected a setting's key. Did you mean `train.lr`?"
        ])
    }
  }

  @Test func repeatedValuesAndNonSectionSweepAreErrors() throws {
    let repeated: ConfigTree = try ConfigTree.parse("a: 1\nsweep:\n  a: [1, 2, 1]\n", file: "s.yaml")
    #expect(throws: LCError.self) { try repeated.expandSweep() }
    // The same number written two ways is one value too (two identical runs otherwise).
    for list in ["[1, 1.0]", "[0.1, 1e-1]", "[100, 1e2]"] {
      let spelled: ConfigTree = try ConfigTree.parse("a: 1\nsweep:\n  a: \(list)\n", file: "s.yaml")
      #expect(throws: LCError.self, "\(list)") { try spelled.expandSweep() }
    }
    let distinct: ConfigTree = try ConfigTree.parse("a: 1\nsweep:\n  a: [1, 1.5, x]\n", file: "s.yaml")
    #expect(try distinct.expandSweep().count == 3)
    let flat: ConfigTree = try ConfigTree.parse("a: 1\nsweep: [1, 2]\n", file: "s.yaml")
    #expect(throws: LCError.self) { try flat.expandSweep() }
  }

  @Test func dottedKeysOnlyUnderTopLevelSweep() {
    #expect(throws: LCError.self) { try ConfigTree.parse("a:\n  sweep:\n    b.c: [1]\n", file: "s.yaml") }
    #expect(throws: LCError.self) { try ConfigTree.parse("sweep:\n  b..c: [1]\n", file: "s.yaml") }
  }
}
