/* error.c - the error table's lookups, the error record's formatting and the
 * "did you mean" helper. No allocation. */
#include "core/error.h"

#include <stdio.h>
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

/* Optimal string alignment distance (Levenshtein plus adjacent swaps), capped
 * to names of 64 bytes: longer names are never "close" to anything anyway. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *gd_closest(const char *word, const char *const *cands, int n) {
    const char *best = NULL;
    int bestd = 1 << 30;
    for (int i = 0; n < 0 ? cands[i] != NULL : i < n; i++) {
        int dist = edit_distance(word, cands[i]);
        if (dist < bestd) bestd = dist, best = cands[i];
    }
    size_t len = strlen(word);
    int allowed = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    return (best && bestd <= allowed) ? best : NULL;
}

int gd_error_oom(gd_error *err) {
    return gd_errorf(err, GD_E_TOO_LARGE, NULL, "The request needs more memory than this server allows for one request.");
}
