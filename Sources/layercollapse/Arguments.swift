import Foundation
import LayerCollapse

/// What one command accepts: options that take a value, flags that do not, how many
/// positional arguments, and whether `key=value` config overrides may follow.
struct CommandSpec {
  var name: String
  var synopsis: String
  var summary: String
  var positionals: [String]
  var valueOptions: [String: String] = [:]  // option -> help
  var flags: [String: String] = [:]
  var takesOverrides = false
  var examples: [String] = []
  var details: String = ""
  /// The last positional may repeat (one or more).
  var variadic = false

  var usage: String {
    var s = "usage: layercollapse \(synopsis)\n\n\(summary)\n"
    if !details.isEmpty { s += "\n\(details)\n" }
    let options =
      valueOptions.sorted { $0.key < $1.key }.map { ($0.key + " VALUE", $0.value) }
      + flags.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + [("--help", "show this help")]
    s += "\noptions:\n"
    let width = options.map(\.0.count).max() ?? 0
    for (o, h) in options { s += "  " + o + String(repeating: " ", count: width - o.count + 2) + h + "\n" }
    if !examples.isEmpty { s += "\nexamples:\n" + examples.map { "  " + $0 }.joined(separator: "\n") + "\n" }
    return s
  }
}

/// A parsed command line.
struct Arguments {
  var positionals: [String] = []
  var options: [String: String] = [:]
  var flags: Set<String> = []
  var overrides: [String] = []
  var help = false

  func option(_ name: String) -> String? { options[name] }

  /// Parses `args` (after the command name) against `spec`; usage errors exit 64.
  init(_ args: [String], spec: CommandSpec) throws {
    // An option given twice with two values is ambiguous (`--threshold 0.3 --threshold
    // 0.1`): which one was meant is not for the parser to guess.
    func set(_ name: String, _ value: String) throws {
      if let earlier = options[name], earlier != value {
        throw LCError.usage(
          ErrorDetail(
            what: "option \(name) given twice", location: "layercollapse \(spec.name)", expected: "one value",
            got: "\(earlier) and \(value)"))
      }
      options[name] = value
    }
    var i = 0
    while i < args.count {
      let a = args[i]
      if a == "--help" || a == "-h" {
        help = true
      } else if a.hasPrefix("-") && a.count > 1 && Double(a) == nil {
        var name = a
        var inline: String? = nil
        if let eq = a.firstIndex(of: "=") {
          name = String(a[..<eq])
          inline = String(a[a.index(after: eq)...])
        }
        if spec.valueOptions[name] != nil {
          if let v = inline {
            try set(name, v)
          } else {
            guard i + 1 < args.count else {
              throw LCError.usage(
                ErrorDetail(
                  what: "option \(name) needs a value", location: "layercollapse \(spec.name)",
                  hint: "Run `layercollapse \(spec.name) --help` for usage."))
            }
            try set(name, args[i + 1])
            i += 1
          }
        } else if spec.flags[name] != nil && inline == nil {
          flags.insert(name)
        } else {
          let known = Array(spec.valueOptions.keys) + Array(spec.flags.keys) + ["--help"]
          let guess = DidYouMean.suggestion(for: name, among: known)
          // `train --steps 10`: a setting written as an option; say its key=value form.
          let setting = spec.takesOverrides ? Self.settingKey(named: name) : nil
          let value = inline ?? (i + 1 < args.count && !args[i + 1].hasPrefix("-") ? args[i + 1] : "VALUE")
          throw LCError.usage(
            ErrorDetail(
              what: "unknown option \(name)", location: "layercollapse \(spec.name)",
              hint: setting.map { "Settings are given as key=value: \($0)=\(value). " }
                ?? (guess.map { "Did you mean \($0)? " } ?? "") + "Run `layercollapse \(spec.name) --help` for usage.")
          )
        }
      } else if spec.takesOverrides && a.contains("=") && positionals.count >= spec.positionals.count {
        overrides.append(a)
      } else {
        positionals.append(a)
      }
      i += 1
    }
    if help { return }
    // `train lc.lambda=3 c.yaml`, `compress --max-drop 1 train.lr=5e-4`: a setting where the
    // file goes (not a file of that name, as a sweep point's `lc.lambda=0.1/last.h5` is).
    if spec.takesOverrides, let misplaced = positionals.first(where: Self.looksLikeSetting) {
      throw LCError.usage(
        ErrorDetail(
          what: "\(misplaced) is a setting, given where \(spec.positionals.first ?? "the file") goes",
          location: "layercollapse \(spec.name)", expected: spec.synopsis,
          hint: "Settings (key=value) come after the file: `layercollapse \(spec.name) "
            + "\(spec.positionals.first ?? "FILE") \(misplaced)`"))
    }
    let countFits =
      spec.variadic ? positionals.count >= spec.positionals.count : positionals.count == spec.positionals.count
    if !countFits {
      let extra = positionals.count > spec.positionals.count ? positionals[spec.positionals.count] : nil
      let what = extra.map { "unexpected argument \($0)" } ?? "missing \(spec.positionals[positionals.count])"
      // `train c.yaml train.lr 3e-4`: a setting given without its `=`.
      let setting =
        extra.map { e in
          spec.takesOverrides && e.contains(".") && !e.contains("/")
            && ![".yaml", ".yml", ".h5", ".json"].contains { e.hasSuffix($0) }
        } ?? false
      throw LCError.usage(
        ErrorDetail(
          what: what, location: "layercollapse \(spec.name)", expected: spec.synopsis,
          hint: setting
            ? "Settings are given as key=value (e.g. \(extra ?? "")=VALUE)"
            : "Run `layercollapse \(spec.name) --help` for usage."))
    }
  }

  /// `key.path=value` that is not an existing file: a setting.
  static func looksLikeSetting(_ a: String) -> Bool {
    guard let eq = a.firstIndex(of: "="), !FileManager.default.fileExists(atPath: a) else { return false }
    let key = a[..<eq]
    return key.contains(".") && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }
  }

  /// The config key an option name spells (`--steps`, `--eval-limit` → train.steps,
  /// data.eval_limit), when exactly one key ends so.
  static func settingKey(named option: String) -> String? {
    let bare = option.drop { $0 == "-" }.replacingOccurrences(of: "-", with: "_")
    guard !bare.isEmpty, let tree = try? ConfigTree.parse("model:\n  kind: vit\n", file: "-") else { return nil }
    let keys = RunSettings.settingKeys(of: tree).filter { $0 == bare || $0.hasSuffix("." + bare) }
    return keys.count == 1 ? keys[0] : nil
  }
}
