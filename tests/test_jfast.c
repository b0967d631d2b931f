/* test_jfast.c - the quick parser (proto/jfast.c) against jansson itself:
 * on every input, when jansson (json_loadb with JSON_REJECT_DUPLICATES, and
 * JSON_ALLOW_NUL where asked) refuses, the quick parser must give up too;
 * when jansson accepts, the quick parser must give the same tree: same
 * types, integers, reals bit for bit, string bytes, array elements and
 * object keys in the same order. It may give up on an input jansson takes
 * only where jfast.h says so (a raw NUL byte).
 * Inputs: hand-picked edge cases, then thousands of random documents and
 * random mutations of them (byte flips, cuts, insertions), seeded. */
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jfast.h"
#include "tests.h"

static int same_tree(const json_t *a, const json_t *b) {
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_INTEGER: return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_tree(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return 0;
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia), ib = json_object_iter_next((json_t *)b, ib)) {
            size_t na = json_object_iter_key_len(ia), nb = json_object_iter_key_len(ib);
            if (na != nb || memcmp(json_object_iter_key(ia), json_object_iter_key(ib), na)) return 0;
            if (!same_tree(json_object_iter_value(ia), json_object_iter_value(ib))) return 0;
        }
        return !ia && !ib;
    }
    default: return 1; /* true, false, null */
    }
}

/* Texts the quick parser may leave to jansson although jansson takes them:
 * a raw NUL byte (jansson's stream skips a NUL that follows a token it read
 * one byte past: `{"k":null\0}` parses). */
static int may_give_up(const char *t, size_t n) { return memchr(t, '\0', n) != NULL; }

static long n_accepted, n_refused;

/* Both parsers on text; 0 when they agree, else a message in msg. */
static int compare(const char *text, size_t n, int allow_nul, char *msg, size_t msg_size) {
    json_error_t je;
    size_t flags = JSON_REJECT_DUPLICATES | (allow_nul ? JSON_ALLOW_NUL : 0);
    json_t *want = json_loadb(text, n, flags, &je);
    int stopped = 0;
    json_t *got = gd_json_fast(text, n, allow_nul, NULL, &stopped);
    int rc = 0;
    if (stopped) rc = snprintf(msg, msg_size, "stopped without a cancel record");
    else if (!want && got) rc = snprintf(msg, msg_size, "jansson refuses (%s) but the quick parser accepts", je.text);
    else if (want && !got && !may_give_up(text, n)) rc = snprintf(msg, msg_size, "jansson accepts but the quick parser gives up");
    else if (want && got && !same_tree(want, got)) rc = snprintf(msg, msg_size, "the trees differ");
    if (want) n_accepted++;
    else n_refused++;
    json_decref(want);
    json_decref(got);
    return rc;
}

static void check_text(const char *text, size_t n, int allow_nul) {
    char msg[300];
    if (compare(text, n, allow_nul, msg, sizeof msg)) {
        char hex[3 * 200 + 1];
        size_t k = 0;
        for (size_t i = 0; i < n && i < 200; i++) k += (size_t)snprintf(hex + k, sizeof hex - k, "%02x ", (unsigned char)text[i]);
        hex[k] = '\0';
        ck_abort_msg("%s (allow_nul %d) on %zu bytes: %.*s\nhex: %s", msg, allow_nul, n, (int)(n < 300 ? n : 300), text, hex);
    }
}

static void check_str(const char *text) {
    check_text(text, strlen(text), 0);
    check_text(text, strlen(text), 1);
}

START_TEST(edge_cases) {
    static const char *const cases[] = {
        "{}", "[]", " { } ", "\t[\n]\r", "{\"a\":1}", "[1,2,3]", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "{\"a\":1}x", "{\"a\":1} {}", "1", "\"s\"", "true", "null", "", " ", "[", "]", "{\"a\"", "{\"a\":",
        "[true,false,null]", "[truex]", "[tru]", "[nul]", "[True]", "[-]", "[-0]", "[0]", "[00]", "[01]", "[-01]",
        "[1.]", "[.5]", "[1.5]", "[-1.5e10]", "[1e]", "[1e+]", "[1E-2]", "[1e400]", "[-1e400]", "[1e-400]",
        "[4.9e-324]", "[2.2250738585072011e-308]", "[9007199254740993]", "[9223372036854775807]",
        "[9223372036854775808]", "[-9223372036854775808]", "[-9223372036854775809]", "[0.1]", "[123456789012345678901234567890]",
        "[1.7976931348623157e308]", "[1.7976931348623159e308]", "[1.79769313486231580793728971405301e308]",
        "[0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001]",
        "[2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125e-324]",
        "[-9223372036854775807]", "[18446744073709551616]", "[-0.0e0]", "[1E00001]", "[\"a\\\"b\"]", "[\"\\\\\"]", "[\"\\/\"]",
        "[\"\\b\\f\\n\\r\\t\"]", "[\"\\x\"]", "[\"\\u0041\"]", "[\"\\u00e9\"]", "[\"\\u20AC\"]", "[\"\\uD83D\\uDE00\"]",
        "[\"\\uD83D\"]", "[\"\\uDE00\"]", "[\"\\uD83Dx\"]", "[\"\\uD83D\\u0041\"]", "[\"\\u12\"]", "[\"\\u12G4\"]",
        "[\"\\u0000\"]", "{\"\\u0000\":1}", "{\"a\\u0000b\":1}", "[\"a\tb\"]", "[\"a\nb\"]", "[\"a\x7f\"]",
        "[\"\xc3\xa9\"]", "[\"\xe2\x82\xac\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\xc3\"]", "[\"\xc0\x80\"]", "[\"\xc1\xbf\"]",
        "[\"\xe0\x80\x80\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xf5\x80\x80\x80\"]", "[\"\xff\"]",
        "[\"\x80\"]", "[\xc3\xa9]", "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":{\"a\":2}}", "{\"a\":{\"b\":1,\"b\":1}}",
        "{\"\\u0061\":1,\"a\":2}", "{\"k\\n\":[{\"x\":\"\\u00e9\\n\"}],\"k\":0}", "[\"unterminated]", "[\"\\", "[\"\\u",
        "{\"graph\":{\"nodes\":[{\"name\":\"x\",\"op\":\"variable\",\"shape\":[4]}]},\"values\":{\"x\":[1.0,2,3e0,-4]}}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_str(cases[i]);
    /* a NUL byte in the text, and a body with bytes after its length */
    check_text("[\"a\0b\"]", 7, 0);
    check_text("[1]\0", 4, 0);
    check_text("[1] garbage", 3, 0);
    /* nesting: jansson's limit is JSON_PARSER_MAX_DEPTH values deep */
    for (int depth = JSON_PARSER_MAX_DEPTH - 2; depth <= JSON_PARSER_MAX_DEPTH + 2; depth++) {
        char *t = malloc(2 * (size_t)depth + 8);
        memset(t, '[', (size_t)depth);
        memset(t + depth, ']', (size_t)depth);
        check_text(t, 2 * (size_t)depth, 0);
        memcpy(t + depth - 1, "[1]", 3); /* a scalar one deeper */
        check_text(t, 2 * (size_t)depth, 0);
        free(t);
    }
}
END_TEST

/* ---- random documents ---------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}
static int pick(int n) { return (int)(next() % (uint64_t)n); }

typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
}
static void puts_(text *t, const char *s) { put(t, s, strlen(s)); }

static void gen_ws(text *t) {
    static const char *const ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    puts_(t, ws[pick(7)]);
}

static void gen_string(text *t, int key) {
    static const char *const pieces[] = {"a", "b", "x", "name", "values", "\\n", "\\\"", "\\\\", "\\/", "\\t",
                                         "\\u0041", "\\u00e9", "\\u20ac", "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80", " ", "\\u0000", "0"};
    puts_(t, "\"");
    int n = pick(key ? 3 : 6);
    for (int i = 0; i < n; i++) puts_(t, pieces[pick((int)(sizeof pieces / sizeof pieces[0]))]);
    puts_(t, "\"");
}

static void gen_number(text *t) {
    static const char *const fixed[] = {"0", "-0", "1", "-1", "0.5", "-0.0", "1e3", "1E-3", "2.5e+10", "1e308",
                                        "1e309", "4.9e-324", "1e-400", "9007199254740993", "9223372036854775807",
                                        "9223372036854775808", "-9223372036854775808", "0.30000000000000004",
                                        "123456789.123456789e-5", "17976931348623157e292"};
    if (pick(2)) {
        puts_(t, fixed[pick((int)(sizeof fixed / sizeof fixed[0]))]);
        return;
    }
    char b[64];
    int k = snprintf(b, sizeof b, "%s%llu", pick(3) ? "" : "-", (unsigned long long)(next() >> pick(64)));
    if (pick(2)) k += snprintf(b + k, sizeof b - (size_t)k, ".%u", (unsigned)pick(1000000));
    if (pick(3) == 0) snprintf(b + k, sizeof b - (size_t)k, "e%d", pick(700) - 350);
    puts_(t, b);
}

static void gen_value(text *t, int depth) {
    int kind = depth > 5 ? 2 + pick(4) : pick(6);
    switch (kind) {
    case 0: {
        puts_(t, "{");
        int n = pick(5);
        for (int i = 0; i < n; i++) {
            if (i) puts_(t, ",");
            gen_ws(t);
            gen_string(t, 1);
            gen_ws(t);
            puts_(t, ":");
            gen_ws(t);
            gen_value(t, depth + 1);
            gen_ws(t);
        }
        puts_(t, "}");
        break;
    }
    case 1: {
        puts_(t, "[");
        int n = pick(6);
        for (int i = 0; i < n; i++) {
            if (i) puts_(t, ",");
            gen_ws(t);
            gen_value(t, depth + 1);
            gen_ws(t);
        }
        puts_(t, "]");
        break;
    }
    case 2: gen_string(t, 0); break;
    case 3: case 4: gen_number(t); break;
    default: {
        static const char *const lit[] = {"true", "false", "null"};
        puts_(t, lit[pick(3)]);
    }
    }
}

static void mutate(text *t) {
    if (!t->n) return;
    size_t at = (size_t)pick((int)t->n);
    static const char bytes[] = "{}[]\",:\\ 0-e.tu\x00\x80\xc3\xff";
    switch (pick(4)) {
    case 0: t->p[at] = bytes[pick((int)sizeof bytes - 1)]; break;           /* flip */
    case 1: t->n = at; break;                                               /* cut */
    case 2: memmove(t->p + at, t->p + at + 1, t->n - at - 1), t->n--; break; /* drop */
    default: {                                                              /* insert */
        char c = bytes[pick((int)sizeof bytes - 1)];
        put(t, "", 0);
        put(t, " ", 1);
        memmove(t->p + at + 1, t->p + at, t->n - at - 1);
        t->p[at] = c;
    }
    }
}

START_TEST(random_documents) {
    text t = {0};
    n_accepted = n_refused = 0;
    for (int i = 0; i < 20000; i++) {
        t.n = 0;
        puts_(&t, pick(2) ? "{\"k\":" : "[");
        gen_value(&t, 0);
        puts_(&t, t.p[0] == '{' ? "}" : "]");
        int allow_nul = pick(2);
        check_text(t.p, t.n, allow_nul);
        for (int m = 0; m < 3; m++) {
            mutate(&t);
            check_text(t.p, t.n, allow_nul);
        }
    }
    printf("jfast random_documents: %ld accepted and %ld refused by jansson, the quick parser agreeing\n", n_accepted,
           n_refused);
    ck_assert_msg(n_accepted > 20000 && n_refused > 5000, "the corpus should hold both: %ld accepted, %ld refused",
                  n_accepted, n_refused);
    free(t.p);
}
END_TEST

/* The cancel record is polled as the text goes by: a fired one stops a long parse. */
START_TEST(stops_when_cancelled) {
    size_t n = (size_t)1 << 20;
    char *big = malloc(n + 2);
    big[0] = '[';
    for (size_t i = 1; i < n; i += 2) big[i] = '1', big[i + 1] = ',';
    big[n - 1] = '1', big[n] = ']';
    gd_cancel c;
    memset(&c, 0, sizeof c);
    atomic_store(&c.cancelled, 1);
    int stopped = 0;
    json_t *j = gd_json_fast(big, n + 1, 0, &c, &stopped);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(stopped, 1);
    atomic_store(&c.cancelled, 0);
    j = gd_json_fast(big, n + 1, 0, &c, &stopped);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(stopped, 0);
    ck_assert_int_eq((int)json_array_size(j), (int)(n / 2));
    json_decref(j);
    free(big);
}
END_TEST

Suite *suite_jfast(void) {
    Suite *s = suite_create("jfast");
    TCase *tc = tcase_create("same_as_jansson");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, edge_cases);
    tcase_add_test(tc, random_documents);
    tcase_add_test(tc, stops_when_cancelled);
    suite_add_tcase(s, tc);
    return s;
}
