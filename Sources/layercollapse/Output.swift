import Foundation
import LayerCollapse

/// Where the command line writes: results to stdout, progress and errors to stderr.
enum Out {
  static func print(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
  }

  /// `s` as it is, at once (no newline, no buffering): text that streams in.
  static func write(_ s: String) {
    FileHandle.standardOutput.write(Data(s.utf8))
  }

  static func err(_ s: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((s + (newline ? "\n" : "")).utf8))
  }

  static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

enum Format {
  /// 1234567 -> "1,234,567"
  static func count(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
      out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
  }

  /// 12_300_000 -> "12.3 M"
  static func large(_ n: Int) -> String {
    let x = Double(n)
    if x >= 1e9 { return String(format: "%.2f G", x / 1e9) }
    if x >= 1e6 { return String(format: "%.2f M", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1f k", x / 1e3) }
    return "\(n)"
  }

  static func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, s % 3600 / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
  }

  static func percentChange(_ before: Int, _ after: Int) -> String {
    guard before > 0 else { return "" }
    let p = 100 * Double(after - before) / Double(before)
    return String(format: "%@%.1f %%", p < 0 ? "−" : "+", abs(p))
  }

  /// A run's best evaluation score as a user reads it: accuracy in %, or perplexity (the
  /// score a language model keeps is −perplexity, so that larger is better).
  static func bestScore(_ score: Double, languageModel: Bool) -> String {
    languageModel ? String(format: "perplexity %.3f", -score) : String(format: "accuracy %.2f %%", 100 * score)
  }

  static func metrics(_ m: Metrics) -> String {
    if let ppl = m.perplexity {
      return String(format: "perplexity %.3f (loss %.4f), token accuracy %.2f %%", ppl, m.loss, 100 * m.accuracy)
    }
    return String(
      format: "accuracy %.2f ± %.2f %% (loss %.4f, %d examples)", 100 * m.accuracy, 100 * m.accuracyStandardError,
      m.loss, m.examples)
  }

  static func alphas(_ a: [Int: Float]) -> String {
    a.keys.sorted().map { String(format: "%d:%.3f", $0, a[$0]!) }.joined(separator: " ")
  }
}
