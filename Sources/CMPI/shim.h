// MPI through functions Swift can import. MPI's handles (MPI_COMM_WORLD, MPI_FLOAT,
// MPI_SUM, MPI_IN_PLACE) are macros, and MPI_Comm is a pointer in Open MPI but an int
// in MPICH: these wrappers use MPI_COMM_WORLD themselves, so Swift never names a handle
// or its type. Every call returns MPI's error code (MPI_SUCCESS = 0).
#ifndef LAYERCOLLAPSE_CMPI_SHIM_H
#define LAYERCOLLAPSE_CMPI_SHIM_H
#include <mpi.h>
#include <stdint.h>

static inline int lc_mpi_success(void) { return MPI_SUCCESS; }

/// MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI), and
/// errors returned to the caller instead of aborting the job.
static inline int lc_mpi_init(void) {
  int provided = 0;
  int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) return rc;
  return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

static inline int lc_mpi_initialized(void) {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag;
}

static inline int lc_mpi_rank(int *rank) { return MPI_Comm_rank(MPI_COMM_WORLD, rank); }
static inline int lc_mpi_size(int *size) { return MPI_Comm_size(MPI_COMM_WORLD, size); }

/// In-place sum of `count` floats across all ranks.
static inline int lc_mpi_allreduce_sum_float(float *buffer, int count) {
  return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

/// In-place sum, minimum or maximum of `count` doubles across all ranks.
static inline int lc_mpi_allreduce_sum_double(double *buffer, int count) {
  return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static inline int lc_mpi_allreduce_max_double(double *buffer, int count) {
  return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

/// In-place minimum and maximum of 64-bit unsigned values (hash agreement).
static inline int lc_mpi_allreduce_min_u64(uint64_t *buffer, int count) {
  return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
}
static inline int lc_mpi_allreduce_max_u64(uint64_t *buffer, int count) {
  return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
}

/// `count` floats from `root` to every rank.
static inline int lc_mpi_broadcast_float(float *buffer, int count, int root) {
  return MPI_Bcast(buffer, count, MPI_FLOAT, root, MPI_COMM_WORLD);
}

static inline int lc_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static inline int lc_mpi_finalize(void) { return MPI_Finalize(); }
static inline int lc_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

/// MPI's text for an error code, into `buffer` (at least MPI_MAX_ERROR_STRING bytes).
static inline int lc_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline void lc_mpi_error_string(int code, char *buffer) {
  int length = 0;
  MPI_Error_string(code, buffer, &length);
  buffer[length] = 0;
}

#endif
