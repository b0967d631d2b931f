/* jpath.c - JSON paths built in place (see jpath.h). Decoders build them
 * for every node and key of a request, error or not, so the common appends
 * copy bytes instead of going through printf (7-10 % of a 100k-node
 * request's decode was vfprintf). */
#include "proto/jpath.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Append len bytes of s, truncated to what fits, as snprintf would. */
static void append(gd_jpath *p, const char *s, size_t len) {
    if (p->n >= sizeof p->s - 1) return;
    size_t room = sizeof p->s - 1 - p->n;
    if (len > room) len = room;
    memcpy(p->s + p->n, s, len);
    p->n += len;
    p->s[p->n] = '\0';
}

void gd_jp_set(gd_jpath *p, const char *s) {
    p->n = 0;
    p->s[0] = '\0';
    append(p, s, strlen(s));
}

void gd_jp_addf(gd_jpath *p, const char *fmt, ...) {
    if (p->n >= sizeof p->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->s + p->n, sizeof p->s - p->n, fmt, ap);
    va_end(ap);
    p->n = strlen(p->s);
}

void gd_jp_index(gd_jpath *p, size_t i) {
    char b[24];
    int k = (int)sizeof b;
    b[--k] = ']';
    do b[--k] = (char)('0' + i % 10); while ((i /= 10) > 0);
    b[--k] = '[';
    append(p, b + k, sizeof b - (size_t)k);
}

void gd_jp_key(gd_jpath *p, const char *key) {
    int plain = key[0] != '\0';
    for (const char *k = key; *k && plain; k++)
        if (strchr(".[]\"'\\", *k) || (unsigned char)*k <= 0x20 || (unsigned char)*k == 0x7f) plain = 0;
    if (plain) {
        append(p, ".", 1);
        append(p, key, strlen(key));
        return;
    }
    gd_jp_addf(p, "[\"");
    for (const char *k = key; *k && p->n < sizeof p->s - 1; k++) {
        if (*k == '"' || *k == '\\') gd_jp_addf(p, "\\%c", *k);
        else if ((unsigned char)*k < 0x20) gd_jp_addf(p, "\\u%04x", (unsigned)(unsigned char)*k);
        else gd_jp_addf(p, "%c", *k);
    }
    gd_jp_addf(p, "\"]");
}

void gd_jp_pop(gd_jpath *p, size_t n) {
    p->n = n;
    p->s[n] = '\0';
}
