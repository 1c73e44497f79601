import CAffinity
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The threads behind `Parallel`: the caller runs part 0 of a job and each worker thread
/// one further part. Between jobs a worker spins for a while (`spinNanoseconds`, 1 ms)
/// before it sleeps on a condition variable: a training step or a forward
/// pass hands out its next job within microseconds, and waking a sleeping core on a
/// virtual machine takes tens of microseconds, more than a small kernel's whole part.
/// (Measured here, two parts of 84 µs: 87 µs in all through this pool, 137 µs through
/// `DispatchQueue.concurrentPerform`.) Spinning threads call `sched_yield` every 16
/// checks, so a thread that shares its core with them still gets it.
///
/// A worker that picks up a job on the CPU its caller runs on moves itself off that CPU
/// (its affinity becomes the process's CPUs but that one). Left alone, the scheduler
/// often woke a worker next to the thread that woke it and kept the two there for tens of
/// milliseconds: a batch-1 forward pass at 2 threads took 2 ms, as long as at 1 thread,
/// for the whole of many short processes, where 1.1 ms was possible; with the move, the
/// first shared job moves the worker and the next passes take 1.1 ms. The caller itself
/// is never bound: a process it starts inherits its affinity (binding the caller to one
/// CPU, tried first, left a benchmark's child processes one CPU between them).
///
/// One job at a time: a caller that finds the pool busy (another thread's job, or a part
/// that starts a loop of its own) runs its job alone, which gives the same result, since
/// parts never depend on how the work is split.
final class ThreadPool: @unchecked Sendable {
  static let shared = ThreadPool()

  /// How long an idle worker spins before it sleeps, in nanoseconds. Bounded by the clock,
  /// not by a count of checks: when another process shares the core, each `sched_yield`
  /// can hand it a whole time slice, and a count would then keep a finished process's
  /// worker competing for that core for seconds (seen: it halved a benchmark's child).
  static let spinNanoseconds: UInt64 = 1_000_000

  /// The job in one word, `count << 16 | parts`: stored (release) to start a job, and
  /// workers wait for it to change (acquire). One word, so a worker never pairs one job's
  /// count with another's number of parts.
  private let job = Atomic<Int>(0)
  /// Worker parts of the current job still running.
  private let pending = Atomic<Int>(0)
  private let busy = Atomic<Bool>(false)
  /// The CPU the caller of the current job ran on when it published the job (-1: unknown).
  private let callerCPU = Atomic<Int>(-1)
  /// Workers asleep on `wake`.
  private var sleepers = 0
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  /// The current job's body: written by the caller before it publishes `job`, read by the
  /// workers that take part, which the caller waits for before it changes it again.
  private var body: ((Int) -> Void)?
  /// Worker threads started so far (they are never stopped: the process ends them).
  private var workers = 0

  private init() {
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(wake, nil)
  }

  /// Runs `body(i)` for i in 0..<parts, part 0 on the calling thread, and returns when all
  /// are done.
  func run(parts: Int, _ body: (Int) -> Void) {
    guard parts > 1, parts < 1 << 16,
      busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    else {
      for i in 0..<parts { body(i) }
      return
    }
    startWorkers(parts - 1)
    withoutActuallyEscaping(body) { body in
      self.body = body
      pending.store(parts - 1, ordering: .relaxed)
      callerCPU.store(Int(lc_current_cpu()), ordering: .relaxed)
      let count = job.load(ordering: .relaxed) >> 16 + 1
      job.store(count << 16 | parts, ordering: .releasing)
      pthread_mutex_lock(mutex)
      if sleepers > 0 { pthread_cond_broadcast(wake) }
      pthread_mutex_unlock(mutex)
      body(0)
      var waits = 0
      while pending.load(ordering: .acquiring) > 0 {
        waits += 1
        if waits & 15 == 0 { sched_yield() }
      }
      self.body = nil
    }
    busy.store(false, ordering: .releasing)
  }

  private func startWorkers(_ needed: Int) {
    while workers < needed {
      workers += 1
      // The worker starts from the job word as it is now, before the caller publishes the
      // job it is started for (read on its own thread, it could miss that job).
      let context = Unmanaged.passRetained(
        WorkerContext(pool: self, index: workers, seen: job.load(ordering: .relaxed))
      ).toOpaque()
      var thread = pthread_t()
      let started = pthread_create(
        &thread, nil,
        { raw in
          let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
          context.pool.workerLoop(index: context.index, seen: context.seen)
          return nil
        }, context)
      precondition(started == 0, "ThreadPool: pthread_create failed (\(started))")
      pthread_detach(thread)
    }
  }

  private func workerLoop(index: Int, seen start: Int) {
    var seen = start
    // The CPUs the process may run on, as this thread inherited them.
    var cpus = [Int32](repeating: -1, count: 1024)
    let found = Int(lc_allowed_cpus(&cpus, Int32(cpus.count)))
    let allowed = Array(cpus.prefix(max(0, found)))
    while true {
      var spins = 0
      var deadline: UInt64 = 0
      var now = job.load(ordering: .acquiring)
      while now == seen {
        spins += 1
        if spins & 15 != 0 {
          now = job.load(ordering: .acquiring)
          continue
        }
        let clock = monotonicNanoseconds()
        if deadline == 0 { deadline = clock + Self.spinNanoseconds }
        if clock < deadline {
          sched_yield()
          now = job.load(ordering: .acquiring)
          continue
        }
        pthread_mutex_lock(mutex)
        sleepers += 1
        while job.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
        sleepers -= 1
        pthread_mutex_unlock(mutex)
        now = job.load(ordering: .acquiring)
      }
      seen = now
      if index < now & 0xFFFF {
        let caller = callerCPU.load(ordering: .relaxed)
        if caller >= 0 && allowed.count > 1 && Int(lc_current_cpu()) == caller {
          let others = allowed.filter { Int($0) != caller }
          _ = lc_bind_to_cpus(others, Int32(others.count))
        }
        runPart(index)
        pending.subtract(1, ordering: .releasing)
      }
    }
  }

  /// Out of line, so the worker's reference to the body is released before `pending` says
  /// the part is done (`withoutActuallyEscaping` checks that nothing kept it).
  @inline(never)
  private func runPart(_ index: Int) {
    body!(index)
  }
}

private func monotonicNanoseconds() -> UInt64 {
  var t = timespec()
  clock_gettime(CLOCK_MONOTONIC, &t)
  return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

private final class WorkerContext {
  let pool: ThreadPool
  let index: Int
  let seen: Int
  init(pool: ThreadPool, index: Int, seen: Int) {
    self.pool = pool
    self.index = index
    self.seen = seen
  }
}
