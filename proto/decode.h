/* decode.h - turns a /v1/grad or /v1/eval request body (JSON, plus the binary
 * section of a binary-framed request) into a checked core graph and a
 * gd_run_spec ready for gd_run.
 *
 * Numbers: 1 and 1.0 are the same number; an int64 element (or any integer
 * field) must be an exact integer with |v| <= 2^53, and a JSON integer is
 * read exactly, so 9007199254740993 is refused rather than rounded.
 *
 * Every error names its culprit by JSON path ("$.graph.nodes[2].inputs[0]")
 * and, for a misspelt key, op or node name, the closest valid spelling. Sizes
 * are checked before memory is spent: the node count before any node is
 * built, every tensor's element count before its buffer is allocated.
 * Everything decoded lives in the caller's arena. The request type and its
 * limits are in request.h, the tensor forms in wire.h. This module knows the
 * core and jansson; it knows nothing of HTTP (the body size limit, the
 * framing headers and the status codes are the server's). */
#ifndef GD_DECODE_H
#define GD_DECODE_H

#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"
#include "proto/request.h"

/* Decode one request.
 *   a         the request's arena; the graph, tensors and arrays go there
 *   body      the JSON text, json_len bytes (need not be NUL-terminated)
 *   bin       the binary section of a binary-framed body, bin_len bytes, or
 *             NULL for plain JSON (then tensors cannot refer to offsets); it
 *             is read during the call only (tensors are copied out of it)
 *   endpoint  GD_EP_GRAD or GD_EP_EVAL
 *   lim       node and element limits (NULL: none)
 * Returns 0 with *req filled, or an error code with err set (code, message,
 * at, suggestion). On error *req is zeroed except for what was decoded so
 * far, which the caller must not use; the arena still owns everything. */
int gd_decode_request(gd_arena *a, const char *body, size_t json_len, const unsigned char *bin, size_t bin_len,
                      int endpoint, const gd_decode_limits *lim, gd_request *req, gd_error *err);

/* Decode a POST /v1/graphs body, {"graph": {...}}, into a graph held
 * across requests (A3): nodes, attributes, constants' values, the name index
 * and the order, checked once as a request without values would be
 * (structure, ops, attributes, names, cycles, declared shapes and dtypes).
 *   a      the registering request's arena: the parse is charged to it
 *   held   the graph's own arena: *g and everything it points to go there
 *   canon  the canonical JSON of the "graph" value (proto/canon.h) is
 *          appended to it
 * Returns 0, or an error code with err set (paths as for /v1/grad). */
int gd_decode_graph(gd_arena *a, gd_arena *held, const char *body, size_t json_len, const gd_decode_limits *lim,
                    gd_graph **g, gd_buf *canon, gd_error *err);

/* Hand back the pages that decoding keeps warm between requests (the
 * parsed JSON's, see decode.c): for a server that has been idle a while.
 * Thread-safe; decoding may go on meanwhile. */
void gd_decode_trim(void);

#endif
