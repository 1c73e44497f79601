import Foundation
import LayerCollapse
import Testing

private let sample: String = """
  # A config with every kind of value.
  name: tiny-run
  seed: 17
  model:
    layers: 4
    d_model: 64
    activation: prelu
  train:
    lr: 3e-4
    betas: [0.9, 0.999]
    log: true
    note: "quoted: text # with hash"
    empty: ''
    big: 1e+20
  lc:
    lambda: 0.1
    blocks: [1, 2, 3]
    tags: [a, "b c", 'd']
  sweep:
    lc.lambda: [0, 0.1, 1]
  """

/// The messages of the `.badConfig` error `body` throws, or [] if it throws nothing.
func badConfigMessages(_ body: () throws -> Void) -> [String] {
  do {
    try body()
    return []
  } catch let error as LCError {
    guard case .badConfig(let details) = error else { return ["unexpected error kind: \(error)"] }
    return details.map(\.message)
  } catch {
    return ["unexpected error: \(error)"]
  }
}

@Suite struct ConfigOverrideTests {
  @Test func overridesReplaceAddAndReport() throws {
    var t: ConfigTree = try ConfigTree.parse(sample, file: "s.yaml")
    let overrides: [ConfigOverride] = try ConfigOverride.parse([
      "lc.lambda=0.5", "model.layers=8", "train.warmup=100", "train.betas=[0.8, 0.9]", "name='my run'",
      "data.path=data/x.txt", "sweep.lc.lambda=[1, 2]",
    ])
    let applied: [AppliedOverride] = try t.apply(overrides)
    #expect(t.value("lc.lambda") == .double(0.5))
    #expect(t.value("model.layers") == .int(8))
    #expect(t.value("train.warmup") == .int(100))
    #expect(t.value("train.betas") == .list([.double(0.8), .double(0.9)]))
    #expect(t.value("name") == .string("my run"))
    #expect(t.value("data.path") == .string("data/x.txt"))
    #expect(t.value("sweep.lc.lambda") == .list([.int(1), .int(2)]))
    #expect(t.section("sweep")?.value("lc.lambda") != nil)
    #expect(applied.count == 7)
    #expect(applied[0].description == "lc.lambda = 0.5 (was 0.1)")
    #expect(applied[2].description == "train.warmup = 100 (not set before)")
    #expect(applied[2].previous == nil)
    // New keys go after the existing ones, new sections at the end.
    #expect(t.section("train")?.entries.last?.key == "warmup")
    #expect(t.entries.last?.key == "data")
    #expect(t.entry("lc.lambda")?.location.description == "override `lc.lambda=0.5`")
  }

  @Test func malformedOverridesAreAllReported() {
    let messages: [String] = badConfigMessages {
      _ = try ConfigOverride.parse(["novalue", "a..b=1", "x=", "y=[1, 2", "ok=1"])
    }
    #expect(messages.count == 4, "\(messages)")
    #expect(messages[0].contains("override `novalue`") && messages[0].contains("key=value"))
    #expect(messages[1].contains("invalid key `a..b`"))
    #expect(messages[2].contains("missing value"))
    #expect(messages[3].contains("unterminated flow list"))
  }

  @Test func overrideValuesParseLikeFileValues() throws {
    #expect(try ConfigOverride.parse("a=1.5E+2").value == .double(150))
    #expect(try ConfigOverride.parse("a=true").value == .bool(true))
    #expect(try ConfigOverride.parse("a=\"x=y\"").value == .string("x=y"))
    #expect(try ConfigOverride.parse("a.b=x=y").value == .string("x=y"))
    #expect(try ConfigOverride.parse("a.b=x=y").key == "a.b")
  }

  @Test func overridesThatClashWithTheStructureAreErrors() throws {
    var t: ConfigTree = try ConfigTree.parse(sample, file: "s.yaml")
    let messages: [String] = badConfigMessages {
      _ = try t.apply(try ConfigOverride.parse(["model=3", "seed.x=1"]))
    }
    #expect(messages.count == 2, "\(messages)")
    #expect(messages[0].contains("`model` is a section"))
    #expect(messages[1].contains("`seed` is a value"))
    #expect(messages[1].hasPrefix("override `seed.x=1`"))
  }

  @Test func unknownOverrideKeyGetsDidYouMean() throws {
    var t: ConfigTree = try ConfigTree.parse("lc:\n  lambda: 0.1\n", file: "s.yaml")
    _ = try t.apply(try ConfigOverride.parse(["lc.lamda=0.2"]))
    let reader: ConfigReader = ConfigReader(t)
    _ = reader.double("lc.lambda")
    let messages: [String] = badConfigMessages { try reader.finish() }
    #expect(messages == ["override `lc.lamda=0.2`: unknown key `lc.lamda`; did you mean `lc.lambda`?"])
  }

  @Test func serializedTreeReparsesToTheSameTree() throws {
    var t: ConfigTree = try ConfigTree.parse(sample, file: "s.yaml")
    _ = try t.apply(
      try ConfigOverride.parse([
        "extra.deep.key=\"tab\\tand \\\"quotes\\\" and \\\\ backslash\"", "extra.neg=-0.0", "extra.tiny=5e-324",
        "extra.s=['-x', '1', 'true', '', 'a,b', '#', ' pad ', 'é']", "extra.words=[-1, +2, .5]",
      ]))
    let text: String = t.serialized(header: ["resolved config", ""])
    let back: ConfigTree = try ConfigTree.parse(text, file: "back.yaml")
    #expect(back == t, "\(text)")
    #expect(back.valuePaths == t.valuePaths)
    #expect(back.serialized(header: ["resolved config", ""]) == text)
    #expect(text.hasPrefix("# resolved config\n#\nname: tiny-run\n"))
    #expect(text.contains("\nmodel:\n  layers: 4\n"))
    #expect(text.contains("\nsweep:\n  lc.lambda: [0, 0.1, 1]\n"))
    #expect(text.contains("  lr: 0.0003\n"))
  }

  @Test func locationsAndSourceDoNotAffectEquality() throws {
    let a: ConfigTree = try ConfigTree.parse("a: 1\nb:\n  c: x\n", file: "a.yaml")
    let b: ConfigTree = try ConfigTree.parse("\n\na: 1 # c\nb:\n    c: 'x'\n", file: "b.yaml")
    let c: ConfigTree = try ConfigTree.parse("b:\n  c: x\na: 1\n", file: "a.yaml")
    #expect(a == b)
    #expect(a != c, "key order matters")
    #expect(try ConfigTree.parse("a: 1", file: "x") != ConfigTree.parse("a: 1.0", file: "x"), "int is not double")
  }

  @Test func writeAndLoadRoundTrip() throws {
    let dir: String = NSTemporaryDirectory() + "lc-config-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let t: ConfigTree = try ConfigTree.parse(sample, file: "s.yaml")
    let path: String = dir + "/config.yaml"
    try t.write(to: path, header: ["written by a test"])
    let back: ConfigTree = try ConfigTree.load(path: path)
    #expect(back == t)
    #expect(back.entry("seed")?.location.description == path + ":3")
    #expect(throws: LCError.self) { try t.write(to: dir + "/no/such/dir/c.yaml") }
  }

  @Test func removingPrunesEmptySections() throws {
    let t: ConfigTree = try ConfigTree.parse("a:\n  b: 1\nc:\n  d: 2\n  e: 3\n", file: "r.yaml")
    #expect(t.removing("a.b").valuePaths == ["c.d", "c.e"])
    #expect(t.removing("a.b").section("a") == nil)
    #expect(t.removing("c.d").valuePaths == ["a.b", "c.e"])
    #expect(t.removing("c").valuePaths == ["a.b"])
    #expect(t.removing("zzz") == t)
  }
}
