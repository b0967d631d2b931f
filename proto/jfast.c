/* jfast.c - a quick parser for well-formed bodies (see jfast.h). Every
 * "give up" below is a place where jansson reports an error (or might):
 * returning NULL there is always safe, since the caller parses again. */
#include "proto/jfast.h"

#include "core/numparse.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define POLL_BYTES ((size_t)64 << 10) /* the cancel record is polled this often */

typedef struct jp {
    const unsigned char *p, *end;
    const unsigned char *next_poll;
    const gd_cancel *cancel;
    int allow_nul;
    int depth;
    int stopped;
    char *sbuf;   /* unescaped strings (malloc; grown) */
    size_t scap;
} jp;

static void skip_ws(jp *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

/* Poll the cancel record once per POLL_BYTES of text. 0 to go on. */
static int poll_cancel(jp *s) {
    if (s->p < s->next_poll) return 0;
    s->next_poll = s->p + POLL_BYTES;
    if (s->cancel && gd_cancel_check(s->cancel, NULL)) {
        s->stopped = 1;
        return -1;
    }
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int32_t read_u4(const unsigned char *p) {
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* One UTF-8 sequence starting at p (first byte >= 0x80), as jansson's
 * utf8_check_first/utf8_check_full take it: its length, or 0 when invalid
 * (bad lead or continuation byte, overlong, a surrogate, past U+10FFFF). */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    int n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) n = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, v = c & 0x07;
    else return 0;
    if (end - p < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return n;
}

static char *put_utf8(char *t, uint32_t v) {
    if (v < 0x80) *t++ = (char)v;
    else if (v < 0x800) *t++ = (char)(0xC0 | v >> 6), *t++ = (char)(0x80 | (v & 0x3F));
    else if (v < 0x10000)
        *t++ = (char)(0xE0 | v >> 12), *t++ = (char)(0x80 | (v >> 6 & 0x3F)), *t++ = (char)(0x80 | (v & 0x3F));
    else
        *t++ = (char)(0xF0 | v >> 18), *t++ = (char)(0x80 | (v >> 12 & 0x3F)), *t++ = (char)(0x80 | (v >> 6 & 0x3F)),
        *t++ = (char)(0x80 | (v & 0x3F));
    return t;
}

/* A string at s->p (its opening quote): *out and *n are its bytes, either
 * in the text itself (no escapes) or in s->sbuf. 0, or -1: give up. */
static int read_string(jp *s, const char **out, size_t *n) {
    const unsigned char *p = ++s->p, *start = p;
    int escaped = 0;
    for (;;) {
        if (p >= s->end) return -1;
        unsigned c = *p;
        if (c == '"') break;
        if (c < 0x20) return -1;
        if (c == '\\') {
            escaped = 1;
            if (p + 1 >= s->end) return -1;
            unsigned e = p[1];
            if (e == 'u') {
                if (s->end - p < 6 || read_u4(p + 2) < 0) return -1;
                p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p += 2;
            } else {
                return -1;
            }
        } else if (c < 0x80) {
            p++;
        } else {
            int k = utf8_len(p, s->end);
            if (!k) return -1;
            p += k;
        }
    }
    s->p = p + 1;
    size_t raw = (size_t)(p - start);
    if (!escaped) {
        *out = (const char *)start, *n = raw;
        return 0;
    }
    if (raw + 1 > s->scap) { /* the unescaped text is never longer than the escaped */
        char *b = realloc(s->sbuf, raw + 1);
        if (!b) return -1;
        s->sbuf = b, s->scap = raw + 1;
    }
    char *t = s->sbuf;
    for (const unsigned char *q = start; q < p;) {
        if (*q != '\\') {
            *t++ = (char)*q++;
            continue;
        }
        unsigned e = q[1];
        if (e != 'u') {
            *t++ = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : (char)e;
            q += 2;
            continue;
        }
        int32_t v = read_u4(q + 2);
        q += 6;
        if (v >= 0xDC00 && v <= 0xDFFF) return -1; /* a lone low surrogate */
        if (v >= 0xD800 && v <= 0xDBFF) {          /* must be followed by a low one */
            if (p - q < 6 || q[0] != '\\' || q[1] != 'u') return -1;
            int32_t w = read_u4(q + 2);
            if (w < 0xDC00 || w > 0xDFFF) return -1;
            q += 6;
            v = ((v - 0xD800) << 10) + (w - 0xDC00) + 0x10000;
        }
        t = put_utf8(t, (uint32_t)v);
    }
    *out = s->sbuf, *n = (size_t)(t - s->sbuf);
    return 0;
}

/* A number at s->p, lexed as jansson does: an integer (no fraction, no
 * exponent) with strtoll's value and range, a real rounded as strtod rounds
 * (core/numparse.h). NULL: give up. */
static json_t *read_number(jp *s) {
    const unsigned char *p = s->p, *start = p;
    int is_real = 0;
    if (p < s->end && *p == '-') p++;
    if (p >= s->end) return NULL;
    if (*p == '0') {
        p++;
        if (p < s->end && *p >= '0' && *p <= '9') return NULL; /* a leading zero */
    } else if (*p >= '1' && *p <= '9') {
        while (p < s->end && *p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (p < s->end && *p == '.') {
        is_real = 1, p++;
        if (p >= s->end || *p < '0' || *p > '9') return NULL;
        while (p < s->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        is_real = 1, p++;
        if (p < s->end && (*p == '+' || *p == '-')) p++;
        if (p >= s->end || *p < '0' || *p > '9') return NULL;
        while (p < s->end && *p >= '0' && *p <= '9') p++;
    }
    s->p = p;
    if (!is_real) { /* strtoll's value and range, without a copy */
        const unsigned char *q = start + (*start == '-');
        uint64_t u = 0, lim = *start == '-' ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (; q < p; q++) {
            unsigned d = (unsigned)(*q - '0');
            if (u > (lim - d) / 10) return NULL; /* jansson: numeric overflow (the caller's retry reads it as a real) */
            u = u * 10 + d;
        }
        return json_integer(*start == '-' ? (json_int_t)(0 - u) : (json_int_t)u);
    }
    double d;
    unsigned flags;
    if (gd_parse_double((const char *)start, (const char *)p, &d, &flags) != (const char *)p || isinf(d))
        return NULL; /* jansson: real number overflow */
    return json_real(d);
}

static int word(jp *s, const char *w, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n)) return 0;
    /* jansson reads the whole run of letters: "truex" is no "true" */
    const unsigned char *q = s->p + n;
    if (q < s->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))) return 0;
    s->p = q;
    return 1;
}

static json_t *value(jp *s);

/* After an object member or array element: past a ',' (1, another item
 * follows), past the closing bracket `close` (0), or -1 (give up). */
static int after_item(jp *s, char close) {
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        skip_ws(s);
        return 1;
    }
    if (s->p < s->end && *s->p == (unsigned char)close) {
        s->p++;
        return 0;
    }
    return -1;
}

static json_t *object(jp *s) {
    json_t *o = json_object();
    if (!o) return NULL;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return o;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"') goto fail;
        const char *k;
        size_t kn;
        if (read_string(s, &k, &kn) || memchr(k, '\0', kn) || json_object_getn(o, k, kn)) goto fail;
        /* an unescaped key lives in sbuf, which the value's strings reuse: copy it */
        char small[128], *key = (char *)k;
        if (k == s->sbuf) {
            if (!(key = kn < sizeof small ? small : malloc(kn + 1))) goto fail;
            memcpy(key, k, kn);
        }
        skip_ws(s);
        json_t *v = NULL;
        if (s->p < s->end && *s->p == ':') {
            s->p++;
            skip_ws(s);
            v = value(s);
        }
        int bad = !v || json_object_setn_new_nocheck(o, key, kn, v);
        if (key != k && key != small) free(key);
        if (bad) goto fail;
        int more = after_item(s, '}');
        if (more > 0) continue;
        if (more == 0) return o;
        goto fail;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *array(jp *s) {
    json_t *a = json_array();
    if (!a) return NULL;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(s);
        if (!v || json_array_append_new(a, v)) break;
        int more = after_item(s, ']');
        if (more > 0) continue;
        if (more == 0) return a;
        break;
    }
    json_decref(a);
    return NULL;
}

static json_t *value(jp *s) {
    if (s->p >= s->end || poll_cancel(s)) return NULL;
    if (++s->depth > JSON_PARSER_MAX_DEPTH) return NULL;
    json_t *v = NULL;
    switch (*s->p) {
    case '{': v = object(s); break;
    case '[': v = array(s); break;
    case '"': {
        const char *str;
        size_t n;
        if (!read_string(s, &str, &n) && (s->allow_nul || !memchr(str, '\0', n))) v = json_stringn_nocheck(str, n);
        break;
    }
    case 't': v = word(s, "true", 4) ? json_true() : NULL; break;
    case 'f': v = word(s, "false", 5) ? json_false() : NULL; break;
    case 'n': v = word(s, "null", 4) ? json_null() : NULL; break;
    default: v = read_number(s); break;
    }
    s->depth--;
    return v;
}

json_t *gd_json_fast(const char *text, size_t len, int allow_nul, const gd_cancel *cancel, int *stopped) {
    jp s = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len, .cancel = cancel,
            .allow_nul = allow_nul};
    s.next_poll = s.p + POLL_BYTES;
    if (stopped) *stopped = 0;
    skip_ws(&s);
    json_t *root = NULL;
    if (s.p < s.end && (*s.p == '{' || *s.p == '[')) root = value(&s);
    skip_ws(&s);
    if (root && s.p != s.end) { /* jansson: end of file expected */
        json_decref(root);
        root = NULL;
    }
    free(s.sbuf);
    if (stopped) *stopped = s.stopped;
    return root;
}
