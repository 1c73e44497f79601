/// Max pooling, `nn.MaxPool2d(k)` (kernel k, stride k, no padding; odd sizes floor, as
/// PyTorch): each output is the largest of its k×k window, the first one in row-major
/// order on ties (PyTorch's CPU kernel too), and the backward sends the gradient to that
/// position only.
public enum MaxPool2d {
  /// x (N, C, H, W) -> y (N, C, H/k, W/k), written; `indices` (one per output: the
  /// winner's offset in its H×W plane) for the backward.
  public static func forward(y: Tensor, indices: inout [Int32], x: Tensor, planes: Int, height: Int, width: Int, k: Int)
  {
    let (oh, ow) = (height / k, width / k)
    precondition(x.count == planes * height * width && y.count == planes * oh * ow, "maxpool: \(x.shape) -> \(y.shape)")
    if indices.count != y.count { indices = [Int32](repeating: 0, count: y.count) }
    let (xs, ys) = (x.data, y.data)
    indices.withUnsafeMutableBufferPointer { idx in
      let winners = idx.baseAddress!
      Parallel.forEach(planes, grain: max(1, Elementwise.grain / max(height * width, 1))) { p in
        let plane = xs + p * height * width
        if k == 2 {
          // VGG's 2×2 windows, written out: the same first-largest rule as the loop below,
          // eight windows at a time (16 input columns, split into even and odd ones) where
          // the row is wide enough.
          for oy in 0..<oh {
            let top = 2 * oy * width
            var ox = 0
            while ox + 8 <= ow {
              let first = top + 2 * ox
              let (upper, lower) = (load16(plane + first), load16(plane + first + width))
              let o = (p * oh + oy) * ow + ox
              let base: SIMD8<Int32> = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14) &+ Int32(first)
              var value: Float8 = upper.evenHalf
              var best: SIMD8<Int32> = base
              @inline(__always) func consider(_ v: Float8, _ offset: Int32) {
                let wins: SIMDMask<SIMD8<Int32>> = (v .> value) .| (v .!= v)
                value.replace(with: v, where: wins)
                best.replace(with: base &+ offset, where: wins)
              }
              consider(upper.oddHalf, 1)
              consider(lower.evenHalf, Int32(width))
              consider(lower.oddHalf, Int32(width) + 1)
              store8(value, ys + o)
              UnsafeMutableRawPointer(winners + o).storeBytes(of: best, as: SIMD8<Int32>.self)
              ox += 8
            }
            while ox < ow {
              let first = top + 2 * ox
              var best = first
              var value = plane[first]
              @inline(__always) func consider(_ at: Int) {
                let v = plane[at]
                if v > value || v.isNaN {
                  best = at
                  value = v
                }
              }
              consider(first + 1)
              consider(first + width)
              consider(first + width + 1)
              let o = (p * oh + oy) * ow + ox
              ys[o] = value
              winners[o] = Int32(best)
              ox += 1
            }
          }
          return
        }
        for oy in 0..<oh {
          for ox in 0..<ow {
            var best = oy * k * width + ox * k
            for ky in 0..<k {
              for kx in 0..<k {
                let at = (oy * k + ky) * width + ox * k + kx
                if plane[at] > plane[best] || plane[at].isNaN { best = at }
              }
            }
            let o = (p * oh + oy) * ow + ox
            ys[o] = plane[best]
            winners[o] = Int32(best)
          }
        }
      }
    }
  }

  /// dy (N, C, H/k, W/k) -> dx (N, C, H, W), added at each window's winner.
  /// `.overwrite`: dx is written (zero but at the winners), each plane zeroed by its own
  /// part just before its winners are added, while it is in cache.
  public static func backward(
    dx: Tensor, dy: Tensor, indices: [Int32], planes: Int, height: Int, width: Int, k: Int,
    write: GradientWrite = .accumulate
  ) {
    let outputs = (height / k) * (width / k)
    let overwrite = write == .overwrite
    precondition(dy.count == planes * outputs && indices.count == dy.count, "maxpool backward: dy \(dy.shape)")
    precondition(dx.count == planes * height * width, "maxpool backward: dx \(dx.shape)")
    let (dxs, dys) = (dx.data, dy.data)
    indices.withUnsafeBufferPointer { idx in
      let winners = idx.baseAddress!
      Parallel.forEach(planes, grain: max(1, Elementwise.grain / max(height * width, 1))) { p in
        if overwrite { (dxs + p * height * width).update(repeating: 0, count: height * width) }
        for o in (p * outputs)..<((p + 1) * outputs) { dxs[p * height * width + Int(winners[o])] += dys[o] }
      }
    }
  }
}

/// `nn.AdaptiveAvgPool2d((oh, ow))`: output (i, j) averages rows ⌊i·H/oh⌋ ..< ⌈(i+1)·H/oh⌉
/// and columns likewise (windows overlap when the size does not divide). VGG pools its
/// last feature map to a fixed size before the head this way; `flatten` is then the
/// (N, C·oh·ow) view of the same memory.
public enum AdaptiveAvgPool2d {
  static func window(_ i: Int, _ input: Int, _ output: Int) -> Range<Int> {
    (i * input / output)..<(((i + 1) * input + output - 1) / output)
  }

  /// x (N, C, H, W) -> y (N, C, oh, ow), written.
  public static func forward(y: Tensor, x: Tensor, planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int)
  {
    precondition(
      x.count == planes * height * width && y.count == planes * outHeight * outWidth,
      "avgpool: \(x.shape) -> \(y.shape)"
    )
    let (xs, ys) = (x.data, y.data)
    Parallel.forEach(planes, grain: max(1, Elementwise.grain / max(height * width, 1))) { p in
      let plane = xs + p * height * width
      for i in 0..<outHeight {
        let rows = window(i, height, outHeight)
        for j in 0..<outWidth {
          let cols = window(j, width, outWidth)
          var sum: Float = 0
          for r in rows {
            for c in cols { sum += plane[r * width + c] }
          }
          ys[(p * outHeight + i) * outWidth + j] = sum / Float(rows.count * cols.count)
        }
      }
    }
  }

  /// dy (N, C, oh, ow) -> dx (N, C, H, W), added: each output's gradient shared equally by
  /// its window.
  public static func backward(
    dx: Tensor, dy: Tensor, planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int
  ) {
    precondition(dx.count == planes * height * width && dy.count == planes * outHeight * outWidth, "avgpool backward")
    let (dxs, dys) = (dx.data, dy.data)
    Parallel.forEach(planes, grain: max(1, Elementwise.grain / max(height * width, 1))) { p in
      let plane = dxs + p * height * width
      for i in 0..<outHeight {
        let rows = window(i, height, outHeight)
        for j in 0..<outWidth {
          let cols = window(j, width, outWidth)
          let g = dys[(p * outHeight + i) * outWidth + j] / Float(rows.count * cols.count)
          for r in rows {
            for c in cols { plane[r * width + c] += g }
          }
        }
      }
    }
  }
}
