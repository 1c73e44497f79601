// Where a VGG's time goes: its training step or forward pass rebuilt from the
// convolutional kernels at the model's shapes, each timed alone × its calls.
import Kernels
import LayerCollapse

/// The kernels of VGG case `m` at `batch` images (forward and backward for a training
/// step, forward only for an inference pass), each with its calls and its seconds per step.
func convBreakdown(_ m: ModelCase, batch: Int, backward: Bool) -> [(label: String, calls: Int, seconds: Double)] {
  let cfg: ModelConfig = m.config
  var rng: RNG = RNG(seed: 3, stream: "conv breakdown")
  func random(_ shape: [Int], std: Float = 1) -> Tensor {
    let x: Tensor = Tensor(shape)
    rng.fillNormal(x, std: std)
    return x
  }
  var rows: [(label: String, calls: Int, body: () -> Void)] = []
  var (channels, side): (Int, Int) = (cfg.imageChannels, cfg.imageSize)
  var gathers: [() -> Void] = []
  var scatters: [() -> Void] = []
  for (i, width) in cfg.convLayers.enumerated() {
    if width == 0 {
      let (c, s): (Int, Int) = (channels, side)
      let (x, y, dx): (Tensor, Tensor, Tensor) = (
        random([batch, c, s, s]), Tensor([batch, c, s / 2, s / 2]), Tensor([batch, c, s, s])
      )
      var indices: [Int32] = []
      rows.append(
        (
          "maxpool \(s)×\(s)", 1,
          {
            MaxPool2d.forward(y: y, indices: &indices, x: x, planes: batch * c, height: s, width: s, k: 2)
            if backward {
              MaxPool2d.backward(dx: dx, dy: y, indices: indices, planes: batch * c, height: s, width: s, k: 2)
            }
          }
        ))
      side /= 2
      continue
    }
    let shape: Conv2d.Shape = Conv2d.Shape(
      batch: batch, channels: channels, height: side, width: side, outChannels: width)
    let (x, w, b): (Tensor, Tensor, Tensor) = (
      random([batch, channels, side, side]), random([width, channels, 3, 3], std: 0.1), random([width])
    )
    let (y, cols, rowsOut): (Tensor, Tensor, Tensor) = (
      Tensor([batch, width, side, side]), Tensor([shape.patch, shape.rows]), Tensor([width, shape.rows])
    )
    let (dx, dw, db, dyRows, dcols): (Tensor, Tensor, Tensor, Tensor, Tensor) = (
      Tensor(x.shape), Tensor(w.shape), Tensor([width]), Tensor(rowsOut.shape), Tensor(cols.shape)
    )
    let first: Bool = i == 0
    rows.append(
      (
        "conv \(channels)→\(width) at \(side)×\(side)", 1,
        {
          Conv2d.forward(y: y, x: x, w: w, b: b, cols: cols, rows: rowsOut, shape)
          if backward {
            Conv2d.backward(
              dx: first ? nil : dx, dw: dw, db: db, dy: y, cols: cols, w: w, dyRows: dyRows, dcols: dcols, shape)
          }
        }
      ))
    gathers.append { Conv2d.im2col(cols: cols, x: x, shape) }
    if backward && !first { scatters.append { Conv2d.col2im(dx: dx, dcols: dcols, shape) } }
    if cfg.convBatchNorm {
      let bs: BatchNorm.Shape = BatchNorm.Shape(batch: batch, channels: width, spatial: side * side)
      let (normed, mean, invStd, gamma, beta): (Tensor, Tensor, Tensor, Tensor, Tensor) = (
        Tensor(y.shape), Tensor([width]), Tensor([width]), Tensor([width], fill: 1), Tensor([width])
      )
      let (rm, rv, dn, dg, dbeta): (Tensor, Tensor, Tensor, Tensor, Tensor) = (
        Tensor([width]), Tensor([width], fill: 1), Tensor(y.shape), Tensor([width]), Tensor([width])
      )
      rows.append(
        (
          "batchnorm2d \(width) at \(side)×\(side)", 1,
          {
            if backward {
              BatchNorm.forwardTraining(
                y: normed, x: y, gamma: gamma, beta: beta, mean: mean, invStd: invStd, runningMean: rm,
                runningVariance: rv, momentum: 0.1, epsilon: 1e-5, bs)
              BatchNorm.backward(
                dx: dn, dgamma: dg, dbeta: dbeta, dy: normed, x: y, gamma: gamma, mean: mean, invStd: invStd, bs)
            } else {
              BatchNorm.forwardInference(
                y: normed, x: y, gamma: gamma, beta: beta, runningMean: rm, runningVariance: rv, epsilon: 1e-5, bs)
            }
          }
        ))
    }
    let (r, dr): (Tensor, Tensor) = (Tensor(y.shape), Tensor(y.shape))
    rows.append(
      (
        "relu \(width) at \(side)×\(side)", 1,
        {
          Activation.relu.forward(out: r, x: y)
          if backward { _ = Activation.relu.backward(dx: dr, dout: y, x: y, alpha: 0, write: .overwrite) }
        }
      ))
    channels = width
  }
  // The head: the model's own, timed through the model (its linears are most of its work).
  let model: any Model = ModelRegistry.build(m.architecture, seed: 1)
  let images: ModelInput = .images(random([batch, cfg.imageChannels, cfg.imageSize, cfg.imageSize]))
  var result: [(label: String, calls: Int, seconds: Double)] = rows.map { k in
    (k.label, k.calls, Double(k.calls) * medianSeconds(budget: backward ? 0.2 : 0.1, k.body))
  }
  for (label, work) in [("im2col", gathers), ("col2im", scatters)] where !work.isEmpty {
    let seconds: Double = work.map { medianSeconds(budget: backward ? 0.2 : 0.1, $0) }.reduce(0, +)
    result.append(("  of the convs: " + label, work.count, seconds))
  }
  let whole: Double = medianSeconds(budget: 1) {
    var r: RNG = RNG(seed: 1, stream: "whole")
    model.forward(images, training: backward, rng: &r)
    if backward {
      _ = model.loss(targets: [Int32](repeating: 0, count: batch))
      model.backward()
    }
  }
  result.append(("whole model (forward" + (backward ? " + backward)" : ")"), 1, whole))
  return result
}
