import Foundation

/// A compress search as a reader sees it: the rounds as a Markdown table and CSV, and the
/// metric against units collapsed as an SVG plot.
public struct CompressDocument: Sendable {
  public let state: CompressState

  public init(state: CompressState) { self.state = state }

  private var metricName: String { state.options.metric == .accuracy ? "accuracy %" : "perplexity" }
  private var dropUnit: String { state.options.metric == .accuracy ? " pt" : " %" }

  /// The admissible limit on the held-out metric.
  public var limit: Double? {
    guard let base = state.rounds.first?.holdout.value else { return nil }
    switch state.options.metric {
    case .accuracy: return base - state.options.maxDrop
    case .perplexity: return base * (1 + state.options.maxDrop / 100)
    }
  }

  /// The held-out metric's change from round 0: accuracy points, or perplexity in %.
  private func change(_ r: CompressRound) -> Double { state.options.metric == .accuracy ? -r.drop : r.drop }

  public var table: MarkdownTable {
    var t = MarkdownTable(header: [
      "round", "unit collapsed", "units collapsed", "held-out \(metricName)", "change", "eval \(metricName)",
      "parameters", "MACs/example", "latency ms (batch 1)", "fine-tune (stages × steps, last λ)", "admissible",
    ])
    let decimals = state.options.metric == .accuracy ? 1 : 3
    for r in state.rounds {
      let tune: String =
        r.round == 0
        ? "—"
        : r.stages.isEmpty
          ? "none (α already within)"
          : "\(r.stages.count) × \(r.stages[0].steps), λ \(Compression.g(r.stages[r.stages.count - 1].lambda))"
      t.append([
        "\(r.round)", r.unitName ?? "— (start)", "\(r.collapsedUnits.count)",
        NumberFormat.plusMinus(r.holdout.value, r.holdout.error, decimals: decimals),
        r.round == 0 ? "—" : NumberFormat.delta(change(r), decimals: decimals, unit: dropUnit),
        NumberFormat.plusMinus(r.eval.value, r.eval.error, decimals: decimals), NumberFormat.count(r.parameters),
        NumberFormat.count(r.macsPerExample), NumberFormat.fixed(r.latencyMilliseconds, decimals: 2), tune,
        r.admissible ? "yes" : "no",
      ])
    }
    return t
  }

  public var markdown: String {
    let o = state.options
    var lines = [
      "# compress \(state.input)", "",
      "Order \(o.order.rawValue); at most \(Compression.g(o.maxDrop))\(dropUnit) worse than round 0 on \(o.holdout) "
        + "held-out training examples (decisions never read the evaluation split, whose figures are for "
        + "reading only); \(o.roundSteps) fine-tune steps per stage. ± is the standard error.", "",
      table.markdown,
    ]
    if let reason = state.stopReason { lines.append("Stopped: \(reason).") }
    if let best = state.best, let r = state.rounds.first(where: { $0.round == best }) {
      let base = state.rounds[0]
      let params = Double(r.parameters) / Double(max(base.parameters, 1)) - 1
      lines.append(
        "compressed.h5 is round \(best): \(r.collapsedUnits.count) units collapsed, parameters "
          + "\(NumberFormat.percentDelta(params)), eval \(metricName) "
          + "\(NumberFormat.fixed(base.eval.value, decimals: 2)) → \(NumberFormat.fixed(r.eval.value, decimals: 2)).")
    }
    return lines.joined(separator: "\n") + "\n"
  }

  public var csv: String {
    var lines = [
      "round,unit,unit_name,units_collapsed,holdout,holdout_se,drop,eval,eval_se,parameters,macs_per_example,"
        + "latency_ms,stages,last_lambda,admissible,checkpoint"
    ]
    for r in state.rounds {
      let cells: [String] = [
        "\(r.round)", r.unit.map(String.init) ?? "", r.unitName ?? "", "\(r.collapsedUnits.count)",
        NumberFormat.plain(r.holdout.value), NumberFormat.plain(r.holdout.error), NumberFormat.plain(r.drop),
        NumberFormat.plain(r.eval.value), NumberFormat.plain(r.eval.error), "\(r.parameters)", "\(r.macsPerExample)",
        NumberFormat.plain(r.latencyMilliseconds), "\(r.stages.count)", NumberFormat.plain(r.stages.last?.lambda),
        r.admissible ? "true" : "false", r.checkpoint,
      ]
      lines.append(cells.map(Self.csvField).joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }

  static func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
  }

  public var plot: SVGPlot {
    let xs = state.rounds.map { Double($0.collapsedUnits.count) }
    return SVGPlot(
      title: "compress: \(metricName) as units collapse", xLabel: "units collapsed", yLabel: metricName,
      xScale: .integer,
      series: [
        .init(
          name: "held-out (decides) ± SE", x: xs, y: state.rounds.map(\.holdout.value),
          errors: state.rounds.map(\.holdout.error)),
        .init(
          name: "evaluation split ± SE", x: xs, y: state.rounds.map(\.eval.value),
          errors: state.rounds.map(\.eval.error), dashed: true),
      ],
      referenceLines: limit.map { [ReferenceLine(y: $0, label: "admissible limit")] } ?? [])
  }
}
