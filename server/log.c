/* log.c - request and event lines on stderr (see log.h). Each line is
 * formatted into a gd_buf (JSON strings escaped by proto's escaper) and
 * written with one write(2). */
#include "server/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "proto/jsonstr.h"

static gd_log_format log_format = GD_LOG_TEXT;

void gd_log_init(gd_log_format f) { log_format = f; }

/* UTC wall-clock time with milliseconds, RFC 3339: 2024-05-01T12:00:00.123Z */
static void timestamp(char *buf, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Write the whole buffer (retrying short writes); log lines are best effort. */
static void emit(gd_buf *b) {
    if (b->failed || !b->data) return;
    gd_buf_append(b, "\n", 1);
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(STDERR_FILENO, b->data + off, b->len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

/* A text-format value: printable ASCII passes, anything else becomes '?',
 * so a line can never be split or forged by request data. */
static void put_text(gd_buf *b, const char *s) {
    if (!s || !*s) {
        gd_buf_puts(b, "-");
        return;
    }
    for (; *s; s++) {
        char ch = (*s > 0x20 && *s < 0x7f) ? *s : '?';
        gd_buf_append(b, &ch, 1);
    }
}

static void put_json_field(gd_buf *b, const char *key, const char *val) {
    gd_buf_printf(b, ",\"%s\":", key);
    gd_buf_json_string(b, val ? val : "");
}

/* "a,b" as the JSON strings "a","b". */
static void put_json_list(gd_buf *b, const char *csv) {
    for (const char *p = csv; *p;) {
        size_t k = strcspn(p, ",");
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(k < sizeof item ? k : sizeof item - 1), p);
        if (p != csv) gd_buf_putc(b, ',');
        gd_buf_json_string(b, item);
        p += k + (p[k] == ',');
    }
}

void gd_log_request(const gd_log_req *r) {
    int is_5xx = r->status >= 500;
    char ts[40];
    gd_buf b;
    gd_buf_init(&b);
    timestamp(ts, sizeof ts);
    if (log_format == GD_LOG_JSON) {
        gd_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"request\"", ts, is_5xx ? "error" : "info");
        put_json_field(&b, "id", r->id);
        put_json_field(&b, "method", r->method);
        put_json_field(&b, "route", r->path);
        gd_buf_printf(&b,
                      ",\"status\":%d,\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"queue_us\":%" PRId64
                      ",\"compute_us\":%" PRId64 ",\"total_us\":%" PRId64,
                      r->status, r->bytes_in, r->bytes_out, r->queue_us, r->compute_us, r->total_us);
        if (r->code) put_json_field(&b, "code", r->code);
        if (r->diags) {
            gd_buf_puts(&b, ",\"diagnostics\":[");
            put_json_list(&b, r->diags);
            gd_buf_putc(&b, ']');
        }
        gd_buf_putc(&b, '}');
    } else {
        gd_buf_printf(&b, "%s %s request id=", ts, is_5xx ? "ERROR" : "INFO");
        put_text(&b, r->id);
        gd_buf_puts(&b, " method=");
        put_text(&b, r->method);
        gd_buf_puts(&b, " route=");
        put_text(&b, r->path);
        gd_buf_printf(&b,
                      " status=%d bytes_in=%" PRIu64 " bytes_out=%" PRIu64 " queue_us=%" PRId64 " compute_us=%" PRId64
                      " total_us=%" PRId64,
                      r->status, r->bytes_in, r->bytes_out, r->queue_us, r->compute_us, r->total_us);
        if (r->code) gd_buf_puts(&b, " code="), put_text(&b, r->code);
        if (r->diags) gd_buf_puts(&b, " diagnostics="), put_text(&b, r->diags);
    }
    emit(&b);
    gd_buf_free(&b);
}

void gd_log_event(const char *level, const char *fmt, ...) {
    char ts[40], text[1024], up[8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    text[strcspn(text, "\r\n")] = '\0';
    timestamp(ts, sizeof ts);
    gd_buf b;
    gd_buf_init(&b);
    if (log_format == GD_LOG_JSON) {
        gd_buf_printf(&b, "{\"ts\":\"%s\"", ts);
        put_json_field(&b, "level", level);
        put_json_field(&b, "msg", text);
        gd_buf_puts(&b, "}");
    } else {
        size_t i = 0;
        for (; level[i] && i < sizeof up - 1; i++) up[i] = (char)(level[i] >= 'a' && level[i] <= 'z' ? level[i] - 32 : level[i]);
        up[i] = '\0';
        gd_buf_printf(&b, "%s %s %s", ts, up, text);
    }
    emit(&b);
    gd_buf_free(&b);
}
