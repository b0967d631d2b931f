/* render.c - SVG from DOT in a child process (see render.h).
 *
 * The parent's half (gd_render_svg) runs on a worker thread: it spawns the
 * child with posix_spawn (no fork of the server's address space), feeds it
 * and reads it through two pipes in one poll loop that also watches the
 * request's cancel record, and always reaps it. The child's half
 * (gd_render_main) is the only code that calls Graphviz. */
#include "server/render.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gd_config.h"

#ifdef GD_HAVE_GRAPHVIZ
#include <gvc.h>
#include <gvplugin.h>
#endif

extern char **environ;

#define POLL_MS 20 /* the cancel flag is looked at this often while the child works */

int gd_render_available(void) {
#ifdef GD_HAVE_GRAPHVIZ
    return 1;
#else
    return 0;
#endif
}

/* ---- the parent ------------------------------------------------------------------ */

/* environ with OPENBLAS_NUM_THREADS=1 (the child never calls BLAS; OpenBLAS
 * would start its threads at load time otherwise); malloc'd array of the
 * same strings, or NULL. */
static char **child_env(void) {
    static char one[] = "OPENBLAS_NUM_THREADS=1";
    size_t n = 0;
    while (environ[n]) n++;
    char **env = malloc(sizeof(char *) * (n + 2));
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21) != 0) env[k++] = environ[i];
    env[k++] = one;
    env[k] = NULL;
    return env;
}

/* Start the child with its stdin reading from `in`, stdout writing to `out`
 * and stderr on /dev/null, default signal dispositions and an empty mask.
 * Its pid, or -1 (errno set). */
static pid_t spawn_child(int in, int out, size_t budget) {
    char b[32], pp[32];
    snprintf(b, sizeof b, "%zu", budget);
    snprintf(pp, sizeof pp, "%ld", (long)getpid());
    char *argv[] = {GD_RENDER_ARGV0, b, pp, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    char **env = child_env();
    pid_t pid = -1;
    if (!env) return -1;
    if (posix_spawn_file_actions_init(&fa)) {
        free(env);
        return -1;
    }
    if (posix_spawnattr_init(&at)) {
        posix_spawn_file_actions_destroy(&fa);
        free(env);
        return -1;
    }
    int rc = posix_spawn_file_actions_adddup2(&fa, in, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, out, 1);
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (!rc) rc = posix_spawnattr_setsigmask(&at, &none);
    if (!rc) rc = posix_spawnattr_setsigdefault(&at, &all);
    if (!rc) rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!rc) rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* The two pipes' parent ends and how far the exchange got. */
typedef struct xfer {
    int to, from;         /* child's stdin (write end), stdout (read end); -1 once closed */
    const char *dot;
    size_t len, sent;
} xfer;

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* One round: wait up to POLL_MS, then write what the pipe takes and read
 * what the child wrote. 0, or -1 when out's limit or memory is exhausted. */
static int pump(xfer *x, gd_buf *out) {
    struct pollfd pf[2] = {{x->from, POLLIN, 0}, {x->to, POLLOUT, 0}};
    int n = poll(pf, x->to >= 0 ? 2 : 1, POLL_MS);
    if (n <= 0) return 0;
    if (x->to >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t k = write(x->to, x->dot + x->sent, x->len - x->sent);
        if (k > 0) x->sent += (size_t)k;
        if (x->sent == x->len || (k < 0 && errno != EAGAIN && errno != EINTR)) close_fd(&x->to);
    }
    if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (gd_buf_reserve(out, 65536)) return -1;
        ssize_t k = read(x->from, out->data + out->len, 65536);
        if (k > 0) out->len += (size_t)k, out->data[out->len] = '\0';
        else if (k == 0 || (errno != EAGAIN && errno != EINTR)) close_fd(&x->from);
    }
    return 0;
}

/* Wait for the child; kill it first when `kill_it`. Its wait status. */
static int reap(pid_t pid, int kill_it) {
    int st = 0;
    if (kill_it) kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return st;
}

/* The child's output ended: its exit status decides. The child waits for
 * nothing after closing stdout, but the deadline still bounds the wait. */
static int finish(pid_t pid, const gd_cancel *cancel, size_t start, gd_buf *svg, gd_error *err) {
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return gd_errorf(err, GD_E_INTERNAL, NULL, "waitpid: %s", strerror(errno));
        if (gd_cancel_check(cancel, err)) {
            reap(pid, 1);
            return err->code;
        }
        usleep(1000);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && svg->len > start) return 0;
    const char *said = svg->len > start ? svg->data + start : "";
    /* The child says why it failed (exit 1 and a line). Graphviz itself
     * exits wordless or crashes when an allocation fails, which under the
     * child's address-space cap is running out of the request's memory. */
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    int rc = sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || (!sig && !said[0])
                 ? gd_errorf(err, GD_E_TOO_LARGE, NULL,
                             "Graphviz ran out of the memory this server allows for one request while laying out "
                             "the picture (or failed with no message); ask for the DOT text (Accept: "
                             "text/vnd.graphviz) or send a smaller graph.")
             : sig ? gd_errorf(err, GD_E_INTERNAL, NULL, "the Graphviz child died of signal %d", sig)
                   : gd_errorf(err, GD_E_INTERNAL, NULL, "Graphviz failed: %.300s", said);
    svg->len = start;
    if (svg->data) svg->data[start] = '\0';
    return rc;
}

int gd_render_svg(const char *dot, size_t len, const gd_cancel *cancel, size_t budget, gd_buf *svg, gd_error *err) {
    if (!gd_render_available())
        return gd_errorf(err, GD_E_INTERNAL, NULL, "this gradd was built without Graphviz");
    if (gd_cancel_check(cancel, err)) return err->code;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC)) return gd_errorf(err, GD_E_INTERNAL, NULL, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]), close(in[1]);
        return gd_errorf(err, GD_E_INTERNAL, NULL, "pipe: %s", strerror(errno));
    }
    pid_t pid = spawn_child(in[0], out[1], budget);
    int spawn_errno = errno;
    close(in[0]), close(out[1]);
    xfer x = {in[1], out[0], dot, len, 0};
    if (pid < 0) {
        close_fd(&x.to), close_fd(&x.from);
        return gd_errorf(err, GD_E_INTERNAL, NULL, "cannot start the Graphviz child: %s", strerror(spawn_errno));
    }
    fcntl(x.to, F_SETFL, O_NONBLOCK);
    fcntl(x.from, F_SETFL, O_NONBLOCK);
    size_t start = svg->len;
    int rc = 0;
    while (x.from >= 0 && !rc) {
        if (gd_cancel_check(cancel, err)) rc = err->code;
        else if (pump(&x, svg))
            rc = svg->over_limit ? gd_errorf(err, GD_E_TOO_LARGE, NULL,
                                             "The picture would need more memory than this server allows for one "
                                             "request; ask for the DOT text (Accept: text/vnd.graphviz) or send a "
                                             "smaller graph.")
                                 : gd_errorf(err, GD_E_OVERLOADED, NULL, "out of memory reading the picture");
    }
    close_fd(&x.to), close_fd(&x.from);
    if (rc) {
        reap(pid, 1);
        svg->len = start;
        return rc;
    }
    return finish(pid, cancel, start, svg, err);
}

/* ---- the child ------------------------------------------------------------------- */

#ifdef GD_HAVE_GRAPHVIZ

extern gvplugin_library_t gvplugin_dot_layout_LTX_library;
extern gvplugin_library_t gvplugin_core_LTX_library;

/* The plugins the child uses, linked in: no plugin is looked up or loaded
 * at run time. */
static const lt_symlist_t builtins[] = {
    {"gvplugin_dot_layout_LTX_library", &gvplugin_dot_layout_LTX_library},
    {"gvplugin_core_LTX_library", &gvplugin_core_LTX_library},
    {0, 0},
};

static char last_error[512];

/* Graphviz's messages: kept (the last one explains a failure), not printed. */
static int keep_error(char *msg) {
    size_t n = strlen(last_error);
    if (n < sizeof last_error - 1) snprintf(last_error + n, sizeof last_error - n, "%s", msg);
    return 0;
}

/* The whole of stdin, NUL-terminated, malloc'd; NULL when memory runs out. */
static char *read_all(void) {
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) return NULL;
        if (len + 1 >= cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
            continue;
        }
        ssize_t k = read(0, b + len, cap - len - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
    }
    b[len] = '\0';
    return b;
}

static int fail(const char *what) {
    printf("%s%s%.400s\n", what, last_error[0] ? ": " : "", last_error);
    fflush(stdout);
    _exit(1);
}

/* Cap the address space at its size now plus the budget. */
static void limit_memory(size_t budget) {
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)budget;
    struct rlimit rl = {cap, cap};
    setrlimit(RLIMIT_AS, &rl);
}

int gd_render_main(int argc, char **argv) {
    if (argc < 3) return fail("usage: gradd-render BUDGET PARENT_PID (started by gradd for /v1/explain)");
    close_range(3, ~0U, 0); /* whatever the server had open without close-on-exec (its clients' sockets) */
    prctl(PR_SET_NAME, GD_RENDER_ARGV0); /* as ps and top show it (exec'd as "exe") */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)strtol(argv[2], NULL, 10)) _exit(1); /* the parent is gone already */
    limit_memory((size_t)strtoull(argv[1], NULL, 10));
    agseterrf(keep_error);
    agseterr(AGERR);
    char *dot = read_all();
    if (!dot) return fail("out of memory reading the DOT text");
    GVC_t *gvc = gvContextPlugins(builtins, 0);
    if (!gvc) return fail("cannot start Graphviz");
    Agraph_t *g = agmemread(dot);
    if (!g) return fail("the DOT text does not parse");
    if (gvLayout(gvc, g, "dot")) return fail("layout failed");
    char *svg = NULL;
    unsigned int n = 0;
    if (gvRenderData(gvc, g, "svg", &svg, &n) || !svg) return fail("rendering failed");
    if (fwrite(svg, 1, n, stdout) != n || fflush(stdout)) _exit(1);
    /* No clean-up: the process ends here, and _exit skips the leak checker
     * of a sanitizer build, which Graphviz's own caches would trip. */
    _exit(0);
}

#else

int gd_render_main(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("this gradd was built without Graphviz\n");
    return 1;
}

#endif
