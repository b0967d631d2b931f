/* canon.c - canonical JSON (see canon.h) and the registration answer. */
#include "proto/canon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numfmt.h"
#include "core/op.h"
#include "proto/jsonstr.h"

/* A string of n bytes as RFC 8785 escapes it. */
static int put_string(gd_buf *out, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (gd_buf_putc(out, '"')) return -1;
    size_t run = 0; /* bytes copied as they are, appended in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        if (gd_buf_append(out, s + run, i - run)) return -1;
        run = i + 1;
        char esc[7] = {'\\', 0};
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default: esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[ch >> 4], esc[5] = hex[ch & 15]; break;
        }
        if (gd_buf_puts(out, esc)) return -1;
    }
    if (gd_buf_append(out, s + run, n - run)) return -1;
    return gd_buf_putc(out, '"');
}

/* ECMAScript's layout (Number::toString, RFC 8785 section 3.2.2.3) of the
 * shortest digits that gd_fmt_double finds: k digits d, the value being
 * 0.d x 10^n. */
int gd_canon_number(char buf[40], double v) {
    if (v == 0) return (int)(strcpy(buf, "0"), 1); /* -0 too, as ECMAScript */
    char t[32], digits[24];
    gd_fmt_double(t, v);
    const char *p = t;
    int o = 0, k = 0, n = 0, seen_point = 0, lead = 1;
    if (*p == '-') buf[o++] = '-', p++;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.') { seen_point = 1; continue; }
        if (lead && *p == '0') { /* leading zeros: 0.001 */
            if (seen_point) n--;
            continue;
        }
        lead = 0;
        if (k < 23) digits[k++] = *p;
        if (!seen_point) n++;
    }
    if (*p == 'e') n += atoi(p + 1);
    while (k > 1 && digits[k - 1] == '0') k--; /* "2.0" -> "2" */
    digits[k] = '\0';
    if (k <= n && n <= 21) {
        memcpy(buf + o, digits, (size_t)k), o += k;
        for (int i = k; i < n; i++) buf[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, digits, (size_t)n), o += n;
        buf[o++] = '.';
        memcpy(buf + o, digits + n, (size_t)(k - n)), o += k - n;
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0', buf[o++] = '.';
        for (int i = 0; i < -n; i++) buf[o++] = '0';
        memcpy(buf + o, digits, (size_t)k), o += k;
    } else {
        buf[o++] = digits[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, (size_t)(k - 1)), o += k - 1;
        }
        o += snprintf(buf + o, 40 - (size_t)o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    buf[o] = '\0';
    return o;
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b); /* unsigned bytes: UTF-8 order */
}

static int put_object(gd_buf *out, const json_t *v) {
    size_t n = json_object_size(v);
    const char *stack[16], **keys = n <= 16 ? stack : malloc(sizeof *keys * n);
    if (!keys) return -1;
    size_t k = 0;
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)v, key, e) keys[k++] = key;
    qsort(keys, n, sizeof *keys, cmp_keys);
    int rc = gd_buf_putc(out, '{');
    for (size_t i = 0; i < n && !rc; i++) {
        rc = (i && gd_buf_putc(out, ',')) || put_string(out, keys[i], strlen(keys[i])) || gd_buf_putc(out, ':') ||
             gd_canon_json(out, json_object_get(v, keys[i]));
    }
    if (keys != stack) free(keys);
    return rc || gd_buf_putc(out, '}') ? -1 : 0;
}

int gd_canon_json(gd_buf *out, const json_t *v) {
    char num[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: return put_object(out, v);
    case JSON_ARRAY: {
        if (gd_buf_putc(out, '[')) return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && gd_buf_putc(out, ',')) || gd_canon_json(out, json_array_get(v, i))) return -1;
        return gd_buf_putc(out, ']');
    }
    case JSON_STRING: return put_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return gd_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0 ? -1 : 0;
    case JSON_REAL: return gd_canon_number(num, json_real_value(v)), gd_buf_puts(out, num);
    case JSON_TRUE: return gd_buf_puts(out, "true");
    case JSON_FALSE: return gd_buf_puts(out, "false");
    case JSON_NULL: return gd_buf_puts(out, "null");
    }
    return -1;
}

/* The names of the nodes whose op has flag `flag`, as a JSON list. */
static void put_names(gd_buf *out, const gd_graph *g, unsigned flag) {
    gd_buf_putc(out, '[');
    int first = 1;
    for (int i = 0; i < g->n; i++) {
        if (!(g->nodes[i].op->flags & flag)) continue;
        if (!first) gd_buf_putc(out, ',');
        gd_buf_json_string(out, g->nodes[i].name);
        first = 0;
    }
    gd_buf_putc(out, ']');
}

int gd_encode_registered(gd_buf *out, const char *id, const gd_graph *g) {
    gd_buf_puts(out, "{\"graph_id\":");
    gd_buf_json_string(out, id);
    gd_buf_printf(out, ",\"nodes\":%d,\"variables\":", g->n);
    put_names(out, g, GD_OPF_VARIABLE);
    gd_buf_puts(out, ",\"inputs\":");
    put_names(out, g, GD_OPF_DATA);
    gd_buf_putc(out, '}');
    return out->failed ? -1 : 0;
}
