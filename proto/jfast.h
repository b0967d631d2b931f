/* jfast.h - a quick parser for well-formed request bodies, building the same
 * jansson tree that json_loadb would.
 *
 * jansson reads a body a byte at a time through its stream and saves every
 * token in a buffer before it converts it; on a small request that lexing
 * was most of the decode (a 300-byte body: ~5 us of ~9). This parser scans
 * the text in place and builds the tree with jansson's own constructors,
 * in jansson's order (so allocation hooks, key order, duplicate rules and
 * values are the same). It only ever accepts what jansson accepts with the
 * flags JSON_REJECT_DUPLICATES [| JSON_ALLOW_NUL]: any input it does not
 * take for certain (bad syntax, invalid UTF-8, a control character, an
 * integer out of range, a real that overflows, a duplicate key, a NUL in a
 * key, nesting past jansson's 2048, a raw NUL byte (which
 * jansson's stream skips after some tokens), a root that is neither object
 * nor array) makes it give up, and the caller parses the text with
 * jansson, whose error message and position are then the answer's.
 *
 * Knows JSON text and jansson's public constructors; nothing of requests. */
#ifndef GD_JFAST_H
#define GD_JFAST_H

#include <jansson.h>
#include <stddef.h>

#include "core/cancel.h"

/* The tree of text (len bytes, need not be NUL-terminated), or NULL: not
 * taken (see above), out of memory, or *stopped set because the cancel
 * record fired (polled every 64 KiB of text; cancel may be NULL).
 * allow_nul: strings may hold \u0000 (JSON_ALLOW_NUL). */
json_t *gd_json_fast(const char *text, size_t len, int allow_nul, const gd_cancel *cancel, int *stopped);

#endif
