/* arena.c - chunked bump allocator for small objects plus a doubly linked
 * list of individually releasable, 64-byte aligned tensor buffers.
 *
 * Big buffers are recycled rather than handed back to malloc at once:
 *   - a released one waits on the arena's spare list, and the next
 *     gd_arena_buf of about its size takes it (the backward sweep allocates
 *     cotangents of the very shapes whose values it has just released);
 *   - with a gd_bufcache, gd_arena_free passes them on to the cache, and the
 *     next request's arena takes them from there.
 * Why: with glibc every big buffer (above its mmap threshold, or at the top
 * of a heap that free() trims) otherwise comes back as fresh zero pages, one
 * page fault per 4 KiB plus the unmapping; in the MLP benchmark that was a
 * fifth of the training step. Spare bytes count against the arena's limit
 * and are dropped before a charge that would not fit beside them, so the
 * limit means what it meant without the list; a cache's bytes belong to its
 * owner (a worker) and are bounded by the cache's own maximum. */
#include "core/arena.h"

#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_MIN (64 * 1024)

/* Buffers of at least this many bytes (header included) are recycled by
 * size (take_spare); chunks are too, as buffers of their own. */
#define SPARE_MIN (64 * 1024)

/* Buffers below SPARE_MIN bytes (header included: a scalar takes 128) are
 * recycled by size class, one free list per class: a 10k-node scalar graph
 * otherwise pays an aligned_alloc and a free per value, intermediate and
 * gradient (glibc's memalign path, its slowest), and a 1000-node chain of
 * 1k-element vectors the same per 8 KiB buffer (a tenth of its time in
 * malloc and free). Up to EXACT_MAX the classes are the multiples of 64
 * (exact sizes); above it, eight per power of two, and a buffer's size is
 * rounded up to its class (at most an eighth more; gd_arena_buf_cost
 * counts the rounded size). */
#define EXACT_MAX 1024
#define SMALL_CLASSES (EXACT_MAX / 64 + 8 * 6) /* 6 powers of two: 1 KiB .. 64 KiB */
_Static_assert(SPARE_MIN == 64 * 1024, "the size classes end where the spare list begins");

/* The class of a buffer of total bytes (64 <= total < SPARE_MIN, a
 * multiple of 64), and the size of class k. */
static size_t small_class(size_t total) {
    if (total <= EXACT_MAX) return total / 64 - 1;
    int o = 63 - __builtin_clzll((unsigned long long)(total - 1)); /* 2^o < total <= 2^(o+1) */
    size_t step = ((size_t)1 << o) / 8;
    return EXACT_MAX / 64 + (size_t)(o - 10) * 8 + (total - ((size_t)1 << o) + step - 1) / step - 1;
}
static size_t class_size(size_t k) {
    if (k < EXACT_MAX / 64) return (k + 1) * 64;
    k -= EXACT_MAX / 64;
    size_t base = (size_t)EXACT_MAX << (k / 8);
    return base + (k % 8 + 1) * (base / 8);
}

/* What a worker's cache keeps of small buffers between requests. */
#define SMALL_CACHE_MAX ((size_t)16 << 20)

/* Header in front of each tensor buffer; 64 bytes so the payload stays aligned. */
typedef struct buf_hdr {
    struct buf_hdr *prev, *next;
    size_t size;
    unsigned char pad[64 - 3 * sizeof(void *)];
} buf_hdr;
_Static_assert(sizeof(buf_hdr) == 64, "buffer header must keep 64-byte alignment");

/* A chunk of small objects is a buffer too (behind its buf_hdr), so that a
 * worker's cache recycles it like any big buffer: the next request's graph
 * and tensor headers land in pages already faulted in. */
typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} chunk;

/* Under AddressSanitizer a recycled buffer's payload is poisoned while it
 * waits, so that a use after gd_arena_release is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(b) ASAN_POISON_MEMORY_REGION((b) + 1, (b)->size - sizeof(buf_hdr))
#define UNPOISON(b) ASAN_UNPOISON_MEMORY_REGION((b) + 1, (b)->size - sizeof(buf_hdr))
#else
#define POISON(b) ((void)(b))
#define UNPOISON(b) ((void)(b))
#endif

/* A list of waiting buffers, singly linked by next, newest first. */
typedef struct spare_list {
    buf_hdr *head;
    size_t bytes;
} spare_list;

/* Waiting small buffers: list k holds those of class_size(k) bytes. */
typedef struct small_lists {
    buf_hdr *head[SMALL_CLASSES];
    size_t bytes;
} small_lists;

struct gd_bufcache {
    spare_list list;
    small_lists small;
    size_t max;
};

struct gd_arena {
    chunk *chunks;
    buf_hdr *bufs;               /* buffers in use */
    spare_list spare;            /* released big buffers of this arena */
    small_lists small;           /* released small buffers of this arena */
    gd_bufcache *cache;          /* NULL, or the owner's cache */
    size_t live, peak, limit;    /* live and peak count buffers in use only */
    int refused;                 /* a charge was refused at the limit */
    size_t next_chunk;           /* 0: CHUNK_MIN; else the next small chunk's size, doubling to CHUNK_MIN */
};

static void push_spare(spare_list *l, buf_hdr *b) {
    b->next = l->head;
    l->head = b;
    l->bytes += b->size;
    POISON(b);
}

/* Free every buffer of l from *from on (the whole list when from == &l->head). */
static void free_spares_from(spare_list *l, buf_hdr **from) {
    for (buf_hdr *b = *from, *n; b; b = n) {
        n = b->next;
        l->bytes -= b->size;
        UNPOISON(b);
        free(b);
    }
    *from = NULL;
}

static void push_small(small_lists *l, buf_hdr *b) {
    size_t k = small_class(b->size);
    b->next = l->head[k];
    l->head[k] = b;
    l->bytes += b->size;
    POISON(b);
}

static buf_hdr *pop_small(small_lists *l, size_t total) {
    size_t k = small_class(total);
    buf_hdr *b = l->head[k];
    if (!b) return NULL;
    l->head[k] = b->next;
    l->bytes -= b->size;
    UNPOISON(b);
    return b;
}

static void free_small(small_lists *l) {
    for (size_t k = 0; k < SMALL_CLASSES; k++) {
        for (buf_hdr *b = l->head[k], *n; b; b = n) {
            n = b->next;
            UNPOISON(b);
            free(b);
        }
        l->head[k] = NULL;
    }
    l->bytes = 0;
}

/* The smallest buffer of l holding total bytes with at most an eighth to
 * spare (so that a small request does not pin a much bigger block),
 * unlinked; or NULL. */
static buf_hdr *take_spare(spare_list *l, size_t total) {
    buf_hdr **best = NULL;
    for (buf_hdr **p = &l->head; *p; p = &(*p)->next)
        if ((*p)->size >= total && (*p)->size - total <= total / 8 && (!best || (*p)->size < (*best)->size))
            best = p;
    if (!best) return NULL;
    buf_hdr *b = *best;
    *best = b->next;
    l->bytes -= b->size;
    UNPOISON(b);
    return b;
}

gd_bufcache *gd_bufcache_new(size_t max_bytes) {
    gd_bufcache *c = calloc(1, sizeof *c);
    if (c) c->max = max_bytes;
    return c;
}

void gd_bufcache_free(gd_bufcache *c) {
    if (!c) return;
    gd_bufcache_clear(c);
    free(c);
}

size_t gd_bufcache_bytes(const gd_bufcache *c) { return c->list.bytes + c->small.bytes; }

void gd_bufcache_clear(gd_bufcache *c) {
    free_spares_from(&c->list, &c->list.head);
    free_small(&c->small);
}

int gd_malloc_keep_warm(size_t trim_bytes) {
#ifdef __GLIBC__
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.malloc.")) return 0;
    if (trim_bytes > INT_MAX) trim_bytes = INT_MAX;
    return mallopt(M_MMAP_THRESHOLD, 1 << 20) && mallopt(M_TRIM_THRESHOLD, (int)trim_bytes);
#else
    (void)trim_bytes;
    return 0;
#endif
}

gd_arena *gd_arena_new_cached(size_t limit, gd_bufcache *cache) {
    gd_arena *a = calloc(1, sizeof *a);
    if (a) a->limit = limit, a->cache = cache;
    return a;
}

gd_arena *gd_arena_new(size_t limit) { return gd_arena_new_cached(limit, NULL); }

gd_arena *gd_arena_new_small(size_t limit) {
    gd_arena *a = gd_arena_new_cached(limit, NULL);
    if (a) a->next_chunk = 1024;
    return a;
}

/* Hand buffer b (unlinked) to the cache when it is recycled (big, or small
 * while the cache's small lists have room), else free it. */
static void retire(gd_arena *a, buf_hdr *b) {
    if (a->cache && b->size >= SPARE_MIN) push_spare(&a->cache->list, b);
    else if (a->cache && b->size < SPARE_MIN && a->cache->small.bytes + b->size <= SMALL_CACHE_MAX)
        push_small(&a->cache->small, b);
    else free(b);
}

static buf_hdr *chunk_buf(chunk *c) { return (buf_hdr *)c - 1; }

/* Keep the cache's newest buffers up to its maximum; free the rest. */
static void cache_trim(gd_bufcache *c) {
    size_t kept = 0;
    buf_hdr **p = &c->list.head;
    while (*p && (*p)->size <= c->max - kept) kept += (*p)->size, p = &(*p)->next;
    free_spares_from(&c->list, p);
}

void gd_arena_free(gd_arena *a) {
    if (!a) return;
    for (chunk *c = a->chunks, *n; c; c = n) n = c->next, retire(a, chunk_buf(c));
    for (buf_hdr *b = a->bufs, *n; b; b = n) n = b->next, retire(a, b);
    for (buf_hdr *b = a->spare.head, *n; b; b = n) n = b->next, UNPOISON(b), retire(a, b);
    for (size_t k = 0; k < SMALL_CLASSES; k++)
        for (buf_hdr *b = a->small.head[k], *n; b; b = n) n = b->next, UNPOISON(b), retire(a, b);
    if (a->cache) cache_trim(a->cache);
    free(a);
}

/* Count n more live bytes, or refuse (-1) when the limit would be passed.
 * The arena's spare buffers (big and small) are memory it holds too: they
 * are freed before a charge that would not fit beside them. */
static int charge(gd_arena *a, size_t n) {
    size_t held = a->spare.bytes + a->small.bytes;
    if (a->limit && held && (a->live + held > a->limit || n > a->limit - a->live - held)) {
        free_spares_from(&a->spare, &a->spare.head);
        free_small(&a->small);
    }
    if (a->limit && (n > a->limit || a->live > a->limit - n)) return a->refused = 1, -1;
    a->live += n;
    if (a->live > a->peak) a->peak = a->live;
    return 0;
}

/* A new chunk of at least n bytes of room, first on the list: a buffer
 * recycled from the arena or its cache when one fits, else a new one. It
 * is charged its room and chunk header only, as when chunks were plain
 * mallocs (the buffer header and a recycled buffer's slack are not), so
 * that gd_arena_small_cost and the memory plans built on it still hold. */
static chunk *new_chunk(gd_arena *a, size_t n) {
    size_t min = a->next_chunk ? a->next_chunk : CHUNK_MIN;
    size_t size = n > min ? n : min;
    if (a->next_chunk && a->next_chunk < CHUNK_MIN) a->next_chunk *= 2;
    if (size > SIZE_MAX / 2 || charge(a, size + sizeof(chunk))) return NULL;
    size_t total = (sizeof(buf_hdr) + sizeof(chunk) + size + 63) & ~(size_t)63;
    buf_hdr *b = NULL;
    if (total >= SPARE_MIN && !(b = take_spare(&a->spare, total)) && a->cache) b = take_spare(&a->cache->list, total);
    if (!b && (b = aligned_alloc(64, total))) b->size = total;
    if (!b) {
        a->live -= size + sizeof(chunk);
        return NULL;
    }
    chunk *c = (chunk *)(b + 1);
    c->size = size;
    c->used = 0;
    c->next = a->chunks;
    a->chunks = c;
    return c;
}

void *gd_arena_alloc_raw(gd_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    chunk *c = a->chunks;
    if ((!c || c->size - c->used < n) && !(c = new_chunk(a, n))) return NULL;
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void *gd_arena_alloc(gd_arena *a, size_t n) {
    void *p = gd_arena_alloc_raw(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *gd_arena_strdup(gd_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = gd_arena_alloc_raw(a, n); /* every byte written below */
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

/* The bytes a buffer of n payload bytes takes: header, payload rounded to
 * 64, and below SPARE_MIN rounded up to its size class. */
static size_t buf_total(size_t n) {
    size_t total = sizeof(buf_hdr) + ((n + 63) & ~(size_t)63);
    return total < SPARE_MIN ? class_size(small_class(total)) : total;
}

/* Transparent huge pages for the 2 MiB-aligned interior of a new buffer of
 * at least HUGE_MIN bytes (they are opt-in, "madvise", on Debian's default
 * kernels). Why: faulting in a fresh 128 MiB tensor 4 KiB at a time cost
 * more than computing it (issue 10: half of a 16M-element chain's forward
 * on a virtual machine); 2 MiB pages take 512 times fewer faults. Advice
 * only: a kernel without THP ignores it, and the memory is the same. */
#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)

static void ask_huge_pages(void *p, size_t total) {
#ifdef MADV_HUGEPAGE
    if (total < HUGE_MIN) return;
    uintptr_t from = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t to = ((uintptr_t)p + total) & ~(HUGE_PAGE - 1);
    if (to > from) (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)p, (void)total;
#endif
}

/* A buffer of total bytes (header included): recycled from the arena's
 * spare list or the cache when one fits, else new. Charged either way. */
static buf_hdr *get_buf(gd_arena *a, size_t total) {
    buf_hdr *b = NULL;
    if (total < SPARE_MIN) {
        small_lists *from = &a->small;
        if (!(b = pop_small(from, total)) && a->cache) b = pop_small(from = &a->cache->small, total);
        if (b && charge(a, b->size)) {
            push_small(from, b);
            b = NULL;
        }
        if (b) return b;
    } else if (total >= SPARE_MIN) {
        spare_list *from = &a->spare;
        if (!(b = take_spare(from, total)) && a->cache) b = take_spare(from = &a->cache->list, total);
        if (b && charge(a, b->size)) { /* past the limit: put it back, refuse below */
            push_spare(from, b);
            b = NULL;
        }
        if (b) return b;
    }
    if (charge(a, total)) return NULL;
    if (!(b = aligned_alloc(64, total))) {
        a->live -= total;
        return NULL;
    }
    b->size = total;
    ask_huge_pages(b, total);
    return b;
}

void *gd_arena_buf(gd_arena *a, size_t n, int zero) {
    if (n > SIZE_MAX - 64 - sizeof(buf_hdr)) return NULL;
    size_t total = buf_total(n);
    buf_hdr *b = get_buf(a, total);
    if (!b) return NULL;
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
    if (b->size >= SPARE_MIN) push_spare(&a->spare, b);
    else push_small(&a->small, b);
}

void *gd_arena_detach(gd_arena *a, void *p) {
    buf_hdr *b = a->bufs;
    while (b && b + 1 != p) b = b->next;
    if (!b) return NULL;
    if (b->prev) b->prev->next = b->next;
    else a->bufs = b->next;
    if (b->next) b->next->prev = b->prev;
    b->prev = b->next = NULL;
    a->live -= b->size;
    return p;
}

void gd_arena_block_free(void *p) {
    if (p) free((buf_hdr *)p - 1);
}

void gd_bufcache_adopt(gd_bufcache *c, void *p) {
    if (!p) return;
    buf_hdr *b = (buf_hdr *)p - 1;
    if (b->size < SPARE_MIN) {
        free(b);
        return;
    }
    push_spare(&c->list, b);
    cache_trim(c);
}

void *gd_bufcache_take(gd_bufcache *c, size_t n) {
    if (!c || n > SIZE_MAX - 64 - sizeof(buf_hdr)) return NULL;
    buf_hdr *b = take_spare(&c->list, buf_total(n));
    if (!b) return NULL;
    b->prev = b->next = NULL;
    return b + 1;
}

void gd_bufcache_move(gd_bufcache *dst, gd_bufcache *src) {
    buf_hdr *rev = NULL; /* src newest first: reversed, so that pushing keeps the order */
    for (buf_hdr *b = src->list.head, *n; b; b = n) n = b->next, b->next = rev, rev = b;
    src->list.head = NULL;
    src->list.bytes = 0;
    for (buf_hdr *b = rev, *n; b; b = n) {
        n = b->next;
        UNPOISON(b);
        push_spare(&dst->list, b);
    }
    cache_trim(dst);
}

size_t gd_arena_buf_cost(size_t n) {
    if (n > SIZE_MAX / 2) return SIZE_MAX / 2;
    size_t total = buf_total(n);
    return total >= SPARE_MIN ? total + total / 8 : total; /* take_spare's slack */
}

/* A chunk is left behind only for an allocation that does not fit in its
 * tail, so the tails left unused total less than the allocations; then the
 * first chunk may be new and nearly empty, and every call rounds to 16. */
size_t gd_arena_small_cost(size_t n, size_t count) {
    return 2 * (n + 16 * count) + CHUNK_MIN + sizeof(chunk) * (count + 1);
}

int gd_arena_charge(gd_arena *a, size_t n) { return charge(a, n); }

int gd_arena_can_charge(const gd_arena *a, size_t n) { return !a->limit || (n <= a->limit && a->live <= a->limit - n); }

void gd_arena_uncharge(gd_arena *a, size_t n) { a->live -= n < a->live ? n : a->live; }

void gd_arena_reset_peak(gd_arena *a) { a->peak = a->live; }

size_t gd_arena_live(const gd_arena *a) { return a->live; }
size_t gd_arena_peak(const gd_arena *a) { return a->peak; }
size_t gd_arena_limit(const gd_arena *a) { return a->limit; }
int gd_arena_refused(const gd_arena *a) { return a->refused; }
