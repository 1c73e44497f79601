/// Spelling suggestions for unknown keys and names.
public enum DidYouMean {
  /// The Levenshtein distance: single-character insertions, deletions and substitutions.
  public static func distance(_ a: String, _ b: String) -> Int {
    let x: [Character] = Array(a)
    let y: [Character] = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous: [Int] = Array(0...y.count)
    var current: [Int] = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
      current[0] = i
      for j in 1...y.count {
        let substitution: Int = previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)
        current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
      }
      swap(&previous, &current)
    }
    return previous[y.count]
  }

  /// The candidate closest to `word`, if close enough to be a likely typo: at most 1 edit
  /// for words of up to 3 characters, else at most max(2, length/3). Ties go to the first.
  public static func suggestion(for word: String, among candidates: [String]) -> String? {
    let limit: Int = word.count <= 3 ? 1 : max(2, word.count / 3)
    var best: String? = nil
    var bestDistance: Int = limit + 1
    for c in candidates where c != word {
      let d: Int = distance(word, c)
      if d < bestDistance {
        best = c
        bestDistance = d
      }
    }
    return best
  }
}
