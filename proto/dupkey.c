/* dupkey.c - the JSON path of a duplicate key, from the raw body (see
 * dupkey.h): one pass that keeps a stack of the containers open so far,
 * then the path read off that stack. */
#include "proto/dupkey.h"

#include <stdlib.h>
#include <string.h>

typedef struct scan_frame {
    int is_obj;
    size_t index;           /* arrays: current element */
    size_t key_at, key_len; /* objects: current key (raw text between the quotes) */
} scan_frame;

/* The open containers, innermost last; malloc'd, grown by doubling. */
typedef struct scan_stack {
    scan_frame *f;
    size_t depth, cap;
} scan_stack;

static int push(scan_stack *st, int is_obj) {
    if (st->depth == st->cap) {
        scan_frame *bigger = realloc(st->f, 2 * st->cap * sizeof *st->f);
        if (!bigger) return -1;
        st->f = bigger, st->cap *= 2;
    }
    st->f[st->depth++] = (scan_frame){.is_obj = is_obj};
    return 0;
}

/* Walk s[0, end) and leave on the stack the containers still open at `end`,
 * each with its current key or index. Returns 0, or -1 when out of memory. */
static int scan(const char *s, size_t end, scan_stack *st) {
    int expect_key = 0;
    for (size_t i = 0; i < end;) {
        char ch = s[i];
        if (ch == '{' || ch == '[') {
            if (push(st, ch == '{')) return -1;
            expect_key = ch == '{';
            i++;
        } else if (ch == '}' || ch == ']') {
            if (st->depth) st->depth--;
            expect_key = 0;
            i++;
        } else if (ch == ',') {
            if (st->depth && st->f[st->depth - 1].is_obj) expect_key = 1;
            else if (st->depth) st->f[st->depth - 1].index++;
            i++;
        } else if (ch == '"') {
            size_t start = ++i;
            while (i < end && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
            if (expect_key && st->depth) {
                st->f[st->depth - 1].key_at = start;
                st->f[st->depth - 1].key_len = (i < end ? i : end) - start;
                expect_key = 0;
            }
            i++;
        } else {
            i++;
        }
    }
    return 0;
}

/* The frame's key, with the escapes a key is likely to hold undone (\" \\ \/);
 * gd_jp_key quotes it again as a path needs. */
static void add_key(gd_jpath *out, const char *s, const scan_frame *f) {
    char key[GD_ERR_AT_MAX];
    size_t len = 0;
    const char *k = s + f->key_at, *kend = k + f->key_len;
    while (k < kend && len < sizeof key - 1) {
        if (*k == '\\' && k + 1 < kend && k[1] && strchr("\"\\/", k[1])) k++;
        key[len++] = *k++;
    }
    key[len] = '\0';
    gd_jp_key(out, key);
}

void gd_dupkey_path(const char *s, size_t end, gd_jpath *out) {
    gd_jp_set(out, "");
    scan_stack st = {.cap = 64};
    if (!(st.f = malloc(st.cap * sizeof *st.f))) return;
    if (scan(s, end, &st) == 0) {
        gd_jp_set(out, "$");
        for (size_t d = 0; d < st.depth; d++) {
            if (st.f[d].is_obj) add_key(out, s, &st.f[d]);
            else gd_jp_index(out, st.f[d].index);
        }
    }
    free(st.f);
}
