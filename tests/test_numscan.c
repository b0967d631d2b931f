/* test_numscan.c - the numeric lists read ahead of jansson (proto/numscan.c)
 * give what the ordinary path gives. Each body is decoded twice: as sent,
 * where the scan takes its lists, and as a twin whose keys "values",
 * "value" and "data" are written with a \u escape, which jansson reads as
 * the same keys but the scan does not recognise, so every list goes the
 * ordinary way. Successes must give the same tensors bit for bit (dtype,
 * shape, bytes), errors the same code, message, path and suggestion (the
 * twins break JSON syntax only on a later line, so that line and column
 * agree). Also: which lists the scan takes, and its memory against the
 * request's limit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "proto/decode.h"
#include "proto/numscan.h"
#include "tests.h"

typedef struct outcome {
    gd_arena *a;
    gd_request r;
    gd_error e;
    int rc;
} outcome;

static void decode(outcome *o, const char *body, int ep, size_t limit) {
    o->a = gd_arena_new(limit);
    ck_assert_ptr_nonnull(o->a);
    gd_decode_limits lim = {.max_nodes = 10000, .max_elements = (int64_t)1 << 24};
    o->rc = gd_decode_request(o->a, body, strlen(body), NULL, 0, ep, &lim, &o->r, &o->e);
}

/* body with ' as " and the three keys escaped (malloc'd). */
static char *twin_of(const char *body) {
    static const char *const from[] = {"\"values\"", "\"value\"", "\"data\""};
    static const char *const to[] = {"\"\\u0076alues\"", "\"\\u0076alue\"", "\"\\u0064ata\""};
    size_t n = strlen(body);
    char *out = malloc(2 * n + 64), *o = out;
    for (const char *p = body; *p;) {
        int hit = -1;
        for (int k = 0; k < 3 && hit < 0; k++)
            if (!strncmp(p, from[k], strlen(from[k]))) hit = k;
        if (hit >= 0) {
            strcpy(o, to[hit]);
            o += strlen(to[hit]), p += strlen(from[hit]);
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static char *dq(const char *sq) {
    char *d = strdup(sq);
    for (char *p = d; *p; p++)
        if (*p == '\'') *p = '"';
    return d;
}

/* What the scan takes from body: how many lists (nodes = 0), or whether it
 * took the graph's nodes (nodes = 1). */
static int scan_taken(const char *body, int nodes) {
    gd_arena *a = gd_arena_new(0);
    gd_numtab t;
    int rc = gd_numscan(a, body, strlen(body), 0, NULL, &t);
    int n = rc <= 0 ? 0 : nodes ? t.nodes_taken : t.n_arr;
    if (rc > 0) gd_numtab_free(a, &t);
    gd_arena_free(a);
    return n;
}

static int lists_taken(const char *body) { return scan_taken(body, 0); }

/* Both decodes of body failed alike (1), or both succeeded (0). */
static int same_failure(const char *body, const outcome *f, const outcome *s) {
    ck_assert_msg(f->rc == s->rc, "%s: rc %d (%s), ordinary %d (%s)", body, f->rc, f->e.message, s->rc,
                  s->e.message);
    if (!f->rc) return 0;
    ck_assert_int_eq(f->e.code, s->e.code);
    ck_assert_str_eq(f->e.message, s->e.message);
    ck_assert_str_eq(f->e.at, s->e.at);
    ck_assert_str_eq(f->e.suggestion, s->e.suggestion);
    return 1;
}

/* Decodes sq both ways and compares; returns the number of lists taken. */
static int ck_same_both_ways(const char *sq, int ep) {
    char *body = dq(sq), *twin = twin_of(body);
    int taken = lists_taken(body);
    ck_assert_int_eq(lists_taken(twin), 0);
    outcome f, s;
    decode(&f, body, ep, 0);
    decode(&s, twin, ep, 0);
    if (!same_failure(body, &f, &s)) {
        ck_assert_int_eq(f.r.graph->n, s.r.graph->n);
        for (int i = 0; i < f.r.graph->n; i++) {
            const gd_tensor *x = f.r.graph->st[i].value, *y = s.r.graph->st[i].value;
            ck_assert_msg(!x == !y, "%s: node %d has a value one way only", body, i);
            if (!x) continue;
            ck_assert_int_eq(x->dtype, y->dtype);
            ck_assert_int_eq(x->shape.rank, y->shape.rank);
            for (int d = 0; d < x->shape.rank; d++) ck_assert_int_eq(x->shape.dim[d], y->shape.dim[d]);
            ck_assert_int_eq(x->n, y->n);
            ck_assert_msg(x->n == 0 || !memcmp(x->data, y->data, (size_t)x->n * 8), "%s: node %d's elements differ", body, i);
            ck_assert_int_eq(f.r.graph->st[i].transport_f32, s.r.graph->st[i].transport_f32);
        }
    }
    gd_arena_free(f.a);
    gd_arena_free(s.a);
    free(body);
    free(twin);
    return taken;
}

#define G1 "{'graph':{'nodes':[{'name':'x','op':'input'},{'name':'y','op':'sum','inputs':['x']}]},'target':'y',"
#define GC(v) "{'graph':{'nodes':[{'name':'c','op':'constant','value':" v "},{'name':'y','op':'sum','inputs':['c']}]},'target':'y'}"

START_TEST(same_tensors) {
    static const struct {
        const char *body;
        int taken;
    } cases[] = {
        {G1 "'values':{'x':[[1, 2.5, -0, -0.0, 1e-320], [3, 4e300, 0.1, -7, 2.2250738585072011e-308]]}}", 1},
        {G1 "'values':{'x':{'shape':[2,3],'data':[1.5,2,3,4,5,6.000000000000000000001]}}}", 1},
        {G1 "'values':{'x':{'shape':[3],'dtype':'float32','data':[0.1,16777217,3.4028236e38]}}}", 1},
        {G1 "'values':{'x':{'shape':[4],'dtype':'int64','data':[1,-2,3.0,1e3]}}}", 1},
        {"{'graph':{'nodes':[{'name':'x','op':'input','dtype':'int64'},{'name':'y','op':'sum','inputs':['x']}]},"
         "'target':'y','values':{'x':[[1,2,3],[4,5,-9007199254740991]]}}", 1},
        {"{'graph':{'nodes':[{'name':'x','op':'input','dtype':'float32'},{'name':'y','op':'sum','inputs':['x']}]},"
         "'target':'y','values':{'x':[0.1,0.2,0.3,1e-46]}}", 1},
        /* an int64 element of exactly 2^53 is fine written as an integer, not as a real */
        {"{'graph':{'nodes':[{'name':'x','op':'input','dtype':'int64'},{'name':'y','op':'sum','inputs':['x']}]},"
         "'target':'y','values':{'x':[1,2,-9007199254740992]}}", 0},
        {GC("[[1.25,2],[3,4]]"), 1},
        {GC("{'shape':[2,2],'data':[1.25,2,3,4]}"), 1},
        /* lists the scan leaves: strings, too big integers, empty, short */
        {G1 "'values':{'x':[1.5,'NaN',3.5,'-Infinity']}}", 0},
        {G1 "'values':{'x':[1.5,12345678901234567890123,3.5]}}", 0},
        {G1 "'values':{'x':[1.5,9007199254740993,3.5]}}", 0},
        {G1 "'values':{'x':[[],[]]}}", 0},
        {G1 "'values':{'x':[1,2]}}", 0},
        /* a big integer elsewhere: the body is read again with it as a real */
        {"{'graph':{'nodes':[{'name':'x','op':'input'},{'name':'s','op':'slice','inputs':['x'],'starts':[0],"
         "'ends':[99999999999999999999]},{'name':'y','op':'sum','inputs':['s']}]},'target':'y',"
         "'values':{'x':[1.5,2.5,3.5,4.5,5.5]}}", 1},
        /* several lists, whitespace everywhere */
        {G1 "'values':{ 'x' : [ [ 1 , 2 ] ,\n [ 3 , 4 ] , [5,6] ] } }", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int taken = ck_same_both_ways(cases[i].body, GD_EP_EVAL);
        ck_assert_msg(taken == cases[i].taken, "case %zu: %d lists taken, want %d", i, taken, cases[i].taken);
    }
}
END_TEST

START_TEST(same_errors) {
    static const char *const cases[] = {
        /* element checks: int64 wants integers below 2^53, with the element's path */
        "{'graph':{'nodes':[{'name':'x','op':'input','dtype':'int64'},{'name':'y','op':'sum','inputs':['x']}]},"
        "'target':'y','values':{'x':[[1,2,3],[4,2.5,6]]}}",
        "{'graph':{'nodes':[{'name':'x','op':'input','dtype':'int64'},{'name':'y','op':'sum','inputs':['x']}]},"
        "'target':'y','values':{'x':[1,2,9007199254740992.0]}}",
        G1 "'values':{'x':{'shape':[2],'dtype':'int64','data':[1,2,3.5]}}}",
        G1 "'values':{'x':{'shape':[2],'dtype':'int64','data':[1.5,2]}}}",
        /* count and shape */
        G1 "'values':{'x':{'shape':[2,2],'data':[1,2,3,4,5]}}}",
        G1 "'values':{'x':{'shape':[2,2],'data':[[1,2],[3,4]]}}}",
        G1 "'values':{'x':[[1,2,3],[4,5]]}}",
        G1 "'values':{'x':[[[[[[[[[1.5,2.5]]]]]]]]]}}",
        "{'graph':{'nodes':[{'name':'x','op':'input','shape':[3]},{'name':'y','op':'sum','inputs':['x']}]},"
        "'target':'y','values':{'x':[1.5,2.5,3.5,4.5]}}",
        /* names and keys around taken lists */
        G1 "'values':{'z':[1.5,2.5,3.5]}}",
        G1 "'values':{'x':{'shape':[3],'data':[1.5,2.5,3.5],'b64':'AAAA'}}}",
        "{'graph':{'nodes':[{'name':'x','op':'input','value':[1.5,2.5,3.5]},{'name':'y','op':'sum','inputs':['x']}]},"
        "'target':'y'}",
        /* JSON errors after a taken list (on a later line), and inside one */
        G1 "'values':{'x':[1.5,2.5,3.5]}\n,,}",
        G1 "'values':{'x':[1.5,2.5,3.5]},\n'deadline_ms': 1e400}",
        G1 "'values':{'x':\n[1.5,2.5,1e400]}}",
        G1 "'values':{'x':\n[1.5,2.5,01]}}",
        G1 "'values':{'x':[1.5,2.5,3.5]},\n'note':'\\u0000'}",
        G1 "'values':{'x':[1.5,2.5,3.5]}\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) ck_same_both_ways(cases[i], GD_EP_GRAD);
}
END_TEST

/* A duplicate key beside a taken list: jansson refuses the placeholder
 * text, the body is parsed as sent, and the duplicate is located in it (the
 * twin cannot serve here: the path quotes the escaped key as written). */
START_TEST(duplicate_key_located) {
    char *body = dq(G1 "'values':{'x':[1.5,2.5,3.5],\n'x':[1.5,2.5,3.5]}}");
    ck_assert_int_eq(lists_taken(body), 2);
    outcome f;
    decode(&f, body, GD_EP_GRAD, 0);
    ck_assert_int_eq(f.rc, GD_E_INVALID_REQUEST);
    ck_assert_str_eq(f.e.at, "$.values.x");
    ck_assert_str_eq(f.e.message, "Duplicate key $.values.x (line 2, column 3): each key may appear once in an object.");
    gd_arena_free(f.a);
    free(body);
}
END_TEST

static uint64_t xorshift64(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Random doubles at 1..17 digits, every magnitude, in nested and flat forms. */
START_TEST(random_lists) {
    uint64_t s = 0xC0FFEEull;
    size_t cap = 1 << 20;
    char *body = malloc(cap);
    int taken = 0;
    for (int round = 0; round < 20; round++) {
        int rows = 1 + (int)(xorshift64(&s) % 20), cols = 1 + (int)(xorshift64(&s) % 50);
        size_t o = (size_t)sprintf(body, G1 "'values':{'x':[");
        for (int r = 0; r < rows; r++) {
            body[o++] = r ? ',' : '[';
            if (r) body[o++] = '[';
            for (int c = 0; c < cols; c++) {
                uint64_t b = xorshift64(&s);
                double v;
                memcpy(&v, &b, 8);
                if (!isfinite(v)) v = 1.0 / (double)(b | 1);
                if (c) body[o++] = ',';
                o += (size_t)sprintf(body + o, "%.*g", 1 + (int)(b % 17), v);
            }
            body[o++] = ']';
        }
        o += (size_t)sprintf(body + o, "]}}");
        taken += ck_same_both_ways(body, GD_EP_EVAL);
    }
    /* a list holding an integer literal of 2^53 or more ("%.17g" of a large
     * integral double) is left to jansson */
    ck_assert_int_ge(taken, 10);
    free(body);
}
END_TEST

/* The side table counts against the request's limit: a list of 400k
 * elements takes well under half the memory of jansson's tree (measured on
 * the twin), and is too_large under 2 MiB; the arena never passes its
 * limit. */
START_TEST(memory_counts) {
    int n = 400000;
    char *body = malloc((size_t)n * 24 + 256);
    size_t o = (size_t)sprintf(body, G1 "'values':{'x':[");
    for (int i = 0; i < n; i++) o += (size_t)sprintf(body + o, i ? ",%.17g" : "%.17g", 1.0 / (i + 3));
    strcpy(body + o, "]}}");
    char *b = dq(body), *twin = twin_of(b);
    outcome f, s;
    decode(&f, b, GD_EP_EVAL, 256u << 20);
    decode(&s, twin, GD_EP_EVAL, 256u << 20);
    ck_assert_msg(f.rc == 0 && s.rc == 0, "%s / %s", f.e.message, s.e.message);
    ck_assert_msg(gd_arena_peak(f.a) < gd_arena_peak(s.a) / 2, "peak %zu, ordinary path %zu", gd_arena_peak(f.a),
                  gd_arena_peak(s.a));
    gd_arena_free(f.a);
    gd_arena_free(s.a);
    decode(&f, b, GD_EP_EVAL, 2u << 20);
    ck_assert_int_eq(f.rc, GD_E_TOO_LARGE);
    ck_assert_msg(gd_arena_peak(f.a) <= 2u << 20, "peak %zu", gd_arena_peak(f.a));
    gd_arena_free(f.a);
    free(body);
    free(b);
    free(twin);
}
END_TEST

START_TEST(placeholders) {
    gd_numtab t = {0};
    ck_assert_ptr_null(gd_numtab_find(&t, "\0" "0", 2));
    ck_assert_ptr_null(gd_numtab_find(NULL, "abc", 3));
    /* a body that mentions \u0000 anywhere is not scanned */
    char *b = dq(G1 "'values':{'x':[1.5,2.5,3.5]},'n':'\\\\u0000'}");
    ck_assert_int_eq(lists_taken(b), 0);
    free(b);
    b = dq(G1 "'values':{'x':[1.5,2.5,3.5], 'w':[[1.5],[2.5]]}}");
    ck_assert_int_eq(lists_taken(b), 2);
    free(b);
}
END_TEST

/* ---- the nodes read ahead (numscan.h: plain nodes) ---- */

/* body with the key "nodes" written with a \u escape (malloc'd): the scan
 * leaves the nodes to jansson. */
static char *nodes_twin_of(const char *body) {
    size_t n = strlen(body);
    char *out = malloc(2 * n + 64), *o = out;
    for (const char *p = body; *p;) {
        if (!strncmp(p, "\"nodes\"", 7)) {
            strcpy(o, "\"\\u006eodes\"");
            o += strlen(o), p += 7;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static int nodes_taken(const char *body) { return scan_taken(body, 1); }

static void ck_same_ints(const gd_ints *x, const gd_ints *y) {
    ck_assert_int_eq(x->given, y->given);
    ck_assert_int_eq(x->is_list, y->is_list);
    ck_assert_int_eq(x->n, y->n);
    for (int k = 0; k < x->n; k++) ck_assert_int_eq(x->v[k], y->v[k]);
}

/* Decodes sq with its nodes read ahead (when want_taken) and by jansson:
 * the same graph node for node, or the same error. */
static void ck_same_graph_both_ways(const char *sq, int ep, int want_taken) {
    char *body = dq(sq), *twin = nodes_twin_of(body);
    ck_assert_msg(nodes_taken(body) == want_taken, "%s: nodes taken %d, want %d", body, nodes_taken(body),
                  want_taken);
    ck_assert_int_eq(nodes_taken(twin), 0);
    outcome f, s;
    decode(&f, body, ep, 0);
    decode(&s, twin, ep, 0);
    if (!same_failure(body, &f, &s)) {
        const gd_graph *x = f.r.graph, *y = s.r.graph;
        ck_assert_int_eq(x->n, y->n);
        for (int i = 0; i < x->n; i++) {
            const gd_node *a = &x->nodes[i], *b = &y->nodes[i];
            ck_assert_str_eq(a->name, b->name);
            ck_assert_ptr_eq(a->op, b->op);
            ck_assert_int_eq(a->n_in, b->n_in);
            for (int k = 0; k < a->n_in; k++) {
                ck_assert_str_eq(a->in_names[k], b->in_names[k]);
                ck_assert_int_eq(a->in[k], b->in[k]);
            }
            ck_assert_int_eq(a->has_shape_decl, b->has_shape_decl);
            ck_assert_int_eq(a->shape_decl.rank, b->shape_decl.rank);
            for (int d = 0; d < a->shape_decl.rank; d++) ck_assert_int_eq(a->shape_decl.dim[d], b->shape_decl.dim[d]);
            ck_assert_int_eq(a->has_dtype_decl, b->has_dtype_decl);
            ck_assert_int_eq(a->attrs == &gd_no_attrs, b->attrs == &gd_no_attrs);
            ck_same_ints(&a->attrs->shape, &b->attrs->shape);
            ck_assert_int_eq(!x->st[i].value, !y->st[i].value);
            ck_assert_int_eq(x->st[i].meta.shape.rank, y->st[i].meta.shape.rank);
        }
    }
    gd_arena_free(f.a);
    gd_arena_free(s.a);
    free(body);
    free(twin);
}

#define CHAIN "{'graph':{'nodes':[{'name':'x','op':'variable','shape':[3]},{'op':'variable','name':'w','shape':[]}," \
              "{'name':'m','op':'mul','inputs':['x','w']},{'name':'t','op':'tanh','inputs':['m']},"                  \
              "{'name':'y','op':'sum','inputs':['t']}"
#define CHAIN_END "]},'target':'y','values':{'x':[1.5,-2,0.25],'w':0.5}}"

START_TEST(same_graphs) {
    static const struct {
        const char *body;
        int taken;
    } cases[] = {
        {CHAIN CHAIN_END, 1},
        {G1 "'values':{'x':[1.5,2.5,3.5]}}", 1},
        /* whitespace everywhere, empty inputs, a reshape's shape attribute */
        {"{ 'graph' : { 'nodes' : [ { 'name' : 'x' , 'op' : 'input' , 'shape' : [ 2 , 3 ] , 'inputs' : [ ] } ,\n"
         "{'name':'r','op':'reshape','inputs':[ 'x' ],'shape':[3,2]},{'name':'y','op':'sum','inputs':['r']} ] },"
         "'target':'y','values':{'x':[[1,2,3],[4,5,6]]}}", 1},
        /* errors from plain nodes: the same code, message, path and suggestion */
        {CHAIN ",{'name':'z','op':'tanhh','inputs':['y']}" CHAIN_END, 1},
        {CHAIN ",{'name':'z','op':'tanh','inputs':['y'],'shape':[2]}" CHAIN_END, 1},
        {CHAIN ",{'name':'t','op':'tanh','inputs':['y']}" CHAIN_END, 1},
        {CHAIN ",{'name':'z','op':'tanh','inputs':['yy']}" CHAIN_END, 1},
        {CHAIN ",{'name':'z','op':'tanh','inputs':['y','m']}" CHAIN_END, 1},
        {CHAIN ",{'name':'z z','op':'tanh','inputs':['y']}" CHAIN_END, 1},
        {CHAIN ",{'name':'c','op':'constant'}" CHAIN_END, 1},
        {CHAIN ",{'name':'z','op':'input','shape':[2,0,3]}" CHAIN_END, 1},
        {CHAIN ",{'name':'a','op':'tanh','inputs':['b']},{'name':'b','op':'tanh','inputs':['a']}" CHAIN_END, 1},
        {CHAIN ",{'name':'z','op':'input','shape':[123456789012345]}" CHAIN_END, 1},
        /* nodes the scan leaves to jansson: the whole list goes the ordinary way */
        {CHAIN ",{'name':'z','op':'input','shape':[1,1,1,1,1,1,1,1,1]}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':'input','shape':[-1]}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':'input','shape':[2.0]}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':'input','shape':[1234567890123456]}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':'input','dtype':'int64'}" CHAIN_END, 0},
        {CHAIN ",{'name':'c','op':'constant','value':2.5}" CHAIN_END, 0},
        {CHAIN ",{'name':'z\\u0041','op':'tanh','inputs':['y']}" CHAIN_END, 0},
        {CHAIN ",{'name':'z\xc3\xa9','op':'tanh','inputs':['y']}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':'tanh','inputs':null}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':'tanh','inputs':['y',3]}" CHAIN_END, 0},
        {CHAIN ",{'name':'z','op':5}" CHAIN_END, 0},
        {CHAIN ",{'op':'tanh'}" CHAIN_END, 0},
        {CHAIN ",['z']" CHAIN_END, 0},
        {"{'graph':{'nodes':[]},'target':'y'}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) ck_same_graph_both_ways(cases[i].body, GD_EP_GRAD, cases[i].taken);
}
END_TEST

/* A duplicate key in a node: the scan leaves the nodes, jansson locates it. */
START_TEST(nodes_duplicate_key) {
    char *body = dq("{'graph':{'nodes':[{'name':'x','op':'input','name':'y'}]},'target':'x'}");
    ck_assert_int_eq(nodes_taken(body), 0);
    outcome f;
    decode(&f, body, GD_EP_EVAL, 0);
    ck_assert_int_eq(f.rc, GD_E_INVALID_REQUEST);
    ck_assert_str_eq(f.e.at, "$.graph.nodes[0].name");
    gd_arena_free(f.a);
    free(body);
}
END_TEST

/* The edge limits hold for nodes read ahead as for jansson's. */
START_TEST(nodes_limits) {
    char *body = dq(CHAIN CHAIN_END), *twin = nodes_twin_of(body);
    ck_assert_int_eq(nodes_taken(body), 1);
    for (int k = 0; k < 2; k++) {
        gd_decode_limits lim = {.max_nodes = 10000, .max_elements = 1 << 24, .max_inputs = k ? 1 : 0,
                                .max_edges = k ? 0 : 2};
        outcome f, s;
        f.a = gd_arena_new(0), s.a = gd_arena_new(0);
        f.rc = gd_decode_request(f.a, body, strlen(body), NULL, 0, GD_EP_GRAD, &lim, &f.r, &f.e);
        s.rc = gd_decode_request(s.a, twin, strlen(twin), NULL, 0, GD_EP_GRAD, &lim, &s.r, &s.e);
        ck_assert_int_eq(f.rc, GD_E_TOO_LARGE);
        ck_assert_int_eq(s.rc, GD_E_TOO_LARGE);
        ck_assert_str_eq(f.e.message, s.e.message);
        ck_assert_str_eq(f.e.at, k ? "$.graph.nodes[2].inputs" : "$.graph.nodes[3].inputs");
        ck_assert_str_eq(f.e.at, s.e.at);
        gd_arena_free(f.a);
        gd_arena_free(s.a);
    }
    free(body);
    free(twin);
}
END_TEST

Suite *suite_numscan(void) {
    Suite *s = suite_create("numscan");
    TCase *tc = tcase_create("same_as_jansson");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, same_tensors);
    tcase_add_test(tc, same_errors);
    tcase_add_test(tc, duplicate_key_located);
    tcase_add_test(tc, random_lists);
    tcase_add_test(tc, memory_counts);
    tcase_add_test(tc, placeholders);
    tcase_add_test(tc, same_graphs);
    tcase_add_test(tc, nodes_duplicate_key);
    tcase_add_test(tc, nodes_limits);
    suite_add_tcase(s, tc);
    return s;
}
