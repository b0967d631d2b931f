/* conns.c - open connections, per-address budgets and receive deadlines
 * (see conns.h). Connections are kept in one list and client addresses in a
 * small chained hash table, both under cs->mu; the watchdog walks the list
 * a few times per header timeout. */
#include "server/conns.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_BUCKETS 1024
#define OVER_CAP_HEADER_MS 1000 /* an over-the-cap connection gets its 503 or goes */
#define LINGER_MS 1000          /* see gd_conn_linger */

typedef enum phase { P_HEADERS, P_BODY, P_BUSY, P_LINGER } phase;

/* One client address: its open connections and buffered bytes. */
typedef struct ip_entry {
    struct ip_entry *next;
    unsigned char key[17];        /* family byte + up to 16 address bytes */
    int conns;
    int64_t buffered;
} ip_entry;

struct gd_conn {
    gd_conn *prev, *next;
    int fd;
    ip_entry *ip;
    int over_cap;
    int shut;                     /* the watchdog has shut it down */
    phase ph;
    int64_t t0_ns;                /* P_HEADERS: waiting since; P_BODY: this period's start */
    int64_t bytes, period_bytes;  /* P_BODY: body bytes so far, and at the period's start */
};

struct gd_conns {
    gd_conns_limits lim;
    gd_metrics *metrics;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    int stop;
    gd_conn *head;
    int open;
    int64_t buffered;
    ip_entry *buckets[N_BUCKETS];
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- client addresses ------------------------------------------------------ */

static void addr_key(const struct sockaddr *sa, unsigned char key[17]) {
    memset(key, 0, 17);
    if (!sa) return;
    key[0] = (unsigned char)sa->sa_family;
    if (sa->sa_family == AF_INET) memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6) memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static unsigned bucket_of(const unsigned char key[17]) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 17; i++) h = (h ^ key[i]) * 16777619u;
    return h % N_BUCKETS;
}

/* The entry of the address, created when new, with one more connection.
 * NULL when out of memory. Under cs->mu. */
static ip_entry *ip_ref(gd_conns *cs, const struct sockaddr *sa) {
    unsigned char key[17];
    addr_key(sa, key);
    ip_entry **b = &cs->buckets[bucket_of(key)];
    for (ip_entry *e = *b; e; e = e->next)
        if (memcmp(e->key, key, sizeof key) == 0) return e->conns++, e;
    ip_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    memcpy(e->key, key, sizeof key);
    e->conns = 1;
    e->next = *b;
    *b = e;
    return e;
}

/* One connection fewer; the entry goes with the last. Under cs->mu. */
static void ip_unref(gd_conns *cs, ip_entry *e) {
    if (--e->conns > 0) return;
    for (ip_entry **p = &cs->buckets[bucket_of(e->key)]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    free(e);
}

/* ---- the watchdog ---------------------------------------------------------- */

/* Is c late? Advances its body period when the period passed in time. */
static int late(const gd_conns *cs, gd_conn *c, int64_t now) {
    int64_t period = cs->lim.header_timeout_ms * 1000000;
    if (c->ph == P_HEADERS) {
        int64_t limit = c->over_cap && period > OVER_CAP_HEADER_MS * 1000000LL ? OVER_CAP_HEADER_MS * 1000000LL
                                                                                : period;
        return now - c->t0_ns > limit;
    }
    if (c->ph == P_LINGER) return now - c->t0_ns > LINGER_MS * 1000000LL;
    if (c->ph != P_BODY || now - c->t0_ns < period) return 0;
    double want = (double)cs->lim.min_body_rate * (double)(now - c->t0_ns) / 1e9;
    if ((double)(c->bytes - c->period_bytes) < want) return 1;
    c->t0_ns = now;
    c->period_bytes = c->bytes;
    return 0;
}

/* Shut the late connections down; their owner sees the end of the stream. */
static void sweep(gd_conns *cs) {
    int64_t now = now_ns();
    for (gd_conn *c = cs->head; c; c = c->next) {
        if (c->shut || !late(cs, c, now)) continue;
        c->shut = 1;
        shutdown(c->fd, SHUT_RDWR);
        if (cs->metrics && c->ph != P_LINGER) gd_metrics_reject(cs->metrics, GD_REJ_SLOW_CLIENT);
    }
}

static void *watchdog_main(void *arg) {
    gd_conns *cs = arg;
    int64_t tick = cs->lim.header_timeout_ms * 1000000 / 8;
    if (tick > 100000000) tick = 100000000;
    if (tick < 5000000) tick = 5000000;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + tick;
        ts.tv_sec = t / 1000000000, ts.tv_nsec = t % 1000000000;
        pthread_cond_timedwait(&cs->wake, &cs->mu, &ts);
        if (!cs->stop) sweep(cs);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

gd_conns *gd_conns_new(const gd_conns_limits *lim, gd_metrics *m) {
    gd_conns *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->lim = *lim;
    cs->metrics = m;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&cs->thread, NULL, watchdog_main, cs) == 0) return cs;
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    return NULL;
}

void gd_conns_free(gd_conns *cs) {
    if (!cs) return;
    pthread_mutex_lock(&cs->mu);
    cs->stop = 1;
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->mu);
    pthread_join(cs->thread, NULL);
    for (int i = 0; i < N_BUCKETS; i++)
        while (cs->buckets[i]) {
            ip_entry *e = cs->buckets[i];
            cs->buckets[i] = e->next;
            free(e);
        }
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

/* ---- connections ----------------------------------------------------------- */

gd_conn *gd_conn_open(gd_conns *cs, int fd, const struct sockaddr *sa) {
    gd_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->ph = P_HEADERS;
    c->t0_ns = now_ns();
    pthread_mutex_lock(&cs->mu);
    c->ip = ip_ref(cs, sa);
    if (c->ip) {
        c->over_cap = ++cs->open > cs->lim.max_connections;
        c->next = cs->head;
        if (cs->head) cs->head->prev = c;
        cs->head = c;
    }
    pthread_mutex_unlock(&cs->mu);
    if (c->ip) return c;
    free(c);
    return NULL;
}

void gd_conn_close(gd_conns *cs, gd_conn *c) {
    if (!c) return;
    pthread_mutex_lock(&cs->mu);
    if (c->prev) c->prev->next = c->next;
    else cs->head = c->next;
    if (c->next) c->next->prev = c->prev;
    cs->open--;
    ip_unref(cs, c->ip);
    pthread_mutex_unlock(&cs->mu);
    free(c);
}

int gd_conn_over_cap(const gd_conn *c) { return c->over_cap; }

/* Enter phase ph from now. */
static void set_phase(gd_conns *cs, gd_conn *c, phase ph) {
    pthread_mutex_lock(&cs->mu);
    c->ph = ph;
    c->t0_ns = now_ns();
    c->bytes = c->period_bytes = 0;
    pthread_mutex_unlock(&cs->mu);
}

void gd_conn_body_started(gd_conns *cs, gd_conn *c) { set_phase(cs, c, P_BODY); }
void gd_conn_busy(gd_conns *cs, gd_conn *c) { set_phase(cs, c, P_BUSY); }
void gd_conn_wait_request(gd_conns *cs, gd_conn *c) { set_phase(cs, c, P_HEADERS); }
void gd_conn_linger(gd_conns *cs, gd_conn *c) { set_phase(cs, c, P_LINGER); }

void gd_conn_body_bytes(gd_conns *cs, gd_conn *c, size_t n) {
    pthread_mutex_lock(&cs->mu);
    c->bytes += (int64_t)n;
    pthread_mutex_unlock(&cs->mu);
}

/* ---- buffered bytes ---------------------------------------------------------- */

int gd_conns_reserve(gd_conns *cs, gd_conn *c, int64_t n) {
    int ok;
    pthread_mutex_lock(&cs->mu);
    ok = cs->buffered + n <= cs->lim.max_buffered && c->ip->buffered + n <= cs->lim.max_buffered_per_ip;
    if (ok) cs->buffered += n, c->ip->buffered += n;
    pthread_mutex_unlock(&cs->mu);
    return ok ? 0 : -1;
}

void gd_conns_release(gd_conns *cs, gd_conn *c, int64_t n) {
    pthread_mutex_lock(&cs->mu);
    cs->buffered -= n;
    c->ip->buffered -= n;
    pthread_mutex_unlock(&cs->mu);
}
