/* cancel.c - the monotonic clock and the cancellation poll (see cancel.h). */
#include "core/cancel.h"

#include <time.h>

int64_t gd_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gd_deadline_after(int64_t from_ns, int64_t ms) {
    if (ms <= 0) return from_ns;
    if (ms > INT64_MAX / 1000000) return INT64_MAX;
    int64_t ns = ms * 1000000;
    return from_ns > INT64_MAX - ns ? INT64_MAX : from_ns + ns;
}

int gd_cancel_check(const gd_cancel *c, gd_error *err) {
    if (!c) return 0;
    if (atomic_load_explicit(&c->cancelled, memory_order_relaxed) ||
        (c->deadline_ns && gd_now_ns() > c->deadline_ns))
        return gd_errorf(err, GD_E_DEADLINE_EXCEEDED, NULL, "%s", GD_DEADLINE_MESSAGE);
    return 0;
}
