import Foundation
import Kernels

/// Sampling settings for `Transformer.generate`.
public struct SamplingSettings: Sendable, Equatable {
  /// Divides the logits; → 0 approaches greedy decoding. Must be > 0.
  public var temperature: Float
  /// Sample only among the k most likely tokens; 0 means all.
  public var topK: Int

  public init(temperature: Float = 1, topK: Int = 0) {
    precondition(temperature > 0, "temperature must be positive, got \(temperature)")
    self.temperature = temperature
    self.topK = topK
  }
}

extension Transformer {
  /// Continues `prompt` by `count` tokens (gpt only), each drawn from the model's
  /// next-token distribution with `sampling`; the context is the last `maxLen` tokens.
  /// `onToken` sees each token as it is drawn (for a caller that shows text as it comes).
  /// Logits that are not finite (weights that overflow) are bad data (65), not a draw.
  public func generate(
    prompt: [Int32], count: Int, sampling: SamplingSettings, rng: inout RNG, onToken: (Int32) -> Void = { _ in }
  ) throws -> [Int32] {
    precondition(config.kind == .gpt, "generate needs a gpt model")
    precondition(!prompt.isEmpty, "generate needs at least one prompt token")
    var tokens = prompt
    let v = config.vocabSize
    var weights = [Float](repeating: 0, count: v)
    for _ in 0..<count {
      let context = Array(tokens.suffix(config.maxLen))
      let logits = infer(.tokens(ids: context, valid: nil, batch: 1, time: context.count))  // (T, V)
      let last = Rows.values(logits, row: context.count - 1)
      guard last.allSatisfy({ $0.isFinite }) else {
        throw LCError.badData(
          ErrorDetail(
            what: "the model's next-token logits are not finite", location: "token \(tokens.count - prompt.count + 1)",
            expected: "finite logits", got: "\(last.first { !$0.isFinite } ?? .nan)",
            hint: "The checkpoint's weights overflow in float32; use an earlier checkpoint"))
      }
      let next = Int32(Self.sample(last, v, sampling, &weights, &rng))
      tokens.append(next)
      onToken(next)
    }
    return Array(tokens.dropFirst(prompt.count))
  }

  /// Index drawn from softmax(logits / temperature) restricted to the top k.
  static func sample(
    _ logits: [Float], _ v: Int, _ s: SamplingSettings, _ w: inout [Float], _ rng: inout RNG
  ) -> Int {
    var cutoff = -Float.infinity
    if s.topK > 0 && s.topK < v {
      cutoff = (0..<v).map { logits[$0] }.sorted(by: >)[s.topK - 1]
    }
    var mx = -Float.infinity
    for i in 0..<v where logits[i] >= cutoff { mx = max(mx, logits[i]) }
    var total: Double = 0
    for i in 0..<v {
      w[i] = logits[i] >= cutoff ? expf((logits[i] - mx) / s.temperature) : 0
      total += Double(w[i])
    }
    var u = rng.uniformDouble() * total
    for i in 0..<v where w[i] > 0 {
      u -= Double(w[i])
      if u < 0 { return i }
    }
    return (0..<v).last { w[$0] > 0 }!
  }
}
