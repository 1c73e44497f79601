import Kernels
import Testing

/// `Parallel`'s loops on `ThreadPool`: every index runs exactly once, whatever the number
/// of parts, with several callers at once (one gets the pool, the others run alone), and
/// with more threads than cores (workers that sit out a job with fewer parts).
@Suite(.serialized) struct ThreadPoolTests {
  @Test(arguments: [2, 3])
  func everyIndexRunsOnce(threads: Int) async {
    let saved = BLASThreads.count
    BLASThreads.set(threads)
    defer { BLASThreads.set(saved) }
    let failures = await withTaskGroup(of: Int.self) { group in
      for caller in 0..<4 {
        group.addTask {
          var failures = 0
          for job in 0..<400 {
            let n = 1 + (job * 7 + caller * 13) % 61
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
            hits.initialize(repeating: 0, count: n)
            Parallel.forRanges(n) { range in
              for i in range { hits[i] += 1 }
            }
            failures += (0..<n).filter { hits[$0] != 1 }.count
            hits.deallocate()
          }
          return failures
        }
      }
      return await group.reduce(0, +)
    }
    #expect(failures == 0)
  }
}
