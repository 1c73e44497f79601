import LayerCollapse
import Testing

/// The messages of the `.badConfig` error thrown by parsing `text`, or [] if it parses.
private func syntaxErrors(_ text: String) -> [String] {
  badConfigMessages { _ = try ConfigTree.parse(text, file: "t.yaml") }
}

struct SyntaxCase: Sendable, CustomTestStringConvertible {
  let name: String
  let text: String
  let line: Int
  let fragment: String
  var testDescription: String { name }
}

@Suite struct ConfigSyntaxTests {
  static let cases: [SyntaxCase] = [
    SyntaxCase(name: "tab", text: "a:\n\tb: 1\n", line: 2, fragment: "tab in indentation"),
    SyntaxCase(name: "block list", text: "a:\n  - 1\n  - 2\n", line: 2, fragment: "block lists"),
    SyntaxCase(name: "block list value", text: "a: - 1\n", line: 1, fragment: "block lists"),
    SyntaxCase(name: "anchor", text: "x: 1\na: &base 3\n", line: 2, fragment: "anchors"),
    SyntaxCase(name: "alias", text: "a: *base\n", line: 1, fragment: "aliases"),
    SyntaxCase(name: "tag", text: "\n\na: !!int 3\n", line: 3, fragment: "tags"),
    SyntaxCase(name: "literal block", text: "a: |\n  text\n", line: 1, fragment: "multi-line strings"),
    SyntaxCase(name: "folded block", text: "a: >\n  text\n", line: 1, fragment: "multi-line strings"),
    SyntaxCase(
      name: "unterminated string", text: "a: 1\nb: \"abc\n  def\"\n", line: 2, fragment: "unterminated string"),
    SyntaxCase(name: "unterminated single", text: "b: 'abc\n", line: 1, fragment: "unterminated string"),
    SyntaxCase(name: "bad escape", text: "b: \"a\\qb\"\n", line: 1, fragment: "unknown escape"),
    SyntaxCase(name: "unterminated list", text: "a: [1, 2,\n  3]\n", line: 1, fragment: "unterminated flow list"),
    SyntaxCase(name: "nested list", text: "a: [1, [2]]\n", line: 1, fragment: "inside a flow list"),
    SyntaxCase(name: "empty list item", text: "a: [1, , 2]\n", line: 1, fragment: "empty list item"),
    SyntaxCase(name: "trailing comma", text: "a: [1, 2, ]\n", line: 1, fragment: "empty list item"),
    SyntaxCase(name: "flow map", text: "a: {b: 1}\n", line: 1, fragment: "flow maps"),
    SyntaxCase(name: "duplicate key", text: "m:\n  a: 1\n  a: 2\n", line: 3, fragment: "duplicate key `m.a`"),
    SyntaxCase(name: "duplicate section", text: "m:\n  a: 1\nm:\n  b: 2\n", line: 3, fragment: "duplicate key `m`"),
    SyntaxCase(name: "over-indented", text: "a: 1\n  b: 2\n", line: 2, fragment: "bad indentation"),
    SyntaxCase(name: "dedent mismatch", text: "a:\n    b: 1\n  c: 2\n", line: 3, fragment: "bad indentation"),
    SyntaxCase(name: "indented first line", text: "  a: 1\n", line: 1, fragment: "bad indentation"),
    SyntaxCase(name: "empty section", text: "a:\nb: 1\n", line: 1, fragment: "`a:` has no value"),
    SyntaxCase(name: "empty section at end", text: "b: 1\na:\n# done\n", line: 2, fragment: "`a:` has no value"),
    SyntaxCase(name: "no colon", text: "a: 1\njust words\n", line: 2, fragment: "not a `key: value` line"),
    SyntaxCase(name: "no space after colon", text: "a:1\n", line: 1, fragment: "space after the colon"),
    SyntaxCase(name: "dotted key", text: "lc.lambda: 1\n", line: 1, fragment: "invalid key `lc.lambda`"),
    SyntaxCase(name: "quoted key", text: "\"a\": 1\n", line: 1, fragment: "quoted keys"),
    SyntaxCase(name: "null", text: "a: null\n", line: 1, fragment: "null values"),
    SyntaxCase(name: "text after string", text: "a: \"x\" y\n", line: 1, fragment: "unexpected text after"),
    SyntaxCase(name: "text after list", text: "a: [1] 2\n", line: 1, fragment: "unexpected text after"),
    SyntaxCase(name: "colon in value", text: "a: b: c\n", line: 1, fragment: "unexpected `:`"),
    SyntaxCase(name: "document marker", text: "---\na: 1\n", line: 1, fragment: "document markers"),
    SyntaxCase(name: "int too large", text: "a: 123456789012345678901234\n", line: 1, fragment: "out of range"),
    SyntaxCase(name: "float too large", text: "a: 1e999\n", line: 1, fragment: "out of range"),
  ]

  @Test(arguments: cases)
  func syntaxErrorNamesLine(_ c: SyntaxCase) {
    let messages: [String] = syntaxErrors(c.text)
    #expect(!messages.isEmpty, "\(c.name) should not parse")
    let first: String = messages.first ?? ""
    #expect(first.hasPrefix("t.yaml:\(c.line): "), "\(c.name): \(first)")
    #expect(first.contains(c.fragment), "\(c.name): \(first)")
    #expect(first.contains("expected "), "\(c.name) says what was expected: \(first)")
  }

  @Test func reportsEverySyntaxErrorAtOnce() {
    let text: String = "a: 1\nb: &x 2\nc:\n\td: 3\ne: [1,\nf: 1\nf: 2\ng:\nh: 1\n"
    let messages: [String] = syntaxErrors(text)
    #expect(messages.count == 5, "\(messages)")
    let lines: [String] = messages.map { String($0.prefix(while: { $0 != " " })) }
    #expect(lines == ["t.yaml:2:", "t.yaml:4:", "t.yaml:5:", "t.yaml:7:", "t.yaml:8:"], "\(messages)")
  }

  @Test func scalarsParseToTheirTypes() throws {
    let text: String = """
      # a comment line
      ints:
        zero: 0
        neg: -12
        plus: +7
      floats:
        a: 3e-4   # trailing comment
        b: 1.5E+2
        c: 0.5
        d: -.25
        e: 2.
      bools:
        t: true
        f: false
      strings:
        bare: data/tiny.txt
        double: "a # not a comment"
        single: 'it''s'
        escaped: "tab\\there \\"q\\""
        hash: a#b
        numeric: "12"
        empty: ""
      lists:
        mixed: [a, 1, 2.5, true, "x, y"]
        numbers: [0, 0.1, 1e-3]
        empty: []
        spaced: [ 1 ,2 ]
      """
    let t: ConfigTree = try ConfigTree.parse(text, file: "s.yaml")
    #expect(t.value("ints.zero") == .int(0))
    #expect(t.value("ints.neg") == .int(-12))
    #expect(t.value("ints.plus") == .int(7))
    #expect(t.value("floats.a") == .double(3e-4))
    #expect(t.value("floats.b") == .double(150))
    #expect(t.value("floats.c") == .double(0.5))
    #expect(t.value("floats.d") == .double(-0.25))
    #expect(t.value("floats.e") == .double(2))
    #expect(t.value("bools.t") == .bool(true))
    #expect(t.value("bools.f") == .bool(false))
    #expect(t.value("strings.bare") == .string("data/tiny.txt"))
    #expect(t.value("strings.double") == .string("a # not a comment"))
    #expect(t.value("strings.single") == .string("it's"))
    #expect(t.value("strings.escaped") == .string("tab\there \"q\""))
    #expect(t.value("strings.hash") == .string("a#b"))
    #expect(t.value("strings.numeric") == .string("12"))
    #expect(t.value("strings.empty") == .string(""))
    #expect(t.value("lists.mixed") == .list([.string("a"), .int(1), .double(2.5), .bool(true), .string("x, y")]))
    #expect(t.value("lists.numbers") == .list([.int(0), .double(0.1), .double(1e-3)]))
    #expect(t.value("lists.empty") == .list([]))
    #expect(t.value("lists.spaced") == .list([.int(1), .int(2)]))
  }

  @Test func nodesRememberTheirLines() throws {
    let text: String = "model:\n  # comment\n  layers: 4\n\nlc:\n  lambda: 0.1\n"
    let t: ConfigTree = try ConfigTree.parse(text, file: "configs/x.yaml")
    #expect(t.entry("model")?.location.description == "configs/x.yaml:1")
    #expect(t.entry("model.layers")?.location.description == "configs/x.yaml:3")
    #expect(t.entry("lc.lambda")?.location == ConfigLocation(file: "configs/x.yaml", line: 6))
    #expect(t.value("model") == nil)
    #expect(t.section("model")?.value("layers") == .int(4))
    #expect(t.valuePaths == ["model.layers", "lc.lambda"])
    #expect(t.value("lc.lambda.x") == nil)
    #expect(t.value("nope") == nil)
  }

  @Test func deepNestingAndDedentToAnyLevel() throws {
    let text: String = "a:\n  b:\n    c:\n      d: 1\n    e: 2\nf: 3\n"
    let t: ConfigTree = try ConfigTree.parse(text, file: "n.yaml")
    #expect(t.value("a.b.c.d") == .int(1))
    #expect(t.value("a.b.e") == .int(2))
    #expect(t.value("f") == .int(3))
  }

  @Test func emptyAndCommentOnlyFilesGiveEmptyTrees() throws {
    #expect(try ConfigTree.parse("", file: "e.yaml").isEmpty)
    #expect(try ConfigTree.parse("# nothing\n\n   # here\n", file: "e.yaml").isEmpty)
  }

  @Test func crlfLineEndingsAreAccepted() throws {
    let t: ConfigTree = try ConfigTree.parse("a:\r\n  b: x\r\n", file: "w.yaml")
    #expect(t.value("a.b") == .string("x"))
  }

  @Test func loadingAMissingFileIsMissingInput() {
    #expect {
      _ = try ConfigTree.load(path: "/nonexistent/dir/c.yaml")
    } throws: { error in
      guard case .missingInput(let d) = error as? LCError else { return false }
      return d.location == "/nonexistent/dir/c.yaml"
    }
  }
}
