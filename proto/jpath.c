/* jpath.c - JSON paths built in place (see jpath.h). */
#include "proto/jpath.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gd_jp_set(gd_jpath *p, const char *s) {
    snprintf(p->s, sizeof p->s, "%s", s);
    p->n = strlen(p->s);
}

void gd_jp_addf(gd_jpath *p, const char *fmt, ...) {
    if (p->n >= sizeof p->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->s + p->n, sizeof p->s - p->n, fmt, ap);
    va_end(ap);
    p->n = strlen(p->s);
}

void gd_jp_index(gd_jpath *p, size_t i) { gd_jp_addf(p, "[%zu]", i); }

void gd_jp_key(gd_jpath *p, const char *key) {
    int plain = key[0] != '\0';
    for (const char *k = key; *k && plain; k++)
        if (strchr(".[]\"'\\", *k) || (unsigned char)*k <= 0x20 || (unsigned char)*k == 0x7f) plain = 0;
    if (plain) {
        gd_jp_addf(p, ".%s", key);
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
