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

/* data is malloc'd and owned by the buffer; it is always NUL-terminated past
 * len (handy for text, harmless for binary). After an allocation failure
 * `failed` is set and further appends do nothing. With `charge` set (see
 * gd_buf_charge_to), the buffer's capacity counts against that arena's limit
 * and growing past the limit fails too, with `over_limit` set. */
typedef struct gd_buf {
    char *data;
    size_t len, cap;
    int failed;
    int over_limit;
    struct gd_arena *charge;
} gd_buf;

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

#endif
