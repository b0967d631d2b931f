/* error.c - the error table's lookups, the error record's formatting and the
 * "did you mean" helper. No allocation. */
#include "core/error.h"

#include <stdio.h>
#include <stdint.h>
#include <string.h>

static const struct {
    const char *code;
    int status;
    const char *msg;
} table[GD_E__COUNT] = {
    [GD_OK] = {"ok", 200, "OK"},
#define GD__ROW(name, code, status, msg) [GD_E_##name] = {code, status, msg},
    GD_ERRORS(GD__ROW)
#undef GD__ROW
};

const char *gd_err_code(gd_err e) { return (e >= 0 && e < GD_E__COUNT) ? table[e].code : "internal"; }
int gd_err_status(gd_err e) { return (e >= 0 && e < GD_E__COUNT) ? table[e].status : 500; }
const char *gd_err_default(gd_err e) { return (e >= 0 && e < GD_E__COUNT) ? table[e].msg : "Internal error."; }

gd_err gd_err_from_code(const char *code) {
    for (int i = 1; i < GD_E__COUNT; i++)
        if (strcmp(table[i].code, code) == 0) return (gd_err)i;
    return GD_E__COUNT;
}

void gd_error_clear(gd_error *err) {
    if (!err) return;
    err->code = GD_OK;
    err->message[0] = err->at[0] = err->suggestion[0] = '\0';
}

int gd_verrorf(gd_error *err, gd_err code, const char *at, const char *fmt, va_list ap) {
    if (!err) return code;
    err->code = code;
    if (fmt) vsnprintf(err->message, sizeof err->message, fmt, ap);
    else snprintf(err->message, sizeof err->message, "%s", gd_err_default(code));
    snprintf(err->at, sizeof err->at, "%s", at ? at : "");
    err->suggestion[0] = '\0';
    return code;
}

int gd_errorf(gd_error *err, gd_err code, const char *at, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gd_verrorf(err, code, at, fmt, ap);
    va_end(ap);
    return code;
}

void gd_error_suggest(gd_error *err, const char *suggestion) {
    if (err && suggestion) snprintf(err->suggestion, sizeof err->suggestion, "%s", suggestion);
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps) when
 * it is at most `max`, else a value above `max`: the loop stops as soon as a
 * whole row exceeds it, and a length difference past it costs nothing.
 * Names longer than 64 bytes are never "close" to anything. *cells counts
 * the table entries filled, the search's unit of cost. */
static int edit_distance(const char *a, size_t la, const char *b, int max, int64_t *cells) {
    size_t lb = strlen(b);
    if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > (size_t)max) return max + 1;
    int d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int row_min = d[i][0];
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
            if (v < row_min) row_min = v;
        }
        *cells += (int64_t)lb;
        /* A row's minimum never decreases further down, except through the
         * swap rule, which reaches back two rows: stop once two rows exceed. */
        if (row_min > max && i > 1) {
            int prev_min = d[i - 1][0];
            for (size_t j = 1; j <= lb; j++) if (d[i - 1][j] < prev_min) prev_min = d[i - 1][j];
            if (prev_min > max) return max + 1;
        }
    }
    return d[la][lb];
}

void gd_closest_init(gd_closest_search *s, const char *word, int64_t budget) {
    s->word = word;
    s->len = strlen(word);
    s->allowed = s->len <= 3 ? 1 : s->len <= 6 ? 2 : 3;
    s->best = NULL;
    s->bestd = s->allowed + 1;
    s->budget = budget;
}

int gd_closest_add(gd_closest_search *s, const char *cand) {
    if (s->budget <= 0) return 0;
    int64_t cells = 1; /* a candidate skipped by its length still costs a step */
    int dist = edit_distance(s->word, s->len, cand, s->bestd - 1, &cells);
    s->budget -= cells;
    if (dist < s->bestd) s->bestd = dist, s->best = cand;
    return s->budget > 0;
}

const char *gd_closest(const char *word, const char *const *cands, int n) {
    gd_closest_search s;
    gd_closest_init(&s, word, GD_CLOSEST_BUDGET);
    for (int i = 0; n < 0 ? cands[i] != NULL : i < n; i++)
        if (!gd_closest_add(&s, cands[i])) break;
    return s.best;
}

int gd_error_oom(gd_error *err) {
    return gd_errorf(err, GD_E_TOO_LARGE, NULL, "The request needs more memory than this server allows for one request.");
}
