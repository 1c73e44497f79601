// Timing, settings and table helpers shared by the benchmark sections.
import Foundation

/// Median wall time of `body` over repeated runs lasting at least `budget` seconds.
func medianSeconds(budget: Double = 0.4, minRuns: Int = 5, _ body: () -> Void) -> Double {
  body()  // warm-up: thread pool start, page faults
  var times: [Double] = []
  let clock: ContinuousClock = ContinuousClock()
  let start: ContinuousClock.Instant = clock.now
  while times.count < minRuns || (clock.now - start) < .seconds(budget) {
    let t0: ContinuousClock.Instant = clock.now
    body()
    times.append(seconds(clock.now - t0))
  }
  times.sort()
  return times[times.count / 2]
}

func seconds(_ d: Duration) -> Double {
  Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// 1 and 2, or only `OPENBLAS_NUM_THREADS` when it is set.
func threadCounts() -> [Int] {
  if let s = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(s), n > 0 { return [n] }
  return [1, 2]
}

/// A positive integer from the environment, or `fallback` when unset or not a positive integer.
func environmentInt(_ name: String, _ fallback: Int) -> Int {
  guard let s = ProcessInfo.processInfo.environment[name], let n = Int(s), n > 0 else { return fallback }
  return n
}

/// A comma-separated list from the environment, or nil when unset or empty.
func environmentList(_ name: String) -> [String]? {
  guard let s = ProcessInfo.processInfo.environment[name], !s.isEmpty else { return nil }
  return s.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
  let fill: String = String(repeating: " ", count: max(0, width - s.count))
  return right ? fill + s : s + fill
}

func threadLabel(_ t: Int) -> String { t == 1 ? "1 thread" : "\(t) threads" }

/// Prints a Markdown table's header and rule: the leading columns (title, width)
/// left-aligned, then one right-aligned column per thread count.
func printThreadTableHeader(_ leading: [(String, Int)], threads: [Int]) {
  var header = "|"
  var rule = "|"
  for (title, width) in leading {
    header += " " + pad(title, width) + " |"
    rule += String(repeating: "-", count: width + 2) + "|"
  }
  for t in threads {
    header += " " + pad(threadLabel(t), 9, right: true) + " |"
    rule += "----------:|"
  }
  print(header)
  print(rule)
}

func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

/// Median, smallest and largest of a sample.
struct Summary {
  var median: Double
  var min: Double
  var max: Double
  var count: Int

  init(_ values: [Double]) {
    let sorted: [Double] = values.sorted()
    count = sorted.count
    median = sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    min = sorted.first ?? .nan
    max = sorted.last ?? .nan
  }
}

/// A Markdown table printed row by row, so results appear as they are measured.
struct TableWriter {
  struct Column {
    var title: String
    var width: Int
    var right: Bool
  }

  var columns: [Column]

  init(_ columns: [(String, Int, Bool)]) {
    self.columns = columns.map { Column(title: $0.0, width: max($0.1, $0.0.count), right: $0.2) }
  }

  func printHeader() {
    print("| " + columns.map { pad($0.title, $0.width, right: $0.right) }.joined(separator: " | ") + " |")
    let rule: [String] = columns.map { c in
      String(repeating: "-", count: c.width + (c.right ? 1 : 2)) + (c.right ? ":" : "")
    }
    print("|" + rule.joined(separator: "|") + "|")
  }

  func printRow(_ cells: [String]) {
    var parts: [String] = []
    for (i, c) in columns.enumerated() { parts.append(pad(i < cells.count ? cells[i] : "", c.width, right: c.right)) }
    print("| " + parts.joined(separator: " | ") + " |")
  }
}

/// A failure of the benchmark's own machinery (a child process, a file), with its reason.
struct BenchError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
