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

#include <gnutls/gnutls.h>

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

/* One connection's I/O: plain, or through a GnuTLS client session. */
typedef struct conn {
    int fd;
    gnutls_session_t tls; /* NULL: plain */
    gnutls_certificate_credentials_t cred;
} conn;

/* After a GnuTLS call on cn returned r: 1 to call it again (it was waiting
 * for the socket, which is now ready), 0 to take r as its result. A call
 * still waiting at the deadline keeps GNUTLS_E_AGAIN. */
static int tls_again(conn *cn, ssize_t r, int64_t deadline) {
    if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) return 0;
    return !wait_fd(cn->fd, gnutls_record_get_direction(cn->tls) ? POLLOUT : POLLIN, deadline);
}

/* The TLS handshake. The server's certificate is not verified: the probe
 * asks a gradd on this machine or in this container whether it is alive,
 * and sends nothing secret. */
static int tls_open(conn *cn, const char *host, int64_t deadline, char *msg, size_t size) {
    if (gnutls_certificate_allocate_credentials(&cn->cred) < 0 || gnutls_init(&cn->tls, GNUTLS_CLIENT) < 0 ||
        gnutls_set_default_priority(cn->tls) < 0 ||
        gnutls_credentials_set(cn->tls, GNUTLS_CRD_CERTIFICATE, cn->cred) < 0) {
        snprintf(msg, size, "cannot set up a TLS client session");
        return -1;
    }
    gnutls_server_name_set(cn->tls, GNUTLS_NAME_DNS, host, strlen(host));
    gnutls_transport_set_int(cn->tls, cn->fd);
    int rc;
    do rc = gnutls_handshake(cn->tls);
    while (tls_again(cn, rc, deadline));
    if (rc < 0) {
        snprintf(msg, size, "TLS handshake with %s failed: %s", host,
                 rc == GNUTLS_E_AGAIN ? "no answer before the timeout" : gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

static void conn_close(conn *cn) {
    if (cn->tls) gnutls_deinit(cn->tls);
    if (cn->cred) gnutls_certificate_free_credentials(cn->cred);
    if (cn->fd >= 0) close(cn->fd);
}

static ssize_t conn_send(conn *cn, const char *p, size_t n, int64_t deadline) {
    ssize_t r;
    if (cn->tls) {
        do r = gnutls_record_send(cn->tls, p, n);
        while (tls_again(cn, r, deadline));
        return r;
    }
    if (wait_fd(cn->fd, POLLOUT, deadline)) return -1;
    return send(cn->fd, p, n, MSG_NOSIGNAL);
}

static ssize_t conn_recv(conn *cn, char *p, size_t n, int64_t deadline) {
    ssize_t r;
    if (cn->tls) {
        do r = gnutls_record_recv(cn->tls, p, n);
        while (tls_again(cn, r, deadline));
        return r;
    }
    if (wait_fd(cn->fd, POLLIN, deadline)) return -1;
    return recv(cn->fd, p, n, 0);
}

int gd_probe_healthz(const char *host, int port, int tls, int timeout_ms, char *msg, size_t msg_size) {
    const char *v4 = NULL;
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    else if (strcmp(host, "::") == 0) host = "::1", v4 = "127.0.0.1";
    int64_t deadline = now_ms() + timeout_ms;
    conn cn = {.fd = connect_to(host, port, deadline, msg, msg_size)};
    /* "::" is a dual-stack socket (IPV6_V6ONLY off): where the loopback has
     * no IPv6 address (a container with IPv6 switched off), gradd still
     * listens, and answers on its IPv4 side. */
    if (cn.fd < 0 && v4) cn.fd = connect_to(host = v4, port, deadline, msg, msg_size);
    if (cn.fd < 0) return 1;
    if (tls && tls_open(&cn, host, deadline, msg, msg_size)) {
        conn_close(&cn);
        return 1;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    char buf[64];
    size_t got = 0;
    if (conn_send(&cn, req, (size_t)n, deadline) != n) {
        snprintf(msg, msg_size, "cannot send the request to %s:%d", host, port);
        conn_close(&cn);
        return 1;
    }
    while (got < sizeof buf - 1 && !memchr(buf, '\n', got)) {
        ssize_t r = conn_recv(&cn, buf + got, sizeof buf - 1 - got, deadline);
        if (r <= 0) break;
        got += (size_t)r;
    }
    conn_close(&cn);
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0) {
        snprintf(msg, msg_size, "healthy: %s", buf);
        return 0;
    }
    snprintf(msg, msg_size, "unhealthy: %s", got ? buf : "no answer before the timeout");
    return 1;
}
