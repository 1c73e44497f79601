// Thread placement from the C library (glibc's CPU_* macros need _GNU_SOURCE and do not
// import into Swift). Linux only; elsewhere both calls report that nothing was done.
#ifndef LAYERCOLLAPSE_CAFFINITY_SHIM_H
#define LAYERCOLLAPSE_CAFFINITY_SHIM_H

#ifdef __linux__
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>

/// Writes up to `capacity` CPU numbers the calling thread may run on into `cpus`, in
/// ascending order, and returns how many there are (at most `capacity`); -1 on failure.
static inline int lc_allowed_cpus(int *cpus, int capacity) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
  int count = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
    if (CPU_ISSET(cpu, &allowed)) cpus[count++] = cpu;
  }
  return count;
}

/// Binds the calling thread to one CPU. 0 on success, -1 on failure.
static inline int lc_bind_to_cpu(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return -1;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof one, &one);
}

#else
static inline int lc_allowed_cpus(int *cpus, int capacity) { (void)cpus; (void)capacity; return -1; }
static inline int lc_bind_to_cpu(int cpu) { (void)cpu; return -1; }
#endif

#endif
