/* cpus.h - how many CPUs this process may really use: its affinity mask,
 * capped by the CPU quota of its cgroup (v2 cpu.max, v1 cfs_quota_us /
 * cfs_period_us, on every level up to the hierarchy's root), never the
 * host's core count. Used to size the worker pool and OpenBLAS threads.
 * Reads /proc and /sys only; no allocation survives the call. Knows
 * nothing of gradd's other modules. */
#ifndef GD_SERVER_CPUS_H
#define GD_SERVER_CPUS_H

#include <stddef.h>

/* Usable CPUs (>= 1). `why` (may be NULL) receives a short explanation such
 * as "affinity 2, cgroup quota 1.50 CPUs" for messages. */
int gd_usable_cpus(char *why, size_t why_size);

#endif
