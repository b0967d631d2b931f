/* http_harness.h - what tests/test_http.c needs to drive a real gradd over
 * loopback: start the binary on a free port and stop it, HTTP requests with
 * libcurl (or a raw socket, for what curl will not send), and JSON
 * comparison with a readable first difference.
 *
 * The harness never calls ck_assert from a thread other than the test's own:
 * functions meant for client threads return a status and a message instead.
 * Servers are children of the test process that die with it
 * (PR_SET_PDEATHSIG), so a test that fails or times out leaves none behind.
 *
 * Time scale: GD_TEST_TIME_SCALE (a number >= 1, default 1) stretches every
 * time window of these tests, so that they hold on a loaded machine and in
 * the slow builds (scripts/test.sh raises it for ASan, TSan and coverage):
 * the harness's own waits and HTTP timeouts, and each window a test derives
 * with ht_scaled_ms() (gradd's --drain-ms and --deadline-ms in the drain and
 * deadline tests, how long a test waits for /readyz to turn 503, ...).
 * test_http also hands it to Check as CK_TIMEOUT_MULTIPLIER when that is not
 * set, so the test cases' timeouts stretch by the same factor.  Without
 * GD_TEST_TIME_SCALE, CK_TIMEOUT_MULTIPLIER (if set) is the scale.
 * Nothing is ever shrunk: only what could pass by luck on a fast machine
 * would, and a window stretched by S still tests the same rule. */
#ifndef GD_HTTP_HARNESS_H
#define GD_HTTP_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

/* ---- time ------------------------------------------------------------------ */

double ht_now(void);            /* CLOCK_MONOTONIC seconds */
void ht_sleep_ms(int ms);
/* The time scale S (see the top of this file): GD_TEST_TIME_SCALE, else
 * CK_TIMEOUT_MULTIPLIER, else 1; never below 1. */
double ht_time_scale(void);
/* ms x S, rounded: a window of the test in milliseconds, stretched. */
long ht_scaled_ms(double ms);
/* The same as a decimal string in buf (for gradd flags such as --drain-ms);
 * returns buf. */
const char *ht_scaled_ms_arg(char *buf, size_t n, double ms);

/* ---- the gradd process ------------------------------------------------------ */

typedef struct ht_server {
    pid_t pid;          /* 0 once reaped */
    int port;
    int status;         /* waitpid status once reaped */
    char log_path[512]; /* gradd's stdout + stderr */
} ht_server;

/* The gradd binary: $GRADD_BIN, else ../gradd beside this test binary's
 * directory (the build tree's top). */
const char *ht_gradd_bin(void);

/* A directory for logs and token files, created once per process (mkdtemp
 * under $TMPDIR or /tmp). The returned string is static. */
const char *ht_tmpdir(void);
/* Remove the directory and the files in it (after a run that passed). */
void ht_tmpdir_remove(void);

/* Start gradd on 127.0.0.1 and a free port with the extra arguments `args`
 * (NULL-terminated; NULL for none), then wait until GET /healthz answers 200.
 * "--drain-ms 0" is added unless args set --drain-ms, so that stopping is
 * quick. GRADD_* variables of the test's environment are not passed on.
 * Retries on another port when the chosen one was taken meanwhile; fails the
 * test (ck_assert, test thread only) with gradd's log when it cannot start. */
void ht_server_start(ht_server *s, const char *const *args);

/* Run gradd with exactly args (no --host/--port added) and wait up to 10 s
 * (scaled) for it to exit, as for --help or a refused flag. Returns its exit
 * status (-1: still running, then killed; 128 + n: killed by signal n), and
 * the end of its output in out (may be NULL). */
int ht_server_run_exit(const char *const *args, char *out, size_t out_size);

/* The same with extra "NAME=value" variables in gradd's environment (env,
 * NULL-terminated; GRADD_* ones included), e.g. a bad GRADD_PORT. */
int ht_server_run_exit_env(const char *const *env, const char *const *args, char *out, size_t out_size);

/* Send sig to the server. */
void ht_server_signal(ht_server *s, int sig);
/* Wait up to timeout_s (scaled) for the server to exit. Returns 0 when it did
 * (status in s->status), -1 on timeout. */
int ht_server_wait(ht_server *s, double timeout_s);
/* SIGTERM, wait, and assert (test thread only) that gradd exited with status
 * 0; its log is in the failure message otherwise. */
void ht_server_stop(ht_server *s);
/* SIGKILL and reap every server still running (a checked fixture's teardown). */
void ht_server_kill_all(void);
/* The logs of every gradd this process started must hold no sanitizer
 * report (ASan, UBSan's "runtime error:", TSan, LeakSanitizer): a report that
 * did not change an exit status, or came from a server that was killed, still
 * fails the test. ht_logs_clean returns 0, or -1 with the first report and
 * its log in why; ht_check_logs asserts it (test thread only). ht_server_stop
 * checks the stopped server's log the same way. */
int ht_logs_clean(char *why, size_t n);
void ht_check_logs(void);
/* The last `n - 1` bytes at most of gradd's log, NUL-terminated, into buf. */
const char *ht_server_log_tail(const ht_server *s, char *buf, size_t n);

/* ---- HTTP with libcurl ------------------------------------------------------ */

typedef struct ht_req {
    const char *method;           /* NULL: "POST" when body is set, else "GET" */
    const char *path;             /* "/v1/grad" */
    const char *body;             /* NULL: none */
    size_t body_len;              /* 0 with a body: strlen(body) */
    const char *const *headers;   /* NULL-terminated "Name: value" lines, or NULL */
    int chunked;                  /* send the body with Transfer-Encoding: chunked */
    int timeout_ms;               /* 0: 60 s, scaled */
    curl_xferinfo_callback progress; /* optional libcurl progress hook */
    void *progress_data;
} ht_req;

typedef struct ht_resp {
    long status;      /* 0 when the transfer failed */
    int curl_code;    /* CURLcode */
    char *body;       /* malloc'd, NUL-terminated past body_len; owned */
    size_t body_len;
    char *headers;    /* the final response's header block, malloc'd; owned */
    size_t headers_len;
    double t_start, t_done; /* ht_now() around the transfer */
    double t_first;         /* when the first response byte arrived (libcurl requests only; else 0) */
} ht_resp;

/* Perform one request on handle h (NULL: a fresh handle, closed after).
 * Reusing a handle keeps its connection alive between requests. Never
 * asserts; returns the CURLcode (also in r->curl_code). r is overwritten:
 * free it with ht_resp_free. */
int ht_do(CURL *h, int port, const ht_req *rq, ht_resp *r);
void ht_resp_free(ht_resp *r);
/* The value of the last header `name` (case-insensitive), trimmed, copied into
 * buf; NULL when absent. */
const char *ht_header(const ht_resp *r, const char *name, char *buf, size_t n);
/* Shorthands on a fresh handle; they assert that the transfer itself worked. */
void ht_get(int port, const char *path, ht_resp *r);
void ht_post(int port, const char *path, const char *body, ht_resp *r);

/* Send `data` verbatim on a new TCP connection, then read one response until
 * its body is complete (Content-Length) or the peer closes, within timeout_s
 * (scaled). Parses the status line, headers and body into r (t_done is when
 * the response was complete). Returns 0, or -1 with r->status 0 on a
 * connection error or timeout. */
int ht_raw(int port, const char *data, size_t len, double timeout_s, ht_resp *r);

/* A TCP connection to 127.0.0.1:port from the local address src (such as
 * "127.0.0.2", for a second client; NULL: the kernel's choice), with a 50 ms
 * receive timeout. The socket, or -1. */
int ht_connect(int port, const char *src);
/* Send all of data on fd; 0, or -1 when the peer closed or reset. */
int ht_send(int fd, const void *data, size_t len);
/* Read one response on fd within timeout_s (scaled) into r (which must be
 * zeroed or freed; t_done is set), as ht_raw does; fd stays open. */
int ht_read_response(int fd, double timeout_s, ht_resp *r);
/* Read what fd receives until the peer closes (or resets) it, within
 * timeout_s (scaled), keeping the first cap - 1 bytes NUL-terminated in buf.
 * Returns the bytes kept, or -1 when the connection was still open at the
 * timeout. */
long ht_read_to_close(int fd, double timeout_s, char *buf, size_t cap);
/* Parse a whole response (status line, headers, body) from buf into r
 * (zeroed or freed). 0, or -1 when the header block is incomplete. */
int ht_parse_response(const char *buf, size_t len, ht_resp *r);

/* ---- JSON ------------------------------------------------------------------- */

/* Parse r's body (or its first json_len bytes; 0 = all) strictly: duplicate
 * keys rejected. NULL on failure, with the reason in why. */
json_t *ht_parse(const char *text, size_t len, char *why, size_t why_n);
/* Parse text written by the test (any JSON value); aborts the process on a
 * test bug (malformed expectation). */
json_t *ht_json(const char *text);

/* Structural equality with jansson's rules (an integer never equals a real:
 * "2" is not "2.0"), object key order ignored. Returns 0 when equal, else -1
 * and the JSON path of the first difference with both values in why. */
int ht_json_diff(const json_t *got, const json_t *want, char *why, size_t why_n);

/* Check and remove "stats" from a 200 body: an object with exactly the
 * integer keys nodes (== nodes unless nodes < 0), forward_us, backward_us,
 * queue_us, total_us, peak_bytes, all >= 0. Returns 0 or -1 with why. */
int ht_take_stats(json_t *body, int nodes, char *why, size_t why_n);

/* A shortest round-trip decimal that jansson reads as a real ("2.0", not
 * "2"), for building expected bodies; buf holds at least 40 bytes. */
const char *ht_real(char *buf, double v);

/* A decoded response tensor in any form: number, nested, flat, b64 or binary
 * reference (bin/bin_len: the response's binary section). */
typedef struct ht_tensor {
    char dtype[16];     /* "float64", "float32", "int64" */
    int rank;
    long long shape[8];
    long long n;
    double *v;          /* n values (malloc'd; owned) */
    long long offset, nbytes; /* binary form only, else -1 */
    char form[8];       /* "number", "nested", "flat", "b64", "binary" */
} ht_tensor;

/* Returns 0, or -1 with why. Free with ht_tensor_free. */
int ht_tensor_read(const json_t *j, const unsigned char *bin, size_t bin_len, ht_tensor *t, char *why,
                   size_t why_n);
void ht_tensor_free(ht_tensor *t);

/* Standard base64 (with padding) of n bytes, malloc'd. */
char *ht_b64(const unsigned char *p, size_t n);

#endif
