/* main.c - the gradd binary: read the configuration, size OpenBLAS, start
 * the worker pool and the HTTP daemon, wait for SIGTERM/SIGINT and shut
 * down gracefully:
 *   1. drain: /readyz answers 503 while requests are still served, for
 *      --drain-ms (a second signal ends this early);
 *   2. stop accepting connections, refuse new compute, and let in-flight
 *      requests finish within --grace-ms;
 *   3. past the grace period (or at a third signal), cancel running
 *      computations and answer the queued ones 503, so that no connection
 *      is left suspended;
 *   4. give the answers a moment to leave, stop MHD, join the workers,
 *      exit 0.
 * Signals are caught with sigaction and passed through a self-pipe, since
 * threads started before main (OpenBLAS's) cannot all have them blocked. */
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/compute.h"
#include "server/config.h"
#include "gd_config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "core/arena.h"
#include "core/cancel.h"
#include "server/pool.h"
#include "server/probe.h"
#include "server/render.h"

#define FLUSH_MS 2000   /* at most this long for answered connections to close */
#define HEALTHCHECK_TIMEOUT_MS 3000
#define WARM_TRIM_BYTES (64u << 20) /* free memory a malloc arena keeps until idle (arena.h) */

static int sig_pipe[2] = {-1, -1};

/* Async-signal-safe: pass the signal number to the main thread. */
static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) { /* the pipe is full: a signal is pending anyway */ }
    errno = saved;
}

/* SIGTERM/SIGINT into the self-pipe, SIGPIPE ignored. 0 or -1. */
static int install_signals(void) {
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK)) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_signal;
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* --log-flush-ms: how often the batched request lines are written (log.h);
 * 0: not batched. */
static int64_t log_flush_ms;

/* Wait up to timeout_ms (< 0: forever) for a signal; its number, or 0.
 * Meanwhile the batched log lines are written every log_flush_ms: every
 * wait of the main thread, from serving to the end of a shutdown, is one
 * of these. */
static int wait_signal(int64_t timeout_ms) {
    int64_t deadline = gd_now_ns() + timeout_ms * 1000000;
    for (;;) {
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t ms = (deadline - gd_now_ns()) / 1000000;
            if (ms <= 0) return 0;
            left = ms > 1000000 ? 1000000 : (int)ms;
        }
        if (log_flush_ms > 0 && (left < 0 || left > log_flush_ms)) left = (int)log_flush_ms;
        struct pollfd p = {sig_pipe[0], POLLIN, 0};
        int n = poll(&p, 1, left);
        gd_log_flush();
        if (n < 0 && errno != EINTR) return 0;
        unsigned char b;
        if (n > 0 && read(sig_pipe[0], &b, 1) == 1) return b;
    }
}

/* Check every 5 ms until cond(h) holds (1), timeout_ms passes (0; < 0:
 * never) or, when `signal_stops`, another signal arrives (-1). */
static int wait_until(gd_http *h, int (*cond)(gd_http *), int64_t timeout_ms, int signal_stops) {
    int64_t start = gd_now_ns(), last_log = start;
    while (!cond(h)) {
        int64_t now = gd_now_ns();
        if (timeout_ms >= 0 && now - start >= timeout_ms * 1000000) return 0;
        if (timeout_ms < 0 && now - last_log >= 5000000000LL) {
            gd_log_event("warn", "still waiting for %d cancelled requests", gd_http_in_flight(h));
            last_log = now;
        }
        if (wait_signal(5) && signal_stops) return -1;
    }
    return 1;
}

static int none_in_flight(gd_http *h) { return gd_http_in_flight(h) == 0; }
static int no_connections(gd_http *h) { return gd_http_connections(h) == 0; }

/* Steps 1-4 of the file comment, after the first signal `sig`. */
static void shut_down(const gd_config *cfg, gd_http *h, gd_pool *pool, int sig) {
    gd_log_event("info", "received %s: draining for %lld ms (/readyz answers 503)", strsignal(sig),
                 (long long)cfg->drain_ms);
    gd_http_drain(h);
    if (wait_signal(cfg->drain_ms)) gd_log_event("info", "second signal: ending the drain period early");
    gd_http_quiesce(h);
    gd_pool_close(pool);
    gd_log_event("info", "stopped accepting; %d requests in flight, %lld ms to finish them", gd_http_in_flight(h),
                 (long long)cfg->grace_ms);
    int rc = wait_until(h, none_in_flight, cfg->grace_ms, 1);
    if (rc != 1) {
        gd_log_event("warn", "%s: cancelling %d requests in flight",
                     rc < 0 ? "another signal" : "grace period over", gd_http_in_flight(h));
        gd_pool_cancel(pool);
        wait_until(h, none_in_flight, -1, 0);
    }
    wait_until(h, no_connections, FLUSH_MS, 0);
    gd_http_stop(h);
    gd_pool_free(pool);
    gd_log_event("info", "stopped");
}

/* --help, --version, --healthcheck: everything but serving. */
static int run_action(const gd_config *cfg, const char *prog) {
    char msg[512];
    switch (cfg->action) {
    case GD_ACT_HELP:
        gd_config_usage(prog);
        return 0;
    case GD_ACT_VERSION:
        gd_config_version();
        return 0;
    case GD_ACT_HEALTHCHECK: {
        int rc = gd_probe_healthz(cfg->host, cfg->port, cfg->tls_cert[0] != 0, HEALTHCHECK_TIMEOUT_MS, msg, sizeof msg);
        fprintf(rc ? stderr : stdout, "gradd --healthcheck: %s\n", msg);
        return rc;
    }
    default:
        return 0;
    }
}

static void log_listening(const gd_config *cfg, const gd_http *h) {
    int v6 = strchr(cfg->host, ':') != NULL;
    gd_log_event("info",
                 "gradd %s listening on %s://%s%s%s:%d (%s; %d workers x %d BLAS threads, %d usable CPUs; "
                 "queue %d; max body %lld bytes; deadline %lld ms; auth %s%s; CORS %s)",
                 PACKAGE_VERSION, cfg->tls_cert[0] ? "https" : "http", v6 ? "[" : "", cfg->host, v6 ? "]" : "", gd_http_port(h), gd_http_poll_mode(h),
                 cfg->workers, cfg->blas_threads, cfg->usable_cpus, cfg->queue, (long long)cfg->max_body,
                 (long long)cfg->deadline_ms, cfg->token_len ? "on" : "off",
                 cfg->tls_client_ca[0] ? ", client certificates" : "",
                 cfg->cors_origin[0] ? cfg->cors_origin : "off");
}

/* Start pool and daemon (HTTPS with tls), serve until a signal, shut down.
 * Exit status. */
static int serve(const gd_config *cfg, const gd_tls *tls) {
    char msg[512];
    gd_log_init(cfg->log_format);
    if ((log_flush_ms = cfg->log_flush_ms) > 0) gd_log_batch();
    if (install_signals()) {
        gd_log_event("error", "cannot install signal handlers: %s", strerror(errno));
        return 1;
    }
    openblas_set_num_threads(cfg->blas_threads);
    gd_malloc_keep_warm(WARM_TRIM_BYTES);
    gd_metrics *m = gd_metrics_new();
    gd_pool *pool = m ? gd_pool_new(cfg->workers, cfg->queue) : NULL;
    gd_http *h = pool ? gd_http_start(cfg, tls, pool, m, msg, sizeof msg) : NULL;
    if (!h) {
        gd_log_event("error", "cannot start: %s", pool ? msg : "cannot create the worker threads");
        gd_pool_free(pool);
        gd_metrics_free(m);
        return 1;
    }
    log_listening(cfg, h);
    /* Between signals, look now and then whether the workers have been idle
     * for --idle-trim-ms (compute.h). */
    int64_t period = cfg->idle_trim_ms ? cfg->idle_trim_ms / 4 : -1;
    if (period >= 0) period = period < 10 ? 10 : period > 1000 ? 1000 : period;
    int sig;
    while (!(sig = wait_signal(period))) gd_compute_trim_idle(cfg->idle_trim_ms);
    shut_down(cfg, h, pool, sig);
    gd_metrics_free(m);
    return 0;
}

/* After each BLAS call OpenBLAS's idle threads busy-wait (sched_yield) for
 * 2^28 cycles, about 0.1 s, before they sleep. Between a server's requests
 * that spinning takes a CPU from the HTTP thread receiving the next body and
 * from the worker's decoding and encoding: on two CPUs it cost the MLP
 * request of bench/ about 10 ms of 55. OpenBLAS reads its timeout only when
 * it loads, before main, so gradd serving with blas-threads > 1 re-executes
 * itself once with OPENBLAS_THREAD_TIMEOUT=20 (2^20 cycles, a fraction of a
 * millisecond: the short gaps between the BLAS calls of one request stay
 * fast). A value the user set is kept; if the re-exec fails, gradd goes on
 * as it is. */
static void tame_blas_spin(char **argv) {
    if (getenv("OPENBLAS_THREAD_TIMEOUT") || getenv("GOTO_THREAD_TIMEOUT")) return;
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "20", 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_THREAD_TIMEOUT"); /* still the old image: claim nothing */
}

int main(int argc, char **argv) {
    static gd_config cfg; /* large (the token buffer): not on the stack */
    char msg[1024];
    /* The Graphviz child of POST /v1/explain is this binary under another name (render.h). */
    const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
    if (argc > 0 && strcmp(base ? base + 1 : argv[0], GD_RENDER_ARGV0) == 0) return gd_render_main(argc, argv);
    if (gd_config_parse(&cfg, argc, argv, msg, sizeof msg)) {
        fprintf(stderr, "gradd: %s\n", msg);
        return 2;
    }
    if (cfg.action != GD_ACT_SERVE) return run_action(&cfg, argv[0]);
    if (cfg.blas_threads > 1) tame_blas_spin(argv);
    gd_tls *tls;
    if (gd_tls_load(&cfg, &tls, msg, sizeof msg)) { /* a wrong file is a wrong setting: exit 2 */
        fprintf(stderr, "gradd: %s\n", msg);
        return 2;
    }
    int rc = serve(&cfg, tls);
    gd_tls_free(tls);
    return rc;
}
