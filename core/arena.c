/* arena.c - chunked bump allocator for small objects plus a doubly linked
 * list of individually releasable, 64-byte aligned tensor buffers. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (64 * 1024)

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} chunk;

/* Header in front of each tensor buffer; 64 bytes so the payload stays aligned. */
typedef struct buf_hdr {
    struct buf_hdr *prev, *next;
    size_t size;
    unsigned char pad[64 - 3 * sizeof(void *)];
} buf_hdr;
_Static_assert(sizeof(buf_hdr) == 64, "buffer header must keep 64-byte alignment");

struct gd_arena {
    chunk *chunks;
    buf_hdr *bufs;
    size_t live, peak, limit;
};

gd_arena *gd_arena_new(size_t limit) {
    gd_arena *a = calloc(1, sizeof *a);
    if (a) a->limit = limit;
    return a;
}

void gd_arena_free(gd_arena *a) {
    if (!a) return;
    for (chunk *c = a->chunks, *n; c; c = n) n = c->next, free(c);
    for (buf_hdr *b = a->bufs, *n; b; b = n) n = b->next, free(b);
    free(a);
}

static int charge(gd_arena *a, size_t n) {
    if (a->limit && (n > a->limit || a->live > a->limit - n)) return -1;
    a->live += n;
    if (a->live > a->peak) a->peak = a->live;
    return 0;
}

void *gd_arena_alloc(gd_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    chunk *c = a->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = n > CHUNK_MIN ? n : CHUNK_MIN;
        if (size > SIZE_MAX - sizeof(chunk) || charge(a, size + sizeof(chunk))) return NULL;
        c = malloc(sizeof(chunk) + size);
        if (!c) { a->live -= size + sizeof(chunk); return NULL; }
        c->size = size;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *gd_arena_strdup(gd_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = gd_arena_alloc(a, n);
    if (d) memcpy(d, s, n);
    return d;
}

char *gd_arena_printf(gd_arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = gd_arena_alloc(a, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void *gd_arena_buf(gd_arena *a, size_t n, int zero) {
    if (n > SIZE_MAX - 64 - sizeof(buf_hdr)) return NULL;
    size_t total = sizeof(buf_hdr) + ((n + 63) & ~(size_t)63);
    if (charge(a, total)) return NULL;
    buf_hdr *b = aligned_alloc(64, total);
    if (!b) { a->live -= total; return NULL; }
    b->size = total;
    b->prev = NULL;
    b->next = a->bufs;
    if (a->bufs) a->bufs->prev = b;
    a->bufs = b;
    if (zero) memset(b + 1, 0, n);
    return b + 1;
}

void gd_arena_release(gd_arena *a, void *p) {
    if (!p) return;
    buf_hdr *b = (buf_hdr *)p - 1;
    if (b->prev) b->prev->next = b->next;
    else a->bufs = b->next;
    if (b->next) b->next->prev = b->prev;
    a->live -= b->size;
    free(b);
}

size_t gd_arena_live(const gd_arena *a) { return a->live; }
size_t gd_arena_peak(const gd_arena *a) { return a->peak; }
size_t gd_arena_limit(const gd_arena *a) { return a->limit; }
