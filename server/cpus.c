/* cpus.c - usable CPUs from the affinity mask and the cgroup CPU quota (see
 * cpus.h). The cgroup directory of this process is found by joining the
 * mount point of the hierarchy (/proc/self/mountinfo) with the process's
 * path in it (/proc/self/cgroup); inside a container whose cgroup namespace
 * hides the path, that is the mount point itself. */
#include "server/cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A cgroup hierarchy: where it is mounted and which of its paths that
 * mount shows as its root. */
typedef struct hier {
    char mnt[PATH_MAX];
    char root[PATH_MAX];
    int found;
} hier;

/* CPUs in the affinity mask, or the online count if that cannot be read. */
static int affinity_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Does the comma-separated list `opts` contain `word`? */
static int has_token(const char *opts, const char *word) {
    size_t w = strlen(word);
    for (const char *p = opts; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == w && strncmp(p, word, w) == 0) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Find the cgroup2 mount (v2) and the v1 mount carrying the "cpu"
 * controller in /proc/self/mountinfo. A mountinfo line reads
 * "id parent maj:min root mountpoint opts [optional...] - fstype source superopts". */
static void find_mounts(hier *v2, hier *v1) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char root[PATH_MAX], mnt[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2) continue;
        const char *dash = strstr(line, " - ");
        if (!dash) continue;
        char fstype[64], source[256], super[1024];
        if (sscanf(dash + 3, "%63s %255s %1023s", fstype, source, super) != 3) continue;
        hier *h = NULL;
        if (strcmp(fstype, "cgroup2") == 0 && !v2->found) h = v2;
        else if (strcmp(fstype, "cgroup") == 0 && !v1->found && has_token(super, "cpu")) h = v1;
        if (!h) continue;
        snprintf(h->mnt, sizeof h->mnt, "%s", mnt);
        snprintf(h->root, sizeof h->root, "%s", root);
        h->found = 1;
    }
    fclose(f);
}

/* This process's path in the v2 hierarchy ("0::/path") and in the v1 one
 * that carries "cpu" ("N:cpu,cpuacct:/path"). Empty when absent. */
static void find_paths(char *p2, char *p1, size_t size) {
    p2[0] = p1[0] = '\0';
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        if (strncmp(line, "0:", 2) == 0 && c1 + 1 == c2) snprintf(p2, size, "%s", c2 + 1);
        else if (has_token(c1 + 1, "cpu")) snprintf(p1, size, "%s", c2 + 1);
    }
    fclose(f);
}

/* The directory of cgroup path `path` under hierarchy h. */
static void cgroup_dir(const hier *h, const char *path, char *out, size_t size) {
    size_t rl = strlen(h->root);
    const char *rest = path;
    if (strcmp(h->root, "/") != 0 && strncmp(path, h->root, rl) == 0) rest = path + rl;
    if (strcmp(rest, "/") == 0) rest = "";
    snprintf(out, size, "%s%s", h->mnt, rest);
}

/* Read the first two whitespace-separated words (up to 63 bytes each) of a
 * small file into a and b. */
static int read_words(const char *dir, const char *name, char a[64], char b[64]) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    b[0] = '\0';
    int n = fscanf(f, "%63s %63s", a, b);
    fclose(f);
    return n >= 1 ? 0 : -1;
}

/* Quota in CPUs (quota / period) at one directory; <= 0 when unlimited or
 * unreadable. v2: cpu.max "max 100000" or "150000 100000". */
static double quota_at(const char *dir, int v2) {
    char a[64], b[64];
    double q, p;
    if (v2) {
        if (read_words(dir, "cpu.max", a, b) || strcmp(a, "max") == 0) return 0;
        q = strtod(a, NULL), p = b[0] ? strtod(b, NULL) : 100000;
    } else {
        if (read_words(dir, "cpu.cfs_quota_us", a, b)) return 0;
        q = strtod(a, NULL);
        if (q <= 0 || read_words(dir, "cpu.cfs_period_us", a, b)) return 0;
        p = strtod(a, NULL);
    }
    return q > 0 && p > 0 ? q / p : 0;
}

/* The smallest quota from dir up to the hierarchy's mount point; 0: none. */
static double min_quota_up(const char *mnt, const char *start, int v2) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", start);
    double best = 0;
    size_t ml = strlen(mnt);
    for (;;) {
        double q = quota_at(dir, v2);
        if (q > 0 && (best == 0 || q < best)) best = q;
        if (strlen(dir) <= ml) break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < ml) break;
        *slash = '\0';
    }
    return best;
}

/* The CPU quota that applies to this process in CPUs, 0 when none. */
static double cgroup_quota(void) {
    hier v2 = {0}, v1 = {0};
    char p2[PATH_MAX], p1[PATH_MAX], dir[2 * PATH_MAX];
    find_mounts(&v2, &v1);
    find_paths(p2, p1, sizeof p2);
    double q2 = 0, q1 = 0;
    if (v2.found && p2[0]) {
        cgroup_dir(&v2, p2, dir, sizeof dir);
        q2 = min_quota_up(v2.mnt, dir, 1);
    }
    if (v1.found && p1[0]) {
        cgroup_dir(&v1, p1, dir, sizeof dir);
        q1 = min_quota_up(v1.mnt, dir, 0);
    }
    if (q2 > 0 && (q1 <= 0 || q2 < q1)) return q2;
    return q1;
}

int gd_usable_cpus(char *why, size_t why_size) {
    int aff = affinity_cpus();
    double q = cgroup_quota();
    int n = aff;
    /* A fractional quota rounds down (1.5 CPUs: one thread that is never
     * throttled), but never below one. */
    if (q > 0) {
        int qn = (int)q < 1 ? 1 : (int)q;
        if (qn < n) n = qn;
    }
    if (why) {
        if (q > 0) snprintf(why, why_size, "affinity %d CPUs, cgroup quota %.2f CPUs", aff, q);
        else snprintf(why, why_size, "affinity %d CPUs, no cgroup CPU quota", aff);
    }
    return n;
}
