/* graphs.c - the held graphs (see graphs.h): a chained hash table over the
 * ids and an LRU list (oldest first), both under one mutex. */
#include "server/graphs.h"

#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 4096 /* ids are uniform hex: their first digits index the table */

struct gd_graphs {
    pthread_mutex_t mu;
    size_t max_bytes, bytes;
    int64_t held, hits, misses;
    gd_held *oldest, *newest;
    gd_held *bucket[N_BUCKETS];
};

gd_graphs *gd_graphs_new(size_t max_bytes) {
    gd_graphs *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (pthread_mutex_init(&c->mu, NULL)) {
        free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    return c;
}

static void held_free(gd_held *h) {
    gd_arena_free(h->arena); /* h lives in it */
}

void gd_graphs_free(gd_graphs *c) {
    if (!c) return;
    for (gd_held *h = c->oldest, *next; h; h = next) {
        next = h->newer;
        held_free(h);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t gd_graphs_limit(const gd_graphs *c) { return c->max_bytes; }

void gd_graphs_id(char id[GD_GRAPH_ID_LEN + 1], const char *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    unsigned char d[32];
    gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, d);
    memcpy(id, "sha256:", 7);
    for (int i = 0; i < 32; i++) id[7 + 2 * i] = hex[d[i] >> 4], id[8 + 2 * i] = hex[d[i] & 15];
    id[GD_GRAPH_ID_LEN] = '\0';
}

int gd_graphs_public_id(const char *id) { return strncmp(id, "sha256:", 7) == 0; }

gd_held *gd_held_new(gd_arena *a, const gd_graph *g, const char *canon, size_t canon_len) {
    gd_held *h = gd_arena_alloc(a, sizeof *h);
    if (!h) return NULL;
    h->arena = a;
    h->g = g;
    h->canon = canon;
    h->canon_len = canon_len;
    gd_graphs_id(h->id, canon, canon_len);
    h->bytes = gd_arena_live(a);
    h->refs = 1;
    return h;
}

/* The bucket of an id (or of any string asked for: FNV-1a over it all). */
static gd_held **bucket_of(gd_graphs *c, const char *id) {
    unsigned h = 2166136261u;
    for (const char *s = id; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return &c->bucket[h % N_BUCKETS];
}

static gd_held *find(gd_graphs *c, const char *id) {
    for (gd_held *h = *bucket_of(c, id); h; h = h->chain)
        if (!strcmp(h->id, id)) return h;
    return NULL;
}

static void lru_unlink(gd_graphs *c, gd_held *h) {
    if (h->older) h->older->newer = h->newer;
    else c->oldest = h->newer;
    if (h->newer) h->newer->older = h->older;
    else c->newest = h->older;
    h->older = h->newer = NULL;
}

static void lru_push(gd_graphs *c, gd_held *h) {
    h->older = c->newest, h->newer = NULL;
    if (c->newest) c->newest->newer = h;
    else c->oldest = h;
    c->newest = h;
}

/* Take h out of the table and the list; it is freed now unless a request
 * still holds it (then by the last gd_graphs_release). Under the mutex;
 * returns h when the caller must free it (outside the mutex), else NULL. */
static gd_held *unlist(gd_graphs *c, gd_held *h) {
    gd_held **p = bucket_of(c, h->id);
    while (*p != h) p = &(*p)->chain;
    *p = h->chain;
    lru_unlink(c, h);
    h->listed = 0;
    c->bytes -= h->bytes;
    c->held--;
    return --h->refs == 0 ? h : NULL;
}

gd_held *gd_graphs_put(gd_graphs *c, gd_held *h, int *created) {
    gd_held *dead = NULL; /* freed after the mutex, chained through `chain` */
    pthread_mutex_lock(&c->mu);
    gd_held *old = find(c, h->id);
    if (old) {
        old->refs++;
        lru_unlink(c, old);
        lru_push(c, old);
        pthread_mutex_unlock(&c->mu);
        held_free(h);
        *created = 0;
        return old;
    }
    /* Make room: the oldest go first. */
    while (c->oldest && c->bytes + h->bytes > c->max_bytes) {
        gd_held *d = unlist(c, c->oldest);
        if (d) d->chain = dead, dead = d;
    }
    gd_held **b = bucket_of(c, h->id);
    h->chain = *b;
    *b = h;
    lru_push(c, h);
    h->listed = 1;
    h->refs++; /* the cache's own */
    c->bytes += h->bytes;
    c->held++;
    pthread_mutex_unlock(&c->mu);
    while (dead) {
        gd_held *next = dead->chain;
        held_free(dead);
        dead = next;
    }
    *created = 1;
    return h;
}

gd_held *gd_graphs_get(gd_graphs *c, const char *id, int count) {
    pthread_mutex_lock(&c->mu);
    gd_held *h = find(c, id);
    if (h) {
        h->refs++;
        lru_unlink(c, h);
        lru_push(c, h);
    }
    if (count) {
        if (h) c->hits++;
        else c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return h;
}

void gd_graphs_release(gd_graphs *c, gd_held *h) {
    if (!h) return;
    pthread_mutex_lock(&c->mu);
    int last = --h->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last) held_free(h);
}

int gd_graphs_delete(gd_graphs *c, const char *id) {
    pthread_mutex_lock(&c->mu);
    gd_held *h = find(c, id), *dead = h ? unlist(c, h) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (dead) held_free(dead);
    return h != NULL;
}

void gd_graphs_stats_get(gd_graphs *c, gd_graphs_stats *s) {
    pthread_mutex_lock(&c->mu);
    s->held = c->held, s->bytes = (int64_t)c->bytes, s->hits = c->hits, s->misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}
