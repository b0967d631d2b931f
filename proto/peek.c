/* peek.c - a top-level member of a body, by one scan (see peek.h). */
#include "proto/peek.h"

#include <string.h>

#include "core/cancel.h"

typedef struct scan {
    const char *p, *end;
} scan;

static void skip_ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Past a string whose opening quote is at s->p; 0, or -1 when unterminated.
 * *escaped is set when it holds a backslash. */
static int skip_string(scan *s, int *escaped) {
    const char *p = s->p + 1;
    *escaped = 0;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(s->end - p));
        if (!q) return -1;
        /* the quote ends the string unless an odd run of backslashes precedes it */
        const char *b = q;
        while (b > p && b[-1] == '\\') b--;
        if ((q - b) % 2 == 0) {
            if (!*escaped) *escaped = memchr(s->p + 1, '\\', (size_t)(q - s->p - 1)) != NULL;
            s->p = q + 1;
            return 0;
        }
        *escaped = 1;
        p = q + 1;
    }
}

/* Past one value of any kind: a string, an object or array (nesting
 * counted, strings skipped whole), or a scalar up to its delimiter. */
static int skip_value(scan *s) {
    int esc;
    if (s->p >= s->end) return -1;
    if (*s->p == '"') return skip_string(s, &esc);
    if (*s->p == '{' || *s->p == '[') {
        /* Only these bytes matter inside a nested value: the rest (numbers,
         * commas, colons, spaces: most of a large body) are passed over by
         * one table lookup each. */
        static const unsigned char structural[256] = {['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1};
        int depth = 0;
        while (s->p < s->end) {
            while (s->p < s->end && !structural[(unsigned char)*s->p]) s->p++;
            if (s->p >= s->end) break;
            char ch = *s->p;
            if (ch == '"') {
                if (skip_string(s, &esc)) return -1;
                continue;
            }
            s->p++;
            if (ch == '{' || ch == '[') depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0) return 0;
        }
        return -1;
    }
    const char *start = s->p;
    while (s->p < s->end && !strchr(",}] \t\n\r", *s->p)) s->p++;
    return s->p > start ? 0 : -1;
}

/* A plain integer literal in [1, GD_DEADLINE_MS_MAX] followed by a delimiter. */
static int read_ms(scan *s, int64_t *ms) {
    int64_t v = 0;
    const char *p = s->p;
    while (p < s->end && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > GD_DEADLINE_MS_MAX) return 0;
        p++;
    }
    if (p == s->p || *s->p == '0') return 0;
    while (p < s->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (p >= s->end || (*p != ',' && *p != '}')) return 0;
    *ms = v;
    return 1;
}

/* Position s just past the ':' of the top-level key `key` (klen bytes) of
 * the object in s: 1, or 0 when absent or not a well-formed object up to it
 * (the first such key counts; a key spelt with escapes never matches). */
static int find_member(scan *s, const char *key, size_t klen) {
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{') return 0;
    s->p++;
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"') return 0;
        const char *k = s->p + 1;
        int esc;
        if (skip_string(s, &esc)) return 0;
        int match = !esc && (size_t)(s->p - 1 - k) == klen && memcmp(k, key, klen) == 0;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') return 0;
        s->p++;
        skip_ws(s);
        if (match) return 1;
        if (skip_value(s)) return 0;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ',') return 0;
        s->p++;
    }
}

int gd_peek_deadline_ms(const char *body, size_t len, int64_t *ms) {
    static const char key[] = "deadline_ms";
    /* Most bodies have none: a vectorised search for the quoted key settles
     * that without walking a large graph's text byte by byte. */
    if (!memmem(body, len, "\"deadline_ms\"", sizeof key + 1)) return 0;
    scan s = {body, body + len};
    return find_member(&s, key, sizeof key - 1) && read_ms(&s, ms);
}

int gd_peek_member(const char *body, size_t len, const char *key, size_t *start, size_t *end) {
    scan s = {body, body + len};
    if (!find_member(&s, key, strlen(key))) return 0;
    const char *v = s.p;
    if (skip_value(&s)) return 0;
    *start = (size_t)(v - body), *end = (size_t)(s.p - body);
    return 1;
}
