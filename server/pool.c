/* pool.c - worker threads, the bounded FIFO and the queue watchdog (see
 * pool.h). One mutex guards the queue, the list of running jobs and the
 * counters; callbacks are always called with it released. */
#include "server/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct gd_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;      /* workers wait here for jobs */
    pthread_cond_t watch;     /* the watchdog waits here (CLOCK_MONOTONIC) */
    gd_job *head, *tail;      /* the queue, oldest first */
    gd_job *running;          /* jobs being run (so that cancel can reach them) */
    int depth, reserved, capacity;
    int closed, cancelled, stopping;
    int64_t watch_until;      /* the watchdog's planned wake-up; 0: none planned */
    int n_threads;
    pthread_t *threads;
    pthread_t watchdog;
    int watchdog_started;
};

/* ---- lists (caller holds mu) ------------------------------------------------ */

static void queue_push(gd_pool *p, gd_job *j) {
    j->next = NULL, j->prev = p->tail;
    if (p->tail) p->tail->next = j;
    else p->head = j;
    p->tail = j;
    p->depth++;
}

static void queue_unlink(gd_pool *p, gd_job *j) {
    if (j->prev) j->prev->next = j->next;
    else p->head = j->next;
    if (j->next) j->next->prev = j->prev;
    else p->tail = j->prev;
    j->prev = j->next = NULL;
    p->depth--;
}

static void running_push(gd_pool *p, gd_job *j) {
    j->prev = NULL, j->next = p->running;
    if (p->running) p->running->prev = j;
    p->running = j;
}

static void running_unlink(gd_pool *p, gd_job *j) {
    if (j->prev) j->prev->next = j->next;
    else p->running = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

/* Call drop(why) on each job of a detached singly linked list (mu released). */
static void drop_all(gd_job *list, gd_err why) {
    while (list) {
        gd_job *next = list->next;
        list->next = list->prev = NULL;
        list->drop(list, why);
        list = next;
    }
}

/* ---- threads ----------------------------------------------------------------- */

/* Run one dequeued job outside the lock, then let go of it before `done`. */
static void run_job(gd_pool *p, gd_job *j) {
    running_push(p, j);
    pthread_mutex_unlock(&p->mu);
    j->run(j);
    pthread_mutex_lock(&p->mu);
    running_unlink(p, j);
    pthread_mutex_unlock(&p->mu);
    j->done(j);
    pthread_mutex_lock(&p->mu);
}

/* A worker: take the oldest job; one whose deadline already passed is
 * dropped rather than run. Exits when stopping and the queue is empty. */
static void *worker_main(void *arg) {
    gd_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) pthread_cond_wait(&p->work, &p->mu);
        gd_job *j = p->head;
        if (!j) break;
        queue_unlink(p, j);
        j->started_ns = gd_now_ns();
        if ((j->cancel.deadline_ns && j->started_ns > j->cancel.deadline_ns) || atomic_load(&j->cancel.cancelled)) {
            pthread_mutex_unlock(&p->mu);
            j->drop(j, GD_E_DEADLINE_EXCEEDED);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        run_job(p, j);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Ask each queued and running job with a `gone` callback whether its
 * client is still there; mark those that left. Returns 1 when some job can
 * be asked (the watchdog then wakes again within GD_POOL_LIVENESS_MS). */
static int mark_gone(gd_pool *p) {
    int any = 0;
    for (int list = 0; list < 2; list++)
        for (gd_job *j = list ? p->running : p->head; j; j = j->next) {
            if (!j->gone || atomic_load(&j->cancel.cancelled)) continue;
            any = 1;
            if (j->gone(j)) atomic_store(&j->cancel.cancelled, GD_CANCEL_CLIENT_GONE);
        }
    return any;
}

/* Unlink every queued job whose deadline is past, or whose client left,
 * into a list; *next gets the earliest deadline still pending (0: none). */
static gd_job *take_expired(gd_pool *p, int64_t now, int64_t *next) {
    gd_job *out = NULL;
    *next = 0;
    for (gd_job *j = p->head, *n; j; j = n) {
        n = j->next;
        int64_t d = j->cancel.deadline_ns;
        int left = atomic_load(&j->cancel.cancelled) == GD_CANCEL_CLIENT_GONE;
        if (!d && !left) continue;
        if (left || d <= now) {
            queue_unlink(p, j);
            j->next = out;
            out = j;
        } else if (!*next || d < *next) {
            *next = d;
        }
    }
    return out;
}

static struct timespec to_timespec(int64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return ts;
}

/* The watchdog: sleeps until the earliest queued deadline (or a submit of
 * an earlier one), then drops what expired with DEADLINE_EXCEEDED; while
 * jobs are queued or running it also wakes every GD_POOL_LIVENESS_MS to see
 * whether their clients are still there. */
static void *watchdog_main(void *arg) {
    gd_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        int64_t next, now = gd_now_ns();
        int asking = mark_gone(p);
        gd_job *expired = take_expired(p, now, &next);
        if (asking) next = gd_deadline_min(next, now + (int64_t)GD_POOL_LIVENESS_MS * 1000000);
        if (expired) {
            pthread_mutex_unlock(&p->mu);
            drop_all(expired, GD_E_DEADLINE_EXCEEDED);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        p->watch_until = next;
        if (next) {
            struct timespec ts = to_timespec(next);
            pthread_cond_timedwait(&p->watch, &p->mu, &ts);
        } else {
            pthread_cond_wait(&p->watch, &p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- public ------------------------------------------------------------------ */

/* Mutex and condition variables, the watch one on the monotonic clock. */
static int init_sync(gd_pool *p) {
    pthread_condattr_t ca;
    if (pthread_mutex_init(&p->mu, NULL)) return -1;
    if (pthread_cond_init(&p->work, NULL)) return -1;
    if (pthread_condattr_init(&ca)) return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) || pthread_cond_init(&p->watch, &ca);
    pthread_condattr_destroy(&ca);
    return rc ? -1 : 0;
}

gd_pool *gd_pool_new(int workers, int capacity) {
    gd_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->capacity = capacity;
    p->threads = calloc((size_t)workers, sizeof *p->threads);
    if (!p->threads || init_sync(p)) {
        free(p->threads);
        free(p);
        return NULL;
    }
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p)) break;
        p->n_threads++;
    }
    if (p->n_threads == workers && pthread_create(&p->watchdog, NULL, watchdog_main, p) == 0)
        p->watchdog_started = 1;
    if (!p->watchdog_started) {
        gd_pool_free(p);
        return NULL;
    }
    return p;
}

int gd_pool_reserve(gd_pool *p) {
    pthread_mutex_lock(&p->mu);
    int rc = GD_POOL_OK;
    if (p->closed) rc = GD_POOL_CLOSED;
    else if (p->depth + p->reserved >= p->capacity) rc = GD_POOL_FULL;
    else p->reserved++;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void gd_pool_unreserve(gd_pool *p) {
    pthread_mutex_lock(&p->mu);
    if (p->reserved > 0) p->reserved--;
    pthread_mutex_unlock(&p->mu);
}

void gd_pool_submit(gd_pool *p, gd_job *job) {
    pthread_mutex_lock(&p->mu);
    if (p->reserved > 0) p->reserved--;
    if (p->cancelled) {
        pthread_mutex_unlock(&p->mu);
        job->drop(job, GD_E_OVERLOADED);
        return;
    }
    job->queued_ns = gd_now_ns();
    queue_push(p, job);
    pthread_cond_signal(&p->work);
    int64_t d = job->cancel.deadline_ns;
    if (job->gone) d = gd_deadline_min(d, job->queued_ns + (int64_t)GD_POOL_LIVENESS_MS * 1000000);
    if (d && (!p->watch_until || d < p->watch_until)) {
        p->watch_until = d;
        pthread_cond_signal(&p->watch);
    }
    pthread_mutex_unlock(&p->mu);
}

int gd_pool_depth(gd_pool *p) {
    pthread_mutex_lock(&p->mu);
    int d = p->depth;
    pthread_mutex_unlock(&p->mu);
    return d;
}

void gd_pool_close(gd_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    pthread_mutex_unlock(&p->mu);
}

void gd_pool_cancel(gd_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->closed = p->cancelled = 1;
    gd_job *list = p->head;
    p->head = p->tail = NULL;
    p->depth = 0;
    for (gd_job *j = p->running; j; j = j->next) atomic_store(&j->cancel.cancelled, GD_CANCEL_SHUTDOWN);
    pthread_mutex_unlock(&p->mu);
    drop_all(list, GD_E_OVERLOADED);
}

void gd_pool_free(gd_pool *p) {
    if (!p) return;
    gd_pool_cancel(p);
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_cond_broadcast(&p->watch);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    if (p->watchdog_started) pthread_join(p->watchdog, NULL);
    pthread_cond_destroy(&p->watch);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
