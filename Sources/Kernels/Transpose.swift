/// Swaps the last two axes of a batch of matrices: x (B, R, C) -> out (B, C, R). An
/// MLP-Mixer's token-mixing MLP runs along the patches, so it reads the (B, S, C) stream
/// as (B, C, S) and writes back through the inverse.
///
/// Forward and backward are the same operation: the gradient of a transpose is the
/// transpose of the gradient, (B, C, R) -> (B, R, C), with the axes swapped back.
public enum Transpose {
  /// Side of the square tiles the copy walks in, so that reads and writes both stay in
  /// cache lines (32 × 32 floats = 4 KB a tile).
  static let tile = 32

  /// x: (batch, rows, cols) -> out: (batch, cols, rows), written (not accumulated).
  public static func forward(out: Tensor, x: Tensor, batch: Int, rows: Int, cols: Int) {
    precondition(x.count == batch * rows * cols && out.count == x.count, "transpose: \(x.shape) -> \(out.shape)")
    let (src, dst) = (x.data, out.data)
    let matrix = rows * cols
    Parallel.forEach(batch, grain: max(1, Elementwise.grain / max(matrix, 1))) { b in
      let s = src + b * matrix
      let d = dst + b * matrix
      for r0 in stride(from: 0, to: rows, by: tile) {
        let r1 = min(rows, r0 + tile)
        for c0 in stride(from: 0, to: cols, by: tile) {
          let c1 = min(cols, c0 + tile)
          for r in r0..<r1 {
            for c in c0..<c1 { d[c * rows + r] = s[r * cols + c] }
          }
        }
      }
    }
  }

  /// dout: (batch, cols, rows) -> dx: (batch, rows, cols), added into dx (or written with
  /// `.overwrite`).
  public static func backward(
    dx: Tensor, dout: Tensor, batch: Int, rows: Int, cols: Int, write: GradientWrite = .accumulate
  ) {
    precondition(dx.count == batch * rows * cols && dout.count == dx.count, "transpose backward")
    if write == .overwrite {
      forward(out: dx, x: dout, batch: batch, rows: cols, cols: rows)
      return
    }
    let (src, dst) = (dout.data, dx.data)
    let matrix = rows * cols
    Parallel.forEach(batch, grain: max(1, Elementwise.grain / max(matrix, 1))) { b in
      let s = src + b * matrix
      let d = dst + b * matrix
      for r in 0..<rows {
        for c in 0..<cols { d[r * cols + c] += s[c * rows + r] }
      }
    }
  }

  /// A (R, C) matrix as a new (C, R) one (an imported (in, out) weight as our (out, in)).
  public static func matrix(_ x: Tensor) -> Tensor {
    precondition(x.shape.count == 2, "transpose: \(x.shape) is not a matrix")
    let out = Tensor([x.shape[1], x.shape[0]])
    forward(out: out, x: x, batch: 1, rows: x.shape[0], cols: x.shape[1])
    return out
  }

  /// The naive reference for tests: out[b][c][r] = x[b][r][c].
  public static func reference(out: Tensor, x: Tensor, batch: Int, rows: Int, cols: Int) {
    for b in 0..<batch {
      for r in 0..<rows {
        for c in 0..<cols { out[(b * cols + c) * rows + r] = x[(b * rows + r) * cols + c] }
      }
    }
  }
}

/// Cuts images into the rows a patch embedding reads (a stride-P, P×P Conv2d as a matrix
/// product): images (B, ch, S, S) -> patches (B·N, ch·P·P), N = (S/P)², patches in raster
/// order, each row ordered (channel, dy, dx) like a flattened Conv2d kernel. Images are
/// inputs, so there is no backward.
public enum Patches {
  public static func extract(out: Tensor, images: Tensor, channels ch: Int, size s: Int, patch p: Int) {
    let side = s / p
    let n = side * side
    let batch = images.count / (ch * s * s)
    precondition(images.count == batch * ch * s * s && out.count == batch * n * ch * p * p, "patches: \(images.shape)")
    var o = 0
    for b in 0..<batch {
      let img = images.data + b * ch * s * s
      for pi in 0..<n {
        let (py, px) = (pi / side * p, pi % side * p)
        for k in 0..<ch {
          for dy in 0..<p {
            let src = img + k * s * s + (py + dy) * s + px
            (out.data + o).update(from: src, count: p)
            o += p
          }
        }
      }
    }
  }
}
