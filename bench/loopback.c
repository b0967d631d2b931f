/* loopback.c - the floor under an HTTP body transfer: how long loopback TCP
 * takes to move N bytes from one process to another on this machine, with
 * the receiver reading R bytes per recv (as a server's read buffer does)
 * and, optionally, waiting in epoll before every read (as libmicrohttpd's
 * event loop does), and the sender writing S bytes per send.
 *
 * A child process sends; the parent receives into one buffer of N bytes
 * (touched beforehand, so no page faults are timed) and times the transfer
 * from the first byte to the last. Prints one RESULT line per size with the
 * median over the runs, and the receiver's recv count.
 *
 * Not here: HTTP, any gradd code. bench/http_mlp times the real exchange.
 *
 *   loopback [--bytes N] [--recv R] [--send S] [--epoll] [--runs K]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The child: connects to port, sends `runs` times N bytes in pieces of S, then waits for a byte back each run. */
static int sender(int port, size_t n, size_t s, int runs) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) return perror("loopback: connect"), 1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char *buf = malloc(n);
    if (!buf) return 1;
    memset(buf, 'x', n);
    for (int r = 0; r < runs; r++) {
        for (size_t off = 0; off < n;) {
            ssize_t k = send(fd, buf + off, n - off < s ? n - off : s, 0);
            if (k <= 0) return perror("loopback: send"), 1;
            off += (size_t)k;
        }
        char ack;
        if (recv(fd, &ack, 1, MSG_WAITALL) != 1) return 1;
    }
    free(buf);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    size_t n = 16518696, rsz = 16384, ssz = 2u << 20;
    int use_epoll = 0, runs = 7;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--epoll")) use_epoll = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--bytes")) n = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--recv")) rsz = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--send")) ssz = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--runs")) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: loopback [--bytes N] [--recv R] [--send S] [--epoll] [--runs K]\n");
            return 2;
        }
    }
    if (!n || !rsz || !ssz || runs < 1 || runs > 1000) return 2;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        return perror("loopback: listen"), 1;
    pid_t pid = fork();
    if (pid == 0) _exit(sender(ntohs(a.sin_port), n, ssz, runs));
    int fd = accept(ls, NULL, NULL);
    char *buf = malloc(n);
    double *t = calloc((size_t)runs, sizeof *t);
    if (fd < 0 || !buf || !t) return perror("loopback: accept"), 1;
    memset(buf, 0, n);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (use_epoll && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) return perror("loopback: epoll"), 1;
    long reads = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = 0;
        for (size_t off = 0; off < n;) {
            if (use_epoll && epoll_wait(ep, &ev, 1, -1) < 0) return perror("loopback: epoll_wait"), 1;
            ssize_t k = recv(fd, buf + off, n - off < rsz ? n - off : rsz, 0);
            if (k <= 0) return perror("loopback: recv"), 1;
            if (off == 0) t0 = now_s();
            off += (size_t)k, reads++;
        }
        t[r] = now_s() - t0;
        if (send(fd, "k", 1, 0) != 1) return 1;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = t[runs / 2];
    printf("RESULT loopback bytes=%zu recv=%zu send=%zu epoll=%d runs=%d median_ms=%.3f min_ms=%.3f MB_s=%.0f "
           "recvs_per_run=%ld\n",
           n, rsz, ssz, use_epoll, runs, 1e3 * med, 1e3 * t[0], (double)n / med / 1e6, reads / runs);
    return st == 0 ? 0 : 1;
}
