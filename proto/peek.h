/* peek.h - reading one field of a request body without parsing it: the
 * top-level "deadline_ms", which the server needs before the request is
 * queued (A7: the deadline covers the wait in the queue), long before a
 * worker decodes the body; and where the "graph" member's text lies, which
 * the server's cache of recently sent graphs is keyed by.
 *
 * A single pass over the bytes with no allocation, a fraction of the cost of
 * parsing. It validates nothing: a body that is no JSON object, or whose
 * field is anything but a plain integer literal in range, peeks as "absent"
 * and the decoder (decode.h) gives the real answer. Knows no jansson, no
 * core beyond the deadline range, no HTTP. */
#ifndef GD_PEEK_H
#define GD_PEEK_H

#include <stddef.h>
#include <stdint.h>

/* The top-level "deadline_ms" of the JSON object in body[0..len) into *ms
 * when it is an integer literal from 1 to GD_DEADLINE_MS_MAX (core/cancel.h):
 * returns 1; else 0 (absent, another form, or not a well-formed object up
 * to that field). A key spelt with escapes peeks as absent. */
int gd_peek_deadline_ms(const char *body, size_t len, int64_t *ms);

/* The bytes of the value of the top-level member `key` of the JSON object in
 * body[0..len): body[*start..*end). Returns 1, or 0 when absent or not a
 * well-formed object up to the end of that value (checked loosely: strings
 * and brackets balance; the decoder validates). */
int gd_peek_member(const char *body, size_t len, const char *key, size_t *start, size_t *end);

#endif
