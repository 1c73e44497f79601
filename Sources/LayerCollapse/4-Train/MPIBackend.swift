// The one file that imports MPI (built only with the MPI trait: `make build MPI=1`).
#if MPI
  import CMPI

  /// Calls into MPI for `ProcessGroup`, on MPI_COMM_WORLD, from the main thread only.
  enum MPIBackend {
    /// MPI's largest count per call (an `int`): longer buffers go in pieces.
    static let maxCount = Int(Int32.max)

    /// Initializes MPI (errors returned, not fatal) and returns (rank, size).
    static func start() throws -> (rank: Int, size: Int) {
      if lc_mpi_initialized() == 0 { try check(lc_mpi_init(), "MPI_Init_thread") }
      var rank: Int32 = 0
      var size: Int32 = 0
      try check(lc_mpi_rank(&rank), "MPI_Comm_rank")
      try check(lc_mpi_size(&size), "MPI_Comm_size")
      return (Int(rank), Int(size))
    }

    static func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
      var done = 0
      while done < count {
        let n = min(maxCount, count - done)
        try check(lc_mpi_allreduce_sum_float(buffer + done, Int32(n)), "MPI_Allreduce (gradients)")
        done += n
      }
    }

    static func allreduce(_ values: inout [Double], max: Bool) throws {
      let n = Int32(values.count)
      let rc = values.withUnsafeMutableBufferPointer { p in
        max ? lc_mpi_allreduce_max_double(p.baseAddress, n) : lc_mpi_allreduce_sum_double(p.baseAddress, n)
      }
      try check(rc, "MPI_Allreduce")
    }

    /// The smallest and largest of `value` over the ranks.
    static func range(_ value: UInt64) throws -> (min: UInt64, max: UInt64) {
      var low = [value]
      var high = [value]
      try check(lc_mpi_allreduce_min_u64(&low, 1), "MPI_Allreduce (min)")
      try check(lc_mpi_allreduce_max_u64(&high, 1), "MPI_Allreduce (max)")
      return (low[0], high[0])
    }

    static func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
      var done = 0
      while done < count {
        let n = min(maxCount, count - done)
        try check(lc_mpi_broadcast_float(buffer + done, Int32(n), Int32(root)), "MPI_Bcast")
        done += n
      }
    }

    static func finish() { _ = lc_mpi_finalize() }

    static func abort(code: Int32) { _ = lc_mpi_abort(code) }

    private static func check(_ rc: Int32, _ call: String) throws {
      guard rc != lc_mpi_success() else { return }
      var text = [CChar](repeating: 0, count: Int(lc_mpi_max_error_string()) + 1)
      lc_mpi_error_string(rc, &text)
      let length = text.firstIndex(of: 0) ?? text.count
      let message = String(decoding: text[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
      throw LCError.other(
        ErrorDetail(
          what: "\(call) failed: \(message)", location: "MPI",
          hint: "Another rank probably stopped; its own message says why"))
    }
  }
#endif
