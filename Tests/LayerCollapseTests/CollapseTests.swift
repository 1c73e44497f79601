import Foundation
import Kernels
import LayerCollapse
import Testing

@Suite struct CollapseTests {
  static func preluModel(_ kind: ModelKind, alpha: Float, seed: UInt64 = 1) -> Transformer {
    let cfg = Fixtures.config(kind)
    let model = Transformer(Architecture(config: cfg, activations: [.prelu, .prelu], collapsed: [false, false]))
    var rng = RNG(seed: seed, stream: "collapse")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: alpha)
    return model
  }

  /// At α = 1 the MLP is exactly linear: logits agree to float32 rounding. 1e-5 relative
  /// to the largest logit leaves room for the changed summation order of W2·(W1·x) vs
  /// (W2·W1)·x over 32 hidden units (~10 ulps), and is far below any real difference.
  @Test(arguments: ModelKind.transformers)
  func exactAtAlphaOne(kind: ModelKind) {
    let model = Self.preluModel(kind, alpha: 1)
    var rng = RNG(seed: 2, stream: "probe")
    let (probe, _) = Fixtures.batch(model.config, batch: 4, rng: &rng)
    let (collapsed, report) = Collapse.run(model, options: CollapseOptions(threshold: 0.05), probe: probe)
    #expect(report.collapsedCount == 2 && !report.approximate)
    #expect(collapsed.architecture.collapsed == [true, true])
    let a = model.forward(probe).clone()
    let b = collapsed.forward(probe)
    var diff: Float = 0
    var scale: Float = 0
    for i in 0..<a.count {
      diff = max(diff, abs(a[i] - b[i]))
      scale = max(scale, abs(a[i]))
    }
    #expect(diff <= 1e-5 * scale, "max |Δ| \(diff) vs max |logit| \(scale)")
    #expect(report.logitDeviation! <= 1e-5)
    for row in report.blocks { #expect(row.maxRelativeDeviation! <= 1e-5) }
  }

  /// α = 0.97 is within the threshold, so the block collapses, but the MLP was not exactly
  /// linear: the report shows a non-zero deviation.
  @Test func nearOneReportsDeviation() {
    let model = Self.preluModel(.vit, alpha: 0.97)
    var rng = RNG(seed: 3, stream: "probe")
    let (probe, _) = Fixtures.batch(model.config, batch: 4, rng: &rng)
    let (_, report) = Collapse.run(model, probe: probe)
    #expect(report.blocks.allSatisfy { $0.decision == .collapsed })
    for row in report.blocks {
      #expect(row.maxRelativeDeviation! > 1e-4, "block \(row.block): \(row.maxRelativeDeviation!)")
      #expect(abs(row.distance! - 0.03) < 1e-6)
    }
    #expect(report.logitDeviation! > 1e-5)
  }

  @Test func keepsBlocksOutsideTheThresholdAndSaysWhy() {
    let cfg = Fixtures.config(.encoder)
    let model = Transformer(
      Architecture(config: cfg, activations: [.gelu, .prelu], collapsed: [false, false]), seed: 1)
    model.alphaParameter(block: 1)!.value.fill(0.9)
    let (same, report) = Collapse.run(model, options: CollapseOptions(threshold: 0.05))
    #expect(report.blocks.map(\.decision) == [.notPReLU(.gelu), .alphaTooFar])
    #expect(same.architecture.collapsed == [false, false])
    #expect(report.parametersAfter == report.parametersBefore)
    // A looser threshold takes it, labelled approximate: α = 0.9 is beyond the paper's 0.05.
    let (_, loose) = Collapse.run(model, options: CollapseOptions(threshold: 0.2))
    #expect(loose.blocks[1].decision == .collapsedLoose && loose.blocks[1].decision.merged && loose.approximate)
    #expect(loose.blocks[1].decision.explanation.contains("approximate"))
    // Within the paper's threshold a looser one changes nothing: still an exact-enough merge.
    model.alphaParameter(block: 1)!.value.fill(0.97)
    let (_, near) = Collapse.run(model, options: CollapseOptions(threshold: 0.2))
    #expect(near.blocks[1].decision == .collapsed && !near.approximate)
  }

  @Test func forcedCollapseIsLabelledApproximate() {
    let model = Transformer(Architecture(config: Fixtures.config(.vit)), seed: 1)
    var rng = RNG(seed: 4, stream: "probe")
    let (probe, _) = Fixtures.batch(model.config, batch: 2, rng: &rng)
    let (merged, report) = Collapse.run(model, options: CollapseOptions(force: [0]), probe: probe)
    #expect(report.blocks[0].decision == .forcedApproximate && report.approximate)
    #expect(report.blocks[0].decision.explanation.contains("approximate"))
    #expect(merged.architecture.collapsed == [true, false])
    // The model itself records it (checkpoints and exports carry the architecture), and a
    // later collapse keeps it.
    #expect(merged.architecture.approximate == [true, false] && merged.architecture.hasApproximateMerges)
    #expect(Collapse.run(merged).model.architecture.approximate == [true, false])
  }

  /// The flag survives a checkpoint; a file written before it existed reads as exact
  /// merges; a flag on a unit that is not collapsed, or one flag too few, is a damaged
  /// file (65) that says which.
  @Test func approximateFlagIsStoredAndChecked() throws {
    let ws = try Workspace()
    let model = Self.preluModel(.gpt, alpha: 1)
    model.alphaParameter(block: 1)!.value.fill(0.5)
    let (merged, _) = Collapse.run(model, options: CollapseOptions(force: [1]))
    #expect(merged.architecture.approximate == [false, true])
    let path = ws.dir + "/c.h5"
    try Checkpoint(model: merged, configText: "", vocabulary: nil).save(to: path)
    #expect(try Checkpoint.load(path).model.architecture.approximate == [false, true])
    let stored = try HDF5File(reading: path)
    let json = try stored.readString(at: "/meta/architecture")
    try stored.close()
    #expect(json.contains("\"approximate\":[false,true],"), "\(json)")
    func variant(_ name: String, _ text: String) throws -> String {
      let p = ws.dir + "/" + name
      try FileManager.default.copyItem(atPath: path, toPath: p)
      try rewrite(p) { try $0.writeString(text, at: "/meta/architecture") }
      return p
    }
    let older = try variant("older.h5", json.replacingOccurrences(of: "\"approximate\":[false,true],", with: ""))
    let read = try Checkpoint.load(older).model.architecture
    #expect(read.collapsed == [true, true] && read.approximate == [false, false])
    for (name, flags, problem) in [
      ("loose.h5", "[true,true]", "unit 0 marked approximately merged but not collapsed"),
      ("short.h5", "[true]", "1 approximate-merge flags for 2 units"),
    ] {
      let broken = try variant(
        name,
        json.replacingOccurrences(of: "\"approximate\":[false,true]", with: "\"approximate\":\(flags)")
          .replacingOccurrences(of: "\"collapsed\":[true,true]", with: "\"collapsed\":[false,true]"))
      let r = try CLI.run(["inspect", broken])
      #expect(r.code == 65 && r.stderr.contains(problem), "\(r.stderr)")
    }
  }

  /// fc1·fc2 with d = 8, h = 4: 2·8·4 + 4 + 8 + 1 = 77 < 8² + 8 = 72? No: 77 > 72, so this
  /// one shrinks; with h = 3 it is 2·24 + 3 + 8 + 1 = 60 ≤ 72 and is kept.
  @Test func skipsBlocksThatWouldNotShrink() {
    var cfg = Fixtures.config(.vit)
    cfg.mlpHidden = 3
    let model = Transformer(
      Architecture(config: cfg, activations: [.prelu, .prelu], collapsed: [false, false]), seed: 1)
    for b in 0..<2 { model.alphaParameter(block: b)!.value.fill(1) }
    let (_, report) = Collapse.run(model)
    #expect(report.blocks.allSatisfy { $0.decision == .notSmaller })
    cfg.mlpHidden = 4
    let bigger = Transformer(
      Architecture(config: cfg, activations: [.prelu, .prelu], collapsed: [false, false]), seed: 1)
    for b in 0..<2 { bigger.alphaParameter(block: b)!.value.fill(1) }
    #expect(Collapse.run(bigger).report.collapsedCount == 2)
  }

  /// The merged weights are W2·W1 and W2·b1 + b2, checked element by element.
  @Test func mergedWeightsAreTheProduct() {
    let model = Self.preluModel(.gpt, alpha: 1)
    let (merged, _) = Collapse.run(model)
    let p = model.parameters
    let (w1, b1) = (p["blocks.0.mlp.fc1.weight"]!.value, p["blocks.0.mlp.fc1.bias"]!.value)
    let (w2, b2) = (p["blocks.0.mlp.fc2.weight"]!.value, p["blocks.0.mlp.fc2.bias"]!.value)
    let w = merged.parameters["blocks.0.mlp.linear.weight"]!.value
    let b = merged.parameters["blocks.0.mlp.linear.bias"]!.value
    let (d, h) = (8, 32)
    for i in 0..<d {
      var bias = Double(b2[i])
      for k in 0..<h { bias += Double(w2[i * h + k]) * Double(b1[k]) }
      #expect(abs(Double(b[i]) - bias) < 1e-5)
      for j in 0..<d {
        var sum = 0.0
        for k in 0..<h { sum += Double(w2[i * h + k]) * Double(w1[k * d + j]) }
        #expect(abs(Double(w[i * d + j]) - sum) < 1e-5)
      }
    }
    // Everything else is copied unchanged.
    #expect(merged.parameters["blocks.0.attn.qkv.weight"]!.value.array == p["blocks.0.attn.qkv.weight"]!.value.array)
  }
}

@Suite struct CountTests {
  @Test(arguments: ModelKind.transformers)
  func closedFormParameterCountMatchesTensors(kind: ModelKind) {
    for collapsed in [[false, false], [false, true], [true, true]] {
      let arch = Architecture(config: Fixtures.config(kind), activations: [.gelu, .prelu], collapsed: collapsed)
      #expect(Transformer(arch).parameters.elementCount == arch.parameterCount)
    }
  }

  /// Each collapsed (d, 4d, d) PReLU block removes 7d² + 4d parameters, plus its α.
  @Test func collapseRemovesSevenDSquaredPlusFourD() {
    let d = 16
    let cfg = ModelConfig(
      kind: .vit, dModel: d, heads: 2, layers: 3, mlpHidden: 4 * d, classes: 10, imageSize: 8, patchSize: 4)
    let before = Architecture(config: cfg, activations: [.gelu, .prelu, .prelu], collapsed: [false, false, false])
    var after = before
    after.collapsed = [false, true, true]
    #expect(before.parameterCount - after.parameterCount == 2 * (7 * d * d + 4 * d + 1))
    // MACs per token of an MLP: 2·d·4d = 8d² before, d² after, so 7d² fewer per token.
    let t = cfg.sequenceLength
    #expect(before.macsPerExample() - after.macsPerExample() == 2 * 7 * d * d * t)
  }

  /// Hand count for the tiny ViT: patch 8·48+8, cls 8, positions 5·8; per block norms 32,
  /// qkv 8·24+24, proj 64+8, MLP 2·8·32+32+8; final norm 16; head 3·8+3.
  @Test func tinyVitByHand() {
    let arch = Architecture(config: Fixtures.config(.vit))
    let block = 32 + (192 + 24) + (64 + 8) + (512 + 32 + 8)
    #expect(arch.parameterCount == (384 + 8) + 8 + 40 + 2 * block + 16 + 27)
    // MACs: patches 4·48·8; per block qkv 5·8·24, attention 2·25·8, proj 5·64, MLP 2·5·8·32; head 8·3.
    #expect(arch.macsPerExample() == 4 * 48 * 8 + 2 * (5 * 8 * 24 + 2 * 25 * 8 + 5 * 64 + 2 * 5 * 8 * 32) + 24)
    // Computed: the last block's k, v for 5 positions (5·8·16), q 64, attention of one
    // query 2·5·8, proj 64 and MLP 2·8·32 for the [CLS] row.
    let lastBlock = 5 * 8 * 16 + 64 + 2 * 5 * 8 + 64 + 2 * 8 * 32
    #expect(
      arch.macsComputedPerExample()
        == 4 * 48 * 8 + (5 * 8 * 24 + 2 * 25 * 8 + 5 * 64 + 2 * 5 * 8 * 32) + lastBlock + 24)
    var collapsed = arch
    collapsed.collapsed = [false, true]
    #expect(arch.macsComputedPerExample() - collapsed.macsComputedPerExample() == 2 * 8 * 32 - 64)
    // Mean pooling and gpt read every position: nothing is pruned.
    for cfg in [Fixtures.config(.encoder), Fixtures.config(.gpt)] {
      let a = Architecture(config: cfg)
      #expect(a.macsComputedPerExample() == a.macsPerExample())
    }
  }

  /// The tiny BERT (d 8, MLP 20, 6 positions, 2 layers, 3 classes): per layer qkv 6·8·24,
  /// attention 2·36·8, proj 6·64, MLP 2·6·8·20; pooler 64, classifier 24. Computed: the
  /// last layer's k, v for 6 positions (6·8·16), q 64, one query's attention 2·6·8, proj 64
  /// and MLP 2·8·20 for the [CLS] row (`Bert.pruneLastBlock`).
  @Test func tinyBertByHand() {
    let arch = Architecture(config: Fixtures.config(.bert))
    let layer = 6 * 8 * 24 + 2 * 36 * 8 + 6 * 64 + 2 * 6 * 8 * 20
    #expect(arch.macsPerExample() == 2 * layer + 64 + 24)
    let lastLayer = 6 * 8 * 16 + 64 + 2 * 6 * 8 + 64 + 2 * 8 * 20
    #expect(arch.macsComputedPerExample() == layer + lastLayer + 64 + 24)
  }
}

/// The generic chain merge: linears with BatchNorm1d between them, merged across linear
/// activations, against the chain computed step by step in Double.
@Suite struct ChainMergeTests {
  static func random(_ shape: [Int], _ rng: inout RNG, scale: Float = 1) -> Tensor {
    let t = Tensor(shape)
    rng.fillNormal(t, std: scale)
    return t
  }

  static func map(_ out: Int, _ inputs: Int, _ rng: inout RNG) -> AffineMap {
    AffineMap(weight: Self.random([out, inputs], &rng, scale: 0.5), bias: Self.random([out], &rng, scale: 0.5))
  }

  static func norm(_ n: Int, _ rng: inout RNG) -> BatchNormStatistics {
    let variance = Self.random([n], &rng)
    for i in 0..<n { variance[i] = 0.2 + abs(variance[i]) }
    return BatchNormStatistics(
      scale: Self.random([n], &rng), shift: Self.random([n], &rng), runningMean: Self.random([n], &rng),
      runningVariance: variance, epsilon: 1e-5)
  }

  /// One row through the chain in Double, every activation the identity (α = 1).
  static func reference(_ x: [Double], _ maps: [AffineMap], _ norms: [BatchNormStatistics?]) -> [Double] {
    var v = x
    for (k, m) in maps.enumerated() {
      var y = [Double](repeating: 0, count: m.outputs)
      for o in 0..<m.outputs {
        var s = Double(m.bias[o])
        for i in 0..<m.inputs { s += Double(m.weight[o * m.inputs + i]) * v[i] }
        if let bn = norms[k] {
          s =
            Double(bn.scale[o]) * (s - Double(bn.runningMean[o]))
            / (Double(bn.runningVariance[o]) + Double(bn.epsilon)).squareRoot() + Double(bn.shift[o])
        }
        y[o] = s
      }
      v = y
    }
    return v
  }

  /// A VGG-like head d → h → h → K with a BatchNorm after each hidden linear and both
  /// activations linear merges twice into one (K, d) linear whose output is the chain's
  /// to float32 rounding (1e-5 of the largest output: GEMMs over 24 hidden units).
  @Test func threeLinearsWithBatchNormMergeIntoOne() {
    var rng = RNG(seed: 21, stream: "chain")
    let (d, h, k) = (10, 24, 3)
    let maps = [Self.map(h, d, &rng), Self.map(h, h, &rng), Self.map(k, h, &rng)]
    let norms: [BatchNormStatistics?] = [Self.norm(h, &rng), Self.norm(h, &rng), nil]
    let r = ChainMerge.merge(maps, batchNorms: norms, linear: [true, true])
    #expect(r.junctions == [.merged, .merged])
    #expect(r.maps.count == 1 && r.maps[0].weight.shape == [k, d] && r.batchNorms[0] == nil)
    let x = Self.random([5, d], &rng)
    let y = r.maps[0].apply(x)
    var (worst, scale): (Double, Double) = (0, 0)
    for row in 0..<5 {
      let expected = Self.reference((0..<d).map { Double(x[row * d + $0]) }, maps, norms)
      for o in 0..<k {
        worst = max(worst, abs(Double(y[row * k + o]) - expected[o]))
        scale = max(scale, abs(expected[o]))
      }
    }
    #expect(worst <= 1e-5 * scale, "max |Δ| \(worst) vs \(scale)")
  }

  /// Merges only where linear and smaller: a nonlinear junction keeps both sides (and its
  /// BatchNorm), a bottleneck (64 → 8 → 64) is not merged since 64·64 > 2·8·64.
  @Test func mergesOnlyLinearJunctionsThatShrink() {
    var rng = RNG(seed: 22, stream: "chain rules")
    let maps = [Self.map(16, 12, &rng), Self.map(16, 16, &rng), Self.map(4, 16, &rng)]
    let norms: [BatchNormStatistics?] = [Self.norm(16, &rng), Self.norm(16, &rng), nil]
    let r = ChainMerge.merge(maps, batchNorms: norms, linear: [false, true])
    #expect(r.junctions == [.kept, .merged])
    #expect(r.maps.map(\.weight.shape) == [[16, 12], [4, 16]])
    #expect(r.batchNorms[0] != nil && r.batchNorms[1] == nil)
    let bottleneck = [Self.map(8, 64, &rng), Self.map(64, 8, &rng)]
    let b = ChainMerge.merge(bottleneck, batchNorms: [nil, nil], linear: [true])
    #expect(b.junctions == [.notSmaller] && b.maps.count == 2)
  }
}

/// ReplaceMe's training-free baseline (`collapse --force U --fit N`): a unit replaced by
/// the least-squares linear map from its inputs to its outputs. On a unit that is exactly
/// linear (PReLU α = 1) the fit reproduces the unit's outputs, as the W2·W1 merge does (the
/// weights themselves may differ along the direction LayerNorm's outputs never take, which
/// is why a ridge is needed at all); on a GELU unit it fits the rows better than W2·W1 (it
/// is the minimizer, up to the tiny ridge).
@Suite struct LinearFitTests {
  @Test func fitEqualsTheMergeOnALinearUnitAndBeatsItOnAGELUUnit() throws {
    var arch = Architecture(config: Fixtures.config(.encoder))
    arch.activations[1] = .prelu
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: 4, stream: "fit")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 1)
    let batches = (0..<4).map { _ in Fixtures.batch(model.config, batch: 5, rng: &rng).input }
    let fits = try LinearFit.fit(model, units: [0, 1], batches: batches, relativeRidge: 1e-7, location: "test")
    model.forward(batches[3])
    let linearUnit = try #require(model.unitProbe(unit: 1))
    let fitted = try #require(fits[1]).apply(linearUnit.input)
    // float32 rows summed in Double, a 1e-7 ridge: 1e-4 relative; a wrong fit is O(1).
    #expect(relativeDifference(fitted, linearUnit.output) < 1e-4)
    // Unit 0 is GELU: compare residuals on its rows.
    let io = try #require(model.unitProbe(unit: 0))
    let gelu = try #require(model.chain(unit: 0))
    let mergeMap = ChainMerge.compose(
      AffineMap(weight: gelu[0].weight.value, bias: gelu[0].bias.value),
      AffineMap(weight: gelu[1].weight.value, bias: gelu[1].bias.value))
    func residual(_ m: AffineMap) -> Double {
      zip(m.apply(io.input).array, io.output.array).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +)
    }
    // Over all the rows it was fitted on, the fit is optimal: no worse than the merge.
    var fitTotal = 0.0
    var mergeTotal = 0.0
    for b in batches {
      model.forward(b)
      fitTotal += residual(try #require(fits[0]))
      mergeTotal += residual(mergeMap)
    }
    #expect(fitTotal <= mergeTotal)
  }
}

/// `collapse --force U --fit N` on a trained model; its misuses.
@Suite(.serialized) struct FitCommandTests {
  @Test func fitReplacesForcedUnitsAndMisusesAreRefused() throws {
    let ws = try Workspace()
    let config = try ws.config("v.yaml", Workspace.vit)
    #expect(try CLI.run(["train", config, "train.epochs=1"]).code == 0)
    let r = try CLI.run(["collapse", ws.dir + "/run/last.h5", "--force", "0", "--fit", "40", "-o", ws.dir + "/fit.h5"])
    #expect(r.code == 0, "\(r.stderr)")
    #expect(
      r.stdout.contains("least-squares fit") && r.stdout.contains("fitted on 40 training examples"), "\(r.stdout)")
    #expect(try Checkpoint.load(ws.dir + "/fit.h5").model.architecture.collapsed[0])
    let alone = try CLI.run(["collapse", ws.dir + "/run/last.h5", "--fit", "40"])
    #expect(alone.code == 64 && alone.stderr.contains("--force"), "\(alone.stderr)")
  }
}
