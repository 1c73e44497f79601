import Foundation
import Kernels

/// The CIFAR binary formats. Each file is a sequence of fixed-size records: the label byte(s),
/// then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each a row-major 32×32 plane).
public enum CIFARFormat: Sendable, Equatable {
  /// CIFAR-10: 1 label byte; `data_batch_1.bin`...`data_batch_5.bin`, `test_batch.bin`, `batches.meta.txt`.
  case cifar10
  /// CIFAR-100 with its 100 fine labels: coarse byte, fine byte; `train.bin`, `test.bin`, `fine_label_names.txt`.
  case cifar100Fine
  /// CIFAR-100 with its 20 coarse (superclass) labels; class names from `coarse_label_names.txt`.
  case cifar100Coarse

  public var name: String {
    switch self {
    case .cifar10: "CIFAR-10"
    case .cifar100Fine: "CIFAR-100 (fine labels)"
    case .cifar100Coarse: "CIFAR-100 (coarse labels)"
    }
  }

  public var labelBytes: Int { self == .cifar10 ? 1 : 2 }
  public var recordSize: Int { labelBytes + ImageSplit.pixelsPerImage }

  public var numClasses: Int {
    switch self {
    case .cifar10: 10
    case .cifar100Fine: 100
    case .cifar100Coarse: 20
    }
  }

  public var trainFiles: [String] {
    self == .cifar10 ? (1...5).map { "data_batch_\($0).bin" } : ["train.bin"]
  }

  public var testFiles: [String] { self == .cifar10 ? ["test_batch.bin"] : ["test.bin"] }

  /// Optional file of class names, one per line.
  public var classNamesFile: String {
    switch self {
    case .cifar10: "batches.meta.txt"
    case .cifar100Fine: "fine_label_names.txt"
    case .cifar100Coarse: "coarse_label_names.txt"
    }
  }
}

/// Labeled 32×32 RGB images as raw bytes, each image in CHW order (as in the CIFAR files).
public struct ImageSplit: Sendable, Equatable {
  public static let side: Int = 32
  public static let channels: Int = 3
  public static let pixelsPerImage: Int = 3072

  /// The files the images came from (empty for a synthetic split).
  public let files: [String]
  public let numClasses: Int
  public let labels: [Int32]
  /// count * 3072 bytes.
  public let pixels: [UInt8]

  public var count: Int { labels.count }

  /// A split from raw bytes; `pixels` must hold 3072 bytes per label (a programming error otherwise).
  public init(labels: [Int32], pixels: [UInt8], numClasses: Int, files: [String] = []) {
    precondition(pixels.count == labels.count * ImageSplit.pixelsPerImage, "ImageSplit: pixels do not match labels")
    self.labels = labels
    self.pixels = pixels
    self.numClasses = numClasses
    self.files = files
  }

  /// The 3072 CHW bytes of image `index` (a copy, indexed from 0).
  public func image(_ index: Int) -> [UInt8] { Array(slice(index)) }

  func slice(_ index: Int) -> ArraySlice<UInt8> {
    pixels[(index * ImageSplit.pixelsPerImage)..<((index + 1) * ImageSplit.pixelsPerImage)]
  }

  /// Number of images of each class (index = label).
  public func classCounts() -> [Int] {
    var counts: [Int] = [Int](repeating: 0, count: numClasses)
    for label in labels { counts[Int(label)] += 1 }
    return counts
  }

  /// Reads the records of `files` in order, stopping after `limit` images when given. Errors name
  /// the file and, for a bad label, the record (counting from 0) and its byte offset.
  /// Throws `.missingInput` for a missing file and `.badData` for a size that is not a whole number
  /// of records or a label byte outside the format's classes.
  public static func readCIFAR(files: [String], format: CIFARFormat, limit: Int? = nil) throws -> ImageSplit {
    var labels: [Int32] = []
    var pixels: [UInt8] = []
    let size: Int = format.recordSize
    var used: [String] = []
    for file in files {
      if let limit = limit, labels.count >= limit { break }
      let bytes: [UInt8] = try readDataFile(file, describing: "\(format.name) file", inDataPath: true)
      used.append(file)
      let whole: Int = bytes.count / size
      let extra: Int = bytes.count % size
      if bytes.isEmpty || extra != 0 {
        throw LCError.badData(
          ErrorDetail(
            what: "file size is not a whole number of \(format.name) records", location: file,
            expected:
              "a positive multiple of \(size) bytes (\(format.labelBytes) label byte\(format.labelBytes == 1 ? "" : "s") + 3072 pixel bytes per record)",
            got: bytes.isEmpty
              ? "0 bytes (an empty file)"
              : "\(bytes.count) bytes = \(whole) whole record\(whole == 1 ? "" : "s") + \(extra) extra byte\(extra == 1 ? "" : "s")",
            hint: "The file may be truncated or not a \(format.name) binary batch"))
      }
      let take: Int = limit.map { min(whole, $0 - labels.count) } ?? whole
      labels.reserveCapacity(labels.count + take)
      pixels.reserveCapacity(pixels.count + take * ImageSplit.pixelsPerImage)
      for record in 0..<whole {
        let offset: Int = record * size
        // Check both label bytes of CIFAR-100 whichever one is used.
        let checks: [(value: UInt8, classes: Int, name: String)] =
          format == .cifar10
          ? [(bytes[offset], 10, "label")]
          : [(bytes[offset], 20, "coarse label"), (bytes[offset + 1], 100, "fine label")]
        for check in checks where Int(check.value) >= check.classes {
          throw LCError.badData(
            ErrorDetail(
              what: "\(check.name) out of range",
              location: "\(file): record \(record) (counting from 0; byte offset \(offset))",
              expected: "a \(check.name) byte in 0..\(check.classes - 1)", got: "\(check.value)"))
        }
        if record < take {
          let label: UInt8 = format == .cifar100Fine ? bytes[offset + 1] : bytes[offset]
          labels.append(Int32(label))
          pixels.append(contentsOf: bytes[(offset + format.labelBytes)..<(offset + size)])
        }
      }
    }
    return ImageSplit(labels: labels, pixels: pixels, numClasses: format.numClasses, files: used)
  }
}

/// Per-channel mean and standard deviation of pixel values scaled to [0, 1] (as PyTorch's
/// `ToTensor` then `Normalize(mean, std)`); a pixel p of channel c becomes (p/255 − mean[c]) / std[c].
public struct ChannelStats: Sendable, Equatable {
  public var mean: [Float]
  public var std: [Float]

  public init(mean: [Float], std: [Float]) {
    self.mean = mean
    self.std = std
  }

  /// Throws `.badConfig` unless there are 3 means and 3 positive, finite standard deviations.
  public func validate(location: String = "normalization") throws {
    if mean.count != 3 || std.count != 3 || !std.allSatisfy({ $0 > 0 && $0.isFinite })
      || !mean.allSatisfy({ $0.isFinite })
    {
      throw LCError.badConfig([
        ErrorDetail(
          what: "invalid normalization", location: location,
          expected: "3 finite means and 3 positive standard deviations (R, G, B)", got: "mean \(mean), std \(std)")
      ])
    }
  }

  /// Mean and population standard deviation of each channel over every pixel of `split`
  /// (exact integer sums, so the result does not depend on the order of the images).
  /// Throws `.badData` when the split is empty or a channel is constant.
  public static func compute(from split: ImageSplit) throws -> ChannelStats {
    let plane: Int = ImageSplit.side * ImageSplit.side
    var sums: [Int] = [0, 0, 0]
    var squares: [Int] = [0, 0, 0]
    for image in 0..<split.count {
      for c in 0..<3 {
        let start: Int = image * ImageSplit.pixelsPerImage + c * plane
        var s: Int = 0
        var q: Int = 0
        for i in start..<(start + plane) {
          let v: Int = Int(split.pixels[i])
          s += v
          q += v * v
        }
        sums[c] += s
        squares[c] += q
      }
    }
    let n: Double = Double(split.count * plane)
    var mean: [Float] = []
    var std: [Float] = []
    for c in 0..<3 {
      let m: Double = n > 0 ? Double(sums[c]) / n : 0
      let variance: Double = n > 0 ? max(0, Double(squares[c]) / n - m * m) : 0
      if variance <= 0 {
        throw LCError.badData(
          ErrorDetail(
            what: "cannot compute normalization", location: split.files.first ?? "training images",
            expected: "training images whose \(["red", "green", "blue"][c]) channel varies",
            got: split.count == 0 ? "no images" : "a constant channel (standard deviation 0)",
            hint: "Give the normalization mean and std explicitly"))
      }
      mean.append(Float(m / 255))
      std.append(Float(variance.squareRoot() / 255))
    }
    return ChannelStats(mean: mean, std: std)
  }
}

/// Random crop with zero padding and horizontal flip, the standard CIFAR training augmentation.
public struct CropFlip: Sendable, Hashable {
  public static let padding: Int = 4
  /// Row and column of the crop's top-left corner in the zero-padded 40×40 image, each in 0...8
  /// (4, 4 is the original image).
  public var top: Int
  public var left: Int
  /// Mirror left-right after cropping.
  public var flip: Bool

  public init(top: Int, left: Int, flip: Bool) {
    self.top = top
    self.left = left
    self.flip = flip
  }

  /// A uniform crop position and a flip with probability 1/2.
  public static func random(_ rng: inout RNG) -> CropFlip {
    let range: Int = 2 * padding + 1
    let top: Int = rng.int(below: range)
    let left: Int = rng.int(below: range)
    let flip: Bool = rng.int(below: 2) == 1
    return CropFlip(top: top, left: left, flip: flip)
  }

  /// The augmented copy of a 3072-byte CHW image: output pixel (c, y, x) is input pixel
  /// (c, y + top − 4, x' + left − 4) with x' = 31 − x when flipping and x otherwise, and 0 where
  /// that falls outside the image (the padding is black in raw pixel values).
  public func apply(to image: [UInt8]) -> [UInt8] { apply(to: image[...]) }

  func apply(to image: ArraySlice<UInt8>) -> [UInt8] {
    precondition(image.count == ImageSplit.pixelsPerImage, "CropFlip: an image has 3072 bytes, got \(image.count)")
    let side: Int = ImageSplit.side
    let base: Int = image.startIndex
    var out: [UInt8] = [UInt8](repeating: 0, count: ImageSplit.pixelsPerImage)
    for c in 0..<ImageSplit.channels {
      for y in 0..<side {
        let sy: Int = y + top - CropFlip.padding
        if sy < 0 || sy >= side { continue }
        for x in 0..<side {
          let sx: Int = (flip ? side - 1 - x : x) + left - CropFlip.padding
          if sx < 0 || sx >= side { continue }
          out[(c * side + y) * side + x] = image[base + (c * side + sy) * side + sx]
        }
      }
    }
    return out
  }
}

/// A batch of images: `images` is a (B, 3, S, S) float32 tensor (CHW, as PyTorch),
/// normalized; S is 32, or the side `ImageOptions.resize` asks for.
public struct ImageBatch {
  public let images: Tensor
  public let labels: [Int32]
}

/// Settings of the image loader.
public struct ImageOptions: Sendable, Equatable {
  /// Use only the first N training / evaluation images.
  public var trainLimit: Int?
  public var evalLimit: Int?
  /// Per-channel normalization; nil computes it from the training split (after `trainLimit`).
  public var normalization: ChannelStats?
  /// Random crop and flip for training batches. Evaluation batches are never augmented.
  public var augment: Bool
  /// Side the 32×32 images are resized to (bilinear, antialiased when shrinking, as
  /// torchvision), after augmentation and normalization; nil keeps 32.
  public var resize: Int?

  public init(
    trainLimit: Int? = nil, evalLimit: Int? = nil, normalization: ChannelStats? = nil, augment: Bool = true,
    resize: Int? = nil
  ) {
    self.trainLimit = trainLimit
    self.evalLimit = evalLimit
    self.normalization = normalization
    self.augment = augment
    self.resize = resize
  }
}

/// An image-classification dataset: training and evaluation splits, class names and normalization.
public struct ImageData: Sendable {
  public let format: CIFARFormat
  public let classNames: [String]
  public let train: ImageSplit
  public let eval: ImageSplit
  public let normalization: ChannelStats
  public let augment: Bool
  /// Side of the batches' images (32 unless resized).
  public let side: Int

  public var numClasses: Int { format.numClasses }

  public init(
    format: CIFARFormat, classNames: [String], train: ImageSplit, eval: ImageSplit, normalization: ChannelStats,
    augment: Bool, side: Int = ImageSplit.side
  ) {
    self.format = format
    self.classNames = classNames
    self.train = train
    self.eval = eval
    self.normalization = normalization
    self.augment = augment
    self.side = side
  }

  /// Loads a CIFAR binary directory (files named as in `CIFARFormat`). Class names come from the
  /// format's names file when present, else they are "0", "1", ....
  public static func loadCIFAR(directory: String, format: CIFARFormat, options: ImageOptions = ImageOptions()) throws
    -> ImageData
  {
    var problems: [ErrorDetail] = []
    for (key, value) in [("train_limit", options.trainLimit), ("eval_limit", options.evalLimit)] {
      if let v = value, v < 1 {
        problems.append(
          ErrorDetail(what: "invalid limit", location: key, expected: "a positive number of images", got: "\(v)"))
      }
    }
    if !problems.isEmpty { throw LCError.badConfig(problems) }
    try options.normalization?.validate()
    try requireDirectory(directory, describing: format.name)
    let dir: String = directory.hasSuffix("/") ? directory : directory + "/"
    let train: ImageSplit = try ImageSplit.readCIFAR(
      files: format.trainFiles.map { dir + $0 }, format: format, limit: options.trainLimit)
    let eval: ImageSplit = try ImageSplit.readCIFAR(
      files: format.testFiles.map { dir + $0 }, format: format, limit: options.evalLimit)
    let stats: ChannelStats = try options.normalization ?? ChannelStats.compute(from: train)
    let names: [String] = try readClassNames(dir + format.classNamesFile, format: format)
    return ImageData(
      format: format, classNames: names, train: train, eval: eval, normalization: stats, augment: options.augment,
      side: options.resize ?? ImageSplit.side)
  }

  static func readClassNames(_ path: String, format: CIFARFormat) throws -> [String] {
    if !FileManager.default.fileExists(atPath: path) { return (0..<format.numClasses).map { String($0) } }
    let bytes: [UInt8] = try readDataFile(path, describing: "class names file", inDataPath: true)
    try validateUTF8(bytes, file: path)
    let names: [String] = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
      .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    if names.count != format.numClasses {
      throw LCError.badData(
        ErrorDetail(
          what: "wrong number of class names", location: path,
          expected: "\(format.numClasses) non-empty lines, one name per class", got: "\(names.count)"))
    }
    return names
  }

  /// The augmentation of training image `index` in epoch `epoch` (a function of the seed, epoch and
  /// index only, so it does not depend on how images are grouped into batches).
  public func augmentation(seed: UInt64, epoch: Int, index: Int) -> CropFlip {
    var rng: RNG = RNG(seed: seed, stream: "augment").derived("epoch-\(epoch)").derived("image-\(index)")
    return CropFlip.random(&rng)
  }

  /// Training images at `indices`, augmented when `augment` is on, normalized.
  public func trainBatch(_ indices: [Int], seed: UInt64, epoch: Int) -> ImageBatch {
    let epochRNG: RNG = RNG(seed: seed, stream: "augment").derived("epoch-\(epoch)")
    var values: [Float] = []
    values.reserveCapacity(indices.count * ImageSplit.pixelsPerImage)
    for index in indices {
      if augment {
        var rng: RNG = epochRNG.derived("image-\(index)")
        let image: [UInt8] = CropFlip.random(&rng).apply(to: train.slice(index))
        appendNormalized(image[...], to: &values)
      } else {
        appendNormalized(train.slice(index), to: &values)
      }
    }
    return ImageBatch(images: resized(values, count: indices.count), labels: indices.map { train.labels[$0] })
  }

  /// `count` normalized 32×32 images as a (count, 3, side, side) tensor.
  func resized(_ values: [Float], count: Int) -> Tensor {
    let images: Tensor = Tensor([count, 3, ImageSplit.side, ImageSplit.side], values)
    return side == ImageSplit.side ? images : Resize.bilinear(images, height: side, width: side)
  }

  /// Evaluation images at `indices`, normalized, never augmented.
  public func evalBatch(_ indices: [Int]) -> ImageBatch { unaugmentedBatch(eval, indices) }

  /// Training images at `indices`, normalized but not augmented (to measure training accuracy).
  public func unaugmentedTrainBatch(_ indices: [Int]) -> ImageBatch { unaugmentedBatch(train, indices) }

  func unaugmentedBatch(_ split: ImageSplit, _ indices: [Int]) -> ImageBatch {
    var values: [Float] = []
    values.reserveCapacity(indices.count * ImageSplit.pixelsPerImage)
    for index in indices { appendNormalized(split.slice(index), to: &values) }
    return ImageBatch(images: resized(values, count: indices.count), labels: indices.map { split.labels[$0] })
  }

  func appendNormalized(_ image: ArraySlice<UInt8>, to values: inout [Float]) {
    let plane: Int = ImageSplit.side * ImageSplit.side
    var i: Int = image.startIndex
    for c in 0..<3 {
      let mean: Float = normalization.mean[c]
      let scale: Float = 1 / normalization.std[c]
      for _ in 0..<plane {
        values.append((Float(image[i]) / 255 - mean) * scale)
        i += 1
      }
    }
  }
}
