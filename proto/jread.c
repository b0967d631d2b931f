/* jread.c - exact integers, value kinds and the common decode errors (see
 * jread.h). */
#include "proto/jread.h"

#include <math.h>

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: integers a double holds exactly */

const char *gd_json_kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

int gd_json_wrong_type(gd_error *err, const gd_jpath *p, const char *what, const json_t *j) {
    return gd_errorf(err, GD_E_INVALID_REQUEST, p->s, "%s must be %s, not %s.", p->s, what, gd_json_kind(j));
}

int gd_json_exact_int(const json_t *j, int64_t *out) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v > (json_int_t)MAX_SAFE_INT || v < -(json_int_t)MAX_SAFE_INT) return 0;
        *out = (int64_t)v;
        return 1;
    }
    if (!json_is_real(j)) return 0;
    double v = json_real_value(j);
    if (v != floor(v) || !(fabs(v) < MAX_SAFE_INT)) return 0;
    *out = (int64_t)v;
    return 1;
}

_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "jansson must hold integers as 64-bit (json_int_t)");

int gd_json_int64(const json_t *j, int64_t *out) {
    if (json_is_integer(j)) {
        *out = (int64_t)json_integer_value(j);
        return GD_JINT_OK;
    }
    if (!json_is_real(j)) return GD_JINT_NOT_INT;
    double v = json_real_value(j);
    if (v != floor(v)) return GD_JINT_NOT_INT;
    /* 2^63 is the first double past INT64_MAX; -2^63 is INT64_MIN itself. */
    if (!(v < 9223372036854775808.0 && v >= -9223372036854775808.0)) return GD_JINT_RANGE;
    if (!(fabs(v) < MAX_SAFE_INT)) return GD_JINT_ROUNDED;
    *out = (int64_t)v;
    return GD_JINT_OK;
}
