// Thread placement from the C library (glibc's CPU_* macros need _GNU_SOURCE and do not
// import into Swift). Linux only; elsewhere every call reports that nothing was done.
#ifndef LAYERCOLLAPSE_CAFFINITY_SHIM_H
#define LAYERCOLLAPSE_CAFFINITY_SHIM_H

#ifdef __linux__
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>

/// Writes up to `capacity` CPU numbers the calling thread may run on into `cpus`, in
/// ascending order, and returns how many it wrote; -1 on failure.
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

/// Lets the calling thread run on the `count` CPUs in `cpus` only. 0 on success, -1 on failure.
static inline int lc_bind_to_cpus(const int *cpus, int count) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int i = 0; i < count; i++) {
    if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &set);
  }
  if (CPU_COUNT(&set) == 0) return -1;
  return sched_setaffinity(0, sizeof set, &set);
}

/// The CPU the calling thread is running on, or -1.
static inline int lc_current_cpu(void) { return sched_getcpu(); }

#else
static inline int lc_allowed_cpus(int *cpus, int capacity) { (void)cpus; (void)capacity; return -1; }
static inline int lc_bind_to_cpus(const int *cpus, int count) { (void)cpus; (void)count; return -1; }
static inline int lc_current_cpu(void) { return -1; }
#endif

#endif
