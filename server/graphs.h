/* graphs.h - the registered graphs this replica holds (A3): each one
 * checked once, immutable, in its own arena, under its content address
 * ("sha256:" and the SHA-256 of its canonical JSON, proto/canon.h).
 *
 * Bounded by bytes (--graph-cache): the least recently used graphs go
 * first. A held graph is reference-counted: a request that uses it holds a
 * reference until it is answered, so a DELETE or an eviction meanwhile only
 * unlists it, and the last release frees it. Every function is
 * thread-safe (one mutex; nothing slow runs under it). Knows core's graph
 * and arena, GnuTLS's SHA-256 and the metrics' gauge record; nothing of
 * JSON or HTTP. */
#ifndef GD_SERVER_GRAPHS_H
#define GD_SERVER_GRAPHS_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/graph.h"
#include "server/metrics.h" /* gd_graphs_stats */

#define GD_GRAPH_ID_LEN 71 /* "sha256:" + 64 lowercase hex digits */

typedef struct gd_held {
    char id[GD_GRAPH_ID_LEN + 1];
    gd_arena *arena;             /* owns g and canon */
    const gd_graph *g;           /* checked; never written again */
    const char *canon;           /* the canonical JSON, canon_len bytes */
    size_t canon_len;
    size_t bytes;                /* the held form: everything the arena holds */
    /* The cache's, under its mutex. */
    int refs;
    int listed;
    struct gd_held *older, *newer, *chain;
} gd_held;

typedef struct gd_graphs gd_graphs;

/* An empty cache of at most max_bytes. NULL when out of memory. */
gd_graphs *gd_graphs_new(size_t max_bytes);
/* Frees every graph; no reference may be outstanding. NULL is fine. */
void gd_graphs_free(gd_graphs *c);
size_t gd_graphs_limit(const gd_graphs *c);

/* Whether clients may name this id (graph_id, /v1/graphs/{id}): the
 * "sha256:" ids of registered graphs, not the server's own entries (the
 * graphs it holds because they were sent inline again and again, compute.c). */
int gd_graphs_public_id(const char *id);
/* "sha256:<hex>" of the n bytes at p into id. */
void gd_graphs_id(char id[GD_GRAPH_ID_LEN + 1], const char *p, size_t n);

/* A new entry for graph g, whose arena `a` also holds canon (canon_len
 * bytes); the entry takes the arena. NULL when out of memory (the caller
 * still owns the arena). */
gd_held *gd_held_new(gd_arena *a, const gd_graph *g, const char *canon, size_t canon_len);

/* List h (a new entry with one reference, the caller's) under its id,
 * evicting the least recently used graphs that no longer fit. Returns the
 * entry now listed under that id with a reference for the caller: h itself
 * (*created = 1), or the one already held (*created = 0; h is freed). */
gd_held *gd_graphs_put(gd_graphs *c, gd_held *h, int *created);

/* The graph of this id with a reference for the caller, or NULL. A request
 * that runs on it counts a hit or a miss (count = 1); GET /v1/graphs/{id}
 * does not (count = 0). */
gd_held *gd_graphs_get(gd_graphs *c, const char *id, int count);
/* Give a reference back; the last one frees an unlisted graph. NULL is fine. */
void gd_graphs_release(gd_graphs *c, gd_held *h);
/* Unlist the graph of this id: 1, or 0 when not held. */
int gd_graphs_delete(gd_graphs *c, const char *id);

void gd_graphs_stats_get(gd_graphs *c, gd_graphs_stats *s);

#endif
