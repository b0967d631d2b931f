/* buf.h - a growable byte buffer.
 *
 * For building text or bytes whose size is not known in advance: response
 * bodies, binary sections, log lines, metrics text. It appends, formats with
 * printf and reserves room; that is all. It does no I/O and knows no format
 * (JSON escaping is proto's, see proto/jsonstr.h). A buffer is used by one
 * thread at a time. */
#ifndef GD_BUF_H
#define GD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct gd_arena;

/* data is malloc'd (or taken from a pool, see gd_buf_use_pool) and owned by the buffer; it is always NUL-terminated past
 * len (handy for text, harmless for binary). After an allocation failure
 * `failed` is set and further appends do nothing. With `charge` set (see
 * gd_buf_charge_to), the buffer's capacity counts against that arena's limit
 * and growing past the limit fails too, with `over_limit` set. */
typedef struct gd_buf_pool gd_buf_pool;

typedef struct gd_buf {
    char *data;
    size_t len, cap;
    int failed;
    int over_limit;
    struct gd_arena *charge;
    const gd_buf_pool *pool; /* where big storage comes from (gd_buf_use_pool), or NULL */
    int pooled;              /* data came from pool->get */
} gd_buf;

/* Storage for a big buffer from somewhere warmer than a fresh malloc (a
 * server's recycled blocks): once a buffer set to use the pool needs min
 * bytes or more, its storage comes from get (n bytes at least, NULL when
 * there is no memory) and goes back through put. The pool outlives every
 * buffer that uses it; get and put may be called from any thread. */
struct gd_buf_pool {
    size_t min;
    void *(*get)(size_t n);
    void (*put)(void *p);
};

/* Draw b's storage from pool when it grows to pool->min or more (NULL:
 * malloc only). What b holds already stays where it is until it grows. */
void gd_buf_use_pool(gd_buf *b, const gd_buf_pool *pool);

/* Count b's capacity, now and as it grows, against arena a's limit (a request
 * bounding its encoded response); NULL stops counting (and takes what was
 * counted back off the previous arena). Returns 0, or -1 with over_limit set
 * when what b already holds does not fit. */
int gd_buf_charge_to(gd_buf *b, struct gd_arena *a);

void gd_buf_init(gd_buf *b);                              /* empty; allocates nothing */
void gd_buf_free(gd_buf *b);                              /* releases data; b is empty again */
void gd_buf_reset(gd_buf *b);                             /* len = 0, keeps the memory */
int gd_buf_append(gd_buf *b, const void *p, size_t n);    /* 0, or -1 out of memory */
int gd_buf_puts(gd_buf *b, const char *s);
int gd_buf_putc(gd_buf *b, char ch);
int gd_buf_put_int(gd_buf *b, int64_t v);                 /* decimal, as %lld, without printf */
int gd_buf_printf(gd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Room for n more bytes plus the terminating NUL, for a caller that writes
 * into data + len itself (then advances len and re-terminates). Returns 0,
 * or -1 (and sets `failed`) when memory runs out or the size would overflow.
 * Growth doubles, so reserving a known total first avoids repeated copies. */
int gd_buf_reserve(gd_buf *b, size_t n);
/* The same as a hint: when the room cannot be had (memory, or the charged
 * arena's limit), b is left as it was, not failed, and -1 is returned. For
 * an estimate that may exceed what is then written. */
int gd_buf_reserve_soft(gd_buf *b, size_t n);

#endif
