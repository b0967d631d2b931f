/* openapi.h - the API description (docs/openapi.json, OpenAPI 3.1) as
 * GET /v1/openapi.json serves it, and the contract version every response
 * names in its Gradd-Api-Version header. The bytes are docs/openapi.json's,
 * copied into gd_openapi.c (build directory) by make at build time; nothing
 * here parses or checks them (tests/openapi_check.py does). */
#ifndef GD_SERVER_OPENAPI_H
#define GD_SERVER_OPENAPI_H

#include <stddef.h>

/* The wire contract's version (shared/api-v1.md, amendment A5); the
 * document's info.version says the same (tests/openapi_check.py). */
#define GD_API_VERSION "1.1"

extern const unsigned char gd_openapi_json[]; /* docs/openapi.json, not NUL-terminated */
extern const size_t gd_openapi_json_len;

#endif
