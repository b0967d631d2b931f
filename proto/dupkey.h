/* dupkey.h - names the duplicate key that made a request body invalid JSON.
 *
 * jansson (JSON_REJECT_DUPLICATES) reports a duplicate key by byte offset,
 * just past the key's closing quote; everything before that offset is valid
 * JSON. A small scanner over that prefix tracks open containers, object keys
 * and array indices, and gives the key's JSON path. It reads raw text only:
 * no jansson, no requests; it allocates a scratch stack and frees it. */
#ifndef GD_DUPKEY_H
#define GD_DUPKEY_H

#include <stddef.h>

#include "proto/jpath.h"

/* The JSON path ("$.values.x") of the object key that ends at byte `end` of
 * the text s (which holds at least `end` bytes). Writes "" when it cannot
 * tell (out of memory). */
void gd_dupkey_path(const char *s, size_t end, gd_jpath *out);

#endif
