/* arena.h - the per-request memory arena.
 *
 * Everything a request allocates (graph, values, intermediates, gradients,
 * diagnostics) comes from one arena and is released by one gd_arena_free().
 * Two kinds of allocation:
 *   - gd_arena_alloc: small objects, bump-allocated from chunks, zeroed, never
 *     freed individually;
 *   - gd_arena_buf: tensor buffers, 64-byte aligned for BLAS, which may be
 *     handed back early with gd_arena_release (the backward sweep does so as
 *     soon as it no longer needs an intermediate).
 * A byte limit bounds the live total; an allocation past it returns NULL.
 * An arena is used by one thread at a time; arenas share nothing. */
#ifndef GD_ARENA_H
#define GD_ARENA_H

#include <stddef.h>

typedef struct gd_arena gd_arena;

/* A new arena that refuses to hold more than `limit` live bytes (0: no limit).
 * Returns NULL when out of memory. The caller owns it: gd_arena_free. */
gd_arena *gd_arena_new(size_t limit);
/* Release every allocation of the arena and the arena itself. NULL is fine. */
void gd_arena_free(gd_arena *a);

/* n zeroed bytes aligned to 16, valid until gd_arena_free. NULL past the limit. */
void *gd_arena_alloc(gd_arena *a, size_t n);
/* Copy of s (NUL-terminated) in the arena. */
char *gd_arena_strdup(gd_arena *a, const char *s);
char *gd_arena_printf(gd_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* n uninitialised bytes aligned to 64 (zeroed when `zero`), valid until
 * gd_arena_release or gd_arena_free. NULL past the limit or out of memory. */
void *gd_arena_buf(gd_arena *a, size_t n, int zero);
/* Hand a gd_arena_buf block back early. NULL is fine. */
void gd_arena_release(gd_arena *a, void *p);

size_t gd_arena_live(const gd_arena *a);  /* bytes held now */
size_t gd_arena_peak(const gd_arena *a);  /* most bytes held at once */
size_t gd_arena_limit(const gd_arena *a);

#endif
