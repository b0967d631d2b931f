/* canon.h - the canonical JSON of a registered graph (A3), the text whose
 * SHA-256 is the graph's id, and the body of a registration's answer.
 *
 * Canonical form: no whitespace; object keys sorted by their UTF-8 bytes;
 * strings escaped as RFC 8785 does (only '"', '\' and U+0000..U+001F, as
 * \b \t \n \f \r or \u00xx lowercase; everything else as its UTF-8 bytes);
 * a number that jansson read as an integer (a JSON integer literal within
 * int64) as its exact decimal digits; every other number as RFC 8785 /
 * ECMAScript's Number.prototype.toString writes it: the shortest digits
 * that read back, "1" not "1.0", "1e+21" and "1e-7", plain digits for
 * decimal exponents from -6 to 20. Arrays keep their order (nodes in the
 * order sent). Knows jansson values and core's buffer; nothing of graphs,
 * hashing or HTTP. */
#ifndef GD_CANON_H
#define GD_CANON_H

#include <jansson.h>

#include "core/buf.h"
#include "core/graph.h"

/* Append the canonical JSON of v to out. Returns 0, -1 when out of memory. */
int gd_canon_json(gd_buf *out, const json_t *v);

/* A double as RFC 8785 writes it (finite only), into buf; returns the
 * length. For tests and gd_canon_json. */
int gd_canon_number(char buf[40], double v);

/* The answer to a registration: {"graph_id": id, "nodes": N, "variables":
 * [names], "inputs": [names]} (names in graph order). 0, or -1 out of memory. */
int gd_encode_registered(gd_buf *out, const char *id, const gd_graph *g);

#endif
