/* config.c - flags and GRADD_* environment variables into a gd_config (see
 * config.h). One table row per setting holds its flag, variable, kind,
 * range, default and help line, so --help, parsing and messages agree.
 * Values that depend on others (workers, blas-threads, queue,
 * max-buffered) are derived after everything is read. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cpus.h"
#include "core/error.h"
#include "gd_config.h"
#include "gd_revision.h"

#define KIB ((int64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

typedef enum kind {
    K_STR,     /* char array at off, size `max` */
    K_INT,     /* int at off */
    K_I64,     /* int64_t at off */
    K_SIZE,    /* int64_t bytes at off; suffixes K, M, G (KiB, MiB, GiB) */
    K_FORMAT,  /* gd_log_format at off: json | text */
    K_TOKEN,   /* a path: the token is read from the file */
    K_PATH,    /* a file path (any characters but control ones), char array at off, size `max` */
    K_ACTION,  /* no value: sets cfg->action to `min` */
    K_SWITCH,  /* int at off: the flag alone sets 1; its variable takes 1/true/yes or 0/false/no */
} kind;

typedef struct opt {
    const char *flag;  /* without the leading "--" */
    const char *env;   /* NULL: flag only */
    kind k;
    size_t off;
    int64_t min, max;  /* K_INT/K_I64/K_SIZE: the accepted range; K_STR: max = buffer size */
    const char *arg;   /* the value's name in --help */
    const char *dflt;  /* default as --help shows it */
    const char *help;
} opt;

#define OFF(field) offsetof(gd_config, field)

/* The order here is the order of --help. */
static const opt opts[] = {
    {"host", "GRADD_HOST", K_STR, OFF(host), 0, GD_HOST_MAX, "ADDR", "127.0.0.1",
     "address to listen on (0.0.0.0 or :: for every interface)"},
    {"port", "GRADD_PORT", K_INT, OFF(port), 0, 65535, "N", "8080", "TCP port; 0 picks a free one (see the log)"},
    {"workers", "GRADD_WORKERS", K_INT, OFF(workers), 1, 1024, "N", "usable CPUs / blas-threads",
     "compute threads"},
    {"blas-threads", "GRADD_BLAS_THREADS", K_INT, OFF(blas_threads), 1, 1024, "N",
     "usable CPUs / workers (1 when neither is set)",
     "OpenBLAS threads (process-wide); workers x blas-threads must fit the usable CPUs"},
    {"queue", "GRADD_QUEUE", K_INT, OFF(queue), 1, 1000000, "N", "64 x workers",
     "requests that may wait for a worker; when full: 503 with Retry-After"},
    {"max-body", "GRADD_MAX_BODY", K_SIZE, OFF(max_body), 1, 64 * GIB, "BYTES", "64M",
     "largest request body (413 too_large)"},
    {"max-buffered", "GRADD_MAX_BUFFERED", K_SIZE, OFF(max_buffered), 1, 1024 * GIB, "BYTES", "4 x max-body",
     "request bodies held across all connections, counted as they arrive (503 past it)"},
    {"max-buffered-per-ip", "GRADD_MAX_BUFFERED_PER_IP", K_SIZE, OFF(max_buffered_per_ip), 1, 1024 * GIB, "BYTES",
     "max-buffered / 4, at least max-body", "request bodies held for one client address (503 past it)"},
    {"max-elements", "GRADD_MAX_ELEMENTS", K_I64, OFF(max_elements), 1, (int64_t)1 << 40, "N", "16777216",
     "elements of any one tensor, sent or computed (413 too_large)"},
    {"max-nodes", "GRADD_MAX_NODES", K_INT, OFF(max_nodes), 1, 10000000, "N", "10000",
     "nodes of one graph (413 too_large)"},
    {"max-inputs", "GRADD_MAX_INPUTS", K_INT, OFF(max_inputs), 1, 10000000, "N", "1024",
     "inputs of one node (413 too_large)"},
    {"max-edges", "GRADD_MAX_EDGES", K_INT, OFF(max_edges), 1, 100000000, "N", "100000",
     "inputs of all the nodes of one graph together (413 too_large)"},
    {"explain-max-nodes", "GRADD_EXPLAIN_MAX_NODES", K_INT, OFF(explain_max_nodes), 1, 10000000, "N", "2000",
     "nodes of a graph POST /v1/explain draws (its layout grows faster than linearly; 413 too_large)"},
    {"inline-work", "GRADD_INLINE_WORK", K_I64, OFF(inline_work), 0, (int64_t)1 << 40, "N", "16384",
     "a /v1/grad or /v1/eval whose body is at most 16 KiB and whose graph's work is at most N element operations "
     "is run on the network thread, skipping the hand-over to a worker (0: every request goes to a worker)"},
    {"max-memory", "GRADD_MAX_MEMORY", K_SIZE, OFF(max_memory), MIB, 1024 * GIB, "BYTES", "1G",
     "memory one request may hold: parsed JSON, computation, encoded response (413 too_large)"},
    {"graph-cache", "GRADD_GRAPH_CACHE", K_SIZE, OFF(graph_cache), KIB, 1024 * GIB, "BYTES", "64M",
     "registered graphs held (POST /v1/graphs), and graphs sent inline more than once, least recently used dropped first; a larger graph is 413"},
    {"idle-trim-ms", "GRADD_IDLE_TRIM_MS", K_I64, OFF(idle_trim_ms), 0, 86400000, "MS", "10000",
     "after this long without work, hand cached memory back to the system (0: never)"},
    {"deadline-ms", "GRADD_DEADLINE_MS", K_I64, OFF(deadline_ms), 1, 86400000, "MS", "30000",
     "deadline from the last body byte, covering the queue, decoding and compute; a request's deadline_ms may only lower it (504)"},
    {"max-connections", "GRADD_MAX_CONNECTIONS", K_INT, OFF(max_connections), 1, 1000000, "N", "1024",
     "open connections at once; past it a new connection is answered 503 with Retry-After"},
    {"max-conns-per-ip", "GRADD_MAX_CONNS_PER_IP", K_INT, OFF(max_conns_per_ip), 0, 1000000, "N",
     "max-connections / 2", "open connections from one client address (0: no limit); more are refused"},
    {"conn-timeout", "GRADD_CONN_TIMEOUT", K_INT, OFF(conn_timeout_s), 1, 86400, "SECONDS", "30",
     "an idle or stalled connection is closed after this long"},
    {"header-timeout-ms", "GRADD_HEADER_TIMEOUT_MS", K_I64, OFF(header_timeout_ms), 1, 86400000, "MS", "10000",
     "a request's headers must arrive within this long of the connection waiting for them"},
    {"min-body-rate", "GRADD_MIN_BODY_RATE", K_SIZE, OFF(min_body_rate), 0, 1024 * GIB, "BYTES", "1K",
     "bytes/s a body must keep up over every header-timeout-ms period (0: no check)"},
    {"token-file", "GRADD_TOKEN_FILE", K_TOKEN, 0, 0, 0, "PATH", "none",
     "require 'Authorization: Bearer <token>' on /v1/* (token: the file's content)"},
    {"cors-origin", "GRADD_CORS_ORIGIN", K_STR, OFF(cors_origin), 0, GD_ORIGIN_MAX, "ORIGIN", "none",
     "send CORS headers for this origin (or *) and answer preflight OPTIONS"},
    {"no-ui", "GRADD_NO_UI", K_SWITCH, OFF(no_ui), 0, 0, NULL, "off",
     "do not serve the playground page at GET / (404 instead)"},
    {"tls-cert", "GRADD_TLS_CERT", K_PATH, OFF(tls_cert), 0, GD_PATH_MAX, "PATH", "none",
     "serve HTTPS with this PEM certificate (chain); needs --tls-key"},
    {"tls-key", "GRADD_TLS_KEY", K_PATH, OFF(tls_key), 0, GD_PATH_MAX, "PATH", "none",
     "the PEM private key of --tls-cert"},
    {"tls-client-ca", "GRADD_TLS_CLIENT_CA", K_PATH, OFF(tls_client_ca), 0, GD_PATH_MAX, "PATH", "none",
     "mutual TLS: /v1/* requires a client certificate issued by a CA in this PEM file (401 otherwise)"},
    {"drain-ms", "GRADD_DRAIN_MS", K_I64, OFF(drain_ms), 0, 3600000, "MS", "5000",
     "after SIGTERM/SIGINT keep serving this long while /readyz answers 503"},
    {"grace-ms", "GRADD_GRACE_MS", K_I64, OFF(grace_ms), 0, 3600000, "MS", "20000",
     "then, with no new connections, time for in-flight requests to finish"},
    {"log-format", "GRADD_LOG_FORMAT", K_FORMAT, OFF(log_format), 0, 0, "json|text", "text",
     "one line per request on stderr"},
    {"log-flush-ms", "GRADD_LOG_FLUSH_MS", K_I64, OFF(log_flush_ms), 0, 60000, "MS", "50",
     "request lines are written in batches at least this often, instead of one write each (events, errors and "
     "a full 256 KiB batch at once; 0: every line at once)"},
    {"healthcheck", NULL, K_ACTION, 0, GD_ACT_HEALTHCHECK, 0, NULL, NULL,
     "probe http://HOST:PORT/healthz of a running gradd; exit 0 when healthy, else 1"},
    {"version", NULL, K_ACTION, 0, GD_ACT_VERSION, 0, NULL, NULL, "print the version and exit"},
    {"help", NULL, K_ACTION, 0, GD_ACT_HELP, 0, NULL, NULL, "print this help and exit"},
};
#define N_OPTS ((int)(sizeof opts / sizeof opts[0]))

/* Where a value came from, for messages: "--port" or "GRADD_PORT". */
typedef struct source {
    const opt *o;
    int from_env;
} source;

static int fail(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Format the message and return -1, so that callers can `return fail(...)`. */
static int fail(char *msg, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* "--port" or "GRADD_PORT (environment)" */
static const char *src_name(const source *s, char *buf, size_t size) {
    if (s->from_env) snprintf(buf, size, "%s (environment)", s->o->env);
    else snprintf(buf, size, "--%s", s->o->flag);
    return buf;
}

/* A whole-string decimal integer; -1 when v is not one or out of range. */
static int parse_i64(const char *v, int64_t *out) {
    if (!*v || isspace((unsigned char)*v)) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

/* A byte count: an integer with an optional K/M/G (or KiB/MiB/GiB) suffix. */
static int parse_size(const char *v, int64_t *out) {
    if (!*v || !isdigit((unsigned char)*v)) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno) return -1;
    int64_t mul = 1;
    char u = (char)toupper((unsigned char)*end);
    if (u == 'K') mul = KIB;
    else if (u == 'M') mul = MIB;
    else if (u == 'G') mul = GIB;
    else if (*end) return -1;
    if (mul > 1) {
        end++;
        if (strcmp(end, "iB") != 0 && strcmp(end, "") != 0 && strcmp(end, "B") != 0) return -1;
    }
    if (x > INT64_MAX / mul) return -1;
    *out = x * mul;
    return 0;
}

/* Printable ASCII without spaces or quotes; header values and tokens must be. */
static int is_clean(const char *s, int allow_space) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch > 0x7e || (!allow_space && ch == ' ')) return 0;
    }
    return 1;
}

/* Read the bearer token from `path`: one trailing newline ("\n" or "\r\n")
 * is dropped; empty, too long or non-printable content is an error. */
static int read_token(gd_config *cfg, const char *path, const char *src, char *msg, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(msg, size, "cannot read the token file '%s' given by %s: %s", path, src, strerror(errno));
    char buf[GD_TOKEN_MAX + 3];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) return fail(msg, size, "cannot read the token file '%s' given by %s", path, src);
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
    if (n == 0) return fail(msg, size, "the token file '%s' given by %s is empty", path, src);
    if (n > GD_TOKEN_MAX)
        return fail(msg, size, "the token in '%s' given by %s is longer than %d bytes", path, src, GD_TOKEN_MAX);
    if (strlen(buf) != n || !is_clean(buf, 0))
        return fail(msg, size,
                    "the token in '%s' given by %s has spaces or control characters; "
                    "use printable ASCII on one line",
                    path, src);
    memcpy(cfg->token, buf, n + 1);
    cfg->token_len = n;
    return 0;
}

/* Store value v of option s->o into cfg. */
static int set_value(gd_config *cfg, const source *s, const char *v, char *msg, size_t size) {
    const opt *o = s->o;
    char name[64];
    char *field = (char *)cfg + o->off;
    int64_t x;
    src_name(s, name, sizeof name);
    switch (o->k) {
    case K_STR:
        if (strlen(v) >= (size_t)o->max || !is_clean(v, 0))
            return fail(msg, size, "invalid value '%s' for %s: expected printable text without spaces, shorter "
                        "than %d bytes", v, name, (int)o->max);
        snprintf(field, (size_t)o->max, "%s", v);
        return 0;
    case K_INT:
    case K_I64:
        if (parse_i64(v, &x) || x < o->min || x > o->max)
            return fail(msg, size, "invalid value '%s' for %s: expected an integer from %lld to %lld", v, name,
                        (long long)o->min, (long long)o->max);
        if (o->k == K_INT) *(int *)field = (int)x;
        else *(int64_t *)field = x;
        return 0;
    case K_SIZE:
        if (parse_size(v, &x) || x < o->min || x > o->max)
            return fail(msg, size, "invalid value '%s' for %s: expected a byte count from %lld to %lld, "
                        "optionally with a K, M or G suffix (e.g. 64M)", v, name, (long long)o->min,
                        (long long)o->max);
        *(int64_t *)field = x;
        return 0;
    case K_FORMAT:
        if (strcmp(v, "json") && strcmp(v, "text"))
            return fail(msg, size, "invalid value '%s' for %s: expected json or text", v, name);
        *(gd_log_format *)field = strcmp(v, "json") == 0 ? GD_LOG_JSON : GD_LOG_TEXT;
        return 0;
    case K_TOKEN:
        return read_token(cfg, v, name, msg, size);
    case K_PATH:
        if (strlen(v) >= (size_t)o->max || !is_clean(v, 1))
            return fail(msg, size, "invalid value '%s' for %s: expected a file path of printable characters, "
                        "shorter than %d bytes", v, name, (int)o->max);
        snprintf(field, (size_t)o->max, "%s", v);
        return 0;
    case K_SWITCH:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) *(int *)field = 1;
        else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0) *(int *)field = 0;
        else return fail(msg, size, "invalid value '%s' for %s: expected 1, true, yes, 0, false or no", v, name);
        return 0;
    case K_ACTION:
        break;
    }
    return 0;
}

static const opt *find_opt(const char *flag, size_t len) {
    for (int i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, flag, len) == 0) return &opts[i];
    return NULL;
}

/* "unknown flag '--prot' (did you mean --port?)" */
static int unknown_flag(const char *arg, size_t len, char *msg, size_t size) {
    const char *names[N_OPTS + 1];
    char word[128];
    for (int i = 0; i < N_OPTS; i++) names[i] = opts[i].flag;
    names[N_OPTS] = NULL;
    snprintf(word, sizeof word, "%.*s", (int)(len < 100 ? len : 100), arg);
    const char *best = gd_closest(word, names, N_OPTS);
    if (best) return fail(msg, size, "unknown flag '--%s' (did you mean --%s?); see --help", word, best);
    return fail(msg, size, "unknown flag '--%s'; see --help", word);
}

/* The GRADD_* variables; an empty variable counts as unset. */
static int apply_env(gd_config *cfg, unsigned char *given, char *msg, size_t size) {
    for (int i = 0; i < N_OPTS; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (!v || !*v) continue;
        source s = {&opts[i], 1};
        if (set_value(cfg, &s, v, msg, size)) return -1;
        given[i] = 1;
    }
    return 0;
}

/* Flags: "--name value" or "--name=value"; the actions take no value. */
static int apply_argv(gd_config *cfg, int argc, char **argv, unsigned char *given, char *msg, size_t size) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) a = "--help";
        if (strncmp(a, "--", 2) != 0)
            return fail(msg, size, "unexpected argument '%s': every setting is a --flag; see --help", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = find_opt(name, len);
        if (!o) return unknown_flag(name, len, msg, size);
        if (o->k == K_ACTION) {
            if (eq) return fail(msg, size, "--%s takes no value", o->flag);
            if (cfg->action == GD_ACT_SERVE || o->min == GD_ACT_HELP) cfg->action = (gd_action)o->min;
            continue;
        }
        if (o->k == K_SWITCH) {
            if (eq) return fail(msg, size, "--%s takes no value", o->flag);
            *(int *)((char *)cfg + o->off) = 1;
            given[o - opts] = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) return fail(msg, size, "--%s needs a value (%s); see --help", o->flag, o->arg);
            v = argv[++i];
        }
        source s = {o, 0};
        if (set_value(cfg, &s, v, msg, size)) return -1;
        given[o - opts] = 1;
    }
    return 0;
}

static int was_given(const unsigned char *given, const char *flag) {
    const opt *o = find_opt(flag, strlen(flag));
    return o && given[o - opts];
}

/* workers x blas-threads must fit the usable CPUs; an unset one is fitted
 * to the other (both unset: one BLAS thread, a worker per CPU). */
static int fit_threads(gd_config *cfg, const unsigned char *given, char *msg, size_t size) {
    char why[160];
    int cpus = gd_usable_cpus(why, sizeof why);
    int gw = was_given(given, "workers"), gb = was_given(given, "blas-threads");
    cfg->usable_cpus = cpus;
    if (!gw && !gb) cfg->blas_threads = 1, cfg->workers = cpus;
    else if (gw && !gb) cfg->blas_threads = cpus / cfg->workers > 0 ? cpus / cfg->workers : 1;
    else if (!gw && gb) cfg->workers = cpus / cfg->blas_threads > 0 ? cpus / cfg->blas_threads : 1;
    if ((int64_t)cfg->workers * cfg->blas_threads > cpus)
        return fail(msg, size,
                    "--workers %d x --blas-threads %d = %lld threads do not fit the %d CPU%s this process may use "
                    "(%s); lower one of them",
                    cfg->workers, cfg->blas_threads, (long long)cfg->workers * cfg->blas_threads, cpus,
                    cpus == 1 ? "" : "s", why);
    return 0;
}

/* Defaults that depend on other settings, and cross-checks. */
static int derive(gd_config *cfg, const unsigned char *given, char *msg, size_t size) {
    if (fit_threads(cfg, given, msg, size)) return -1;
    if (!was_given(given, "queue")) cfg->queue = 64 * cfg->workers;
    if (!was_given(given, "max-buffered"))
        cfg->max_buffered = cfg->max_body > INT64_MAX / 4 ? INT64_MAX : 4 * cfg->max_body;
    if (!was_given(given, "max-buffered-per-ip"))
        cfg->max_buffered_per_ip = cfg->max_buffered / 4 > cfg->max_body ? cfg->max_buffered / 4 : cfg->max_body;
    if (!was_given(given, "max-conns-per-ip")) cfg->max_conns_per_ip = (cfg->max_connections + 1) / 2;
    if (cfg->max_buffered_per_ip < cfg->max_body)
        return fail(msg, size, "--max-buffered-per-ip %lld is smaller than --max-body %lld: no body of the largest "
                    "allowed size could ever be accepted", (long long)cfg->max_buffered_per_ip,
                    (long long)cfg->max_body);
    if (cfg->max_buffered < cfg->max_body)
        return fail(msg, size, "--max-buffered %lld is smaller than --max-body %lld: no body of the largest "
                    "allowed size could ever be accepted", (long long)cfg->max_buffered, (long long)cfg->max_body);
    if (!cfg->host[0]) return fail(msg, size, "invalid value '' for --host: expected an address");
    if (!cfg->tls_cert[0] != !cfg->tls_key[0])
        return fail(msg, size, "--tls-cert and --tls-key go together: give %s too",
                    cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
    if (cfg->tls_client_ca[0] && !cfg->tls_cert[0])
        return fail(msg, size, "--tls-client-ca needs --tls-cert and --tls-key: client certificates are "
                    "asked for only over HTTPS");
    return 0;
}

static void set_defaults(gd_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
    cfg->port = 8080;
    cfg->max_body = 64 * MIB;
    cfg->max_elements = (int64_t)1 << 24;
    cfg->max_nodes = 10000;
    cfg->max_inputs = 1024;
    cfg->max_edges = 100000;
    cfg->explain_max_nodes = 2000;
    cfg->inline_work = 16384;
    cfg->log_flush_ms = 50;
    cfg->max_memory = GIB;
    cfg->graph_cache = 64 * MIB;
    cfg->idle_trim_ms = 10000;
    cfg->deadline_ms = 30000;
    cfg->max_connections = 1024;
    cfg->conn_timeout_s = 30;
    cfg->header_timeout_ms = 10000;
    cfg->min_body_rate = KIB;
    cfg->drain_ms = 5000;
    cfg->grace_ms = 20000;
    cfg->log_format = GD_LOG_TEXT;
}

int gd_config_parse(gd_config *cfg, int argc, char **argv, char *msg, size_t msg_size) {
    unsigned char given[N_OPTS] = {0};
    set_defaults(cfg);
    msg[0] = '\0';
    if (apply_env(cfg, given, msg, msg_size) || apply_argv(cfg, argc, argv, given, msg, msg_size)) return -1;
    if (cfg->action != GD_ACT_SERVE) return 0;
    return derive(cfg, given, msg, msg_size);
}

void gd_config_version(void) {
    if (GD_REVISION[0]) printf("gradd %s (git %s)\n", PACKAGE_VERSION, GD_REVISION);
    else printf("gradd %s\n", PACKAGE_VERSION);
}

void gd_config_usage(const char *prog) {
    printf("Usage: %s [--flag VALUE]...\n"
           "gradd: gradients and diagnostics of computation graphs over HTTP (POST /v1/grad, /v1/eval).\n"
           "Every flag also reads from its environment variable; a flag wins over the environment.\n"
           "Sizes take K, M or G suffixes (powers of 1024).\n\n",
           prog);
    for (int i = 0; i < N_OPTS; i++) {
        const opt *o = &opts[i];
        char left[64];
        if (o->arg) snprintf(left, sizeof left, "--%s %s", o->flag, o->arg);
        else snprintf(left, sizeof left, "--%s", o->flag);
        printf("  %-28s %s\n", left, o->help);
        if (o->env) printf("  %-28s [%s; default: %s]\n", "", o->env, o->dflt);
    }
    printf("\nSignals: SIGTERM/SIGINT drain (--drain-ms), stop accepting, finish in-flight requests\n"
           "(--grace-ms), then exit 0; a second signal ends the drain period early, a third\n"
           "cancels the requests still in flight (answered 503).\n");
}
