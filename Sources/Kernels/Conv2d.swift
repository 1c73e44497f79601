/// 2-D convolution as PyTorch's `nn.Conv2d` computes it (NCHW, weight (O, C, k, k),
/// square kernel, equal stride and zero padding on both axes, no dilation or groups):
///
///     y[n, o, oy, ox] = b[o] + Σ_{c, ky, kx} w[o, c, ky, kx] · x[n, c, oy·s − p + ky, ox·s − p + kx]
///
/// Fast path: im2col, then one matrix product for the whole batch. The patches of every
/// output position are the rows of `cols` (N·OH·OW, C·k·k), so the convolution is a
/// Linear layer on them, `rows = cols·Wᵀ + b` (N·OH·OW, O), one GEMM as large as the
/// batch (threads split its rows, and every element is summed by the same kernel over the
/// same C·k·k, so the result does not depend on the thread count), then a transpose of each
/// image's (OH·OW, O) block into NCHW. Chosen over per-image products because one
/// batch-wide GEMM stays large enough to split across threads even on the small late
/// feature maps; not yet measured against alternatives (the VGG rows of `make bench`
/// are still to come).
///
/// Backward: dy to rows (the transpose back), then the Linear backward on the saved
/// `cols` (dW += rowsᵀ·cols, db += Σ rows, dcols = rows·W), then col2im adds each
/// patch's gradient back into dx.
public enum Conv2d {
  public struct Shape: Sendable, Equatable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(
      batch: Int, channels: Int, height: Int, width: Int, outChannels: Int, kernel: Int = 3, stride: Int = 1,
      padding: Int = 1
    ) {
      (self.batch, self.channels, self.height, self.width) = (batch, channels, height, width)
      (self.outChannels, self.kernel, self.stride, self.padding) = (outChannels, kernel, stride, padding)
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Values in one patch (a row of `cols`, a row of the weight as (O, C·k·k)).
    public var patch: Int { channels * kernel * kernel }
    /// Output positions per image.
    public var positions: Int { outHeight * outWidth }
    /// Rows of `cols`: every output position of the batch.
    public var rows: Int { batch * positions }
    /// Whether the kernel fits the padded input at least once.
    public var isValid: Bool {
      batch > 0 && channels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0
        && height + 2 * padding >= kernel && width + 2 * padding >= kernel
    }
  }

  /// The weight (O, C, k, k) seen as the (O, C·k·k) matrix a Linear layer uses.
  static func matrix(_ w: Tensor, _ s: Shape) -> Tensor {
    precondition(w.count == s.outChannels * s.patch, "conv2d: weight \(w.shape) for \(s)")
    return Tensor(viewing: w.data, shape: [s.outChannels, s.patch], owner: w)
  }

  /// x (N, C, H, W) -> cols (N·OH·OW, C·k·k): row (n, oy, ox) holds the input under the
  /// kernel at output (oy, ox), in the weight's (c, ky, kx) order, zeros in the padding.
  public static func im2col(cols: Tensor, x: Tensor, _ s: Shape) {
    precondition(x.count == s.batch * s.channels * s.height * s.width, "im2col: x \(x.shape) for \(s)")
    precondition(cols.count == s.rows * s.patch, "im2col: cols \(cols.shape) for \(s)")
    let (src, dst) = (x.data, cols.data)
    let (oh, ow, k, st, p) = (s.outHeight, s.outWidth, s.kernel, s.stride, s.padding)
    let (h, w, c, patch) = (s.height, s.width, s.channels, s.patch)
    // One part per (image, output row): each writes its own OW rows of cols. Per (channel,
    // kernel row) the k values under the kernel are contiguous in x: copied whole where
    // the window is inside the image, element by element at the edges.
    Parallel.forEach(s.batch * oh, grain: max(1, Elementwise.grain / max(ow * patch, 1))) { item in
      let n = item / oh
      let oy = item % oh
      let image = src + n * c * h * w
      let rows = dst + (n * oh + oy) * ow * patch
      for ch in 0..<c {
        let plane = image + ch * h * w
        for ky in 0..<k {
          let iy = oy * st - p + ky
          let column = (ch * k + ky) * k
          guard iy >= 0 && iy < h else {
            for ox in 0..<ow { (rows + ox * patch + column).update(repeating: 0, count: k) }
            continue
          }
          let line = plane + iy * w
          for ox in 0..<ow {
            let ix0 = ox * st - p
            let out = rows + ox * patch + column
            if ix0 >= 0 && ix0 + k <= w {
              out.update(from: line + ix0, count: k)
            } else {
              for kx in 0..<k {
                let ix = ix0 + kx
                out[kx] = ix >= 0 && ix < w ? line[ix] : 0
              }
            }
          }
        }
      }
    }
  }

  /// dcols (N·OH·OW, C·k·k) -> dx (N, C, H, W), added: each patch value's gradient goes
  /// back to the input pixel it was copied from (padding positions drop out).
  public static func col2im(dx: Tensor, dcols: Tensor, _ s: Shape) {
    precondition(dx.count == s.batch * s.channels * s.height * s.width, "col2im: dx \(dx.shape) for \(s)")
    precondition(dcols.count == s.rows * s.patch, "col2im: dcols \(dcols.shape) for \(s)")
    let (src, dst) = (dcols.data, dx.data)
    let (oh, ow, k, st, p) = (s.outHeight, s.outWidth, s.kernel, s.stride, s.padding)
    let (h, w, c, patch) = (s.height, s.width, s.channels, s.patch)
    // One part per (image, channel) plane of dx: its pixels are written by that part only,
    // always in the same (oy, ky, ox, kx) order.
    Parallel.forEach(s.batch * c, grain: max(1, Elementwise.grain / max(s.positions * k * k, 1))) { item in
      let n = item / c
      let ch = item % c
      let plane = dst + (n * c + ch) * h * w
      for oy in 0..<oh {
        let rows = src + (n * oh + oy) * ow * patch + ch * k * k
        for ky in 0..<k {
          let iy = oy * st - p + ky
          guard iy >= 0 && iy < h else { continue }
          let line = plane + iy * w
          for ox in 0..<ow {
            let ix0 = ox * st - p
            let from = rows + ox * patch + ky * k
            if ix0 >= 0 && ix0 + k <= w {
              for kx in 0..<k { line[ix0 + kx] += from[kx] }
            } else {
              for kx in 0..<k where ix0 + kx >= 0 && ix0 + kx < w { line[ix0 + kx] += from[kx] }
            }
          }
        }
      }
    }
  }

  /// x (N, C, H, W), w (O, C, k, k), b (O) -> y (N, O, OH, OW), written. `cols`
  /// (N·OH·OW, C·k·k) keeps the patches for the backward; `rows` (N·OH·OW, O) is scratch.
  public static func forward(y: Tensor, x: Tensor, w: Tensor, b: Tensor?, cols: Tensor, rows: Tensor, _ s: Shape) {
    precondition(y.count == s.batch * s.outChannels * s.positions, "conv2d: y \(y.shape) for \(s)")
    precondition(rows.count == s.rows * s.outChannels, "conv2d: rows \(rows.shape) for \(s)")
    im2col(cols: cols, x: x, s)
    Linear.forward(y: rows, x: cols, w: matrix(w, s), b: b)
    // (N, OH·OW, O) -> (N, O, OH·OW)
    Transpose.forward(out: y, x: rows, batch: s.batch, rows: s.positions, cols: s.outChannels)
  }

  /// dy (N, O, OH, OW) -> dx (N, C, H, W) added (nil: the first layer needs none),
  /// dw (O, C, k, k) and db (O) added. `cols` is the forward's; `dyRows` (N·OH·OW, O) and
  /// `dcols` (N·OH·OW, C·k·k) are scratch.
  public static func backward(
    dx: Tensor?, dw: Tensor, db: Tensor?, dy: Tensor, cols: Tensor, w: Tensor, dyRows: Tensor, dcols: Tensor,
    _ s: Shape
  ) {
    precondition(dy.count == s.batch * s.outChannels * s.positions, "conv2d backward: dy \(dy.shape) for \(s)")
    Transpose.forward(out: dyRows, x: dy, batch: s.batch, rows: s.outChannels, cols: s.positions)
    Linear.backward(
      dx: dx == nil ? nil : dcols, dw: matrix(dw, s), db: db, dy: dyRows, x: cols, w: matrix(w, s),
      dxWrite: .overwrite)
    if let dx = dx { col2im(dx: dx, dcols: dcols, s) }
  }

  /// The definition, one output at a time, summed in Double: the tests' reference.
  public static func referenceForward(y: Tensor, x: Tensor, w: Tensor, b: Tensor?, _ s: Shape) {
    let (oh, ow, k) = (s.outHeight, s.outWidth, s.kernel)
    for n in 0..<s.batch {
      for o in 0..<s.outChannels {
        for oy in 0..<oh {
          for ox in 0..<ow {
            var acc = Double(b?[o] ?? 0)
            for c in 0..<s.channels {
              for ky in 0..<k {
                for kx in 0..<k {
                  let iy = oy * s.stride - s.padding + ky
                  let ix = ox * s.stride - s.padding + kx
                  guard iy >= 0 && iy < s.height && ix >= 0 && ix < s.width else { continue }
                  acc +=
                    Double(w[((o * s.channels + c) * k + ky) * k + kx])
                    * Double(x[((n * s.channels + c) * s.height + iy) * s.width + ix])
                }
              }
            }
            y[((n * s.outChannels + o) * oh + oy) * ow + ox] = Float(acc)
          }
        }
      }
    }
  }
}
