/* http_harness.c - gradd as a child process, HTTP through libcurl or a raw
 * socket, and JSON comparison for tests/test_http.c (see http_harness.h). */
#include "http_harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

extern char **environ;

/* ---- time ------------------------------------------------------------------ */

double ht_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ht_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

double ht_time_scale(void) {
    const char *m = getenv("GD_TEST_TIME_SCALE");
    if (!m || !*m) m = getenv("CK_TIMEOUT_MULTIPLIER");
    double v = m ? strtod(m, NULL) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

long ht_scaled_ms(double ms) { return lround(ms * ht_time_scale()); }

const char *ht_scaled_ms_arg(char *buf, size_t n, double ms) {
    snprintf(buf, n, "%ld", ht_scaled_ms(ms));
    return buf;
}

/* ---- the gradd process ------------------------------------------------------ */

const char *ht_gradd_bin(void) {
    static char path[PATH_MAX + 16];
    const char *env = getenv("GRADD_BIN");
    if (env && *env) return env;
    if (path[0]) return path;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return "gradd";
    self[n] = '\0';
    char *slash = strrchr(self, '/'); /* .../tests/test_http -> .../tests */
    if (slash) *slash = '\0';
    snprintf(path, sizeof path, "%s/../gradd", self);
    return path;
}

const char *ht_tmpdir(void) {
    static char dir[PATH_MAX];
    if (dir[0]) return dir;
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gradd-http-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    return dir;
}

void ht_tmpdir_remove(void) {
    const char *d = ht_tmpdir();
    DIR *dir = opendir(d);
    if (!dir) return;
    struct dirent *e;
    char p[PATH_MAX + 256];
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            unlink(p);
        }
    closedir(dir);
    rmdir(d);
}

/* Pids of running servers, for ht_server_kill_all (by pid: the ht_server
 * itself may live on a test's stack, gone by teardown). Only the test thread
 * touches it. */
static pid_t g_live[32];

static void live_add(ht_server *s) {
    for (int i = 0; i < 32; i++)
        if (!g_live[i]) {
            g_live[i] = s->pid;
            return;
        }
}

static void live_del(pid_t pid) {
    for (int i = 0; i < 32; i++)
        if (g_live[i] == pid) g_live[i] = 0;
}

/* A port the kernel just gave to a socket bound to port 0; it is free now,
 * and very likely still free when gradd binds it a moment later (start
 * retries otherwise). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Logs of every gradd this process started, for ht_check_logs. */
static char g_logs[64][512];
static int g_nlogs;

static void log_add(const char *path) {
    for (int i = 0; i < g_nlogs; i++)
        if (!strcmp(g_logs[i], path)) return;
    if (g_nlogs < 64) snprintf(g_logs[g_nlogs++], sizeof g_logs[0], "%s", path);
}

/* fork + execve gradd with argv, its output into log_path, the environment
 * minus GRADD_* plus extra_env ("NAME=value", NULL-terminated, may be NULL).
 * The child dies with the test process. Returns the pid. */
static pid_t spawn(char *const *argv, const char *log_path, const char *const *extra_env) {
    static char *envp[1024];
    int k = 0;
    for (char **e = environ; *e && k < 1000; e++)
        if (strncmp(*e, "GRADD_", 6) != 0) envp[k++] = *e;
    for (int i = 0; extra_env && extra_env[i] && k < 1023; i++) envp[k++] = (char *)extra_env[i];
    envp[k] = NULL;
    log_add(log_path);
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(logfd >= 0, "cannot create %s: %s", log_path, strerror(errno));
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execve(argv[0], argv, envp);
        dprintf(2, "test_http: cannot exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    return pid;
}

const char *ht_server_log_tail(const ht_server *s, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(s->log_path, "rb");
    if (!f) return buf;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)n - 1 ? size - ((long)n - 1) : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static void describe_status(int st, char *buf, size_t n) {
    if (WIFEXITED(st)) snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(buf, n, "wait status 0x%x", st);
}

/* Build argv for gradd: binary, --host, --port, the caller's args, and
 * --drain-ms 0 unless given. Strings point into the caller's storage. */
static int build_argv(char **argv, int cap, const char *port, const char *const *args, int with_listen) {
    int n = 0, has_drain = 0;
    argv[n++] = (char *)ht_gradd_bin();
    if (with_listen) {
        argv[n++] = "--host";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--port";
        argv[n++] = (char *)port;
    }
    for (int i = 0; args && args[i] && n < cap - 3; i++) {
        if (!strcmp(args[i], "--drain-ms") || !strncmp(args[i], "--drain-ms=", 11)) has_drain = 1;
        argv[n++] = (char *)args[i];
    }
    if (with_listen && !has_drain) {
        argv[n++] = "--drain-ms";
        argv[n++] = "0";
    }
    argv[n] = NULL;
    return n;
}

void ht_server_start(ht_server *s, const char *const *args) {
    static int counter;
    memset(s, 0, sizeof *s);
    const char *bin = ht_gradd_bin();
    ck_assert_msg(access(bin, X_OK) == 0, "gradd binary not found at %s (set GRADD_BIN)", bin);
    char tail[1500];
    for (int attempt = 0; attempt < 8; attempt++) {
        int port = free_port();
        ck_assert_msg(port > 0, "no free loopback port");
        char port_s[16];
        snprintf(port_s, sizeof port_s, "%d", port);
        char *argv[96];
        build_argv(argv, 96, port_s, args, 1);
        snprintf(s->log_path, sizeof s->log_path, "%s/gradd-%d-%d.log", ht_tmpdir(), (int)getpid(), ++counter);
        s->pid = spawn(argv, s->log_path, NULL);
        s->port = port;
        live_add(s);
        double deadline = ht_now() + 15.0 * ht_time_scale();
        int exited = 0;
        while (ht_now() < deadline) {
            int st;
            if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
                live_del(s->pid);
                s->pid = 0, s->status = st, exited = 1;
                break;
            }
            CURL *h = curl_easy_init();
            ht_resp r;
            ht_req rq = {.path = "/healthz", .timeout_ms = 1000};
            ht_do(h, port, &rq, &r);
            curl_easy_cleanup(h);
            long status = r.status;
            ht_resp_free(&r);
            if (status == 200) return;
            ht_sleep_ms(10);
        }
        if (!exited) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &s->status, 0);
            live_del(s->pid);
            s->pid = 0;
            ck_abort_msg("gradd did not answer GET /healthz with 200 within %.0f s on port %d; log:\n%s",
                         15.0 * ht_time_scale(), port, ht_server_log_tail(s, tail, sizeof tail));
        }
        /* Exit status 2 is a refused configuration: retrying cannot help. */
        if (WIFEXITED(s->status) && WEXITSTATUS(s->status) == 2) break;
    }
    char how[96];
    describe_status(s->status, how, sizeof how);
    ck_abort_msg("gradd failed to start (%s); log:\n%s", how, ht_server_log_tail(s, tail, sizeof tail));
}

int ht_server_run_exit(const char *const *args, char *out, size_t out_size) {
    return ht_server_run_exit_env(NULL, args, out, out_size);
}

int ht_server_run_exit_env(const char *const *env, const char *const *args, char *out, size_t out_size) {
    static int counter;
    ht_server s;
    memset(&s, 0, sizeof s);
    char *argv[96];
    build_argv(argv, 96, NULL, args, 0);
    snprintf(s.log_path, sizeof s.log_path, "%s/gradd-exit-%d-%d.log", ht_tmpdir(), (int)getpid(), ++counter);
    s.pid = spawn(argv, s.log_path, env);
    live_add(&s);
    int rc = ht_server_wait(&s, 10.0);
    if (rc) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &s.status, 0);
        live_del(s.pid);
        s.pid = 0;
    }
    if (out) ht_server_log_tail(&s, out, out_size);
    if (rc) return -1;
    return WIFEXITED(s.status) ? WEXITSTATUS(s.status) : 128 + (WIFSIGNALED(s.status) ? WTERMSIG(s.status) : 0);
}

void ht_server_signal(ht_server *s, int sig) {
    if (s->pid > 0) kill(s->pid, sig);
}

int ht_server_wait(ht_server *s, double timeout_s) {
    if (s->pid <= 0) return 0;
    double deadline = ht_now() + timeout_s * ht_time_scale();
    for (;;) {
        int st;
        pid_t p = waitpid(s->pid, &st, WNOHANG);
        if (p == s->pid) {
            live_del(s->pid);
            s->status = st;
            s->pid = 0;
            return 0;
        }
        if (ht_now() > deadline) return -1;
        ht_sleep_ms(5);
    }
}

/* The first line of a sanitizer report in the file at path, into line;
 * NULL when there is none. */
static const char *sanitizer_line(const char *path, char *line, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    const char *found = NULL;
    while (!found && fgets(line, (int)n, f))
        if (strstr(line, "Sanitizer") || strstr(line, "runtime error:")) found = line;
    fclose(f);
    return found;
}

void ht_server_stop(ht_server *s) {
    char tail[1500], how[96];
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        if (ht_server_wait(s, 30.0)) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &s->status, 0);
            live_del(s->pid);
            s->pid = 0;
            ck_abort_msg("gradd did not exit within %.0f s of SIGTERM; log:\n%s", 30.0 * ht_time_scale(),
                         ht_server_log_tail(s, tail, sizeof tail));
        }
    }
    describe_status(s->status, how, sizeof how);
    ck_assert_msg(WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0,
                  "gradd should exit with status 0 after SIGTERM, got %s; log:\n%s", how,
                  ht_server_log_tail(s, tail, sizeof tail));
    char line[512];
    ck_assert_msg(!sanitizer_line(s->log_path, line, sizeof line), "sanitizer report in gradd's log: %s--- log:\n%s",
                  line, ht_server_log_tail(s, tail, sizeof tail));
}

int ht_logs_clean(char *why, size_t n) {
    char line[512], tail[1500];
    for (int i = 0; i < g_nlogs; i++) {
        if (!sanitizer_line(g_logs[i], line, sizeof line)) continue;
        ht_server s = {0};
        _Static_assert(sizeof s.log_path == sizeof g_logs[0], "log paths are copied whole");
        memcpy(s.log_path, g_logs[i], sizeof s.log_path);
        snprintf(why, n, "sanitizer report in %s: %s--- end of that log:\n%s", g_logs[i], line,
                 ht_server_log_tail(&s, tail, sizeof tail));
        return -1;
    }
    return 0;
}

void ht_check_logs(void) {
    char why[2400];
    int rc = ht_logs_clean(why, sizeof why);
    ck_assert_msg(rc == 0, "%s", why);
}

void ht_server_kill_all(void) {
    for (int i = 0; i < 32; i++) {
        if (!g_live[i]) continue;
        kill(g_live[i], SIGKILL);
        waitpid(g_live[i], NULL, 0);
        g_live[i] = 0;
    }
}

/* ---- HTTP with libcurl ------------------------------------------------------ */

typedef struct xfer {
    ht_resp *r;
    size_t bcap, hcap;
    const char *up; /* chunked upload */
    size_t up_len, up_off;
} xfer;

static int grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *q = realloc(*p, c);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    size_t n = sz * nm;
    if (grow(&x->r->body, &x->bcap, x->r->body_len + n + 1)) return 0;
    memcpy(x->r->body + x->r->body_len, p, n);
    x->r->body_len += n;
    x->r->body[x->r->body_len] = '\0';
    return n;
}

/* Keeps only the last response's header block (a 100 Continue comes first). */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    size_t n = sz * nm;
    if (n >= 5 && !memcmp(p, "HTTP/", 5)) x->r->headers_len = 0;
    if (grow(&x->r->headers, &x->hcap, x->r->headers_len + n + 1)) return 0;
    memcpy(x->r->headers + x->r->headers_len, p, n);
    x->r->headers_len += n;
    x->r->headers[x->r->headers_len] = '\0';
    return n;
}

/* Chunked upload: hand out at most 1000 bytes per call, so the body goes in
 * several chunks. */
static size_t on_read(char *buf, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    size_t n = sz * nm, left = x->up_len - x->up_off;
    if (n > 1000) n = 1000;
    if (n > left) n = left;
    memcpy(buf, x->up + x->up_off, n);
    x->up_off += n;
    return n;
}

int ht_do(CURL *h, int port, const ht_req *rq, ht_resp *r) {
    memset(r, 0, sizeof *r);
    xfer x = {.r = r};
    grow(&r->body, &x.bcap, 1);
    grow(&r->headers, &x.hcap, 1);
    if (r->body) r->body[0] = '\0';
    if (r->headers) r->headers[0] = '\0';
    int own = !h;
    if (own) h = curl_easy_init();
    else curl_easy_reset(h);
    if (!h) return r->curl_code = CURLE_FAILED_INIT;
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, rq->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long tmo = rq->timeout_ms > 0 ? rq->timeout_ms : 60000;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(tmo * ht_time_scale()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    if (rq->progress) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, rq->progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, rq->progress_data);
    }
    struct curl_slist *hl = NULL;
    for (int i = 0; rq->headers && rq->headers[i]; i++) hl = curl_slist_append(hl, rq->headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    const char *method = rq->method ? rq->method : rq->body ? "POST" : "GET";
    size_t blen = rq->body ? (rq->body_len ? rq->body_len : strlen(rq->body)) : 0;
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (rq->chunked) {
            x.up = rq->body, x.up_len = blen;
            hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &x);
        } else if (rq->body || !strcmp(method, "POST")) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    r->t_start = ht_now();
    CURLcode rc = curl_easy_perform(h);
    r->t_done = ht_now();
    r->curl_code = (int)rc;
    if (rc == CURLE_OK) {
        double first = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME, &first) == CURLE_OK) r->t_first = r->t_start + first;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    if (own) curl_easy_cleanup(h);
    return (int)rc;
}

void ht_resp_free(ht_resp *r) {
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

const char *ht_header(const ht_resp *r, const char *name, char *buf, size_t n) {
    const char *found = NULL;
    size_t nl = strlen(name);
    if (!r->headers) return NULL;
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
            const char *v = line + nl + 1;
            const char *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
            size_t m = (size_t)(end - v) < n - 1 ? (size_t)(end - v) : n - 1;
            memcpy(buf, v, m);
            buf[m] = '\0';
            found = buf;
        }
        line = eol ? eol + 1 : NULL;
    }
    return found;
}

void ht_get(int port, const char *path, ht_resp *r) {
    ht_req rq = {.path = path};
    int rc = ht_do(NULL, port, &rq, r);
    ck_assert_msg(rc == CURLE_OK, "GET %s: transfer failed: %s", path, curl_easy_strerror((CURLcode)rc));
}

void ht_post(int port, const char *path, const char *body, ht_resp *r) {
    ht_req rq = {.path = path, .body = body};
    int rc = ht_do(NULL, port, &rq, r);
    ck_assert_msg(rc == CURLE_OK, "POST %s: transfer failed: %s", path, curl_easy_strerror((CURLcode)rc));
}

/* Split a raw response in buf (len bytes) into r. Returns 1 when it is
 * complete (headers plus Content-Length bytes of body), 0 when more is needed. */
static int raw_parse(const char *buf, size_t len, int eof, ht_resp *r) {
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (!memcmp(buf + i, "\r\n\r\n", 4)) {
            end = buf + i + 4;
            break;
        }
    if (!end) return 0;
    size_t hlen = (size_t)(end - buf);
    long long clen = -1;
    free(r->headers);
    r->headers = malloc(hlen + 1);
    memcpy(r->headers, buf, hlen);
    r->headers[hlen] = '\0';
    r->headers_len = hlen;
    char v[64];
    if (ht_header(r, "Content-Length", v, sizeof v)) clen = atoll(v);
    size_t have = len - hlen;
    if (clen >= 0 && have < (size_t)clen && !eof) return 0;
    if (clen < 0 && !eof) return 0;
    size_t blen = clen >= 0 && (size_t)clen < have ? (size_t)clen : have;
    free(r->body);
    r->body = malloc(blen + 1);
    memcpy(r->body, end, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    r->status = 0;
    if (len > 12 && !memcmp(buf, "HTTP/1.", 7)) r->status = strtol(buf + 9, NULL, 10);
    return 1;
}

int ht_parse_response(const char *buf, size_t len, ht_resp *r) { return raw_parse(buf, len, 1, r) ? 0 : -1; }

int ht_connect(int port, const char *src) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, src, &b.sin_addr) != 1 || bind(fd, (struct sockaddr *)&b, sizeof b)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

int ht_send(int fd, const void *data, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    return 0;
}

int ht_read_response(int fd, double timeout_s, ht_resp *r) {
    double deadline = ht_now() + timeout_s * ht_time_scale();
    char *buf = NULL;
    size_t blen = 0, cap = 0;
    int done = 0;
    while (!done && ht_now() < deadline) {
        if (grow(&buf, &cap, blen + 4096)) break;
        ssize_t n = recv(fd, buf + blen, 4096, 0);
        if (n > 0) {
            blen += (size_t)n;
            done = raw_parse(buf, blen, 0, r);
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            done = raw_parse(buf ? buf : "", blen, 1, r);
            break;
        }
    }
    r->t_done = ht_now();
    free(buf);
    if (!done || !r->status) {
        r->status = 0;
        return -1;
    }
    return 0;
}

long ht_read_to_close(int fd, double timeout_s, char *buf, size_t cap) {
    double deadline = ht_now() + timeout_s * ht_time_scale();
    size_t len = 0;
    while (ht_now() < deadline) {
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            size_t k = (size_t)n < cap - len ? (size_t)n : cap - len;
            memcpy(buf + len, tmp, k);
            len += k;
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            if (cap) buf[len < cap ? len : cap - 1] = '\0';
            return (long)len;
        }
    }
    if (cap) buf[len < cap ? len : cap - 1] = '\0';
    return -1;
}

int ht_raw(int port, const char *data, size_t len, double timeout_s, ht_resp *r) {
    memset(r, 0, sizeof *r);
    r->t_start = ht_now();
    int fd = ht_connect(port, NULL);
    if (fd < 0) return -1;
    ht_send(fd, data, len);
    int rc = ht_read_response(fd, timeout_s, r);
    close(fd);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------- */

json_t *ht_parse(const char *text, size_t len, char *why, size_t why_n) {
    json_error_t e;
    json_t *j = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &e);
    if (!j) snprintf(why, why_n, "not JSON (%s at line %d column %d): %.300s", e.text, e.line, e.column,
                     text ? text : "");
    return j;
}

json_t *ht_json(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        fprintf(stderr, "test bug: bad expected JSON (%s, col %d): %s\n", e.text, e.column, text);
        abort();
    }
    return j;
}

static void dump(const json_t *j, char *buf, size_t n) {
    if (!j) {
        snprintf(buf, n, "(absent)");
        return;
    }
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    const char *kind = json_is_integer(j) ? " (integer)" : json_is_real(j) ? " (real)" : "";
    snprintf(buf, n, "%.220s%s%s", s ? s : "?", s && strlen(s) > 220 ? "..." : "", kind);
    free(s);
}

static int diff_at(const json_t *g, const json_t *w, char *path, size_t plen, char *why, size_t n) {
    char a[300], b[300];
    size_t base = strlen(path);
    if (json_is_object(w) && json_is_object(g)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)w, k, v) {
            snprintf(path + base, plen - base, ".%s", k);
            if (diff_at(json_object_get(g, k), v, path, plen, why, n)) return -1;
        }
        json_object_foreach((json_t *)g, k, v) {
            if (json_object_get(w, k)) continue;
            snprintf(path + base, plen - base, ".%s", k);
            dump(v, a, sizeof a);
            snprintf(why, n, "%s: unexpected key with value %s", path, a);
            return -1;
        }
        path[base] = '\0';
        return 0;
    }
    if (json_is_array(w) && json_is_array(g) && json_array_size(w) == json_array_size(g)) {
        for (size_t i = 0; i < json_array_size(w); i++) {
            snprintf(path + base, plen - base, "[%zu]", i);
            if (diff_at(json_array_get(g, i), json_array_get(w, i), path, plen, why, n)) return -1;
        }
        path[base] = '\0';
        return 0;
    }
    if (g && json_equal((json_t *)g, (json_t *)w)) return 0;
    dump(g, a, sizeof a);
    dump(w, b, sizeof b);
    snprintf(why, n, "%s: got %s, expected %s", path, a, b);
    return -1;
}

int ht_json_diff(const json_t *got, const json_t *want, char *why, size_t why_n) {
    char path[1024] = "$";
    return diff_at(got, want, path, sizeof path, why, why_n);
}

int ht_take_stats(json_t *body, int nodes, char *why, size_t why_n) {
    static const char *const keys[] = {"nodes", "forward_us", "backward_us", "queue_us", "total_us", "peak_bytes"};
    json_t *st = json_object_get(body, "stats");
    if (!json_is_object(st)) {
        snprintf(why, why_n, "$.stats: missing or not an object");
        return -1;
    }
    for (size_t i = 0; i < 6; i++) {
        json_t *v = json_object_get(st, keys[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            snprintf(why, why_n, "$.stats.%s: missing or not a non-negative integer", keys[i]);
            return -1;
        }
    }
    if (json_object_size(st) != 6) {
        snprintf(why, why_n, "$.stats: has %zu keys, expected exactly the 6 of the contract",
                 json_object_size(st));
        return -1;
    }
    if (nodes >= 0 && json_integer_value(json_object_get(st, "nodes")) != nodes) {
        snprintf(why, why_n, "$.stats.nodes: got %lld, expected %d",
                 (long long)json_integer_value(json_object_get(st, "nodes")), nodes);
        return -1;
    }
    json_object_del(body, "stats");
    return 0;
}

const char *ht_real(char *buf, double v) {
    if (isnan(v)) return strcpy(buf, "\"NaN\"");
    if (isinf(v)) return strcpy(buf, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 40, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    return buf;
}

/* ---- tensors ---------------------------------------------------------------- */

static int elem_value(const json_t *e, double *out) {
    if (json_is_number(e)) {
        *out = json_number_value(e);
        return 0;
    }
    if (json_is_string(e)) {
        const char *s = json_string_value(e);
        if (!strcmp(s, "NaN")) *out = NAN;
        else if (!strcmp(s, "Infinity")) *out = INFINITY;
        else if (!strcmp(s, "-Infinity")) *out = -INFINITY;
        else return -1;
        return 0;
    }
    return -1;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with padding into a malloc'd buffer; -1 when malformed. */
static long long unb64(const char *s, unsigned char **out) {
    size_t n = strlen(s);
    if (n % 4) return -1;
    unsigned char *o = malloc(n / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) v[j] = s[i + j] == '=' ? -2 : b64val((unsigned char)s[i + j]);
        if (v[0] < 0 || v[1] < 0 || v[2] == -1 || v[3] == -1 || (v[2] == -2 && v[3] != -2) ||
            ((v[2] == -2 || v[3] == -2) && i + 4 != n)) {
            free(o);
            return -1;
        }
        o[k++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0) o[k++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0) o[k++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    *out = o;
    return (long long)k;
}

char *ht_b64(const unsigned char *p, size_t n) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        o[k++] = al[v >> 18 & 63];
        o[k++] = al[v >> 12 & 63];
        o[k++] = i + 1 < n ? al[v >> 6 & 63] : '=';
        o[k++] = i + 2 < n ? al[v & 63] : '=';
    }
    o[k] = '\0';
    return o;
}

/* Little-endian raw elements to doubles. */
static void from_raw(const unsigned char *p, const char *dtype, long long n, double *v) {
    for (long long i = 0; i < n; i++) {
        if (!strcmp(dtype, "float32")) {
            uint32_t u = 0;
            for (int b = 3; b >= 0; b--) u = u << 8 | p[i * 4 + b];
            float f;
            memcpy(&f, &u, 4);
            v[i] = f;
        } else {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = u << 8 | p[i * 8 + b];
            if (!strcmp(dtype, "int64")) {
                int64_t s;
                memcpy(&s, &u, 8);
                v[i] = (double)s;
            } else {
                memcpy(&v[i], &u, 8);
            }
        }
    }
}

static int nested_fill(const json_t *j, ht_tensor *t, int depth, long long *k, int *ints, char *why, size_t n) {
    if (depth == t->rank) {
        if (elem_value(j, &t->v[*k])) {
            snprintf(why, n, "nested tensor: element %lld is not a number", *k);
            return -1;
        }
        if (!json_is_integer(j)) *ints = 0;
        (*k)++;
        return 0;
    }
    if (!json_is_array(j) || (long long)json_array_size(j) != t->shape[depth]) {
        snprintf(why, n, "nested tensor is not rectangular at depth %d", depth);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(j); i++)
        if (nested_fill(json_array_get(j, i), t, depth + 1, k, ints, why, n)) return -1;
    return 0;
}

int ht_tensor_read(const json_t *j, const unsigned char *bin, size_t bin_len, ht_tensor *t, char *why,
                   size_t why_n) {
    memset(t, 0, sizeof *t);
    t->offset = t->nbytes = -1;
    strcpy(t->dtype, "float64");
    if (json_is_number(j) || json_is_string(j)) {
        strcpy(t->form, "number");
        t->n = 1;
        t->v = malloc(sizeof(double));
        if (json_is_integer(j)) strcpy(t->dtype, "int64");
        if (elem_value(j, t->v)) {
            snprintf(why, why_n, "tensor: a string that is not NaN/Infinity/-Infinity");
            return -1;
        }
        return 0;
    }
    if (json_is_array(j)) {
        strcpy(t->form, "nested");
        const json_t *d = j;
        t->n = 1;
        while (json_is_array(d) && t->rank < 8) {
            t->shape[t->rank++] = (long long)json_array_size(d);
            t->n *= (long long)json_array_size(d);
            d = json_array_size(d) ? json_array_get(d, 0) : NULL;
        }
        t->v = malloc(sizeof(double) * (size_t)(t->n + 1));
        long long k = 0;
        int ints = 1;
        if (nested_fill(j, t, 0, &k, &ints, why, why_n)) return -1;
        if (ints && t->n > 0) strcpy(t->dtype, "int64");
        return 0;
    }
    if (!json_is_object(j)) {
        snprintf(why, why_n, "tensor: neither a number, a list nor an object");
        return -1;
    }
    const json_t *js = json_object_get(j, "shape"), *jt = json_object_get(j, "dtype");
    if (!json_is_array(js) || json_array_size(js) > 8) {
        snprintf(why, why_n, "tensor object without a valid \"shape\"");
        return -1;
    }
    t->n = 1;
    for (size_t i = 0; i < json_array_size(js); i++) {
        if (!json_is_integer(json_array_get(js, i))) {
            snprintf(why, why_n, "tensor shape: dimension %zu is not an integer", i);
            return -1;
        }
        t->shape[t->rank++] = json_integer_value(json_array_get(js, i));
        t->n *= t->shape[t->rank - 1];
    }
    if (jt) {
        if (!json_is_string(jt) || (strcmp(json_string_value(jt), "float64") && strcmp(json_string_value(jt), "float32") &&
                                    strcmp(json_string_value(jt), "int64"))) {
            snprintf(why, why_n, "tensor: bad dtype");
            return -1;
        }
        snprintf(t->dtype, sizeof t->dtype, "%s", json_string_value(jt));
    }
    size_t esize = strcmp(t->dtype, "float32") ? 8 : 4;
    t->v = malloc(sizeof(double) * (size_t)(t->n + 1));
    const json_t *jd = json_object_get(j, "data"), *jb = json_object_get(j, "b64"),
                 *jo = json_object_get(j, "offset"), *jn = json_object_get(j, "nbytes");
    if (jd) {
        strcpy(t->form, "flat");
        if (!json_is_array(jd) || (long long)json_array_size(jd) != t->n) {
            snprintf(why, why_n, "flat tensor: \"data\" does not have %lld elements", t->n);
            return -1;
        }
        for (long long i = 0; i < t->n; i++)
            if (elem_value(json_array_get(jd, (size_t)i), &t->v[i])) {
                snprintf(why, why_n, "flat tensor: element %lld is not a number", i);
                return -1;
            }
        return 0;
    }
    if (!jt) {
        snprintf(why, why_n, "raw tensor (b64/binary) without \"dtype\"");
        return -1;
    }
    if (jb) {
        strcpy(t->form, "b64");
        unsigned char *raw = NULL;
        long long n = json_is_string(jb) ? unb64(json_string_value(jb), &raw) : -1;
        if (n != t->n * (long long)esize) {
            free(raw);
            snprintf(why, why_n, "b64 tensor: %lld bytes decoded, expected %lld", n, t->n * (long long)esize);
            return -1;
        }
        from_raw(raw, t->dtype, t->n, t->v);
        free(raw);
        return 0;
    }
    if (jo && jn) {
        strcpy(t->form, "binary");
        if (!json_is_integer(jo) || !json_is_integer(jn)) {
            snprintf(why, why_n, "binary tensor: offset/nbytes not integers");
            return -1;
        }
        t->offset = json_integer_value(jo);
        t->nbytes = json_integer_value(jn);
        if (t->nbytes != t->n * (long long)esize || t->offset < 0 || !bin ||
            (unsigned long long)(t->offset + t->nbytes) > bin_len) {
            snprintf(why, why_n, "binary tensor: offset %lld nbytes %lld does not fit %lld elements of %s in a "
                     "%zu-byte binary section", t->offset, t->nbytes, t->n, t->dtype, bin_len);
            return -1;
        }
        from_raw(bin + t->offset, t->dtype, t->n, t->v);
        return 0;
    }
    snprintf(why, why_n, "tensor object with none of data, b64, offset+nbytes");
    return -1;
}

void ht_tensor_free(ht_tensor *t) {
    free(t->v);
    t->v = NULL;
}
