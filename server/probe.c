/* probe.c - the --healthcheck client (see probe.h): non-blocking connect
 * and I/O bounded by one overall timeout. */
#include "server/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for `events` or the deadline passes: 0 ready, -1 not. */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
}

/* Connect to the first address of host:port that answers before the deadline. */
static int connect_to(const char *host, int port, int64_t deadline, char *msg, size_t size) {
    struct addrinfo hints, *res = NULL;
    char ps[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) {
        snprintf(msg, size, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(msg, size, "cannot connect to %s:%d", host, port);
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int err = connect(fd, ai->ai_addr, ai->ai_addrlen) ? errno : 0;
        if (err == EINPROGRESS) {
            socklen_t el = sizeof err;
            err = ETIMEDOUT;
            if (!wait_fd(fd, POLLOUT, deadline) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el)) err = errno;
        }
        if (err) {
            snprintf(msg, size, "cannot connect to %s:%d: %s", host, port, strerror(err));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int gd_probe_healthz(const char *host, int port, int timeout_ms, char *msg, size_t msg_size) {
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    else if (strcmp(host, "::") == 0) host = "::1";
    int64_t deadline = now_ms() + timeout_ms;
    int fd = connect_to(host, port, deadline, msg, msg_size);
    if (fd < 0) return 1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    char buf[64];
    size_t got = 0;
    if (wait_fd(fd, POLLOUT, deadline) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(msg, msg_size, "cannot send the request to %s:%d", host, port);
        close(fd);
        return 1;
    }
    while (got < sizeof buf - 1 && !memchr(buf, '\n', got)) {
        if (wait_fd(fd, POLLIN, deadline)) break;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0) {
        snprintf(msg, msg_size, "healthy: %s", buf);
        return 0;
    }
    snprintf(msg, msg_size, "unhealthy: %s", got ? buf : "no answer before the timeout");
    return 1;
}
