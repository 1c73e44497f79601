/// Table lookup: row `ids[i]` of the table becomes row i of the output.
public enum Embedding {
  /// table: (V, C), ids: (N) -> out: (N, C). With `accumulate`, adds instead of writing
  /// (token + position embeddings are two lookups into the same output).
  public static func forward(out: Tensor, ids: [Int32], table: Tensor, accumulate: Bool = false) {
    let c = table.lastDim
    let v = table.count / c
    precondition(out.count == ids.count * c, "embedding: out \(out.shape) for \(ids.count) ids of width \(c)")
    for (i, id) in ids.enumerated() {
      precondition(id >= 0 && Int(id) < v, "embedding: id \(id) outside table of \(v) rows")
      let src = table.data + Int(id) * c
      let dst = out.data + i * c
      if accumulate {
        addRow(dst, src, c)
      } else {
        dst.update(from: src, count: c)
      }
    }
  }

  /// dtable[ids[i]] += dout[i].
  public static func backward(dtable: Tensor, dout: Tensor, ids: [Int32]) {
    let c = dtable.lastDim
    for (i, id) in ids.enumerated() {
      addRow(dtable.data + Int(id) * c, dout.data + i * c, c)
    }
  }

  /// dst[0..<c] += src[0..<c].
  @inline(__always)
  static func addRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ c: Int) {
    @inline(__always) func vector(_ j: Int, _ m: Int) {
      store8(load8(dst + j, m) + load8(src + j, m), dst + j, m)
    }
    vectorLoop(0, c, vector)
  }
}

/// Inverted dropout: keeps each element with probability 1 − p and scales it by 1/(1 − p).
public enum Dropout {
  /// x -> out; `mask` records each element's factor (0 or 1/(1−p)) for backward.
  /// With p = 0 this is a copy and draws nothing from the generator.
  public static func forward(out: Tensor, mask: Tensor, x: Tensor, p: Float, rng: inout RNG) {
    precondition(p >= 0 && p < 1, "dropout: p = \(p) outside [0, 1)")
    precondition(out.count == x.count && mask.count == x.count, "dropout shapes")
    if p == 0 {
      out.copy(from: x)
      mask.fill(1)
      return
    }
    let scale = 1 / (1 - p)
    for i in 0..<x.count {
      let keep: Float = rng.uniform() >= p ? scale : 0
      mask.data[i] = keep
      out.data[i] = x.data[i] * keep
    }
  }

  public static func backward(dx: Tensor, dout: Tensor, mask: Tensor) {
    precondition(dout.count == dx.count && mask.count == dx.count, "dropout backward shapes")
    let (d, g, k) = (dx.data, UnsafePointer(dout.data), UnsafePointer(mask.data))
    Elementwise.parts(dx.count) { part in
      @inline(__always) func vector(_ i: Int, _ lanes: Int) {
        store8(load8(d + i, lanes) + load8(g + i, lanes) * load8(k + i, lanes), d + i, lanes)
      }
      part.vectors(vector)
    }
  }
}
