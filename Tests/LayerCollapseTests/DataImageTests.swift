import Foundation
import Kernels
import LayerCollapse
import Testing

/// A recognisable image: every pixel non-zero and distinct within a channel row/column.
private func knownPixel(_ c: Int, _ y: Int, _ x: Int) -> UInt8 { UInt8(1 + (c * 80 + y * 7 + x) % 250) }

private func knownImage() -> [UInt8] {
  cifarRecords(labels: [[]]) { _, c, y, x in knownPixel(c, y, x) }
}

private func at(_ image: [UInt8], _ c: Int, _ y: Int, _ x: Int) -> UInt8 { image[(c * 32 + y) * 32 + x] }

@Test func dataCropFlipPlacesPixelsAsExpected() {
  let image: [UInt8] = knownImage()
  // Centre crop, no flip: identity.
  #expect(CropFlip(top: 4, left: 4, flip: false).apply(to: image) == image)
  // Flip only: mirrored columns.
  let mirrored: [UInt8] = CropFlip(top: 4, left: 4, flip: true).apply(to: image)
  #expect(at(mirrored, 1, 3, 0) == knownPixel(1, 3, 31))
  #expect(at(mirrored, 2, 31, 31) == knownPixel(2, 31, 0))
  // top 0, left 8: out(c, y, x) = in(c, y - 4, x + 4): 4 black rows on top, 4 black columns on the right.
  let shifted: [UInt8] = CropFlip(top: 0, left: 8, flip: false).apply(to: image)
  #expect(at(shifted, 0, 0, 0) == 0 && at(shifted, 0, 3, 10) == 0)
  #expect(at(shifted, 0, 4, 0) == knownPixel(0, 0, 4))
  #expect(at(shifted, 1, 4, 27) == knownPixel(1, 0, 31))
  #expect(at(shifted, 1, 4, 28) == 0)
  #expect(at(shifted, 2, 31, 0) == knownPixel(2, 27, 4))
  #expect(shifted.filter { $0 == 0 }.count == 3 * (4 * 32 + 28 * 4))
  // Same crop, then flipped: out(c, y, x) = in(c, y - 4, 35 - x): the black columns are now on the left.
  let both: [UInt8] = CropFlip(top: 0, left: 8, flip: true).apply(to: image)
  #expect(at(both, 0, 4, 3) == 0)
  #expect(at(both, 0, 4, 4) == knownPixel(0, 0, 31))
  #expect(at(both, 0, 4, 31) == knownPixel(0, 0, 4))
  #expect(at(both, 2, 10, 20) == knownPixel(2, 6, 15))
  // top 8, left 0: out(c, y, x) = in(c, y + 4, x - 4).
  let other: [UInt8] = CropFlip(top: 8, left: 0, flip: false).apply(to: image)
  #expect(at(other, 0, 0, 4) == knownPixel(0, 4, 0))
  #expect(at(other, 0, 27, 31) == knownPixel(0, 31, 27))
  #expect(at(other, 0, 28, 31) == 0 && at(other, 0, 0, 3) == 0)
}

@Test func dataRandomCropFlipCoversTheRangeAndIsSeeded() {
  var rng: RNG = RNG(seed: 3, stream: "augment")
  var tops: Set<Int> = []
  var flips: Int = 0
  for _ in 0..<2000 {
    let p: CropFlip = CropFlip.random(&rng)
    #expect((0...8).contains(p.top) && (0...8).contains(p.left))
    tops.insert(p.top)
    if p.flip { flips += 1 }
  }
  #expect(tops.count == 9)
  #expect(flips > 900 && flips < 1100)
  var a: RNG = RNG(seed: 3, stream: "augment")
  var b: RNG = RNG(seed: 3, stream: "augment")
  #expect(CropFlip.random(&a) == CropFlip.random(&b))
}

@Test func dataNormalizationStatsMatchHandComputedValues() throws {
  // Two images. Red: all 0 in one, all 255 in the other -> mean 0.5, std 0.5.
  // Green: all 51 (0.2) and all 153 (0.6) -> mean 0.4, std 0.2.
  // Blue: left half 0, right half 255 in both -> mean 0.5, std 0.5.
  let bytes: [UInt8] = cifarRecords(labels: [[], []]) { n, c, _, x in
    switch c {
    case 0: return n == 0 ? 0 : 255
    case 1: return n == 0 ? 51 : 153
    default: return x < 16 ? 0 : 255
    }
  }
  let split: ImageSplit = ImageSplit(labels: [0, 1], pixels: bytes, numClasses: 10)
  let stats: ChannelStats = try ChannelStats.compute(from: split)
  let expectedMean: [Float] = [0.5, 0.4, 0.5]
  let expectedStd: [Float] = [0.5, 0.2, 0.5]
  for c in 0..<3 {
    #expect(abs(stats.mean[c] - expectedMean[c]) < 1e-6)
    #expect(abs(stats.std[c] - expectedStd[c]) < 1e-6)
  }
  // Normalized eval batch: (p/255 - mean)/std.
  let data: ImageData = ImageData(
    format: .cifar10, classNames: [], train: split, eval: split, normalization: stats, augment: true)
  let batch: ImageBatch = data.evalBatch([1, 0])
  #expect(batch.images.shape == [2, 3, 32, 32])
  #expect(batch.labels == [1, 0])
  let v: [Float] = batch.images.array
  #expect(abs(v[0] - 1) < 1e-5)  // image 1, red 255
  #expect(abs(v[1024] - 1) < 1e-5)  // image 1, green 0.6
  #expect(abs(v[3072] + 1) < 1e-5)  // image 0, red 0
  #expect(abs(v[3072 + 1024] + 1) < 1e-5)  // image 0, green 0.2
  #expect(abs(v[2048] + 1) < 1e-5 && abs(v[2048 + 31] - 1) < 1e-5)  // blue halves
}

@Test func dataConstantChannelCannotBeNormalized() {
  let split: ImageSplit = ImageSplit(
    labels: [0], pixels: cifarRecords(labels: [[]]) { _, c, y, _ in c == 1 ? 7 : UInt8(y) }, numClasses: 10)
  expectLCError(.badData, mentions: ["green", "standard deviation 0"]) { _ = try ChannelStats.compute(from: split) }
}

@Test func dataTrainBatchesAreAugmentedPerImageAndSeeded() throws {
  let bytes: [UInt8] = cifarRecords(labels: [[], [], []]) { n, c, y, x in UInt8(1 + (n * 50 + c * 20 + y * 3 + x) % 250)
  }
  let split: ImageSplit = ImageSplit(labels: [2, 0, 1], pixels: bytes, numClasses: 10)
  let stats: ChannelStats = ChannelStats(mean: [0, 0, 0], std: [1, 1, 1])
  let data: ImageData = ImageData(
    format: .cifar10, classNames: [], train: split, eval: split, normalization: stats, augment: true)
  let batch: ImageBatch = data.trainBatch([2, 0], seed: 11, epoch: 4)
  #expect(batch.labels == [1, 2])
  let expected: [UInt8] = data.augmentation(seed: 11, epoch: 4, index: 2).apply(to: split.image(2))
  let got: [Float] = Array(batch.images.array[0..<3072])
  #expect(got == expected.map { Float($0) / 255 })
  // Same image, same seed and epoch, different batch -> same augmentation.
  #expect(data.trainBatch([2], seed: 11, epoch: 4).images.array == got)
  // Across epochs and seeds the augmentations differ.
  let epochs: Set<CropFlip> = Set((0..<20).map { data.augmentation(seed: 11, epoch: $0, index: 2) })
  #expect(epochs.count > 5)
  // Without augmentation, training batches are the plain images.
  let plain: ImageData = ImageData(
    format: .cifar10, classNames: [], train: split, eval: split, normalization: stats, augment: false)
  #expect(plain.trainBatch([0], seed: 11, epoch: 4).images.array == split.image(0).map { Float($0) / 255 })
}

@Test func dataCIFAR100PicksFineOrCoarseLabels() throws {
  let dir: TempDir = try TempDir()
  defer { dir.remove() }
  let train: [UInt8] = cifarRecords(labels: [[3, 71], [19, 99], [0, 0]]) { n, c, y, x in UInt8((n + c + y + x) % 256) }
  try dir.write("train.bin", train)
  try dir.write("test.bin", cifarRecords(labels: [[5, 42]]) { _, _, y, x in UInt8((y * x) % 256) })
  let fine: ImageData = try ImageData.loadCIFAR(directory: dir.path, format: .cifar100Fine)
  #expect(fine.train.labels == [71, 99, 0] && fine.eval.labels == [42])
  #expect(fine.numClasses == 100 && fine.classNames.count == 100)
  #expect(fine.train.classCounts().reduce(0, +) == 3)
  let coarse: ImageData = try ImageData.loadCIFAR(directory: dir.path, format: .cifar100Coarse)
  #expect(coarse.train.labels == [3, 19, 0] && coarse.eval.labels == [5])
  #expect(coarse.numClasses == 20)
  #expect(coarse.train.pixels == fine.train.pixels)
  #expect(Array(coarse.train.image(1).prefix(3)) == [1, 2, 3])
  // Explicit normalization is used as given; limits take the first N.
  let given: ChannelStats = ChannelStats(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
  let limited: ImageData = try ImageData.loadCIFAR(
    directory: dir.path, format: .cifar100Fine, options: ImageOptions(trainLimit: 2, normalization: given))
  #expect(limited.train.labels == [71, 99] && limited.normalization == given)
}
