/// Path arithmetic on strings, for the names users type (`-o c`, `output.dir=r/run1`).
public enum Paths {
  /// The directory part of `path`, as `NSString.deletingLastPathComponent` gives it
  /// ("a/b" → "a", "/a" → "/", "a/b/" → "a", "b" → ""), which traps on a one-character
  /// relative name ("c", ".", "c/") in the Foundation of Swift 6.x on Linux.
  public static func parent(_ path: String) -> String {
    var s: Substring = Substring(path)
    while s.count > 1 && s.hasSuffix("/") { s = s.dropLast() }
    guard let slash: String.Index = s.lastIndex(of: "/") else { return "" }
    var head: Substring = s[..<slash]
    while head.hasSuffix("/") { head = head.dropLast() }
    return head.isEmpty ? "/" : String(head)
  }
}
