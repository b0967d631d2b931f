/* test_http_edge.c - the HTTP edge of contract amendment A7 (issue 9, rows
 * 1, 2, 3, 5, 14, 15), over loopback with raw sockets where curl would not
 * send what an attacker sends: request smuggling (Content-Length with
 * Transfer-Encoding, two different Content-Lengths), an unknown
 * Transfer-Encoding, answers decided from the headers sent before the body
 * (without 100 Continue, the connection closed), a chunked body over
 * --max-body cut at the limit, the media-type rule, trickling uploads that
 * must not starve honest clients (--max-buffered counts what arrived,
 * --max-buffered-per-ip), slowloris from 127.0.0.2 (--max-conns-per-ip,
 * --header-timeout-ms), --min-body-rate, and 503 with Retry-After at
 * --max-connections.
 *
 * Part of tests/test_http (suite "http_edge"); every test starts its own
 * gradd. Time windows are stretched by GD_TEST_TIME_SCALE (http_harness.h)
 * and hold a 10x margin over what gradd is asked to do. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "http_harness.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* d/dx exp(x) at 0: {"target": {"y": 1.0}, "gradients": {"x": 1.0}, ...} */
static const char SMALL[] = "{\"graph\":{\"nodes\":[{\"name\":\"x\",\"op\":\"variable\"},"
                            "{\"name\":\"y\",\"op\":\"exp\",\"inputs\":[\"x\"]}]},"
                            "\"values\":{\"x\":0.0},\"target\":\"y\",\"wrt\":[\"x\"]}";

/* SMALL padded with spaces to exactly n bytes (malloc'd, NUL-terminated). */
static char *padded_small(size_t n) {
    char *b = malloc(n + 1);
    size_t k = strlen(SMALL);
    ck_assert(n >= k);
    memcpy(b, SMALL, k - 1);
    memset(b + k - 1, ' ', n - k);
    b[n - 1] = '}';
    b[n] = '\0';
    return b;
}

/* An error body {"error": {"code": code, "at": at (when at is not NULL)}}. */
static void expect_error(const ht_resp *r, long status, const char *code, const char *at) {
    char why[600];
    ck_assert_msg(r->status == status, "status %ld, expected %ld; body: %.400s", r->status, status,
                  r->body ? r->body : "");
    json_t *j = ht_parse(r->body, r->body_len, why, sizeof why);
    ck_assert_msg(j != NULL, "%s", why);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    const char *got_at = json_string_value(json_object_get(json_object_get(j, "error"), "at"));
    int ok_code = got && strcmp(got, code) == 0;
    int ok_at = !at || (got_at && strcmp(got_at, at) == 0);
    json_decref(j);
    ck_assert_msg(ok_code && ok_at, "expected code %s at %s; body: %.400s", code, at ? at : "(any)", r->body);
}

/* A 200 to SMALL (or a padded SMALL): the gradient 1.0. */
static void expect_small_ok(const ht_resp *r) {
    ck_assert_msg(r->status == 200, "status %ld (curl %d), expected 200; body: %.400s", r->status, r->curl_code,
                  r->body ? r->body : "");
    ck_assert_msg(r->body && strstr(r->body, "\"gradients\":{\"x\":1.0}"), "unexpected body: %.400s", r->body);
}

/* Is the header `name: value` (case-insensitive) in a raw header block? */
static int has_header(const char *block, const char *line) {
    size_t n = strlen(line);
    for (const char *p = block; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
        if (strncasecmp(p, line, n) == 0 && (p[n] == '\r' || p[n] == ' ')) return 1;
    return 0;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* Send `head` (and `body`, may be NULL) on a new connection from src, read
 * until gradd closes it (within 5 s, scaled) and check that exactly one
 * response came: status, error code, "Connection: close". Returns the
 * seconds between the last byte sent and the close. */
static double expect_one_answer_then_close(int port, const char *src, const char *head, const char *body,
                                           size_t body_len, long status, const char *code, const char *at) {
    static char buf[65536];
    int fd = ht_connect(port, src);
    ck_assert_int_ge(fd, 0);
    ht_send(fd, head, strlen(head));
    if (body) ht_send(fd, body, body_len);
    double t0 = ht_now();
    long n = ht_read_to_close(fd, 5.0, buf, sizeof buf);
    double dt = ht_now() - t0;
    close(fd);
    ck_assert_msg(n >= 0, "the connection is still open 5 s (scaled) after the request; got so far: %.300s", buf);
    ck_assert_msg(count_of(buf, "HTTP/1.") == 1, "want exactly one response (no 100 Continue, nothing smuggled "
                                                 "through), got:\n%.1500s", buf);
    ht_resp r = {0};
    ht_parse_response(buf, (size_t)n, &r);
    expect_error(&r, status, code, at);
    ck_assert_msg(has_header(r.headers, "Connection: close"), "no 'Connection: close' in:\n%s", r.headers);
    ht_resp_free(&r);
    return dt;
}

/* ---- rows 1 and 14: framing -------------------------------------------------------- */

#define POST_GRAD "POST /v1/grad HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
#define SMUGGLED "GET /v1/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

START_TEST(edge_smuggling_400) {
    ht_server s;
    ht_server_start(&s, NULL);
    static const char *const heads[] = {
        /* chunked frames an empty body, Content-Length 5 a body of "0\r\n\r\n" */
        POST_GRAD "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
        POST_GRAD "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" SMUGGLED,
        /* two lengths: the first frames 0 bytes, the rest is a second request */
        POST_GRAD "Content-Length: 0\r\nContent-Length: 41\r\n\r\n" SMUGGLED,
        POST_GRAD "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
    };
    static const char *const at[] = {"header Transfer-Encoding", "header Transfer-Encoding",
                                     "header Content-Length", "header Transfer-Encoding"};
    for (int i = 0; i < 4; i++)
        expect_one_answer_then_close(s.port, NULL, heads[i], NULL, 0, 400, "invalid_request", at[i]);
    /* the same Content-Length twice is one length: served */
    char req[1024];
    snprintf(req, sizeof req, POST_GRAD "Content-Length: %zu\r\nContent-Length: %zu\r\n\r\n%s", strlen(SMALL),
             strlen(SMALL), SMALL);
    ht_resp r;
    ck_assert_int_eq(ht_raw(s.port, req, strlen(req), 5.0, &r), 0);
    expect_small_ok(&r);
    ht_resp_free(&r);
    ht_server_stop(&s);
}
END_TEST

START_TEST(edge_unknown_transfer_encoding_400) {
    ht_server s;
    ht_server_start(&s, NULL);
    /* no body follows: gradd must answer from the headers, not wait for a
     * body it cannot frame (before: held until --conn-timeout) */
    double dt = expect_one_answer_then_close(s.port, NULL, POST_GRAD "Transfer-Encoding: xchunked\r\n\r\n", NULL, 0,
                                             400, "invalid_request", "header Transfer-Encoding");
    expect_one_answer_then_close(s.port, NULL, POST_GRAD "Transfer-Encoding: gzip, chunked\r\n\r\n", NULL, 0, 400,
                                 "invalid_request", "header Transfer-Encoding");
    printf("edge_unknown_transfer_encoding_400: answered and closed in %.3f s\n", dt);
    ht_server_stop(&s);
}
END_TEST

/* ---- row 5: answers decided from the headers ---------------------------------------- */

static const char *token_path(void) {
    static char path[600];
    snprintf(path, sizeof path, "%s/edge.token", ht_tmpdir());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("s3cret\n", f);
    fclose(f);
    return path;
}

START_TEST(edge_answers_before_the_body) {
    ht_server s;
    ht_server_start(&s, ARGS("--token-file", token_path(), "--max-body", "1M"));
    /* Each announces 32 MiB (or a chunked body) and asks for 100 Continue,
     * then sends 64 KiB of it: the answer must come while almost all of the
     * body is still unsent, and the connection close. */
    static const struct {
        const char *head;
        long status;
        const char *code;
    } cases[] = {
        {"POST /v1/nope HTTP/1.1\r\nContent-Length: 33554432\r\n", 404, "not_found"},
        {"PUT /v1/grad HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 33554432\r\n", 405,
         "method_not_allowed"},
        {"POST /v1/grad HTTP/1.1\r\nContent-Length: 33554432\r\n", 401, "unauthorized"},
        {"POST /v1/grad HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 33554432\r\n", 413, "too_large"},
        {"POST /v1/grad HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nContent-Type: text/csv\r\n"
         "Content-Length: 900000\r\n",
         415, "unsupported_media_type"},
        {"POST /v1/nope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 404, "not_found"},
        {"POST /v1/grad HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 401, "unauthorized"},
    };
    size_t piece = 65536;
    char *body = malloc(piece + 16);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char head[512];
        snprintf(head, sizeof head, "%sHost: 127.0.0.1\r\nExpect: 100-continue\r\n\r\n", cases[i].head);
        size_t k = 0;
        if (strstr(head, "chunked")) k = (size_t)sprintf(body, "%zx\r\n", piece);
        memset(body + k, '[', piece);
        double dt = expect_one_answer_then_close(s.port, NULL, head, body, k + piece, cases[i].status,
                                                 cases[i].code, NULL);
        printf("edge_answers_before_the_body: %ld after 64 KiB of the body, closed %.3f s later\n", cases[i].status,
               dt);
    }
    free(body);
    ht_server_stop(&s);
}
END_TEST

START_TEST(edge_chunked_over_max_body_413) {
    ht_server s;
    ht_server_start(&s, ARGS("--max-body", "256K"));
    int fd = ht_connect(s.port, NULL);
    ck_assert_int_ge(fd, 0);
    const char *head = POST_GRAD "Transfer-Encoding: chunked\r\n\r\n";
    ck_assert_int_eq(ht_send(fd, head, strlen(head)), 0);
    enum { CHUNK = 16384 };
    static char chunk[CHUNK + 16];
    int k = sprintf(chunk, "%x\r\n", CHUNK);
    memset(chunk + k, ' ', CHUNK);
    memcpy(chunk + k + CHUNK, "\r\n", 2);
    size_t sent = 0, limit = (size_t)64 << 20; /* 64 MiB: the body never ends by itself */
    char got[8192] = "";
    ssize_t n = 0;
    double t0 = ht_now(), deadline = t0 + 10.0 * ht_time_scale();
    while (sent < limit && ht_now() < deadline) {
        n = recv(fd, got, sizeof got - 1, MSG_DONTWAIT);
        if (n > 0) break;
        if (ht_send(fd, chunk, (size_t)k + CHUNK + 2)) break; /* closed: the answer is waiting */
        sent += CHUNK;
    }
    /* the answer, begun in `got` or still to come, then the close */
    static char all[16384];
    size_t have = n > 0 ? (size_t)n : 0;
    memcpy(all, got, have);
    long more = ht_read_to_close(fd, 5.0, all + have, sizeof all - have);
    close(fd);
    ck_assert_msg(more >= 0, "the connection stayed open after a chunked body grew past --max-body");
    ht_resp r = {0};
    ht_parse_response(all, have + (size_t)more, &r);
    expect_error(&r, 413, "too_large", NULL);
    ck_assert_msg(sent < limit, "413 only after %zu bytes", sent);
    printf("edge_chunked_over_max_body_413: 413 after %zu bytes sent of a chunked body (--max-body 256K), "
           "%.3f s\n", sent, ht_now() - t0);
    ht_resp_free(&r);
    ht_server_stop(&s);
}
END_TEST

/* ---- row 15: media types ----------------------------------------------------------------- */

START_TEST(edge_media_types) {
    ht_server s;
    ht_server_start(&s, NULL);
    static const struct {
        const char *h1, *h2;
        long status;
        const char *at;
    } cases[] = {
        {"Content-Type:", NULL, 200, NULL}, /* no Content-Type at all */
        {"Content-Type: application/x-www-form-urlencoded", NULL, 200, NULL},
        {"Content-Type: Application/JSON ; charset=UTF-8", NULL, 200, NULL},
        {"Content-Type: application/json", "Content-Encoding: Identity", 200, NULL},
        {"Content-Type: text/csv", NULL, 415, "header Content-Type"},
        {"Content-Type: application/jsonp", NULL, 415, "header Content-Type"},
        {"Content-Type: multipart/form-data; boundary=x", NULL, 415, "header Content-Type"},
        {"Content-Type: application/json", "Content-Encoding: gzip", 415, "header Content-Encoding"},
        {"Content-Type:", "Content-Encoding: br", 415, "header Content-Encoding"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *hs[] = {cases[i].h1, cases[i].h2, NULL};
        ht_req rq = {.path = "/v1/grad", .body = SMALL, .headers = hs};
        ht_resp r;
        ht_do(NULL, s.port, &rq, &r);
        if (cases[i].status == 200) expect_small_ok(&r);
        else expect_error(&r, 415, "unsupported_media_type", cases[i].at);
        ht_resp_free(&r);
    }
    /* the binary framing type, in any case and with parameters */
    char len[64];
    snprintf(len, sizeof len, "Gradd-Json-Length: %zu", strlen(SMALL));
    const char *hs[] = {"Content-Type: Application/Vnd.Gradd.V1+Binary; charset=x", len, NULL};
    ht_req rq = {.path = "/v1/grad", .body = SMALL, .headers = hs};
    ht_resp r;
    ht_do(NULL, s.port, &rq, &r);
    ck_assert_msg(r.status == 200, "binary framing type with parameters: status %ld, body %.300s", r.status,
                  r.body ? r.body : "");
    ht_resp_free(&r);
    ht_server_stop(&s);
}
END_TEST

/* ---- row 2: trickling uploads and the buffer budget ------------------------------------- */

/* Open a connection from src and send a POST announcing `announced` bytes
 * followed by the first `first` bytes of data (NULL: spaces); the rest is
 * withheld. */
static int start_upload(int port, const char *src, size_t announced, size_t first, const char *data) {
    int fd = ht_connect(port, src);
    ck_assert_int_ge(fd, 0);
    char head[256];
    snprintf(head, sizeof head, POST_GRAD "Content-Length: %zu\r\n\r\n", announced);
    ck_assert_int_eq(ht_send(fd, head, strlen(head)), 0);
    char *b = malloc(first + 1);
    memset(b, ' ', first);
    ck_assert_int_eq(ht_send(fd, data ? data : b, first), 0);
    free(b);
    return fd;
}

START_TEST(edge_trickling_uploads_do_not_starve) {
    ht_server s;
    /* the scenario with the default limits (--max-body 64M,
     * --max-buffered 4 x 64M): four uploads announcing 64 MiB that send 1 KiB
     * and then trickle */
    ht_server_start(&s, NULL);
    int fds[4];
    for (int i = 0; i < 4; i++) fds[i] = start_upload(s.port, "127.0.0.2", (size_t)64 << 20, 1024, NULL);
    ht_sleep_ms(100); /* gradd has read their headers */
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 4; i++) ck_assert_int_eq(ht_send(fds[i], " ", 1), 0);
        ht_resp r;
        ht_post(s.port, "/v1/grad", SMALL, &r);
        expect_small_ok(&r);
        ck_assert_msg(r.t_done - r.t_start < 1.0 * ht_time_scale(), "an honest request took %.3f s",
                      r.t_done - r.t_start);
        ht_resp_free(&r);
    }
    for (int i = 0; i < 4; i++) close(fds[i]);
    ht_server_stop(&s);
}
END_TEST

START_TEST(edge_buffered_per_ip_share) {
    ht_server s;
    ht_server_start(&s, ARGS("--max-body", "64K", "--max-buffered", "256K", "--max-buffered-per-ip", "96K"));
    /* 127.0.0.2 holds 60 KiB of a 64 KiB body (its buffer: 64 KiB) */
    char *body = padded_small(65536);
    int held = start_upload(s.port, "127.0.0.2", 65536, 61440, body);
    ht_sleep_ms(100);
    /* a second whole 64 KiB body from 127.0.0.2 goes over its share: 503 */
    char head[256];
    snprintf(head, sizeof head, POST_GRAD "Content-Length: 65536\r\n\r\n");
    expect_one_answer_then_close(s.port, "127.0.0.2", head, body, 65536, 503, "overloaded", NULL);
    /* another client's 64 KiB body fits the global budget: served */
    ht_resp r;
    ht_post(s.port, "/v1/grad", body, &r);
    expect_small_ok(&r);
    ht_resp_free(&r);
    /* the held body, completed, is served too */
    ck_assert_int_eq(ht_send(held, body + 61440, 65536 - 61440), 0);
    ht_resp_free(&r);
    ck_assert_int_eq(ht_read_response(held, 5.0, &r), 0);
    expect_small_ok(&r);
    ht_resp_free(&r);
    close(held);
    free(body);
    ht_server_stop(&s);
}
END_TEST

/* ---- row 3: slow clients and the connection cap --------------------------------------- */

/* Connections that trickle a request's headers, a byte per `every_ms`. */
typedef struct trickle {
    int port, n, every_ms;
    double run_s;
    const char *src;
    atomic_int ready;      /* all connected and started */
    int open_at_end;       /* connections still open when the run ended */
    double last_close_s;   /* when the last one was closed by gradd, from the start */
} trickle;

static void *trickle_main(void *arg) {
    trickle *t = arg;
    int *fds = calloc((size_t)t->n, sizeof *fds);
    double t0 = ht_now();
    const char *start = "POST /v1/grad HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (int i = 0; i < t->n; i++) {
        fds[i] = ht_connect(t->port, t->src);
        if (fds[i] >= 0 && ht_send(fds[i], start, strlen(start))) close(fds[i]), fds[i] = -1;
    }
    atomic_store(&t->ready, 1);
    int open = t->n;
    while (ht_now() < t0 + t->run_s && open > 0) {
        ht_sleep_ms(t->every_ms);
        open = 0;
        for (int i = 0; i < t->n; i++) {
            if (fds[i] < 0) continue;
            char c;
            ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || ht_send(fds[i], "x", 1)) {
                close(fds[i]);
                fds[i] = -1;
                t->last_close_s = ht_now() - t0;
                continue;
            }
            open++;
        }
    }
    t->open_at_end = open;
    for (int i = 0; i < t->n; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(fds);
    return NULL;
}

/* POST SMALL every 100 ms for run_s seconds: each must be 200 within 1 s
 * (scaled). Returns the slowest. */
static double honest_client(int port, double run_s) {
    double worst = 0;
    for (double t0 = ht_now(); ht_now() < t0 + run_s; ht_sleep_ms(100)) {
        ht_resp r;
        ht_post(port, "/v1/grad", SMALL, &r);
        expect_small_ok(&r);
        double dt = r.t_done - r.t_start;
        ck_assert_msg(dt < 1.0 * ht_time_scale(), "an honest request took %.3f s", dt);
        worst = dt > worst ? dt : worst;
        ht_resp_free(&r);
    }
    return worst;
}

START_TEST(edge_slowloris_per_ip_limit) {
    ht_server s;
    /* the headers may take a minute: only the per-address limit protects */
    ht_server_start(&s, ARGS("--max-connections", "256", "--max-conns-per-ip", "64", "--header-timeout-ms",
                             "60000"));
    trickle t = {.port = s.port, .n = 300, .every_ms = 200, .run_s = 2.0 * ht_time_scale(), .src = "127.0.0.2"};
    pthread_t th;
    pthread_create(&th, NULL, trickle_main, &t);
    while (!atomic_load(&t.ready)) ht_sleep_ms(5);
    double worst = honest_client(s.port, 1.5);
    pthread_join(th, NULL);
    ck_assert_msg(t.open_at_end <= 64, "%d trickling connections from 127.0.0.2 stayed open; the limit is 64",
                  t.open_at_end);
    printf("edge_slowloris_per_ip_limit: 300 trickling from 127.0.0.2, %d held open, honest client served in "
           "<= %.3f s\n", t.open_at_end, worst);
    ht_server_stop(&s);
}
END_TEST

START_TEST(edge_header_deadline_frees_the_cap) {
    ht_server s;
    char ms[32];
    /* no per-address limit: the trickling connections take every slot */
    ht_server_start(&s, ARGS("--max-connections", "200", "--max-conns-per-ip", "0", "--header-timeout-ms",
                             ht_scaled_ms_arg(ms, sizeof ms, 500)));
    trickle t = {.port = s.port, .n = 200, .every_ms = 100, .run_s = 5.0 * ht_time_scale(), .src = "127.0.0.2"};
    pthread_t th;
    pthread_create(&th, NULL, trickle_main, &t);
    while (!atomic_load(&t.ready)) ht_sleep_ms(5);
    double t_ready = ht_now();
    /* while they hold the slots the answer is 503 with Retry-After: 1 (never
     * silence); the header deadline clears them: served within 1 s after it */
    char req[1024];
    snprintf(req, sizeof req, POST_GRAD "Content-Length: %zu\r\n\r\n%s", strlen(SMALL), SMALL);
    long status = 0;
    int refused = 0;
    double limit = t_ready + (0.5 + 1.0) * ht_time_scale();
    while (status != 200 && ht_now() < limit) {
        ht_resp r;
        ck_assert_msg(ht_raw(s.port, req, strlen(req), 5.0, &r) == 0, "no answer while the cap is taken");
        status = r.status;
        if (status != 200) {
            char ra[16];
            expect_error(&r, 503, "overloaded", NULL);
            ck_assert_msg(ht_header(&r, "Retry-After", ra, sizeof ra) && strcmp(ra, "1") == 0,
                          "503 without Retry-After: 1");
            refused++;
            ht_sleep_ms(50);
        }
        ht_resp_free(&r);
    }
    double served = ht_now() - t_ready;
    pthread_join(th, NULL);
    ck_assert_msg(status == 200, "not served within 1 s (scaled) of the header deadline, last status %ld", status);
    ck_assert_msg(t.open_at_end == 0, "%d connections still trickling their headers after %.1f s; the header "
                                      "timeout is %s ms", t.open_at_end, t.run_s, ms);
    printf("edge_header_deadline_frees_the_cap: 200 trickling connections at the cap; %d answers 503, served "
           "%.3f s after they connected; the last closed at %.3f s (--header-timeout-ms %s)\n", refused, served,
           t.last_close_s, ms);
    ht_server_stop(&s);
}
END_TEST

START_TEST(edge_min_body_rate) {
    ht_server s;
    char ms[32];
    ht_server_start(&s, ARGS("--min-body-rate", "10K", "--header-timeout-ms", ht_scaled_ms_arg(ms, sizeof ms, 300)));
    /* 1 KiB, then a byte every 50 ms: under 10 KiB/s, closed after a period */
    int fd = start_upload(s.port, NULL, 65536, 1024, NULL);
    double t0 = ht_now(), closed = -1;
    while (ht_now() < t0 + 3.0 * ht_time_scale()) {
        char c;
        ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || ht_send(fd, " ", 1)) {
            closed = ht_now() - t0;
            break;
        }
        ht_sleep_ms(50);
    }
    close(fd);
    ck_assert_msg(closed >= 0, "a body trickling under --min-body-rate was not closed within 3 s (scaled)");
    /* a body at full speed is served */
    char *body = padded_small(65536);
    ht_resp r;
    ht_post(s.port, "/v1/grad", body, &r);
    expect_small_ok(&r);
    ht_resp_free(&r);
    free(body);
    printf("edge_min_body_rate: a slow body closed after %.3f s (period %s ms)\n", closed, ms);
    ht_server_stop(&s);
}
END_TEST

START_TEST(edge_connection_cap_503) {
    ht_server s;
    ht_server_start(&s, ARGS("--max-connections", "4", "--max-conns-per-ip", "0"));
    int idle[4];
    for (int i = 0; i < 4; i++) ck_assert_int_ge(idle[i] = ht_connect(s.port, NULL), 0);
    const char *get = "GET /v1/ops HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ht_resp r;
    long status = 0;
    for (double t0 = ht_now(); status != 503 && ht_now() < t0 + 5.0 * ht_time_scale(); ht_sleep_ms(20)) {
        /* the harness's own /healthz connection may still count for a moment */
        ck_assert_msg(ht_raw(s.port, get, strlen(get), 5.0, &r) == 0, "no answer at the connection cap");
        status = r.status;
        if (status != 503) ht_resp_free(&r);
    }
    ck_assert_msg(status == 503, "at --max-connections a new connection should get 503, got %ld", status);
    expect_error(&r, 503, "overloaded", NULL);
    char v[32];
    ck_assert_msg(ht_header(&r, "Retry-After", v, sizeof v) && strcmp(v, "1") == 0, "want Retry-After: 1");
    ck_assert_msg(ht_header(&r, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0, "want Connection: close");
    ht_resp_free(&r);
    /* a liveness probe is still answered */
    const char *hz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ck_assert_int_eq(ht_raw(s.port, hz, strlen(hz), 5.0, &r), 0);
    ck_assert_msg(r.status == 200, "/healthz at the cap: %ld", r.status);
    ht_resp_free(&r);
    for (int i = 0; i < 4; i++) close(idle[i]);
    status = 0;
    for (double t0 = ht_now(); status != 200 && ht_now() < t0 + 5.0 * ht_time_scale(); ht_sleep_ms(20)) {
        ck_assert_int_eq(ht_raw(s.port, get, strlen(get), 5.0, &r), 0);
        status = r.status;
        ht_resp_free(&r);
    }
    ck_assert_msg(status == 200, "below the cap again, got %ld", status);
    ht_get(s.port, "/metrics", &r);
    ck_assert_msg(r.body && strstr(r.body, "gradd_rejected_total{reason=\"connection_limit\"}") &&
                      !strstr(r.body, "gradd_rejected_total{reason=\"connection_limit\"} 0"),
                  "the refusal should be counted:\n%s", r.body ? r.body : "");
    ht_resp_free(&r);
    ht_server_stop(&s);
}
END_TEST

Suite *suite_http_edge(void) {
    Suite *s = suite_create("http_edge");
    TCase *tc = tcase_create("edge");
    tcase_add_checked_fixture(tc, NULL, ht_server_kill_all);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, edge_smuggling_400);
    tcase_add_test(tc, edge_unknown_transfer_encoding_400);
    tcase_add_test(tc, edge_answers_before_the_body);
    tcase_add_test(tc, edge_chunked_over_max_body_413);
    tcase_add_test(tc, edge_media_types);
    tcase_add_test(tc, edge_trickling_uploads_do_not_starve);
    tcase_add_test(tc, edge_buffered_per_ip_share);
    tcase_add_test(tc, edge_slowloris_per_ip_limit);
    tcase_add_test(tc, edge_header_deadline_frees_the_cap);
    tcase_add_test(tc, edge_min_body_rate);
    tcase_add_test(tc, edge_connection_cap_503);
    suite_add_tcase(s, tc);
    return s;
}
