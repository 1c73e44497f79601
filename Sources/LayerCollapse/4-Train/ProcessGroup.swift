import Foundation
import Kernels

/// The processes one training run spans: this process alone, or the ranks of an MPI job
/// (`mpirun -np N layercollapse train …`, data parallel). Every rank holds the whole
/// model; each step, each takes a disjoint share of the global batch, and one in-place
/// allreduce of the flat gradient buffer gives every rank the same gradient and so the
/// same update.
public final class ProcessGroup: @unchecked Sendable {
  public let rank: Int
  public let size: Int
  /// The rank that logs, evaluates and writes files.
  public var isRoot: Bool { rank == 0 }
  private let usesMPI: Bool
  /// Seconds spent in the gradient allreduce so far (the banner and `lc-bench` report it).
  public private(set) var allreduceSeconds: Double = 0

  private init(rank: Int, size: Int, usesMPI: Bool) {
    self.rank = rank
    self.size = size
    self.usesMPI = usesMPI
  }

  /// This process alone: no MPI, every collective is the identity.
  public static let single = ProcessGroup(rank: 0, size: 1, usesMPI: false)

  /// Whether this build can run under MPI (`make build MPI=1`).
  public static var mpiAvailable: Bool {
    #if MPI
      true
    #else
      false
    #endif
  }

  /// The launcher's variables that say this process is a rank of an MPI job (Open MPI,
  /// PMIx, and MPICH's Hydra), with the world size where the launcher gives it.
  public static func launcher(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    for key in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"] where environment[key] != nil {
      return key
    }
    return nil
  }

  /// The group this process belongs to: MPI's world when a launcher started it, this
  /// process alone otherwise. (MPI is initialized only under a launcher: a singleton
  /// MPI process forks a helper daemon and opens sockets for nothing.) Under a launcher, a
  /// build without MPI is a usage error: N copies would each train the whole run.
  public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
    -> ProcessGroup
  {
    guard let key = launcher(environment) else { return .single }
    #if MPI
      let (rank, size) = try MPIBackend.start()
      return ProcessGroup(rank: rank, size: size, usesMPI: true)
    #else
      throw LCError.usage(
        ErrorDetail(
          what: "started by an MPI launcher (\(key) is set), but this build has no MPI", location: "mpirun",
          hint: "Build with MPI: `make build MPI=1` (installs libopenmpi-dev openmpi-bin), then run the binary "
            + "under .build-mpi/; or run without mpirun"))
    #endif
  }

  // MARK: collectives (every rank must call them in the same order)

  /// buffer ← Σ over ranks of buffer, in place (the gradient allreduce).
  public func allreduceSum(_ buffer: Tensor) throws {
    guard size > 1 else { return }
    let start = DispatchTime.now().uptimeNanoseconds
    #if MPI
      try MPIBackend.allreduceSum(buffer.data, count: buffer.count)
    #endif
    allreduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
  }

  /// The element-wise sum of `values` over the ranks.
  public func sum(_ values: [Double]) throws -> [Double] {
    guard size > 1 else { return values }
    var v = values
    #if MPI
      try MPIBackend.allreduce(&v, max: false)
    #endif
    return v
  }

  /// Whether `flag` is true on any rank (a stop request on one rank stops all after the
  /// same step).
  public func any(_ flag: Bool) throws -> Bool {
    guard size > 1 else { return flag }
    var v = [flag ? 1.0 : 0.0]
    #if MPI
      try MPIBackend.allreduce(&v, max: true)
    #endif
    return v[0] > 0
  }

  /// Whether every rank holds the same `value` (a hash of its config and architecture).
  public func agree(on value: UInt64) throws -> Bool {
    guard size > 1 else { return true }
    #if MPI
      let (low, high) = try MPIBackend.range(value)
      return low == high
    #else
      return true
    #endif
  }

  /// Rank 0's `buffer` to every rank.
  public func broadcast(_ buffer: Tensor) throws {
    guard size > 1 else { return }
    #if MPI
      try MPIBackend.broadcast(buffer.data, count: buffer.count, root: 0)
    #endif
  }

  /// Ends MPI (call once, before the process exits; nothing after it may communicate).
  public func finish() {
    #if MPI
      if usesMPI { MPIBackend.finish() }
    #endif
  }

  /// Ends the whole job with `code` (one rank failed where the others would wait forever).
  public func abort(code: Int32) {
    #if MPI
      if usesMPI && size > 1 { MPIBackend.abort(code: code) }
    #endif
  }

  /// Examples `lo..<hi` of a global batch of `count` that rank `rank` of `size` takes:
  /// contiguous shares whose sizes differ by at most one.
  public static func share(of count: Int, rank: Int, size: Int) -> Range<Int> {
    (count * rank / size)..<(count * (rank + 1) / size)
  }
}
