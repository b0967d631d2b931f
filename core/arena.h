/* arena.h - the per-request memory arena.
 *
 * Everything a request allocates (graph, values, intermediates, gradients,
 * diagnostics) comes from one arena and is released by one gd_arena_free().
 * Two kinds of allocation:
 *   - gd_arena_alloc: small objects, bump-allocated from chunks, zeroed (or
 *     not: gd_arena_alloc_raw), never freed individually;
 *   - gd_arena_buf: tensor buffers, 64-byte aligned for BLAS, which may be
 *     handed back early with gd_arena_release (the backward sweep does so as
 *     soon as it no longer needs an intermediate).
 * Released big buffers are recycled (see arena.c and gd_bufcache below).
 * A byte limit bounds the live total; an allocation past it returns NULL.
 * An arena is used by one thread at a time; arenas share nothing. */
#ifndef GD_ARENA_H
#define GD_ARENA_H

#include <stddef.h>

typedef struct gd_arena gd_arena;

typedef struct gd_bufcache gd_bufcache;

/* A new arena that refuses to hold more than `limit` live bytes (0: no limit).
 * Returns NULL when out of memory. The caller owns it: gd_arena_free. */
gd_arena *gd_arena_new(size_t limit);
/* The same, drawing big tensor buffers from `cache` (may be NULL) and giving
 * them back to it in gd_arena_free. The cache must outlive the arena. */
gd_arena *gd_arena_new_cached(size_t limit, gd_bufcache *cache);
/* The same for something small that lives long (a registered graph): its
 * chunks start at 1 KiB and double up to the usual 64 KiB, so that a small
 * graph does not pin a 64 KiB chunk. */
gd_arena *gd_arena_new_small(size_t limit);
/* Release every allocation of the arena and the arena itself. NULL is fine. */
void gd_arena_free(gd_arena *a);

/* A store of tensor buffers and arena chunks that outlives the arenas using
 * it, so that consecutive requests reuse memory instead of faulting in fresh
 * pages or paying malloc per scalar: a server worker owns one and creates
 * each request's arena with it. It keeps at most max_bytes of big buffers
 * and chunks (the most recently returned) and up to 16 MiB of small
 * buffers (by exact size); a buffer taken
 * from it counts against the taking arena's limit like a new one. Used by
 * one thread at a time, like its arenas. NULL when out of memory. */
gd_bufcache *gd_bufcache_new(size_t max_bytes);
/* Free the cache and every buffer it holds. NULL is fine. */
void gd_bufcache_free(gd_bufcache *c);
size_t gd_bufcache_bytes(const gd_bufcache *c); /* bytes held now */
/* Free every buffer the cache holds (it stays usable): memory handed back
 * when its owner has been idle for a while. */
void gd_bufcache_clear(gd_bufcache *c);

/* Keep memory that requests free warm for the next ones (a process-wide
 * malloc setting, for a server: call once before its threads start). By
 * default glibc hands the top of a malloc arena back to the kernel whenever
 * a free leaves more than its trim threshold (128 KiB at first) there: a
 * request frees everything at its end, so each paid page faults for what it
 * allocated and a madvise with a TLB shootdown on every CPU (42 % of gradd's
 * CPU on a 100-node x 1k-element gradient: 11-13 ms per request, 3.4 ms
 * warm). This fixes the trim threshold at trim_bytes, so small blocks stay
 * in the process, and the mmap threshold at 1 MiB, so big blocks get their
 * own mapping (big tensor buffers are recycled by a gd_bufcache, and an
 * idle trim then returns them exactly; from a heap top malloc_trim cannot
 * take them back in a thread's arena). Setting either also stops glibc from
 * moving them. Skipped when the user set glibc's malloc tunables
 * (GLIBC_TUNABLES) or without glibc. Returns 1 when it changed them. */
int gd_malloc_keep_warm(size_t trim_bytes);

/* n zeroed bytes aligned to 16, valid until gd_arena_free. NULL past the limit. */
void *gd_arena_alloc(gd_arena *a, size_t n);
/* The same, uninitialised: for big arrays whose every entry the caller
 * writes before reading it (a graph's node records). */
void *gd_arena_alloc_raw(gd_arena *a, size_t n);
/* Copy of s (NUL-terminated) in the arena. */
char *gd_arena_strdup(gd_arena *a, const char *s);
char *gd_arena_printf(gd_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* n uninitialised bytes aligned to 64 (zeroed when `zero`), valid until
 * gd_arena_release or gd_arena_free. NULL past the limit or out of memory. */
void *gd_arena_buf(gd_arena *a, size_t n, int zero);
/* Hand a gd_arena_buf block back early. NULL is fine. */
void gd_arena_release(gd_arena *a, void *p);

/* Take the gd_arena_buf block that starts at p out of the arena: it no
 * longer counts against the limit and gd_arena_free leaves it alone; the
 * caller owns it and hands it to gd_bufcache_adopt or gd_arena_block_free.
 * For a response sent after its request's arena is gone (a gradient's
 * bytes go out from its own buffer). Returns p, or NULL when p is no live
 * block of a (a buffer of another arena, memory borrowed from elsewhere,
 * or a block already taken). Walks the arena's live blocks. */
void *gd_arena_detach(gd_arena *a, void *p);
/* Free a detached block. NULL is fine. */
void gd_arena_block_free(void *p);
/* Give a detached block to cache c, as gd_arena_free gives it a big buffer
 * (the newest up to the cache's maximum are kept; a small one is freed). */
void gd_bufcache_adopt(gd_bufcache *c, void *p);
/* A detached block of at least n bytes from cache c (the smallest that
 * fits, as arenas take them), or NULL when none fits: nothing is
 * allocated. The caller owns it as a gd_arena_detach block. */
void *gd_bufcache_take(gd_bufcache *c, size_t n);
/* Move every big buffer of src into dst (newest first, dst's maximum kept). */
void gd_bufcache_move(gd_bufcache *dst, gd_bufcache *src);

/* Memory the request holds outside the arena's blocks (the parsed JSON, the
 * encoded response) counted against the same limit: gd_arena_charge adds n
 * bytes (0, or -1 and nothing counted when the limit would be passed),
 * gd_arena_uncharge takes them off again. */
int gd_arena_charge(gd_arena *a, size_t n);
void gd_arena_uncharge(gd_arena *a, size_t n);
/* 1 when gd_arena_charge(a, n) would succeed now, else 0 (nothing counted,
 * nothing marked refused): for room that is only an optimisation. */
int gd_arena_can_charge(const gd_arena *a, size_t n);
/* Restart the high-water mark at what is held now (a run measures its own). */
void gd_arena_reset_peak(gd_arena *a);

/* The most that a gd_arena_buf(a, n, ...) may count against the limit (its
 * header and rounding, and the slack of a recycled buffer), and an upper
 * bound of what gd_arena_alloc calls totalling n bytes in `count` calls add
 * (chunk headers and the tails that chunks leave unused): for planning
 * (memplan.h). */
size_t gd_arena_buf_cost(size_t n);
size_t gd_arena_small_cost(size_t n, size_t count);

size_t gd_arena_live(const gd_arena *a);  /* bytes held now */
size_t gd_arena_peak(const gd_arena *a);  /* most bytes held at once */
size_t gd_arena_limit(const gd_arena *a);
int gd_arena_refused(const gd_arena *a);  /* 1 once an allocation or charge was refused at the limit */

#endif
