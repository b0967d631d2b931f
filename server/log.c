/* log.c - request and event lines on stderr (see log.h). Each line is
 * formatted into a gd_buf (JSON strings escaped by proto's escaper); an
 * event line is written with one write(2), after the request lines still
 * pending, and so is a request line unless batching is on (gd_log_batch):
 * then it is copied into the pending buffer, which gd_log_flush writes. */
#include "server/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "proto/jsonstr.h"

static gd_log_format log_format = GD_LOG_TEXT;

void gd_log_init(gd_log_format f) { log_format = f; }

/* UTC wall-clock time with milliseconds, RFC 3339: 2024-05-01T12:00:00.123Z.
 * The part up to the seconds is formatted once a second per thread: under
 * load, strftime and gmtime_r per line cost more than the rest of it. */
static void timestamp(char *buf, size_t size) {
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char prefix[32];
    static _Thread_local size_t prefix_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        prefix_len = strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    if (size < prefix_len + 6) {
        if (size) buf[0] = '\0';
        return;
    }
    memcpy(buf, prefix, prefix_len);
    char *p = buf + prefix_len;
    *p++ = '.', *p++ = (char)('0' + ms / 100), *p++ = (char)('0' + ms / 10 % 10), *p++ = (char)('0' + ms % 10);
    *p++ = 'Z', *p = '\0';
}

/* ",\"key\":" (JSON) or " key=" (text), then the integer. */
static void put_num_field(gd_buf *b, int json, const char *key, int64_t v) {
    gd_buf_puts(b, json ? ",\"" : " ");
    gd_buf_puts(b, key);
    gd_buf_puts(b, json ? "\":" : "=");
    gd_buf_put_int(b, v);
}

/* Write n bytes (retrying short writes); log lines are best effort. */
static void write_all(const char *p, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDERR_FILENO, p + off, n - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

/* Batched request lines. Two buffers: `pending` fills under pend_mu while
 * the other is written out under out_mu, which orders every write to
 * stderr, so that lines come out in the order they were logged (an event
 * writes the pending lines before its own). In the BSS: a page is touched
 * only once lines fill it. */
#define PEND_MAX ((size_t)256 << 10)
static char pend_bufs[2][PEND_MAX];
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int pend_which;   /* pend_bufs[pend_which] is filling (pend_mu) */
static size_t pend_len;  /* (pend_mu) */
static int batching;     /* set once, before the threads that log start */

/* Write the pending lines, then `line` (n bytes; may be NULL). */
static void write_out(const char *line, size_t n) {
    pthread_mutex_lock(&out_mu);
    pthread_mutex_lock(&pend_mu);
    const char *full = pend_bufs[pend_which];
    size_t full_len = pend_len;
    pend_which ^= 1, pend_len = 0;
    pthread_mutex_unlock(&pend_mu);
    write_all(full, full_len);
    if (line) write_all(line, n);
    pthread_mutex_unlock(&out_mu);
}

void gd_log_flush(void) {
    if (batching) write_out(NULL, 0);
}

void gd_log_batch(void) {
    if (batching) return;
    batching = 1;
    atexit(gd_log_flush);
}

/* A finished line: written at once, or (a request line while batching)
 * added to the pending lines; a line that does not fit goes out at once,
 * after them. */
static void emit(gd_buf *b, int may_wait) {
    if (b->failed || !b->data) return;
    gd_buf_append(b, "\n", 1);
    if (b->failed) return;
    if (!batching) {
        write_all(b->data, b->len);
        return;
    }
    if (may_wait) {
        pthread_mutex_lock(&pend_mu);
        int fits = pend_len + b->len <= PEND_MAX;
        if (fits) memcpy(pend_bufs[pend_which] + pend_len, b->data, b->len), pend_len += b->len;
        pthread_mutex_unlock(&pend_mu);
        if (fits) return;
    }
    write_out(b->data, b->len);
}

/* A text-format value: printable ASCII passes, anything else becomes '?',
 * so a line can never be split or forged by request data. */
static void put_text(gd_buf *b, const char *s) {
    if (!s || !*s) {
        gd_buf_puts(b, "-");
        return;
    }
    while (*s) {
        const char *run = s;
        while (*s > 0x20 && *s < 0x7f) s++;
        gd_buf_append(b, run, (size_t)(s - run));
        if (*s) gd_buf_putc(b, '?'), s++;
    }
}

static void put_json_field(gd_buf *b, const char *key, const char *val) {
    gd_buf_puts(b, ",\"");
    gd_buf_puts(b, key);
    gd_buf_puts(b, "\":");
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
        gd_buf_puts(&b, "{\"ts\":\"");
        gd_buf_puts(&b, ts);
        gd_buf_puts(&b, is_5xx ? "\",\"level\":\"error\",\"msg\":\"request\"" : "\",\"level\":\"info\",\"msg\":\"request\"");
        put_json_field(&b, "id", r->id);
        put_json_field(&b, "method", r->method);
        put_json_field(&b, "route", r->path);
    } else {
        gd_buf_puts(&b, ts);
        gd_buf_puts(&b, is_5xx ? " ERROR request id=" : " INFO request id=");
        put_text(&b, r->id);
        gd_buf_puts(&b, " method=");
        put_text(&b, r->method);
        gd_buf_puts(&b, " route=");
        put_text(&b, r->path);
    }
    int json = log_format == GD_LOG_JSON;
    put_num_field(&b, json, "status", r->status);
    put_num_field(&b, json, "bytes_in", (int64_t)r->bytes_in);
    put_num_field(&b, json, "bytes_out", (int64_t)r->bytes_out);
    put_num_field(&b, json, "queue_us", r->queue_us);
    put_num_field(&b, json, "compute_us", r->compute_us);
    put_num_field(&b, json, "total_us", r->total_us);
    if (json) {
        if (r->code) put_json_field(&b, "code", r->code);
        if (r->diags) {
            gd_buf_puts(&b, ",\"diagnostics\":[");
            put_json_list(&b, r->diags);
            gd_buf_putc(&b, ']');
        }
        gd_buf_putc(&b, '}');
    } else {
        if (r->code) gd_buf_puts(&b, " code="), put_text(&b, r->code);
        if (r->diags) gd_buf_puts(&b, " diagnostics="), put_text(&b, r->diags);
    }
    emit(&b, !is_5xx); /* a 5xx line goes out at once, as an event does */
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
    emit(&b, 0);
    gd_buf_free(&b);
}
