/// Bilinear resizing of images, as torchvision's `Resize` (and
/// `F.interpolate(mode="bilinear", antialias=True, align_corners=False)`) computes it on
/// float tensors: each output pixel is a normalized triangle-filter average of the input
/// pixels around its centre, the filter widened by the scale when shrinking (antialiasing)
/// and of radius one pixel when enlarging, where it is the usual half-pixel-centred
/// bilinear interpolation with edges clamped.
///
/// A data transform (images for an imported ViT trained at 224×224): forward only.
public enum Resize {
  /// Taps of one axis: output i reads input `first[i] ..< first[i] + count` with the
  /// weights `weights[i * width ..< i * width + count]` (summing to one).
  struct Taps {
    var first: [Int]
    var count: [Int]
    var weights: [Float]
    var width: Int
  }

  /// The filter of an axis from `input` to `output` samples (PIL's and ATen's
  /// antialiased bilinear: support = max(scale, 1), triangle scaled by 1/max(scale, 1)).
  static func taps(input: Int, output: Int) -> Taps {
    let scale: Double = Double(input) / Double(output)
    let stretch: Double = max(scale, 1)
    let support: Double = stretch
    let width: Int = Int(support.rounded(.up)) * 2 + 1
    var first: [Int] = []
    var count: [Int] = []
    var weights: [Float] = [Float](repeating: 0, count: output * width)
    for i in 0..<output {
      let centre: Double = scale * (Double(i) + 0.5)
      let lo: Int = max(Int(centre - support + 0.5), 0)
      let hi: Int = min(Int(centre + support + 0.5), input)
      var w: [Double] = []
      var total: Double = 0
      for j in lo..<hi {
        let t: Double = max(0, 1 - abs((Double(j) - centre + 0.5) / stretch))
        w.append(t)
        total += t
      }
      first.append(lo)
      count.append(hi - lo)
      for (k, t) in w.enumerated() { weights[i * width + k] = Float(total > 0 ? t / total : 0) }
    }
    return Taps(first: first, count: count, weights: weights, width: width)
  }

  /// x (N, C, H, W) -> out (N, C, outH, outW): rows first, then columns.
  public static func bilinear(_ x: Tensor, height outH: Int, width outW: Int) -> Tensor {
    precondition(x.shape.count == 4 && outH > 0 && outW > 0, "resize: \(x.shape) -> \(outH)×\(outW)")
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let out: Tensor = Tensor([x.shape[0], x.shape[1], outH, outW])
    let across: Taps = taps(input: w, output: outW)
    let down: Taps = taps(input: h, output: outH)
    let (src, dst) = (x.data, out.data)
    Parallel.forEach(planes, grain: 1) { p in
      // Horizontal pass into a (h, outW) plane, then the vertical pass into the output.
      var wide: [Float] = [Float](repeating: 0, count: h * outW)
      let s = src + p * h * w
      for r in 0..<h {
        for i in 0..<outW {
          var acc: Float = 0
          let base: Int = i * across.width
          for k in 0..<across.count[i] { acc += across.weights[base + k] * s[r * w + across.first[i] + k] }
          wide[r * outW + i] = acc
        }
      }
      let d = dst + p * outH * outW
      for i in 0..<outH {
        let base: Int = i * down.width
        for c in 0..<outW {
          var acc: Float = 0
          for k in 0..<down.count[i] { acc += down.weights[base + k] * wide[(down.first[i] + k) * outW + c] }
          d[i * outW + c] = acc
        }
      }
    }
    return out
  }

  /// Reference for the tests: every output pixel as the double sum over its 2-D window.
  public static func bilinearReference(_ x: Tensor, height outH: Int, width outW: Int) -> Tensor {
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let out: Tensor = Tensor([x.shape[0], x.shape[1], outH, outW])
    let across: Taps = taps(input: w, output: outW)
    let down: Taps = taps(input: h, output: outH)
    for p in 0..<planes {
      for i in 0..<outH {
        for j in 0..<outW {
          var acc: Double = 0
          for a in 0..<down.count[i] {
            for b in 0..<across.count[j] {
              let weight: Double =
                Double(down.weights[i * down.width + a]) * Double(across.weights[j * across.width + b])
              acc += weight * Double(x[p * h * w + (down.first[i] + a) * w + across.first[j] + b])
            }
          }
          out.data[p * outH * outW + i * outW + j] = Float(acc)
        }
      }
    }
    return out
  }
}
