import Kernels
import LayerCollapse

/// Tiny models and batches shared by the model, collapse and training tests.
enum Fixtures {
  static func config(_ kind: ModelKind, dropout: Float = 0) -> ModelConfig {
    switch kind {
    case .encoder:
      ModelConfig(
        kind: .encoder, dModel: 8, heads: 2, layers: 2, mlpHidden: 32, dropout: dropout, maxLen: 6, vocabSize: 11,
        classes: 3, pooling: .mean)
    case .vit:
      ModelConfig(
        kind: .vit, dModel: 8, heads: 2, layers: 2, mlpHidden: 32, dropout: dropout, classes: 3, imageSize: 8,
        imageChannels: 3, patchSize: 4)
    case .gpt:
      ModelConfig(
        kind: .gpt, dModel: 8, heads: 2, layers: 2, mlpHidden: 32, dropout: dropout, maxLen: 6, vocabSize: 7,
        tieWeights: true)
    case .bert:
      {
        var c = ModelConfig(
          kind: .bert, dModel: 8, heads: 2, layers: 2, mlpHidden: 20, dropout: dropout, maxLen: 6, vocabSize: 11,
          classes: 3, activation: .geluExact)
        c.layerNormEpsilon = 1e-12
        c.typeVocabSize = 2
        return c
      }()
    case .mixer:  // 8×8 images in 2×2 patches: 16 patches, token MLP 16 → 12 → 16, channel MLP 8 → 20 → 8
      ModelConfig(
        kind: .mixer, dModel: 8, heads: 1, layers: 2, mlpHidden: 20, dropout: dropout, classes: 3, imageSize: 8,
        imageChannels: 3, patchSize: 2, tokenMLPHidden: 12)
    case .vgg: vgg(dropout: dropout)
    }
  }

  /// 8×8 images: conv 4, pool, conv 6, conv 5, pool (2×2 left), pooled to 3×3 (the adaptive
  /// pool's windows overlap), a head 45 → 7 → 7 → 3, BatchNorm in the trunk and the head.
  static func vgg(dropout: Float = 0, batchNorm: Bool = true) -> ModelConfig {
    var c = ModelConfig(
      kind: .vgg, dModel: 5, heads: 1, layers: 2, mlpHidden: 7, dropout: dropout, classes: 3, imageSize: 8,
      imageChannels: 3, activation: .relu)
    c.convLayers = [4, 0, 6, 5, 0]
    c.convBatchNorm = batchNorm
    c.headBatchNorm = batchNorm
    c.pooledSize = 3
    return c
  }

  /// A batch of `batch` examples; encoder sequences end in padding of varying length.
  static func batch(_ cfg: ModelConfig, batch: Int, rng: inout RNG) -> (input: ModelInput, targets: [Int32]) {
    switch cfg.kind {
    case .vit, .mixer, .vgg:
      let images = Tensor([batch, cfg.imageChannels, cfg.imageSize, cfg.imageSize])
      rng.fillNormal(images)
      return (.images(images), (0..<batch).map { _ in Int32(rng.int(below: cfg.classes)) })
    case .encoder, .bert:
      let t = cfg.maxLen
      var ids: [Int32] = []
      var valid: [Bool] = []
      for b in 0..<batch {
        let length = t - b % 3  // 0–2 padding positions
        for i in 0..<t {
          ids.append(i < length ? Int32(i == 0 ? 2 : 4 + rng.int(below: cfg.vocabSize - 4)) : 0)
          valid.append(i < length)
        }
      }
      return (
        .tokens(ids: ids, valid: valid, batch: batch, time: t),
        (0..<batch).map { _ in Int32(rng.int(below: cfg.classes)) }
      )
    case .gpt:
      let t = cfg.maxLen
      let ids = (0..<(batch * t)).map { _ in Int32(rng.int(below: cfg.vocabSize)) }
      let targets = (0..<(batch * t)).map { _ in Int32(rng.int(below: cfg.vocabSize)) }
      return (.tokens(ids: ids, valid: nil, batch: batch, time: t), targets)
    }
  }

  /// Overwrites every parameter with values large enough that gradients are O(0.1), so a
  /// finite-difference check has something to measure (GPT-2 init gives gradients ~1e-3).
  static func randomizeParameters(_ model: any Model, rng: inout RNG, alpha: Float) {
    for p in model.parameters.all {
      if p.role == .slope {
        p.value.fill(alpha)
      } else if p.role == .normScale {
        rng.fillNormal(p.value, mean: 1, std: 0.1)
      } else if p.role == .buffer && p.name.hasSuffix("running_var") {
        rng.fillNormal(p.value, mean: 1, std: 0.1)  // a variance: positive, near PyTorch's initial 1
      } else {
        rng.fillNormal(p.value, std: 0.3)
      }
    }
  }
}
