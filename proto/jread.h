/* jread.h - small readers shared by the request decoder and the tensor
 * wire forms: exact integers from JSON numbers, the kind of a JSON value
 * for messages, and the two errors every reader can raise (wrong type,
 * out of the request's memory).
 *
 * Knows jansson values and gd_error; knows nothing of requests, graphs or
 * tensors, and allocates nothing. */
#ifndef GD_JREAD_H
#define GD_JREAD_H

#include <jansson.h>
#include <stdint.h>

#include "core/error.h"
#include "proto/jpath.h"

/* An exact integer with |v| <= 2^53, read from a JSON number. The body is
 * parsed with integers kept as integers (see gd_decode_request), so a JSON
 * integer is exact and is compared as one; a number written with a fraction
 * or an exponent ("3.0", "1e3") arrives as a double and is accepted when it is
 * integral with |v| < 2^53, since a double at 2^53 may be a rounded 2^53 + 1.
 * (A body holding an integer beyond json_int_t is read with every integer as
 * a double; there the same strict bound applies to all of them.)
 * Returns 1 with *out set, or 0. */
int gd_json_exact_int(const json_t *j, int64_t *out);

/* Any int64, exactly, as integer attributes take it (A8). A JSON integer is
 * exact whatever its size (jansson's json_int_t is 64-bit; an integer beyond
 * it is read as a real, see gd_decode_request). A
 * number with a fraction or an exponent is a double: integral with |v| < 2^53
 * it is exact; beyond 2^53 it may have been rounded, so it is refused rather
 * than taken as a nearby integer. Returns GD_JINT_OK with *out set, or why not. */
enum {
    GD_JINT_OK = 1,
    GD_JINT_NOT_INT = 0,  /* not a number, or not integral */
    GD_JINT_RANGE = -1,   /* integral but outside [-2^63, 2^63 - 1] */
    GD_JINT_ROUNDED = -2, /* an integral double beyond 2^53: maybe not the integer written */
};
int gd_json_int64(const json_t *j, int64_t *out);

/* "a number", "a string", ... for messages about wrong types. */
const char *gd_json_kind(const json_t *j);

/* invalid_request at p: "<p> must be <what>, not <kind of j>." Returns the code. */
int gd_json_wrong_type(gd_error *err, const gd_jpath *p, const char *what, const json_t *j);

#endif
