import Kernels

/// The training-free rival of LayerCollapse that recent depth-compression work uses
/// (ReplaceMe, NeurIPS 2025): replace a unit (an MLP) by the least-squares linear map from
/// its inputs to its outputs, measured on a few hundred training examples, at the collapse's
/// parameter count. `collapse --force UNITS --fit N` applies it.
public enum LinearFit {
  /// The fit of each of `units` over evaluation forward passes of `batches`, with ridge
  /// `relativeRidge` × the inputs' mean square on W. Throws when the family exposes no
  /// unit inputs and outputs (`Model.unitProbe`), or a fit is singular.
  public static func fit(
    _ model: any Model, units: [Int], batches: [ModelInput], relativeRidge: Double = 1e-4, location: String
  ) throws -> [Int: AffineMap] {
    var fits: [Int: LeastSquaresFit] = [:]
    for batch in batches {
      model.forward(batch)
      for u in units {
        guard let io = model.unitProbe(unit: u) else {
          throw LCError.usage(
            ErrorDetail(
              what: "a \(model.config.kind.rawValue) model's units cannot be fitted by least squares",
              location: location, expected: "a transformer, Mixer or BERT unit",
              hint: "The fit needs each unit's own inputs and outputs; this family's units share linears"))
        }
        let (inputs, outputs) = (io.input.lastDim, io.output.lastDim)
        var f = fits[u] ?? LeastSquaresFit(inputs: inputs, outputs: outputs)
        f.add(x: io.input, y: io.output)
        fits[u] = f
      }
    }
    var maps: [Int: AffineMap] = [:]
    for (u, f) in fits {
      guard let (w, b) = f.solve(ridge: relativeRidge * max(f.meanSquare, 1e-12)) else {
        throw LCError.badData(
          ErrorDetail(
            what: "the least-squares fit of \(model.architecture.unitName(u)) is singular", location: location,
            got: "\(f.rows) rows of \(f.inputs) features", hint: "Fit on more examples (--fit N)"))
      }
      maps[u] = AffineMap(weight: w, bias: b)
    }
    return maps
  }
}
