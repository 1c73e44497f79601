/// Moving rows of row-major tensors: copies between tensors, gathers, masked pooling over
/// sequences and per-row queries. What a model does between its layers that is neither a
/// product nor element-wise arithmetic, kept here so that no model code touches a pointer.
public enum Rows {
  /// Rows `srcRow..<srcRow + count` of `src` (rows of `width` values) to rows
  /// `dstRow..<dstRow + count` of `dst`.
  public static func copy(
    _ count: Int, width: Int, from src: Tensor, row srcRow: Int, to dst: Tensor, row dstRow: Int
  ) {
    precondition(
      count >= 0 && srcRow >= 0 && dstRow >= 0 && (srcRow + count) * width <= src.count
        && (dstRow + count) * width <= dst.count,
      "rows: copy \(count) rows of \(width) from \(src.shape) row \(srcRow) to \(dst.shape) row \(dstRow)")
    (dst.data + dstRow * width).update(from: src.data + srcRow * width, count: count * width)
  }

  /// dst row `dstRow` += src row `srcRow` (rows of `width` values).
  public static func add(width: Int, from src: Tensor, row srcRow: Int, to dst: Tensor, row dstRow: Int) {
    precondition(
      (srcRow + 1) * width <= src.count && (dstRow + 1) * width <= dst.count, "rows: add one row of \(width)")
    let (s, d) = (src.data + srcRow * width, dst.data + dstRow * width)
    for j in 0..<width { d[j] += s[j] }
  }

  /// out (indices.count·blockSize) = the blocks `indices` of `src` (blocks of `blockSize`
  /// values, e.g. images of a batch), in order; an index may repeat.
  public static func gather(_ src: Tensor, blocks indices: [Int], blockSize: Int, into out: Tensor) {
    precondition(out.count == indices.count * blockSize, "rows: gather \(indices.count) blocks into \(out.shape)")
    for (k, i) in indices.enumerated() {
      precondition(i >= 0 && (i + 1) * blockSize <= src.count, "rows: block \(i) outside \(src.shape)")
      (out.data + k * blockSize).update(from: src.data + i * blockSize, count: blockSize)
    }
  }

  /// Mean over each sequence's valid positions: x (B, T, C) -> out (B, C), written.
  /// `valid` (B·T, true = a real token) nil means all; a sequence with none gets zeros.
  public static func maskedMean(out: Tensor, x: Tensor, valid: [Bool]?, batch: Int, time: Int, width c: Int) {
    precondition(x.count == batch * time * c && out.count == batch * c, "rows: masked mean \(x.shape) -> \(out.shape)")
    precondition(valid == nil || valid!.count == batch * time, "rows: mask length")
    out.zero()
    for b in 0..<batch {
      let n = Float(validCount(valid, b, time))
      let dst = out.data + b * c
      for t in 0..<time where valid?[b * time + t] ?? true {
        let src = x.data + (b * time + t) * c
        for j in 0..<c { dst[j] += src[j] / n }
      }
    }
  }

  /// The backward of `maskedMean`: dout (B, C) -> dx (B, T, C): each valid position gets
  /// dout / count; the others are left as they are.
  public static func maskedMeanBackward(
    dx: Tensor, dout: Tensor, valid: [Bool]?, batch: Int, time: Int, width c: Int
  ) {
    precondition(dx.count == batch * time * c && dout.count == batch * c, "rows: masked mean backward")
    for b in 0..<batch {
      let n = Float(validCount(valid, b, time))
      let src = dout.data + b * c
      for t in 0..<time where valid?[b * time + t] ?? true {
        let dst = dx.data + (b * time + t) * c
        for j in 0..<c { dst[j] = src[j] / n }
      }
    }
  }

  /// Valid positions of sequence `b`.
  static func validCount(_ valid: [Bool]?, _ b: Int, _ time: Int) -> Int {
    guard let v = valid else { return time }
    return (0..<time).reduce(0) { $0 + (v[b * time + $1] ? 1 : 0) }
  }

  /// Row `row` of x (rows of `x.lastDim` values), as an array.
  public static func values(_ x: Tensor, row: Int) -> [Float] {
    let k = x.lastDim
    precondition(row >= 0 && (row + 1) * k <= x.count, "rows: row \(row) of \(x.shape)")
    return Array(UnsafeBufferPointer(start: x.data + row * k, count: k))
  }

  /// The index of each row's largest value (the first of equals).
  public static func argmax(_ x: Tensor) -> [Int] {
    let k = x.lastDim
    return (0..<(x.count / max(k, 1))).map { row in
      let p = x.data + row * k
      var best = 0
      for j in 1..<k where p[j] > p[best] { best = j }
      return best
    }
  }
}
