/* wire.h - tensors on the wire, both directions: every tensor form of the
 * contract read from a request (a number, nested lists, {"shape", "data"},
 * {"shape", "dtype", "b64"}, a binary reference {"shape", "dtype", "offset",
 * "nbytes"}) and written into a response in the form the request asked for.
 *
 * float32 is a transport encoding: read, it is widened to float64 (after
 * rounding to float32); written, a transport node's float64 is narrowed.
 * Element counts are checked against the limit before a buffer is
 * allocated. This module knows tensors, jansson values and the byte buffer;
 * it knows nothing of graphs, requests' other fields, or HTTP. */
#ifndef GD_WIRE_H
#define GD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"
#include "proto/jpath.h"
#include "proto/request.h"
#include "core/tensor.h"

struct json_t; /* jansson's value; only the decoder's callers hold one */

/* double -> float32 as IEEE round-to-nearest, with values beyond float's range
 * going to +-Infinity (as NumPy does) rather than into undefined behaviour. */
float gd_to_f32(double v);

/* ---- reading ---------------------------------------------------------------- */

typedef struct gd_wire_ref gd_wire_ref;
struct gd_numtab;

/* What the tensor reader of one request needs and keeps. The caller fills
 * a, bin, bin_len, max_elements and err, and zeroes the rest. */
typedef struct gd_wire_in {
    gd_arena *a;              /* tensors and the reference list go here */
    const unsigned char *bin; /* the binary section; NULL: plain JSON */
    size_t bin_len;
    int64_t max_elements;     /* of any one tensor; 0: no limit */
    gd_error *err;
    gd_wire_ref *refs;        /* binary references read so far (arena) */
    int n_refs, cap_refs;
    const struct gd_numtab *fast; /* lists read ahead (proto/numscan.h), whose
                                     placeholders stand in the tree; NULL: none */
} gd_wire_in;

/* How a value is to be read: the dtype it takes when untyped (-1: none
 * declared, so float64) and whether its leaf declared float32. */
typedef struct gd_wire_want {
    int dtype;
    int decl_f32;
} gd_wire_want;

/* Any tensor form of the contract at path p (p names j; on success it is
 * left as it was, on error it names the culprit). *f32_out: the value came
 * as float32 (declared or explicit). The tensor is allocated in c->a; a
 * binary reference is remembered for gd_wire_check_overlaps, and its
 * tensor borrows c->bin's bytes (float64 or int64 at an 8-aligned address,
 * little-endian host: t->borrowed) or is copied out of them (float32, a
 * misaligned range). c->bin must therefore stay valid and unchanged while
 * the tensor is used: until the response is encoded. Returns 0, or an error
 * code with c->err set. */
int gd_wire_decode(gd_wire_in *c, struct json_t *j, gd_jpath *p, gd_wire_want w, gd_tensor **out, int *f32_out);

/* No two binary references read so far may share a byte; the error names
 * the later of two overlapping ones in request order. Call once, after all
 * tensors are read. Returns 0 or invalid_value. */
int gd_wire_check_overlaps(gd_wire_in *c);

/* ---- writing ---------------------------------------------------------------- */

/* The writers' cancellation poll (A7: the deadline covers encoding): they
 * count the elements they write and poll `cancel` (may be NULL) every
 * GD_POLL_ELEMS of them; once it fires, `stopped` is set (err filled) and
 * every writer stops where it is, leaving its output incomplete. The caller
 * sets cancel and err and zeroes the rest; one per response. */
typedef struct gd_wire_poll {
    const gd_cancel *cancel;
    gd_error *err;
    int64_t since; /* elements written since the last poll */
    int stopped;
} gd_wire_poll;

/* A response's binary section: the bytes written (padding, float32,
 * tensors too small to be worth a piece of their own) and, inserted among
 * them, pieces that are the tensors' own buffers (a float64 or int64 tensor
 * of at least borrow_min bytes on a little-endian host), so that a big
 * gradient goes out without a copy. Piece k comes right after the first
 * seg[k].at bytes of `bytes` (and the pieces before it). The pieces only
 * point: their memory must outlive the section's use (the server detaches
 * the buffers from the request's arena, server/compute.c). */
typedef struct gd_binseg {
    size_t at;          /* bytes.len when the piece was added */
    const void *p;
    size_t len;
} gd_binseg;

typedef struct gd_binsec {
    gd_buf bytes;
    gd_binseg *seg;     /* malloc'd */
    int n_seg, cap_seg;
    size_t ext;         /* the pieces' bytes */
    size_t borrow_min;  /* 0: every tensor is copied into bytes */
} gd_binsec;

void gd_binsec_init(gd_binsec *s);            /* empty, copying everything; allocates nothing */
void gd_binsec_free(gd_binsec *s);            /* the bytes and the piece list, not the pieces' memory */
size_t gd_binsec_len(const gd_binsec *s);     /* the section's length */
/* The whole section as one byte string appended to out: 0, or -1 when out
 * of memory. */
int gd_binsec_flatten(const gd_binsec *s, gd_buf *out);

/* t (or null when t is NULL) appended to out in form fmt; with transport_f32
 * a float64 tensor is written as float32. GD_TF_BINARY puts the raw bytes
 * into bin at the next 64-byte boundary from the section's start, copied or
 * as a piece (gd_binsec), and writes their offset into out. Failure shows
 * as out->failed or bin->bytes.failed, a stop at the deadline as
 * poll->stopped (poll may be NULL: never stopped). */
void gd_wire_put(gd_buf *out, gd_binsec *bin, gd_tensor_format fmt, const gd_tensor *t, int transport_f32,
                 gd_wire_poll *poll);
/* An upper bound of the bytes gd_wire_put writes into out for t (NULL:
 * "null"), without writing: for reserving a large answer's room at once. */
size_t gd_wire_put_bound(gd_tensor_format fmt, const gd_tensor *t, int transport_f32);

#endif
