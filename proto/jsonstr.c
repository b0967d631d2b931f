/* jsonstr.c - JSON string literals that are always valid UTF-8 (see
 * jsonstr.h): plain ASCII runs are copied at once, everything else is
 * escaped or checked character by character. */
#include "proto/jsonstr.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

int gd_buf_json_string(gd_buf *b, const char *str) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    gd_buf_putc(b, '"');
    while (*s) {
        const unsigned char *run = s;
        while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') s++;
        if (s > run) gd_buf_append(b, run, (size_t)(s - run));
        if (!*s) break;
        unsigned char ch = *s;
        if (ch == '"') gd_buf_puts(b, "\\\""), s++;
        else if (ch == '\\') gd_buf_puts(b, "\\\\"), s++;
        else if (ch == '\n') gd_buf_puts(b, "\\n"), s++;
        else if (ch == '\r') gd_buf_puts(b, "\\r"), s++;
        else if (ch == '\t') gd_buf_puts(b, "\\t"), s++;
        else if (ch < 0x20) gd_buf_printf(b, "\\u%04x", ch), s++;
        else {
            int n = utf8_len(s);
            if (n) gd_buf_append(b, s, (size_t)n), s += n;
            else gd_buf_puts(b, "\\ufffd"), s++;
        }
    }
    return gd_buf_putc(b, '"');
}
