import LayerCollapse
import Testing

private func finishMessages(_ reader: ConfigReader) -> [String] {
  badConfigMessages { try reader.finish() }
}

@Suite struct ConfigReaderTests {
  @Test func readsTypedValuesAndDefaults() throws {
    let text: String = """
      model:
        layers: 4
        d_model: 64
        activation: gelu
        bias: false
      train:
        lr: 3e-4
        steps: 1e4
        warmup: 10
        betas: [0.9, 0.999]
        widths: [1, 2]
        splits: [train, valid]
      """
    let reader: ConfigReader = ConfigReader(try ConfigTree.parse(text, file: "r.yaml"))
    #expect(reader.int("model.layers", default: 2, range: 1...64) == 4)
    #expect(reader.int("model.d_model") == 64)
    #expect(reader.string("model.activation", oneOf: ["gelu", "relu", "prelu"]) == "gelu")
    #expect(reader.bool("model.bias", default: true) == false)
    #expect(reader.double("train.lr", range: 0...1) == 3e-4)
    #expect(reader.int("train.steps") == 10_000)
    #expect(reader.double("train.warmup") == 10)
    #expect(reader.doubles("train.betas", range: 0...1) == [0.9, 0.999])
    #expect(reader.ints("train.widths") == [1, 2])
    #expect(reader.doubles("train.widths") == [1, 2])
    #expect(reader.strings("train.splits", oneOf: ["train", "valid", "test"]) == ["train", "valid"])
    #expect(reader.int("model.heads", default: 4) == 4)
    #expect(reader.string("data.path", default: "data/tiny.txt") == "data/tiny.txt")
    #expect(reader.contains("model.layers"))
    #expect(!reader.contains("model.heads"))
    try reader.finish()
    // Defaults that were used are filled into the resolved tree, after the file's keys.
    #expect(reader.resolved.value("model.heads") == .int(4))
    #expect(reader.resolved.value("data.path") == .string("data/tiny.txt"))
    #expect(reader.resolved.section("model")?.entries.last?.key == "heads")
    #expect(reader.tree.value("model.heads") == nil)
  }

  @Test func reportsAllErrorsAtOnceWithLocations() throws {
    let text: String = """
      model:
        layers: four
        d_model: 65
        heads: 4
        activation: gelo
        dropout: 1.5
      train:
        lr: [1]
        steps: 2.5
        log: yes
        betas: [0.9, 2]
      lc:
        lamda: 0.1
      """
    let reader: ConfigReader = ConfigReader(try ConfigTree.parse(text, file: "bad.yaml"))
    _ = reader.int("model.layers", default: 2)
    let dModel: Int = reader.int("model.d_model", range: 8...4096)
    let heads: Int = reader.int("model.heads", range: 1...Int.max)
    reader.require(
      dModel % heads == 0, at: "model.heads", "`model.heads` must divide `model.d_model`",
      got: "\(heads) heads for d_model \(dModel)")
    _ = reader.string("model.activation", oneOf: ["gelu", "relu", "prelu"])
    _ = reader.double("model.dropout", default: 0, range: 0...1)
    _ = reader.double("train.lr")
    _ = reader.int("train.steps")
    _ = reader.bool("train.log")
    _ = reader.doubles("train.betas", range: 0...1)
    _ = reader.double("lc.lambda", default: 0.01)
    _ = reader.int("train.batch")
    let messages: [String] = finishMessages(reader)
    let expected: [String] = [
      "bad.yaml:2: wrong type for `model.layers`; expected an integer, got `four` (a string)",
      "bad.yaml:4: `model.heads` must divide `model.d_model`; got 4 heads for d_model 65",
      "bad.yaml:5: value of `model.activation` not allowed; expected one of `gelu`, `relu`, `prelu`, got `gelo`."
        + " Did you mean `gelu`?",
      "bad.yaml:6: value of `model.dropout` not allowed; expected in 0.0...1.0, got `1.5`",
      "bad.yaml:8: wrong type for `train.lr`; expected a number, got `[1]` (a list)",
      "bad.yaml:9: wrong type for `train.steps`; expected an integer, got `2.5` (a number)",
      "bad.yaml:10: wrong type for `train.log`; expected true or false, got `yes` (a string)",
      "bad.yaml:11: value of `train.betas` not allowed; expected every element in 0.0...1.0, got `[0.9, 2]`",
      "bad.yaml:7: missing key `train.batch`; expected an integer",
      "bad.yaml:13: unknown key `lc.lamda`; did you mean `lc.lambda`?",
    ]
    #expect(messages == expected)
  }

  @Test func unknownKeysSuggestWithinTheSectionThenOverall() throws {
    let text: String = "model:\n  layer: 4\nmodle:\n  heads: 2\ntrain:\n  zzz: 1\nlr: 1\n"
    let reader: ConfigReader = ConfigReader(try ConfigTree.parse(text, file: "u.yaml"))
    _ = reader.int("model.layers", default: 1)
    _ = reader.int("model.heads", default: 1)
    _ = reader.double("train.lr", default: 1)
    _ = reader.int("train.steps", default: 1)
    let messages: [String] = finishMessages(reader)
    #expect(
      messages == [
        "u.yaml:2: unknown key `model.layer`; did you mean `model.layers`?",
        "u.yaml:4: unknown key `modle.heads`; did you mean `model.heads`?",
        "u.yaml:6: unknown key `train.zzz`; expected one of the keys known in `train`: `lr`, `steps`",
        "u.yaml:7: unknown key `lr`; did you mean `train.lr`?",
      ])
  }

  @Test func structureMismatchesAreReportedOnce() throws {
    let text: String = "model: 3\ntrain:\n  lr:\n    x: 1\n"
    let reader: ConfigReader = ConfigReader(try ConfigTree.parse(text, file: "m.yaml"))
    _ = reader.int("model.layers", default: 2)
    _ = reader.int("model.heads", default: 2)  // blocked by the same value: not said again
    _ = reader.double("train.lr", default: 0.1)
    let messages: [String] = finishMessages(reader)
    #expect(
      messages == [
        "m.yaml:1: `model` is a value, but `model.layers` needs it to be a section;"
          + " expected `model:` followed by indented keys",
        "m.yaml:3: `train.lr` is a section; expected a number",
      ])
  }

  @Test func missingKeyInMissingSectionPointsAtTheFile() throws {
    let reader: ConfigReader = ConfigReader(try ConfigTree.parse("a: 1\n", file: "f.yaml"))
    _ = reader.int("a")
    _ = reader.string("data.path")
    #expect(finishMessages(reader) == ["f.yaml: missing key `data.path`; expected a string"])
    #expect(reader.location(of: "a") == "f.yaml:1")
  }

  @Test func addErrorRecordsAtTheKey() throws {
    let reader: ConfigReader = ConfigReader(try ConfigTree.parse("m:\n  a: 1\n", file: "f.yaml"))
    _ = reader.int("m.a")
    reader.addError(at: "m.a", "too small", expected: "at least 2", got: "1", hint: "raise it")
    #expect(reader.errors.count == 1)
    #expect(finishMessages(reader) == ["f.yaml:2: too small; expected at least 2, got 1. raise it"])
  }
}
