/// 2-D convolution as PyTorch's `nn.Conv2d` computes it (NCHW, weight (O, C, k, k),
/// square kernel, equal stride and zero padding on both axes, no dilation or groups):
///
///     y[n, o, oy, ox] = b[o] + Σ_{c, ky, kx} w[o, c, ky, kx] · x[n, c, oy·s − p + ky, ox·s − p + kx]
///
/// Fast path: im2col, then one matrix product for the whole batch. `cols` (C·k·k, N·OH·OW)
/// holds in row (c, ky, kx) the input under that kernel tap at every output position of
/// the batch: for stride 1 each output row's run is a shifted copy of an input row, so
/// im2col and col2im move whole runs of OW values (the transposed layout, one patch per
/// row, moved k values at a time and took a quarter of a VGG training step). The
/// convolution is then `Y = W·cols` (O, N·OH·OW), one GEMM as wide as the batch (threads
/// split its columns; every element is summed by the same kernel over the same C·k·k),
/// and `y` is Y with its two leading axes swapped, (O, N, ·) -> (N, O, ·), in runs of
/// OH·OW with the bias added on the way.
///
/// Backward: dy to dY (the swap back, db summed on the way), dW += dY·colsᵀ, then,
/// a few images at a time, dcols = Wᵀ·dY and col2im adds each tap's gradient into dx.
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
    /// Values in one patch (the rows of `cols`, a row of the weight as (O, C·k·k)).
    public var patch: Int { channels * kernel * kernel }
    /// Output positions per image.
    public var positions: Int { outHeight * outWidth }
    /// Every output position of the batch (the columns of `cols`).
    public var rows: Int { batch * positions }
    /// Whether the kernel fits the padded input at least once.
    public var isValid: Bool {
      batch > 0 && channels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0
        && height + 2 * padding >= kernel && width + 2 * padding >= kernel
    }

    /// Stride 1 and as much padding as the kernel takes away: the output has the input's size.
    var keepsSize: Bool { stride == 1 && outHeight == height && outWidth == width }

    /// The outputs ox whose input column `ox·stride − padding + kx` lies inside the image:
    /// left of the range and right of it, the tap reads padding.
    func inside(kx: Int) -> Range<Int> {
      let first: Int = padding > kx ? (padding - kx + stride - 1) / stride : 0
      let last: Int = width - 1 + padding - kx  // the largest ox·stride that is inside
      let end: Int = last < 0 ? 0 : min(outWidth, last / stride + 1)
      let start: Int = min(first, outWidth)
      return start..<max(start, end)
    }
  }

  /// The weight (O, C, k, k) seen as the (O, C·k·k) matrix the product uses.
  static func matrix(_ w: Tensor, _ s: Shape) -> UnsafeMutablePointer<Float> {
    precondition(w.count == s.outChannels * s.patch, "conv2d: weight \(w.shape) for \(s)")
    return w.data
  }

  /// x (N, C, H, W) -> cols (C·k·k, N·OH·OW): row (c, ky, kx), column (n, oy, ox) holds
  /// x[n, c, oy·s − p + ky, ox·s − p + kx], zero in the padding.
  public static func im2col(cols: Tensor, x: Tensor, _ s: Shape) {
    precondition(x.count == s.batch * s.channels * s.height * s.width, "im2col: x \(x.shape) for \(s)")
    precondition(cols.count == s.rows * s.patch, "im2col: cols \(cols.shape) for \(s)")
    let (src, dst): (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) = (x.data, cols.data)
    let (oh, ow, k, st, p): (Int, Int, Int, Int, Int) = (s.outHeight, s.outWidth, s.kernel, s.stride, s.padding)
    let (h, w, batch, positions, wide): (Int, Int, Int, Int, Int) = (s.height, s.width, s.batch, s.positions, s.rows)
    // One part per run of rows of cols: row (c, ky, kx) is written image after image.
    Parallel.forRanges(s.patch, grain: max(1, Elementwise.grain / max(batch * positions, 1))) { range in
      for r in range {
        let (c, ky, kx): (Int, Int, Int) = (r / (k * k), (r / k) % k, r % k)
        let inside: Range<Int> = s.inside(kx: kx)
        if s.keepsSize && positions < Self.smallPlane && batch >= Self.smallPlaneBatch {
          smallTaps(dst + r * wide, src + c * h * w, s, dy: ky - p, dx: kx - p)
          continue
        }
        for n in 0..<batch {
          let plane: UnsafeMutablePointer<Float> = src + (n * s.channels + c) * h * w
          let out: UnsafeMutablePointer<Float> = dst + r * wide + n * positions
          if s.keepsSize {
            shiftedPlane(out, plane, s, dy: ky - p, dx: kx - p)
            continue
          }
          for oy in 0..<oh {
            let iy: Int = oy * st - p + ky
            let line: UnsafeMutablePointer<Float> = out + oy * ow
            guard iy >= 0 && iy < h else {
              line.update(repeating: 0, count: ow)
              continue
            }
            let row: UnsafeMutablePointer<Float> = plane + iy * w - p + kx
            line.update(repeating: 0, count: inside.lowerBound)
            if st == 1 {
              (line + inside.lowerBound).update(from: row + inside.lowerBound, count: inside.count)
            } else {
              for ox in inside { line[ox] = row[ox * st] }
            }
            (line + inside.upperBound).update(repeating: 0, count: ow - inside.upperBound)
          }
        }
      }
    }
  }

  /// im2col of planes smaller than `smallPlane` (4×4 and less) at `smallPlaneBatch` images
  /// or more goes through `smallTaps`: the bench's VGG inference at batch 256 ran 1.6× faster
  /// in im2col; at batch 1 it ran 2.6× slower, and col2im of a training batch of 64 1.25×
  /// slower, so those keep one block per image and tap.
  public static let smallPlane = 64
  public static let smallPlaneBatch = 8

  /// One stride-1 "same" tap for every image at once, output position by position with
  /// the images innermost: `row` (N·H·W) is that tap's row of cols, `channel` the input
  /// channel's plane in the first image (the next image's is C·H·W further):
  /// row[n, j] = x[n, c, oy + dy, ox + dx], 0 in the padding. On planes of a few values a
  /// copy per image and tap costs more in setting up than in moving values.
  @inline(__always)
  static func smallTaps(
    _ row: UnsafeMutablePointer<Float>, _ channel: UnsafeMutablePointer<Float>, _ s: Shape, dy: Int, dx: Int
  ) {
    let (h, w, batch): (Int, Int, Int) = (s.height, s.width, s.batch)
    let (positions, image): (Int, Int) = (h * w, s.channels * h * w)
    for oy in 0..<h {
      for ox in 0..<w {
        let (iy, ix): (Int, Int) = (oy + dy, ox + dx)
        var out: UnsafeMutablePointer<Float> = row + oy * w + ox
        if iy < 0 || iy >= h || ix < 0 || ix >= w {
          for _ in 0..<batch {
            out.pointee = 0
            out += positions
          }
          continue
        }
        var pixel: UnsafeMutablePointer<Float> = channel + iy * w + ix
        for _ in 0..<batch {
          out.pointee = pixel.pointee
          out += positions
          pixel += image
        }
      }
    }
  }

  /// A stride-1 "same" tap of one image: out[oy, ox] = plane[oy + dy, ox + dx], zero
  /// outside the plane. The rows inside are one block of the plane shifted by dy·W + dx,
  /// copied at once (at 8×8 and smaller a copy per row costs more in calls than in bytes);
  /// the dx columns it wraps from the next or previous row are then zeroed.
  @inline(__always)
  static func shiftedPlane(
    _ out: UnsafeMutablePointer<Float>, _ plane: UnsafeMutablePointer<Float>, _ s: Shape, dy: Int, dx: Int
  ) {
    let total: Int = s.height * s.width
    let block: Range<Int> = shiftedBlock(s, dy: dy, dx: dx)
    out.update(repeating: 0, count: block.lowerBound)
    (out + block.lowerBound).update(from: plane + block.lowerBound + dy * s.width + dx, count: block.count)
    (out + block.upperBound).update(repeating: 0, count: total - block.upperBound)
    zeroWrappedColumns(out, s, dx: dx)
  }

  /// The outputs j of a tap shifted by (dy, dx) whose input j + dy·W + dx lies in the
  /// plane: the block that one copy moves.
  @inline(__always)
  static func shiftedBlock(_ s: Shape, dy: Int, dx: Int) -> Range<Int> {
    let total: Int = s.height * s.width
    let shift: Int = dy * s.width + dx
    let start: Int = min(total, max(0, -shift))
    return start..<max(start, min(total, total - shift))
  }

  /// Zeroes the |dx| columns of an H×W plane of tap values that read past the left or
  /// right edge (the block wraps them to the previous or next row).
  @inline(__always)
  static func zeroWrappedColumns(_ p: UnsafeMutablePointer<Float>, _ s: Shape, dx: Int) {
    if dx == 0 { return }
    let w: Int = s.width
    let count: Int = min(abs(dx), w)
    let first: Int = dx > 0 ? w - count : 0
    for oy in 0..<s.height {
      for i in 0..<count { p[oy * w + first + i] = 0 }
    }
  }

  /// The backward of `shiftedPlane`: plane[oy + dy, ox + dx] += from[oy, ox] where inside.
  /// `from`'s dx columns that read padding are zeroed first (their gradient drops out), so
  /// the block they wrap into gets + 0, which leaves every value as it was.
  @inline(__always)
  static func addShiftedPlane(
    _ plane: UnsafeMutablePointer<Float>, _ from: UnsafeMutablePointer<Float>, _ s: Shape, dy: Int, dx: Int
  ) {
    zeroWrappedColumns(from, s, dx: dx)
    let block: Range<Int> = shiftedBlock(s, dy: dy, dx: dx)
    let (target, source): (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) = (plane + dy * s.width + dx, from)
    @inline(__always) func add(_ j: Int, _ lanes: Int) {
      store8(load8(target + j, lanes) + load8(source + j, lanes), target + j, lanes)
    }
    vectorLoop(block.lowerBound, block.upperBound, add)
  }

  /// dcols (C·k·k, N·OH·OW) -> dx (N, C, H, W), added (or written, `.overwrite`: each
  /// part zeroes its planes first, while they are in cache): each tap's gradient goes back to
  /// the input pixel it was copied from (padding positions drop out; where the output
  /// keeps the input's size, their values in dcols are zeroed on the way).
  public static func col2im(dx: Tensor, dcols: Tensor, write: GradientWrite = .accumulate, _ s: Shape) {
    precondition(dx.count == s.batch * s.channels * s.height * s.width, "col2im: dx \(dx.shape) for \(s)")
    precondition(dcols.count == s.rows * s.patch, "col2im: dcols \(dcols.shape) for \(s)")
    let (src, dst): (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) = (dcols.data, dx.data)
    let (oh, ow, k, st, p): (Int, Int, Int, Int, Int) = (s.outHeight, s.outWidth, s.kernel, s.stride, s.padding)
    let (h, w, c, positions, wide): (Int, Int, Int, Int, Int) = (s.height, s.width, s.channels, s.positions, s.rows)
    // One part per channel: the dx planes of that channel in every image are written by
    // that part only, each pixel's terms always added in (ky, kx) order. Its k·k rows of
    // dcols are read front to back (image after image), so the reads stream.
    Parallel.forEach(c, grain: max(1, Elementwise.grain / max(s.batch * positions * k * k, 1))) { ch in
      if write == .overwrite {
        for n in 0..<s.batch { (dst + (n * c + ch) * h * w).update(repeating: 0, count: h * w) }
      }
      for ky in 0..<k {
        for kx in 0..<k {
          let inside: Range<Int> = s.inside(kx: kx)
          for n in 0..<s.batch {
            let plane: UnsafeMutablePointer<Float> = dst + (n * c + ch) * h * w
            let from: UnsafeMutablePointer<Float> = src + ((ch * k + ky) * k + kx) * wide + n * positions
            if s.keepsSize {
              addShiftedPlane(plane, from, s, dy: ky - p, dx: kx - p)
              continue
            }
            for oy in 0..<oh {
              let iy: Int = oy * st - p + ky
              guard iy >= 0 && iy < h else { continue }
              let row: UnsafeMutablePointer<Float> = plane + iy * w - p + kx
              let line: UnsafeMutablePointer<Float> = from + oy * ow
              if st == 1 {
                for ox in inside { row[ox] += line[ox] }
              } else {
                for ox in inside { row[ox * st] += line[ox] }
              }
            }
          }
        }
      }
    }
  }

  /// What an inference forward can apply on its way out, in the pass that writes y: a
  /// per-channel affine map (a BatchNorm's running statistics, `BatchNorm.inferenceAffine`)
  /// and a ReLU, computed as those kernels compute them, so the bits are theirs.
  public struct Epilogue: Sendable {
    public var scale: [Float]
    public var shift: [Float]
    public var relu: Bool
    public init(scale: [Float], shift: [Float], relu: Bool) {
      (self.scale, self.shift, self.relu) = (scale, shift, relu)
    }
  }

  /// x (N, C, H, W), w (O, C, k, k), b (O) -> y (N, O, OH, OW), written (with the
  /// epilogue applied, if any). `cols` (C·k·k, N·OH·OW) keeps the patches for the
  /// backward; `rows` (O, N·OH·OW) is scratch.
  public static func forward(
    y: Tensor, x: Tensor, w: Tensor, b: Tensor?, cols: Tensor, rows: Tensor, epilogue: Epilogue? = nil, _ s: Shape
  ) {
    precondition(y.count == s.batch * s.outChannels * s.positions, "conv2d: y \(y.shape) for \(s)")
    precondition(rows.count == s.rows * s.outChannels, "conv2d: rows \(rows.shape) for \(s)")
    precondition(b.map { $0.count == s.outChannels } ?? true, "conv2d: bias \(b?.shape ?? []) for \(s)")
    im2col(cols: cols, x: x, s)
    // Y (O, N·P) = W (O, C·k·k) · cols (C·k·k, N·P)
    GEMM.multiply(
      transA: false, transB: false, m: s.outChannels, n: s.rows, k: s.patch, a: matrix(w, s), lda: s.patch,
      b: cols.data, ldb: s.rows, c: rows.data, ldc: s.rows)
    // y[n, o, ·] = Y[o, n, ·] + b[o]
    let (o, batch, positions): (Int, Int, Int) = (s.outChannels, s.batch, s.positions)
    let (from, to): (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) = (rows.data, y.data)
    let bias: UnsafeMutablePointer<Float>? = b?.data
    precondition(
      epilogue.map { $0.scale.count == o && $0.shift.count == o } ?? true, "conv2d: epilogue for \(o) channels")
    let (relu, affine): (Bool, Bool) = (epilogue?.relu ?? false, epilogue != nil)
    let scale: [Float] = epilogue?.scale ?? []
    let shift: [Float] = epilogue?.shift ?? []
    Parallel.forRanges(batch, grain: max(1, Elementwise.grain / max(o * positions, 1))) { images in
      for n in images {
        for ch in 0..<o {
          let source: UnsafeMutablePointer<Float> = from + (ch * batch + n) * positions
          let target: UnsafeMutablePointer<Float> = to + (n * o + ch) * positions
          let add: Float = bias?[ch] ?? 0
          if !affine {
            for i in 0..<positions { target[i] = source[i] + add }
            continue
          }
          let (a, t): (Float, Float) = (scale[ch], shift[ch])
          if relu {
            for i in 0..<positions { target[i] = ReLU.apply(a * (source[i] + add) + t) }
          } else {
            for i in 0..<positions { target[i] = a * (source[i] + add) + t }
          }
        }
      }
    }
  }

  /// dy (N, O, OH, OW) -> dx (N, C, H, W) added, or written with `dxWrite: .overwrite`
  /// (nil: the first layer needs none),
  /// dw (O, C, k, k) and db (O) added. `cols` is the forward's; `dyRows` (O, N·OH·OW) and
  /// `dcols` (at least `dcolsShape(s)`) are scratch.
  public static func backward(
    dx: Tensor?, dw: Tensor, db: Tensor?, dy: Tensor, cols: Tensor, w: Tensor, dyRows: Tensor, dcols: Tensor,
    dxWrite: GradientWrite = .accumulate, _ s: Shape
  ) {
    precondition(dy.count == s.batch * s.outChannels * s.positions, "conv2d backward: dy \(dy.shape) for \(s)")
    precondition(dyRows.count == s.rows * s.outChannels, "conv2d backward: dyRows \(dyRows.shape) for \(s)")
    precondition(
      dx == nil || dcols.count >= s.patch * blockImages(s) * s.positions,
      "conv2d backward: dcols \(dcols.shape) for \(s)")
    // dY[o, n, ·] = dy[n, o, ·]; db[o] += Σ over n and the positions, in that order (one
    // part per channel: the same bits at any thread count).
    let (o, batch, positions): (Int, Int, Int) = (s.outChannels, s.batch, s.positions)
    let (from, to): (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) = (dy.data, dyRows.data)
    let bias: UnsafeMutablePointer<Float>? = db?.data
    Parallel.forEach(o, grain: max(1, Elementwise.grain / max(batch * positions, 1))) { ch in
      var total: Double = 0
      for n in 0..<batch {
        let source: UnsafeMutablePointer<Float> = from + (n * o + ch) * positions
        (to + (ch * batch + n) * positions).update(from: source, count: positions)
        if bias != nil { total += Double(laneSum(source, positions)) }
      }
      bias?[ch] += Float(total)
    }
    // dW (O, C·k·k) += dY (O, N·P) · colsᵀ
    GEMM.multiply(
      transA: false, transB: true, m: s.outChannels, n: s.patch, k: s.rows, a: dyRows.data, lda: s.rows,
      b: cols.data, ldb: s.rows, beta: 1, c: matrix(dw, s), ldc: s.patch)
    guard let dx = dx else { return }
    // dcols = Wᵀ · dY and col2im, `blockImages` images at a time: OpenBLAS zeroes a
    // product's output before adding to it (beta 0), so each block of dcols is zeroed,
    // written and read back by col2im while it is in cache, not streamed through memory
    // three times. Every image's taps are added in the same order as in one block.
    let per: Int = blockImages(s)
    let image: Int = s.channels * s.height * s.width
    for first in stride(from: 0, to: batch, by: per) {
      let n: Int = min(per, batch - first)
      var part: Shape = s
      part.batch = n
      // dcols (C·k·k, n·P) = Wᵀ · dY[:, images first ..< first + n]
      GEMM.multiply(
        transA: true, transB: false, m: s.patch, n: n * positions, k: s.outChannels, a: matrix(w, s), lda: s.patch,
        b: dyRows.data + first * positions, ldb: s.rows, c: dcols.data, ldc: n * positions)
      col2im(
        dx: Tensor(viewing: dx.data + first * image, shape: [n, s.channels, s.height, s.width], owner: dx),
        dcols: Tensor(viewing: dcols.data, shape: [s.patch, n * positions], owner: dcols), write: dxWrite, part)
    }
  }

  /// Values of dcols per block of the backward: 256 K floats (1 MB), about what a core's
  /// second-level cache holds.
  static let blockValues = 1 << 18

  /// Images per block of the backward's dcols (at least one).
  public static func blockImages(_ s: Shape) -> Int {
    max(1, min(s.batch, blockValues / max(s.patch * s.positions, 1)))
  }

  /// The scratch `backward` needs for dcols: (C·k·k, blockImages·OH·OW).
  public static func dcolsShape(_ s: Shape) -> [Int] { [s.patch, blockImages(s) * s.positions] }

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
