/* jsonstr.h - a C string as a JSON string literal, appended to a gd_buf.
 *
 * The one JSON escaper of gradd: response bodies, error bodies and the JSON
 * log lines use it. It knows JSON string syntax and UTF-8; it does not know
 * requests, tensors or HTTP, and parses nothing. */
#ifndef GD_JSONSTR_H
#define GD_JSONSTR_H

#include "core/buf.h"

/* s as a JSON string literal (quotes included); NULL prints as "". Invalid
 * UTF-8 (e.g. a message truncated inside a character) becomes U+FFFD, so the
 * output is always valid. Returns 0, or -1 when out of memory. */
int gd_buf_json_string(gd_buf *b, const char *s);

#endif
