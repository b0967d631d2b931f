/* http_mlp.c - times the 3-layer MLP step of bench/bench_mlp.c as one
 * POST /v1/grad to a running gradd, end to end, with libcurl:
 *
 *   encode   the leaf values go into the request body (binary framing: the
 *            small JSON plus a memcpy of each tensor; b64: the JSON with each
 *            tensor base64-encoded in place);
 *   wire     curl_easy_perform: send, gradd decodes, computes, encodes,
 *            receive (one keep-alive connection, no Expect: 100-continue);
 *   decode   the response's six gradients into double arrays (binary: a small
 *            JSON scan plus a memcpy each; b64: base64 decoding).
 *
 * The end-to-end time of a run is all three, the time a user's program waits
 * from having the values to having the gradients; the median over the timed
 * runs is reported, with the client's own share (encode + decode, and its
 * CPU time per request from getrusage) so that the client's overhead can be
 * told apart from gradd's. The data is bench_mlp.c's splitmix64 streams
 * (same seed, same streams), so the CHECK line (loss and gradient norms from
 * the last response) must agree with bench/torch_mlp.py's to rounding.
 *
 * Not here: starting gradd (bench/http_bench.sh does), any server code.
 *
 * The RESULT line's sent_to_last_ms is the server's time as the client sees
 * it: from curl reporting the last request byte written to the socket to
 * the last response byte read (gradd's log stops at the response queued,
 * before it is sent). It includes gradd reading whatever of the body the
 * loopback socket buffers still held at that point.
 *
 *   http_mlp --url http://127.0.0.1:8080/v1/grad --format binary|b64
 *            [--min-time S] [--min-runs N] [--warmup N] [--seed N]
 *            [--hidden W]   (hidden width, default 1024)
 */
#include <curl/curl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

enum { B = 256, D_IN = 784, D_OUT = 10 };

/* The hidden width (--hidden; bench_mlp.c's is 1024). */
static int64_t D_H = 1024;

/* Tensor ids, also the splitmix64 stream of each (as bench_mlp.c, torch_mlp.py). */
enum { T_X, T_LABELS, T_W1, T_B1, T_W2, T_B2, T_W3, T_B3, T_COUNT };

static const char *const tensor_name[T_COUNT] = {"x", "labels", "W1", "b1", "W2", "b2", "W3", "b3"};
static int64_t dims[T_COUNT][2];

static void dims_set(void) {
    const int64_t d[T_COUNT][2] = {{B, D_IN}, {B, 0},   {D_IN, D_H}, {D_H, 0},
                                   {D_H, D_H}, {D_H, 0}, {D_H, D_OUT}, {D_OUT, 0}};
    memcpy(dims, d, sizeof dims);
}

/* The graph: leaves x, labels (inputs), W1..b3 (variables), then the
 * layers; written by graph_make for the hidden width D_H. */
static char graph_json[2048];

static void graph_make(void) {
    snprintf(graph_json, sizeof graph_json,
             "{\"nodes\":["
             "{\"name\":\"x\",\"op\":\"input\",\"shape\":[256,784]},"
             "{\"name\":\"labels\",\"op\":\"input\",\"dtype\":\"int64\",\"shape\":[256]},"
             "{\"name\":\"W1\",\"op\":\"variable\",\"shape\":[784,%lld]},"
             "{\"name\":\"b1\",\"op\":\"variable\",\"shape\":[%lld]},"
             "{\"name\":\"W2\",\"op\":\"variable\",\"shape\":[%lld,%lld]},"
             "{\"name\":\"b2\",\"op\":\"variable\",\"shape\":[%lld]},"
             "{\"name\":\"W3\",\"op\":\"variable\",\"shape\":[%lld,10]},"
             "{\"name\":\"b3\",\"op\":\"variable\",\"shape\":[10]},"
             "{\"name\":\"mm1\",\"op\":\"matmul\",\"inputs\":[\"x\",\"W1\"]},"
             "{\"name\":\"z1\",\"op\":\"add\",\"inputs\":[\"mm1\",\"b1\"]},"
             "{\"name\":\"h1\",\"op\":\"relu\",\"inputs\":[\"z1\"]},"
             "{\"name\":\"mm2\",\"op\":\"matmul\",\"inputs\":[\"h1\",\"W2\"]},"
             "{\"name\":\"z2\",\"op\":\"add\",\"inputs\":[\"mm2\",\"b2\"]},"
             "{\"name\":\"h2\",\"op\":\"relu\",\"inputs\":[\"z2\"]},"
             "{\"name\":\"mm3\",\"op\":\"matmul\",\"inputs\":[\"h2\",\"W3\"]},"
             "{\"name\":\"logits\",\"op\":\"add\",\"inputs\":[\"mm3\",\"b3\"]},"
             "{\"name\":\"loss\",\"op\":\"softmax_cross_entropy\",\"inputs\":[\"logits\",\"labels\"]}"
             "]}",
             (long long)D_H, (long long)D_H, (long long)D_H, (long long)D_H, (long long)D_H, (long long)D_H);
}

enum { FMT_BINARY, FMT_B64 };

static int64_t tensor_elems(int t) { return dims[t][0] * (dims[t][1] ? dims[t][1] : 1); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- deterministic data (bench_mlp.c's, element for element) ---------- */

/* Element i of stream `t` for `seed`: splitmix64's output for counter i + 1. */
static uint64_t mix_at(uint64_t seed, int t, uint64_t i) {
    uint64_t key = ((seed << 8) | (uint64_t)t) * 0xD1B54A32D192ED03ull;
    uint64_t z = key + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fills buf[t] (allocated here, freed by the caller) for every tensor: x
 * uniform [0, 1), labels uniform in [0, 10), weights and biases uniform
 * +-1/sqrt(fan_in). Returns 0, or -1 when out of memory. */
static int data_make(void *buf[T_COUNT], uint64_t seed) {
    const int64_t fan_in[T_COUNT] = {0, 0, D_IN, D_IN, D_H, D_H, D_H, D_H};
    for (int t = 0; t < T_COUNT; t++) {
        int64_t n = tensor_elems(t);
        if (!(buf[t] = malloc((size_t)n * 8))) return -1;
        if (t == T_LABELS) {
            int64_t *d = buf[t];
            for (int64_t i = 0; i < n; i++) d[i] = (int64_t)(mix_at(seed, t, (uint64_t)i) % D_OUT);
        } else {
            double *d = buf[t], lo = 0.0, hi = 1.0;
            if (t != T_X) hi = 1.0 / sqrt((double)fan_in[t]), lo = -hi;
            for (int64_t i = 0; i < n; i++)
                d[i] = lo + (hi - lo) * ((double)(mix_at(seed, t, (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0));
        }
    }
    return 0;
}

/* ---- base64 ------------------------------------------------------------ */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_len(size_t n) { return (n + 2) / 3 * 4; }

/* Writes the padded base64 of src[0..n) to dst (b64_len(n) bytes). */
static void b64_encode(char *dst, const unsigned char *src, size_t n) {
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        *dst++ = b64_alphabet[v >> 18], *dst++ = b64_alphabet[v >> 12 & 63];
        *dst++ = b64_alphabet[v >> 6 & 63], *dst++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0);
        *dst++ = b64_alphabet[v >> 18], *dst++ = b64_alphabet[v >> 12 & 63];
        *dst++ = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
        *dst++ = '=';
    }
}

static signed char b64_value[256];

static void b64_init(void) {
    memset(b64_value, -1, sizeof b64_value);
    for (int i = 0; i < 64; i++) b64_value[(unsigned char)b64_alphabet[i]] = (signed char)i;
}

/* Decodes base64 text src[0..n) into dst, which holds cap bytes; a JSON
 * escape backslash ("\/") is skipped. Returns the decoded length, or -1 on a
 * bad character or when the result would not fit. */
static int64_t b64_decode(unsigned char *dst, size_t cap, const char *src, size_t n) {
    size_t out = 0;
    uint32_t acc = 0;
    int have = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\\') continue;
        if (c == '=') { pad++; continue; }
        signed char v = b64_value[c];
        if (v < 0 || pad) return -1;
        acc = acc << 6 | (uint32_t)v;
        if (++have == 4) {
            if (out + 3 > cap) return -1;
            dst[out] = (unsigned char)(acc >> 16), dst[out + 1] = (unsigned char)(acc >> 8);
            dst[out + 2] = (unsigned char)acc;
            out += 3, have = 0, acc = 0;
        }
    }
    if (have == 1) return -1;
    if (have >= 2) {
        if (out + (size_t)(have - 1) > cap) return -1;
        acc <<= 6 * (4 - have);
        dst[out++] = (unsigned char)(acc >> 16);
        if (have == 3) dst[out++] = (unsigned char)(acc >> 8);
    }
    return (int64_t)out;
}

/* ---- request ----------------------------------------------------------- */

typedef struct request {
    int format;
    char *body;        /* owned; JSON, then (binary) the binary section */
    size_t cap, len;   /* body capacity and this request's length */
    size_t json_len;   /* binary framing: the JSON part's length */
    size_t off[T_COUNT]; /* binary framing: each tensor's offset in the binary section */
} request;

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* Appends the printf-formatted text at r->body + *pos; returns 0, -1 when it does not fit. */
static int put(request *r, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(request *r, size_t *pos, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->body + *pos, r->cap - *pos, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= r->cap - *pos) return -1;
    *pos += (size_t)k;
    return 0;
}

static int put_shape(request *r, size_t *pos, int t) {
    if (dims[t][1]) return put(r, pos, "[%lld,%lld]", (long long)dims[t][0], (long long)dims[t][1]);
    return put(r, pos, "[%lld]", (long long)dims[t][0]);
}

/* Allocates the body buffer for `format` (freed by request_free). */
static int request_init(request *r, int format) {
    memset(r, 0, sizeof *r);
    r->format = format;
    size_t data = 0;
    for (int t = 0; t < T_COUNT; t++) {
        size_t nb = (size_t)tensor_elems(t) * 8;
        r->off[t] = data;
        data += format == FMT_BINARY ? align64(nb) : b64_len(nb);
    }
    r->cap = 16384 + data;
    return (r->body = malloc(r->cap)) ? 0 : -1;
}

/* Writes the request for the values buf[] into r->body: the work a client
 * does per step to send fresh values. */
static int request_encode(request *r, void *const buf[T_COUNT]) {
    size_t pos = 0;
    int bad = put(r, &pos, "{\"graph\":%s,\"values\":{", graph_json);
    for (int t = 0; t < T_COUNT && !bad; t++) {
        size_t nb = (size_t)tensor_elems(t) * 8;
        bad |= put(r, &pos, "%s\"%s\":{\"shape\":", t ? "," : "", tensor_name[t]);
        bad |= put_shape(r, &pos, t);
        bad |= put(r, &pos, ",\"dtype\":\"%s\",", t == T_LABELS ? "int64" : "float64");
        if (r->format == FMT_BINARY) {
            bad |= put(r, &pos, "\"offset\":%zu,\"nbytes\":%zu}", r->off[t], nb);
        } else {
            bad |= put(r, &pos, "\"b64\":\"");
            if (bad || pos + b64_len(nb) + 2 > r->cap) return -1;
            b64_encode(r->body + pos, buf[t], nb);
            pos += b64_len(nb);
            bad |= put(r, &pos, "\"}");
        }
    }
    bad |= put(r, &pos, "},\"target\":\"loss\",\"tensor_format\":\"%s\"}",
               r->format == FMT_BINARY ? "binary" : "b64");
    if (bad) return -1;
    if (r->format == FMT_BINARY) {
        r->json_len = pos;
        for (int t = 0; t < T_COUNT; t++) {
            size_t nb = (size_t)tensor_elems(t) * 8;
            memcpy(r->body + pos + r->off[t], buf[t], nb);
            if (t == T_COUNT - 1) r->len = pos + r->off[t] + nb;
        }
    } else {
        r->len = pos;
    }
    return 0;
}

/* ---- response ---------------------------------------------------------- */

typedef struct response {
    char *data;         /* owned, grown by on_body */
    size_t len, cap;
    long long json_len; /* Gradd-Json-Length, -1 when absent */
    double t_first;     /* when the status line arrived (now_s), 0 before */
    double t_sent;      /* when curl reported the whole body uploaded (now_s), 0 before */
    double t_last;      /* when the last piece of the body arrived (now_s) */
} response;

/* curl's write callback: appends the body to rs->data (grown here, kept
 * across requests so that steady-state runs do not reallocate). */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    response *rs = ud;
    size_t k = size * n;
    if (rs->len + k > rs->cap) {
        size_t cap = rs->cap ? rs->cap : 1 << 20;
        while (cap < rs->len + k) cap *= 2;
        char *d = realloc(rs->data, cap);
        if (!d) return 0;
        rs->data = d, rs->cap = cap;
    }
    memcpy(rs->data + rs->len, p, k);
    rs->len += k;
    rs->t_last = now_s();
    return k;
}

/* curl's progress callback, called after every socket read or write of the
 * transfer: notes when the last request byte went to the socket. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    response *rs = ud;
    (void)dltotal, (void)dlnow;
    if (rs->t_sent == 0 && ultotal > 0 && ulnow >= ultotal) rs->t_sent = now_s();
    return 0;
}

/* curl's header callback: notes when the answer started and its
 * Gradd-Json-Length (the JSON part of a binary-framed body). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    response *rs = ud;
    size_t k = size * n;
    static const char h[] = "Gradd-Json-Length:";
    if (rs->t_first == 0) rs->t_first = now_s();
    if (k > sizeof h - 1 && strncasecmp(p, h, sizeof h - 1) == 0)
        rs->json_len = strtoll(p + sizeof h - 1, NULL, 10);
    return k;
}

/* A cursor over JSON text, just enough to read gradd's answer: objects,
 * arrays, strings (returned raw, escapes kept), numbers, literals. */
typedef struct cur {
    const char *p, *end;
} cur;

static void ws(cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r')) c->p++;
}

static int eat(cur *c, char ch) {
    ws(c);
    if (c->p < c->end && *c->p == ch) return c->p++, 1;
    return 0;
}

/* Reads a string's raw span into *s, *n. Returns 0, -1 on malformed text. */
static int str(cur *c, const char **s, size_t *n) {
    if (!eat(c, '"')) return -1;
    const char *q = c->p;
    for (;;) {
        const char *e = memchr(q, '"', (size_t)(c->end - q));
        if (!e) return -1;
        size_t bs = 0; /* an escaped quote has an odd run of backslashes before it */
        while (e - bs > c->p && e[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (bs % 2 == 0) {
            *s = c->p, *n = (size_t)(e - c->p), c->p = e + 1;
            return 0;
        }
        q = e + 1;
    }
}

static int skip(cur *c);

/* Calls each member of an object: fn(key, keylen, cursor at the value, ud)
 * must consume the value. Returns 0, -1 on malformed text or fn's error. */
static int object(cur *c, int (*fn)(const char *, size_t, cur *, void *), void *ud) {
    if (!eat(c, '{')) return -1;
    if (eat(c, '}')) return 0;
    do {
        const char *k;
        size_t kn;
        if (str(c, &k, &kn) || !eat(c, ':')) return -1;
        if (fn ? fn(k, kn, c, ud) : skip(c)) return -1;
    } while (eat(c, ','));
    return eat(c, '}') ? 0 : -1;
}

static int skip(cur *c) {
    ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p == '{') return object(c, NULL, NULL);
    if (*c->p == '"') {
        const char *s;
        size_t n;
        return str(c, &s, &n);
    }
    if (*c->p == '[') {
        c->p++;
        if (eat(c, ']')) return 0;
        do
            if (skip(c)) return -1;
        while (eat(c, ','));
        return eat(c, ']') ? 0 : -1;
    }
    const char *q = c->p;
    while (c->p < c->end && !strchr(",}] \n\t\r", *c->p)) c->p++;
    return c->p > q ? 0 : -1;
}

static int num(cur *c, double *v) {
    ws(c);
    char *e;
    *v = strtod(c->p, &e);
    if (e == c->p || e > c->end) return -1;
    c->p = e;
    return 0;
}

static int key_is(const char *k, size_t n, const char *want) { return strlen(want) == n && memcmp(k, want, n) == 0; }

/* What decoding one response fills in. */
typedef struct decoded {
    const response *rs;
    int format;
    double *grad[T_COUNT];  /* caller's arrays for W1..b3 */
    int got[T_COUNT];
    double loss, total_us, forward_us, backward_us, queue_us;
    int cur_t;              /* the gradient being read */
    int64_t shape[2];
    int rank, dtype_ok, has_b64;
    const char *b64;
    size_t b64_n;
    double offset, nbytes;
    char err[160];
} decoded;

static int on_grad_field(const char *k, size_t n, cur *c, void *ud) {
    decoded *d = ud;
    if (key_is(k, n, "shape")) {
        d->rank = 0;
        if (!eat(c, '[')) return -1;
        if (eat(c, ']')) return 0;
        do {
            double v;
            if (num(c, &v) || d->rank >= 2) return -1;
            d->shape[d->rank++] = (int64_t)v;
        } while (eat(c, ','));
        return eat(c, ']') ? 0 : -1;
    }
    if (key_is(k, n, "dtype")) {
        const char *s;
        size_t sn;
        if (str(c, &s, &sn)) return -1;
        d->dtype_ok = key_is(s, sn, "float64");
        return 0;
    }
    if (key_is(k, n, "b64")) return d->has_b64 = 1, str(c, &d->b64, &d->b64_n);
    if (key_is(k, n, "offset")) return num(c, &d->offset);
    if (key_is(k, n, "nbytes")) return num(c, &d->nbytes);
    return skip(c);
}

/* Reads one tensor object (the fields above) at c into dst, which holds
 * `n` float64 elements of shape dims_[0..rank); binary: from the response's
 * binary section, b64: decoded in place. Returns 0, -1 with d->err set. */
static int tensor_read(decoded *d, cur *c, const char *what, int rank, const int64_t *dims_, double *dst, int64_t n) {
    d->rank = -1, d->dtype_ok = 0, d->has_b64 = 0, d->offset = d->nbytes = -1;
    if (object(c, on_grad_field, d)) return snprintf(d->err, sizeof d->err, "%s: not a tensor object", what), -1;
    int ok = d->rank == rank && d->dtype_ok;
    for (int i = 0; ok && i < rank; i++) ok = d->shape[i] == dims_[i];
    if (!ok) return snprintf(d->err, sizeof d->err, "%s: wrong shape or dtype", what), -1;
    size_t nb = (size_t)n * 8;
    if (d->format == FMT_B64) {
        if (!d->has_b64 || b64_decode((unsigned char *)dst, nb, d->b64, d->b64_n) != (int64_t)nb)
            return snprintf(d->err, sizeof d->err, "%s: bad or missing b64", what), -1;
    } else {
        size_t bin_len = d->rs->len - (size_t)d->rs->json_len;
        if (d->nbytes != (double)nb || d->offset < 0 || d->offset + d->nbytes > (double)bin_len)
            return snprintf(d->err, sizeof d->err, "%s: bad offset/nbytes", what), -1;
        memcpy(dst, d->rs->data + d->rs->json_len + (size_t)d->offset, nb);
    }
    return 0;
}

/* One gradient: checks its shape and dtype and copies its elements into the
 * caller's array. */
static int on_gradient(const char *k, size_t n, cur *c, void *ud) {
    decoded *d = ud;
    int t = -1;
    for (int i = T_W1; i < T_COUNT; i++)
        if (key_is(k, n, tensor_name[i])) t = i;
    if (t < 0) return skip(c);
    if (tensor_read(d, c, tensor_name[t], dims[t][1] ? 2 : 1, dims[t], d->grad[t], tensor_elems(t))) return -1;
    d->got[t] = 1;
    return 0;
}

/* The loss: a scalar tensor in the response's tensor_format. */
static int on_target(const char *k, size_t n, cur *c, void *ud) {
    decoded *d = ud;
    return key_is(k, n, "loss") ? tensor_read(d, c, "loss", 0, NULL, &d->loss, 1) : skip(c);
}

static int on_stats(const char *k, size_t n, cur *c, void *ud) {
    decoded *d = ud;
    if (key_is(k, n, "total_us")) return num(c, &d->total_us);
    if (key_is(k, n, "forward_us")) return num(c, &d->forward_us);
    if (key_is(k, n, "backward_us")) return num(c, &d->backward_us);
    if (key_is(k, n, "queue_us")) return num(c, &d->queue_us);
    return skip(c);
}

static int on_top(const char *k, size_t n, cur *c, void *ud) {
    if (key_is(k, n, "target")) return object(c, on_target, ud);
    if (key_is(k, n, "gradients")) return object(c, on_gradient, ud);
    if (key_is(k, n, "stats")) return object(c, on_stats, ud);
    return skip(c);
}

/* Decodes the response into d->grad[]; returns 0, -1 with d->err set. */
static int response_decode(decoded *d) {
    const response *rs = d->rs;
    size_t jl = rs->len;
    if (d->format == FMT_BINARY) {
        if (rs->json_len < 0 || (size_t)rs->json_len > rs->len)
            return snprintf(d->err, sizeof d->err, "no valid Gradd-Json-Length header"), -1;
        jl = (size_t)rs->json_len;
    }
    memset(d->got, 0, sizeof d->got);
    d->loss = NAN, d->err[0] = 0;
    cur c = {rs->data, rs->data + jl};
    if (object(&c, on_top, d)) {
        if (!d->err[0]) snprintf(d->err, sizeof d->err, "malformed JSON near byte %td", c.p - rs->data);
        return -1;
    }
    for (int t = T_W1; t < T_COUNT; t++)
        if (!d->got[t]) return snprintf(d->err, sizeof d->err, "no gradient for %s", tensor_name[t]), -1;
    return 0;
}

/* ---- measurement ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

typedef struct one_run {
    double total, encode, wire, decode, server_us, fwd_us, bwd_us;
    double download; /* seconds from the response's status line to its last byte */
    double server;   /* seconds from the last request byte sent to the last response byte received */
} one_run;

/* One step: encode, POST, decode. Returns 0, -1 with a message printed. */
static int run_once(CURL *h, request *rq, response *rs, decoded *d, void *const buf[T_COUNT], one_run *o) {
    double t0 = now_s();
    if (request_encode(rq, buf)) return fprintf(stderr, "http_mlp: request buffer too small\n"), -1;
    double t1 = now_s();
    rs->len = 0, rs->json_len = -1, rs->t_first = 0, rs->t_sent = 0, rs->t_last = 0;
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    CURLcode rc = curl_easy_perform(h);
    double t2 = now_s();
    if (rc != CURLE_OK) return fprintf(stderr, "http_mlp: %s\n", curl_easy_strerror(rc)), -1;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        fprintf(stderr, "http_mlp: HTTP %ld: %.*s\n", status, (int)(rs->len < 600 ? rs->len : 600), rs->data);
        return -1;
    }
    if (response_decode(d)) return fprintf(stderr, "http_mlp: bad response: %s\n", d->err), -1;
    double t3 = now_s();
    o->total = t3 - t0, o->encode = t1 - t0, o->wire = t2 - t1, o->decode = t3 - t2;
    o->server_us = d->total_us, o->fwd_us = d->forward_us, o->bwd_us = d->backward_us;
    o->download = rs->t_first > 0 ? t2 - rs->t_first : 0;
    o->server = rs->t_sent > 0 && rs->t_last > rs->t_sent ? rs->t_last - rs->t_sent : 0;
    return 0;
}

/* Warm-up runs (the connection, gradd's caches, page faults), then N timed
 * runs, N = max(min_runs, min_time / warm-up median); prints the CHECK line
 * from the last response and the medians. Returns 0, 1 on a failed request
 * or a non-finite result. */
static int measure(CURL *h, request *rq, response *rs, decoded *d, void *const buf[T_COUNT], int warmup,
                   int min_runs, double min_time, const char *url) {
    const char *fname = rq->format == FMT_BINARY ? "binary" : "b64";
    one_run o;
    int rc = 1, n = min_runs;
    double *w = calloc((size_t)warmup, sizeof *w), *v[8] = {0};
    if (!w) goto out;
    for (int i = 0; i < warmup; i++) {
        if (run_once(h, rq, rs, d, buf, &o)) goto out;
        w[i] = o.total;
    }
    double est = median(w, warmup);
    if (est > 0 && (int)ceil(min_time / est) > n) n = (int)ceil(min_time / est);
    for (int k = 0; k < 8; k++)
        if (!(v[k] = calloc((size_t)n, sizeof *v[k]))) goto out;
    double *tot = v[0], *wire = v[1], *cli = v[2], *srv = v[3], *fwd = v[4], *bwd = v[5], *dl = v[6], *sv = v[7];
    double c0 = cpu_s(), lo = INFINITY, hi = 0;
    for (int i = 0; i < n; i++) {
        if (run_once(h, rq, rs, d, buf, &o)) goto out;
        tot[i] = o.total, wire[i] = o.wire, cli[i] = o.encode + o.decode;
        srv[i] = o.server_us, fwd[i] = o.fwd_us, bwd[i] = o.bwd_us, dl[i] = o.download;
        sv[i] = o.server;
        if (o.total < lo) lo = o.total;
        if (o.total > hi) hi = o.total;
    }
    double cpu = (cpu_s() - c0) / n;

    /* The last response's gradients, for the comparison with torch_mlp.py. */
    printf("http_mlp: POST %s, %s framing: request %zu bytes, response %zu bytes\n", url, fname, rq->len, rs->len);
    printf("CHECK http-%s loss=%.15e", fname, d->loss);
    int finite = isfinite(d->loss);
    for (int t = T_W1; t < T_COUNT; t++) {
        double ss = 0, s = 0;
        for (int64_t i = 0; i < tensor_elems(t); i++) ss += d->grad[t][i] * d->grad[t][i], s += d->grad[t][i];
        finite &= isfinite(ss);
        printf(" norm_%s=%.15e sum_%s=%.15e", tensor_name[t], sqrt(ss), tensor_name[t], s);
    }
    printf("\n");
    double med_tot = median(tot, n), med_wire = median(wire, n), med_cli = median(cli, n);
    double med_srv = 1e-3 * median(srv, n), med_fwd = 1e-3 * median(fwd, n), med_bwd = 1e-3 * median(bwd, n);
    double med_dl = 1e3 * median(dl, n), med_sv = 1e3 * median(sv, n);
    printf("end to end: runs=%d median %.2f ms (min %.2f, max %.2f); wire (curl_easy_perform) %.2f ms, of which "
           "the response download (status line to last byte) %.2f ms; client encode+decode %.2f ms; client CPU "
           "%.2f ms/request; gradd stats total %.2f ms (forward %.2f, backward %.2f); last request byte sent to last "
           "response byte received %.2f ms\n",
           n, 1e3 * med_tot, 1e3 * lo, 1e3 * hi, 1e3 * med_wire, med_dl, 1e3 * med_cli, 1e3 * cpu, med_srv,
           med_fwd, med_bwd, med_sv);
    printf("RESULT http format=%s e2e_ms=%.3f min_ms=%.3f max_ms=%.3f wire_ms=%.3f download_ms=%.3f client_ms=%.3f "
           "client_cpu_ms=%.3f server_ms=%.3f fwd_ms=%.3f bwd_ms=%.3f sent_to_last_ms=%.3f hidden=%lld runs=%d "
           "req_bytes=%zu resp_bytes=%zu\n",
           fname, 1e3 * med_tot, 1e3 * lo, 1e3 * hi, 1e3 * med_wire, med_dl, 1e3 * med_cli, 1e3 * cpu, med_srv,
           med_fwd, med_bwd, med_sv, (long long)D_H, n, rq->len, rs->len);
    if (!finite) fprintf(stderr, "http_mlp: non-finite loss or gradient\n");
    else rc = 0;
out:
    free(w);
    for (int k = 0; k < 8; k++) free(v[k]);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: http_mlp --url URL [--format binary|b64] [--min-time S] [--min-runs N] [--warmup N] [--seed N]\n"
               "                [--hidden W]\n");
}

int main(int argc, char **argv) {
    const char *url = NULL;
    int format = FMT_BINARY, min_runs = 10, warmup = 3;
    double min_time = 2.0;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) return usage(stdout), 0;
        if (!v) return usage(stderr), 2;
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--format") && (!strcmp(v, "binary") || !strcmp(v, "b64")))
            format = !strcmp(v, "b64") ? FMT_B64 : FMT_BINARY;
        else if (!strcmp(a, "--min-time")) min_time = atof(v);
        else if (!strcmp(a, "--min-runs")) min_runs = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--hidden") && atoll(v) >= 1 && atoll(v) <= 65536) D_H = atoll(v);
        else return usage(stderr), 2;
        i++;
    }
    if (!url || min_runs < 1 || warmup < 1 || !(min_time >= 0)) return usage(stderr), 2;

    b64_init();
    dims_set();
    graph_make();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    void *buf[T_COUNT] = {0};
    double *grad[T_COUNT] = {0};
    request rq = {0};
    response rs = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    int rc = 1;
    if (!h || data_make(buf, seed) || request_init(&rq, format)) {
        fprintf(stderr, "http_mlp: out of memory\n");
        goto done;
    }
    for (int t = T_W1; t < T_COUNT; t++)
        if (!(grad[t] = malloc((size_t)tensor_elems(t) * 8))) {
            fprintf(stderr, "http_mlp: out of memory\n");
            goto done;
        }
    if (request_encode(&rq, buf)) {
        fprintf(stderr, "http_mlp: request buffer too small\n");
        goto done;
    }
    char jl_header[64];
    snprintf(jl_header, sizeof jl_header, "Gradd-Json-Length: %zu", rq.json_len);
    hdr = curl_slist_append(hdr, format == FMT_BINARY ? "Content-Type: application/vnd.gradd.v1+binary"
                                                      : "Content-Type: application/json");
    if (format == FMT_BINARY) hdr = curl_slist_append(hdr, jl_header);
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip for big bodies */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &rs);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    /* Bigger socket reads and writes than curl's 16 KB / 64 KB defaults:
     * fewer syscalls and callbacks for the ~15 MB each way. */
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &rs);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    decoded d = {.rs = &rs, .format = format};
    memcpy(d.grad, grad, sizeof grad);
    rc = measure(h, &rq, &rs, &d, buf, warmup, min_runs, min_time, url);

done:
    curl_slist_free_all(hdr);
    if (h) curl_easy_cleanup(h);
    curl_global_cleanup();
    for (int t = 0; t < T_COUNT; t++) free(buf[t]), free(grad[t]);
    free(rq.body), free(rs.data);
    return rc;
}
