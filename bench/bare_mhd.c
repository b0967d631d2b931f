/* bare_mhd.c - the floor under gradd's fixed cost per request: a bare
 * libmicrohttpd server in gradd's threading mode (one internal polling
 * thread, epoll where available, as server/http.c starts its daemon), that
 * reads a POST's body and answers a fixed small JSON (the 5-node graph's
 * answer as gradd gives it, minus the stats). No parsing, no worker pool,
 * no logging: what any HTTP service on libmicrohttpd pays per request.
 * bench/issue10.py compares gradd with it under wrk (targets table of issue
 * 10, row 1). Built only by `make bench-http` / `make bench-smoke`.
 *
 *   bare_mhd --port N [--host 127.0.0.1]
 *
 * Prints "bare_mhd listening on HOST:PORT" once ready; SIGTERM or SIGINT
 * stops it. A GET answers the same JSON (so readiness can be polled).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char answer[] =
    "{\"target\":{\"loss\":2.5},\"gradients\":{\"x\":[1.0,1.0,2.0,-2.0]},\"diagnostics\":[]}";

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

/* Per request: a marker that the first call (headers) has been seen. */
static int seen;

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    struct MHD_Response *resp = cls;
    (void)url, (void)method, (void)version, (void)upload;
    if (!*con_cls) { /* headers only: come back for the body */
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body: consumed, not kept */
        *upload_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else break;
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: bare_mhd --port N [--host 127.0.0.1]\n");
        return 2;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bare_mhd: bad IPv4 address '%s'\n", host);
        return 2;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof answer - 1, (void *)answer, MHD_RESPMEM_PERSISTENT);
    if (!resp || MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES) return 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_AUTO;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (unsigned short)port, NULL, NULL, on_access, resp,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                            MHD_OPTION_CONNECTION_LIMIT, 1024u,
                                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bare_mhd: cannot listen on %s:%d\n", host, port);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("bare_mhd listening on %s:%d\n", host, port);
    fflush(stdout);
    while (!stop) pause();
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    return 0;
}
