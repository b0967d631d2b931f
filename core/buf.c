/* buf.c - the growable byte buffer (see buf.h): malloc'd storage (or a
 * pool's, when big) that doubles as it grows and stays NUL-terminated. */
#include "core/buf.h"

#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gd_buf_init(gd_buf *b) { memset(b, 0, sizeof *b); }

int gd_buf_charge_to(gd_buf *b, gd_arena *a) {
    if (b->charge) gd_arena_uncharge(b->charge, b->cap);
    b->charge = NULL;
    if (a && gd_arena_charge(a, b->cap)) {
        b->over_limit = b->failed = 1;
        return -1;
    }
    b->charge = a;
    return 0;
}

/* Give storage back where it came from. */
static void release(const gd_buf *b, char *data) {
    if (b->pooled) b->pool->put(data);
    else free(data);
}

void gd_buf_free(gd_buf *b) {
    if (b->charge) gd_arena_uncharge(b->charge, b->cap);
    release(b, b->data);
    memset(b, 0, sizeof *b);
}

void gd_buf_use_pool(gd_buf *b, const gd_buf_pool *pool) { b->pool = pool; }

/* Storage of cap bytes holding what b holds: from the pool when b uses one
 * and cap is big enough (a copy, since pooled blocks are not realloc's),
 * else realloc. NULL when memory runs out (b unchanged). */
static char *grow(gd_buf *b, size_t cap) {
    if (!b->pool || cap < b->pool->min) return realloc(b->data, cap);
    char *d = b->pool->get(cap);
    if (!d) return NULL;
    if (b->data) memcpy(d, b->data, b->len + 1);
    release(b, b->data);
    b->pooled = 1;
    return d;
}

void gd_buf_reset(gd_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

/* Room for n more bytes; soft: a failure leaves b as it was, not failed. */
static int reserve(gd_buf *b, size_t n, int soft) {
    if (b->failed) return -1;
    if (b->cap > b->len && n < b->cap - b->len) return 0;
    if (n > SIZE_MAX / 2 - b->len - 1) {
        if (!soft) b->failed = 1;
        return -1;
    }
    size_t need = b->len + n + 1, cap = b->cap ? b->cap : 256;
    if (soft) cap = need; /* a hint of the whole: no doubling past it */
    while (cap < need) cap *= 2;
    if (soft && b->charge && !gd_arena_can_charge(b->charge, cap - b->cap)) return -1;
    if (b->charge && gd_arena_charge(b->charge, cap - b->cap)) {
        b->over_limit = b->failed = 1;
        return -1;
    }
    char *d = grow(b, cap);
    if (!d) {
        if (b->charge) gd_arena_uncharge(b->charge, cap - b->cap);
        if (!soft) b->failed = 1;
        return -1;
    }
    b->data = d, b->cap = cap;
    return 0;
}

int gd_buf_reserve(gd_buf *b, size_t n) { return reserve(b, n, 0); }

int gd_buf_reserve_soft(gd_buf *b, size_t n) { return reserve(b, n, 1); }

int gd_buf_append(gd_buf *b, const void *p, size_t n) {
    if (gd_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gd_buf_puts(gd_buf *b, const char *s) { return gd_buf_append(b, s, strlen(s)); }

int gd_buf_putc(gd_buf *b, char ch) { return gd_buf_append(b, &ch, 1); }

int gd_buf_put_int(gd_buf *b, int64_t v) {
    char d[24], *p = d + sizeof d;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--p = '-';
    return gd_buf_append(b, p, (size_t)(d + sizeof d - p));
}

int gd_buf_printf(gd_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof small) return gd_buf_append(b, small, (size_t)n);
    if (gd_buf_reserve(b, (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
