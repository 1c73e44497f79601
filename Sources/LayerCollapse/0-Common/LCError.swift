/// What went wrong, where, what was expected, what was found, and what to do about it.
/// Every field is meant for the user; `location` names a file, `file:line`, a record
/// or a config key.
public struct ErrorDetail: Sendable, Equatable {
  public var what: String
  public var location: String
  public var expected: String
  public var got: String
  public var hint: String

  public init(what: String, location: String, expected: String = "", got: String = "", hint: String = "") {
    self.what = what
    self.location = location
    self.expected = expected
    self.got = got
    self.hint = hint
  }

  /// One paragraph: "file:3: what; expected X, got Y. Hint."
  public var message: String {
    var s = location.isEmpty ? what : "\(location): \(what)"
    var parts: [String] = []
    if !expected.isEmpty { parts.append("expected \(expected)") }
    if !got.isEmpty { parts.append("got \(got)") }
    if !parts.isEmpty { s += "; " + parts.joined(separator: ", ") }
    if !hint.isEmpty { s += ". " + hint }
    return s
  }
}

/// The one error type of the library. Each case maps to a documented exit code
/// (BSD sysexits where one fits), which only the executable turns into `exit`.
public enum LCError: Error, Sendable, Equatable, CustomStringConvertible {
  /// Wrong command-line usage. Exit 64.
  case usage(ErrorDetail)
  /// Input data is malformed. Exit 65.
  case badData(ErrorDetail)
  /// An input file or directory does not exist. Exit 66.
  case missingInput(ErrorDetail)
  /// Several inputs do not exist, every one listed (`validate`'s check of the files a
  /// config names). Exit 66, as for one.
  case missingInputs([ErrorDetail])
  /// An output cannot be created (exists, or no permission). Exit 73.
  case cannotCreate(ErrorDetail)
  /// Reading or writing failed part-way. Exit 74.
  case io(ErrorDetail)
  /// The configuration is invalid; every problem found, not just the first. Exit 78.
  case badConfig([ErrorDetail])
  /// Training diverged: a non-finite loss, gradient norm or weight. The step was not
  /// applied and the last good checkpoint is kept. Exit 70.
  case diverged(ErrorDetail)
  /// Stopped by the user or a scheduler (after saving a checkpoint). Exit 130 (SIGINT,
  /// `--stop-after`); the executable exits 143 when SIGTERM was the cause.
  case interrupted(ErrorDetail)
  /// Anything else, e.g. a checkpoint that does not fit the model. Exit 1.
  case other(ErrorDetail)

  public var exitCode: Int32 {
    switch self {
    case .usage: 64
    case .badData: 65
    case .missingInput, .missingInputs: 66
    case .cannotCreate: 73
    case .io: 74
    case .badConfig: 78
    case .diverged: 70
    case .interrupted: 130
    case .other: 1
    }
  }

  public var details: [ErrorDetail] {
    switch self {
    case .usage(let d), .badData(let d), .missingInput(let d), .cannotCreate(let d), .io(let d),
      .diverged(let d), .interrupted(let d), .other(let d):
      [d]
    case .badConfig(let ds), .missingInputs(let ds): ds
    }
  }

  public var description: String { details.map(\.message).joined(separator: "\n") }
}
