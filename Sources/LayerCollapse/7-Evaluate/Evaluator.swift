import Foundation
import Kernels

/// What an evaluation measured.
public struct Metrics: Sendable, Equatable, Codable {
  /// Sequences or images evaluated.
  public var examples: Int
  /// Mean cross-entropy per prediction (per example, or per token for a language model).
  public var loss: Double
  /// Fraction of correct predictions (per example, or per token).
  public var accuracy: Double
  /// √(p(1 − p)/n): the binomial standard error of `accuracy` over its n predictions.
  public var accuracyStandardError: Double
  /// exp(loss), for language models.
  public var perplexity: Double?
  /// Forward-pass throughput over the evaluation, examples per second.
  public var examplesPerSecond: Double

  /// The number to maximize when choosing the best checkpoint.
  public var score: Double { perplexity.map { -$0 } ?? accuracy }

  public init(
    examples: Int, loss: Double, accuracy: Double, accuracyStandardError: Double, perplexity: Double? = nil,
    examplesPerSecond: Double
  ) {
    self.examples = examples
    self.loss = loss
    self.accuracy = accuracy
    self.accuracyStandardError = accuracyStandardError
    self.perplexity = perplexity
    self.examplesPerSecond = examplesPerSecond
  }
}

public enum Evaluator {
  /// Runs `model` over `batches` (no dropout) and aggregates loss and accuracy.
  public static func evaluate(_ model: any Model, batches: [Batch]) -> Metrics {
    let s = sums(model, batches: batches[...])
    return metrics(model, lossSum: s[0], predictions: s[1], correct: s[2], examples: s[3], seconds: s[4])
  }

  /// The same, split over the ranks of `group`: rank r evaluates batches r, r + N, …, and
  /// the sums are reduced, so every rank gets the whole evaluation's metrics (equal to one
  /// process's up to the order of the additions).
  public static func evaluate(_ model: any Model, batches: [Batch], group: ProcessGroup) throws -> Metrics {
    guard group.size > 1 else { return evaluate(model, batches: batches) }
    let mine = batches.indices.filter { $0 % group.size == group.rank }.map { batches[$0] }
    let s = try group.sum(sums(model, batches: mine[...]))
    // The ranks ran side by side: wall time is about their mean time.
    return metrics(
      model, lossSum: s[0], predictions: s[1], correct: s[2], examples: s[3], seconds: s[4] / Double(group.size))
  }

  /// [loss · predictions, predictions, correct, examples, seconds] over `batches`.
  private static func sums(_ model: any Model, batches: ArraySlice<Batch>) -> [Double] {
    var lossSum = 0.0
    var predictions = 0
    var correct = 0
    var examples = 0
    var seconds = 0.0
    for batch in batches {
      let start = DispatchTime.now().uptimeNanoseconds
      let logits = model.infer(batch.input)
      seconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
      let counted = CrossEntropy.countedRows(batch.targets)
      lossSum += Double(model.loss(targets: batch.targets)) * Double(counted)
      let predicted = Rows.argmax(logits)
      for (row, target) in batch.targets.enumerated() where target != CrossEntropy.ignoreIndex {
        if predicted[row] == Int(target) { correct += 1 }
      }
      predictions += counted
      examples += batch.examples
    }
    return [lossSum, Double(predictions), Double(correct), Double(examples), seconds]
  }

  private static func metrics(
    _ model: any Model, lossSum: Double, predictions: Double, correct: Double, examples: Double, seconds: Double
  ) -> Metrics {
    let isLM = model.family.predictsEveryPosition(model.config.kind)
    let n = max(predictions, 1)
    let accuracy = correct / n
    let loss = lossSum / n
    return Metrics(
      examples: Int(examples), loss: loss, accuracy: accuracy,
      accuracyStandardError: (accuracy * (1 - accuracy) / n).squareRoot(),
      perplexity: isLM ? Foundation.exp(loss) : nil,
      examplesPerSecond: seconds > 0 ? examples / seconds : 0)
  }

  /// Median wall time of one forward pass at batch size 1, in milliseconds, over the
  /// given single-example batches (after one warm-up pass).
  public static func latencyMilliseconds(_ model: any Model, singles: [Batch]) -> Double? {
    guard let first = singles.first else { return nil }
    model.infer(first.input)
    var times: [Double] = []
    for b in singles {
      let start = DispatchTime.now().uptimeNanoseconds
      model.infer(b.input)
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-6)
    }
    times.sort()
    return times[times.count / 2]
  }
}
