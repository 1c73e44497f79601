import LayerCollapse
import Testing

@Suite struct ReportTableTests {
  @Test func markdownTablePadsCellsAndRightAlignsNumbers() {
    var table: MarkdownTable = MarkdownTable(header: ["model", "accuracy", "params"])
    table.append(["ViT", "84.2 ± 1.2", "1,234,567"])
    table.append(["BERT | mini", "—", "12"])
    let expected: String = """
      | model        |   accuracy |    params |
      | :----------- | ---------: | --------: |
      | ViT          | 84.2 ± 1.2 | 1,234,567 |
      | BERT \\| mini |          — |        12 |

      """
    #expect(table.markdown == expected)
  }

  @Test func markdownTableTakesGivenAlignmentsAndRaggedRows() {
    let table: MarkdownTable = MarkdownTable(
      header: ["run", "Δ"], rows: [["a", "−15.0 %", "extra"], ["b\nc"]], alignments: [.center])
    // Widths count the escaped text: "b<br>c" makes the first column 6 wide.
    let lines: [Substring] = table.markdown.split(separator: "\n")
    #expect(lines.count == 4)
    #expect(lines[0] == "|  run   |       Δ |       |")
    #expect(lines[1] == "| :----: | ------: | :---- |")
    #expect(lines[2] == "|   a    | −15.0 % | extra |")
    #expect(lines[3] == "| b<br>c |         |       |")
    #expect(MarkdownTable(header: []).markdown == "")
  }

  @Test func numericCellsAreRecognized() {
    for cell in ["12", "1,234", "−15.0 %", "+2.5", "84.2 ± 1.2", "1e-05", "3.5×", ".5"] {
      #expect(MarkdownTable.looksNumeric(cell), "\(cell)")
    }
    for cell in ["", "—", "ViT", "x2", "e5", "block 1", "N/A"] {
      #expect(!MarkdownTable.looksNumeric(cell), "\(cell)")
    }
  }

  @Test func csvQuotesOnlyWhenNeeded() {
    #expect(CSVTable.field("plain") == "plain")
    #expect(CSVTable.field("a,b") == "\"a,b\"")
    #expect(CSVTable.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
    #expect(CSVTable.field("two\nlines") == "\"two\nlines\"")
    #expect(CSVTable.field(" padded") == "\" padded\"")
    #expect(CSVTable.field("") == "")
    var csv: CSVTable = CSVTable(header: ["run", "lambda", "note"])
    csv.append(["a", "0.1", "ok"])
    csv.append(["b", "1", "loss, then \"NaN\""])
    #expect(csv.csv == "run,lambda,note\na,0.1,ok\nb,1,\"loss, then \"\"NaN\"\"\"\n")
  }

  @Test func numbersFormatForReading() {
    #expect(NumberFormat.fixed(3.14159, decimals: 2) == "3.14")
    #expect(NumberFormat.fixed(-2.5, decimals: 1) == "−2.5")
    #expect(NumberFormat.fixed(-0.001, decimals: 1) == "0.0")
    #expect(NumberFormat.fixed(0.1 + 0.2, decimals: 3) == "0.300")
    #expect(NumberFormat.fixed(nil, decimals: 1) == "—")
    #expect(NumberFormat.fixed(.nan, decimals: 1) == "—")
    #expect(NumberFormat.percent(0.8421) == "84.2 %")
    #expect(NumberFormat.percent(1, decimals: 0) == "100 %")
    #expect(NumberFormat.plusMinus(84.21, 1.234) == "84.2 ± 1.2")
    #expect(NumberFormat.plusMinus(0.8421, 0.0123, decimals: 3) == "0.842 ± 0.012")
    #expect(NumberFormat.plusMinus(84.21, nil) == "84.2")
    #expect(NumberFormat.plusMinus(nil, 1) == "—")
    #expect(NumberFormat.count(1_234_567) == "1,234,567")
    #expect(NumberFormat.count(999) == "999")
    #expect(NumberFormat.count(1000) == "1,000")
    #expect(NumberFormat.count(0) == "0")
    #expect(NumberFormat.count(-1234) == "−1,234")
    #expect(NumberFormat.count(nil) == "—")
    #expect(NumberFormat.delta(-15, unit: " %") == "−15.0 %")
    #expect(NumberFormat.percentDelta(-0.15) == "−15.0 %")
    #expect(NumberFormat.percentDelta(0.032) == "+3.2 %")
    #expect(NumberFormat.delta(2.5) == "+2.5")
    #expect(NumberFormat.delta(-0.01) == "0.0")
    #expect(NumberFormat.delta(.infinity) == "—")
    #expect(NumberFormat.plain(0.1) == "0.1")
    #expect(NumberFormat.plain(3) == "3")
    #expect(NumberFormat.plain(-0.0) == "0")
    #expect(NumberFormat.plain(.nan) == "")
  }
}
