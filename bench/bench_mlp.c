/* bench_mlp.c - times one training step of a 3-layer MLP on the core, the
 * way the server will run a request: a fresh arena and graph per step, built
 * node by node, checked, run and freed.
 *
 *   x [256, 784] (input), labels int64 [256] (input)
 *   h1 = relu(x @ W1 + b1), h2 = relu(h1 @ W2 + b2), logits = h2 @ W3 + b3
 *   loss = softmax_cross_entropy(logits, labels)
 *
 * Two measurements: forward only (gd_run with grad = 0) and the full step
 * (grad = 1, gradients for W1 b1 W2 b2 W3 b3; x gets none). Each is warm-up
 * runs, then N timed runs with N chosen so that the measurement lasts at
 * least --min-time seconds (and N >= --min-runs); the median is reported.
 * Values are deterministic (splitmix64 per tensor, see fill_uniform) so that
 * bench/torch_mlp.py builds bit-identical data and the CHECK lines of the two
 * can be compared.
 *
 * Leaf values are tensor headers in the step's arena that point at buffers
 * made once (no copy), as PyTorch reuses its tensors; the copy a real request
 * pays for decoding its values is the proto layer's cost, not the core's.
 * Each step's arena draws its big buffers from one gd_bufcache, as a server
 * worker's requests do (--no-cache: a plain gd_arena_new per step).
 * Not here: JSON, HTTP, anything of the server. */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/run.h"

enum { B = 256, D_IN = 784, D_H = 1024, D_OUT = 10 };

/* Tensor ids, also the splitmix64 stream of each (shared with torch_mlp.py). */
enum { T_X, T_LABELS, T_W1, T_B1, T_W2, T_B2, T_W3, T_B3, T_COUNT };

static const char *const tensor_name[T_COUNT] = {"x", "labels", "W1", "b1", "W2", "b2", "W3", "b3"};

/* Forward gemm flops of one step: 2 * B * sum(fan_in * fan_out). */
#define FWD_FLOPS (2.0 * B * ((double)D_IN * D_H + (double)D_H * D_H + (double)D_H * D_OUT))
/* Backward gemms actually run: dW for every layer, dh for layers 2 and 3
 * (x wants no gradient, so layer 1 has no d(input) product). */
#define BWD_FLOPS_EXEC (2.0 * B * ((double)D_IN * D_H + 2.0 * D_H * D_H + 2.0 * D_H * D_OUT))

/* ---- deterministic data ------------------------------------------------ */

/* Element i of stream `t` for `seed`: splitmix64's output for counter i + 1
 * from the stream's key. Vectorisable, so the Python side can match it. */
static uint64_t mix_at(uint64_t seed, int t, uint64_t i) {
    uint64_t key = ((seed << 8) | (uint64_t)t) * 0xD1B54A32D192ED03ull;
    uint64_t z = key + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_uniform(double *d, int64_t n, uint64_t seed, int t, double lo, double hi) {
    for (int64_t i = 0; i < n; i++)
        d[i] = lo + (hi - lo) * ((double)(mix_at(seed, t, (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0));
}

static void fill_labels(int64_t *d, int64_t n, uint64_t seed, int t, int64_t classes) {
    for (int64_t i = 0; i < n; i++) d[i] = (int64_t)(mix_at(seed, t, (uint64_t)i) % (uint64_t)classes);
}

/* The values of every leaf, made once; steps point at them. */
typedef struct mlp_data {
    gd_shape shape[T_COUNT];
    void *buf[T_COUNT];
} mlp_data;

/* Allocates the buffers (the caller frees them with data_free); x is
 * uniform [0, 1) like pixel intensities, weights and biases uniform
 * +-1/sqrt(fan_in) (PyTorch's nn.Linear init), labels uniform in [0, 10). */
static int data_make(mlp_data *m, uint64_t seed) {
    static const int64_t dims[T_COUNT][2] = {{B, D_IN}, {B, 0},   {D_IN, D_H}, {D_H, 0},
                                             {D_H, D_H}, {D_H, 0}, {D_H, D_OUT}, {D_OUT, 0}};
    static const int fan_in[T_COUNT] = {0, 0, D_IN, D_IN, D_H, D_H, D_H, D_H};
    for (int t = 0; t < T_COUNT; t++) {
        m->shape[t] = gd_shape_make(dims[t][1] ? 2 : 1, dims[t]);
        int64_t n = dims[t][0] * (dims[t][1] ? dims[t][1] : 1);
        if (!(m->buf[t] = aligned_alloc(64, (size_t)((n * 8 + 63) / 64 * 64)))) return -1;
        if (t == T_LABELS) fill_labels(m->buf[t], n, seed, t, D_OUT);
        else if (t == T_X) fill_uniform(m->buf[t], n, seed, t, 0.0, 1.0);
        else {
            double bound = 1.0 / sqrt((double)fan_in[t]);
            fill_uniform(m->buf[t], n, seed, t, -bound, bound);
        }
    }
    return 0;
}

static void data_free(mlp_data *m) {
    for (int t = 0; t < T_COUNT; t++) free(m->buf[t]);
}

/* ---- one step ---------------------------------------------------------- */

typedef struct step_time {
    double total, build, run, free; /* seconds: whole step, new+add+set+check, gd_run, gd_arena_free */
    double fwd, bwd;                /* seconds: gd_run's own forward_us / backward_us */
} step_time;

typedef struct step_check {
    int want;              /* fill the fields below (the step's results are read before the arena goes) */
    double loss;
    int grads_present, grads_finite, n_diags;
    double norm[T_COUNT], sum[T_COUNT]; /* per weight/bias gradient: L2 norm and plain sum */
    size_t peak_bytes;
} step_check;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int add_node(gd_graph *g, const char *name, const char *op, const char *a, const char *b, gd_error *err) {
    const char *ins[2] = {a, b};
    int n = b ? 2 : a ? 1 : 0;
    return gd_graph_add(g, name, op, ins, n, err) ? 0 : -1;
}

/* Build the MLP graph in arena a with the leaves pointing at m's buffers.
 * Returns the checked graph, NULL with err set on failure. */
static gd_graph *build(gd_arena *a, const mlp_data *m, gd_error *err) {
    gd_graph *g = gd_graph_new(a, 20);
    if (!g) return NULL;
    for (int t = 0; t < T_COUNT; t++)
        if (add_node(g, tensor_name[t], t <= T_LABELS ? "input" : "variable", NULL, NULL, err)) return NULL;
    if (add_node(g, "mm1", "matmul", "x", "W1", err) || add_node(g, "z1", "add", "mm1", "b1", err) ||
        add_node(g, "h1", "relu", "z1", NULL, err) || add_node(g, "mm2", "matmul", "h1", "W2", err) ||
        add_node(g, "z2", "add", "mm2", "b2", err) || add_node(g, "h2", "relu", "z2", NULL, err) ||
        add_node(g, "mm3", "matmul", "h2", "W3", err) || add_node(g, "logits", "add", "mm3", "b3", err) ||
        add_node(g, "loss", "softmax_cross_entropy", "logits", "labels", err))
        return NULL;
    for (int t = 0; t < T_COUNT; t++) {
        gd_tensor *v = gd_tensor_header(a, &m->shape[t], t == T_LABELS ? GD_I64 : GD_F64);
        if (!v) return NULL;
        v->data = m->buf[t];
        gd_node_set_value(&g->nodes[t], v, t);
    }
    gd_limits lim = {0};
    if (gd_graph_check(g, &lim, err)) return NULL;
    return g;
}

/* One request's worth of work: arena (drawing on cache, which may be NULL),
 * graph, check, run, free. */
static int step(const mlp_data *m, gd_bufcache *cache, int grad, int check_numerics, step_time *st,
                step_check *ck) {
    static const int wrt_leaves[6] = {T_W1, T_B1, T_W2, T_B2, T_W3, T_B3};
    gd_error err;
    gd_run_result res;
    gd_cancel cancel = {0}; /* polled as a request's would be; no deadline */
    double t0 = now_s();
    gd_arena *a = gd_arena_new_cached(0, cache);
    if (!a) return fprintf(stderr, "bench_mlp: out of memory\n"), -1;
    gd_graph *g = build(a, m, &err);
    if (!g) {
        fprintf(stderr, "bench_mlp: building the graph failed: %s (%s)\n", err.message, err.at);
        gd_arena_free(a);
        return -1;
    }
    int target = gd_graph_find(g, "loss");
    double t1 = now_s();
    gd_run_spec spec = {.targets = &target, .n_targets = 1, .grad = grad, .wrt = wrt_leaves, .n_wrt = 6,
                        .check_numerics = check_numerics, .cancel = &cancel};
    int rc = gd_run(g, &spec, &res, &err);
    double t2 = now_s();
    if (rc) {
        fprintf(stderr, "bench_mlp: gd_run failed: %s (%s)\n", err.message, err.at);
        gd_arena_free(a);
        return -1;
    }
    if (ck && ck->want) {
        ck->loss = gd_f64(res.targets[0])[0];
        ck->n_diags = res.n_diags;
        ck->peak_bytes = res.peak_bytes;
        ck->grads_present = ck->grads_finite = 1;
        for (int k = 0; grad && k < 6; k++) {
            const gd_tensor *gr = res.grads[k];
            if (!gr) { ck->grads_present = 0; continue; }
            double ss = 0, s = 0;
            for (int64_t i = 0; i < gr->n; i++) ss += gd_f64(gr)[i] * gd_f64(gr)[i], s += gd_f64(gr)[i];
            ck->grads_finite &= gd_all_finite(gr, NULL);
            ck->norm[wrt_leaves[k]] = sqrt(ss);
            ck->sum[wrt_leaves[k]] = s;
        }
    }
    gd_arena_free(a);
    double t3 = now_s();
    st->total = t3 - t0, st->build = t1 - t0, st->run = t2 - t1, st->free = t3 - t2;
    st->fwd = 1e-6 * (double)res.forward_us, st->bwd = 1e-6 * (double)res.backward_us;
    return 0;
}

/* ---- measurement ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Medians (seconds) of each phase over the timed runs. */
typedef struct measure {
    int runs;
    double total, build, run, free, fwd, bwd, min, max;
} measure;

typedef struct opts {
    int threads, warmup, min_runs, check_numerics, no_cache;
    double min_time;
    uint64_t seed;
} opts;

/* Warm-up, then N runs with N = max(min_runs, min_time / warm-up median). */
static int measure_steps(const mlp_data *m, gd_bufcache *cache, int grad, const opts *o, measure *out) {
    step_time st;
    int nw = o->warmup > 0 ? o->warmup : 1;
    double *w = calloc((size_t)nw, sizeof *w);
    if (!w) return -1;
    for (int i = 0; i < nw; i++) {
        if (step(m, cache, grad, o->check_numerics, &st, NULL)) return free(w), -1;
        w[i] = st.total;
    }
    double est = median(w, nw);
    free(w);
    int n = o->min_runs;
    if (est > 0 && o->min_time / est > n) n = o->min_time / est < 1e6 ? (int)ceil(o->min_time / est) : 1000000;
    double *all = calloc((size_t)n * 6, sizeof(double)), *v[6]; /* v[k]: phase k of every run */
    if (!all) return -1;
    for (int k = 0; k < 6; k++) v[k] = all + (size_t)k * (size_t)n;
    for (int i = 0; i < n; i++) {
        if (step(m, cache, grad, o->check_numerics, &st, NULL)) return free(all), -1;
        v[0][i] = st.total, v[1][i] = st.build, v[2][i] = st.run, v[3][i] = st.free, v[4][i] = st.fwd,
        v[5][i] = st.bwd;
    }
    out->runs = n;
    out->min = out->max = v[0][0];
    for (int i = 0; i < n; i++) {
        if (v[0][i] < out->min) out->min = v[0][i];
        if (v[0][i] > out->max) out->max = v[0][i];
    }
    out->total = median(v[0], n), out->build = median(v[1], n), out->run = median(v[2], n);
    out->free = median(v[3], n), out->fwd = median(v[4], n), out->bwd = median(v[5], n);
    free(all);
    return 0;
}

/* ---- reporting --------------------------------------------------------- */

/* Which BLAS this process really runs: the object that provides the
 * cblas_dgemm the core calls, OpenBLAS's own account, then every mapped
 * shared object whose path mentions blas/lapack/mkl. */
static void print_blas(int requested) {
    Dl_info info;
    char real[4096];
    if (dladdr((void *)cblas_dgemm, &info) && info.dli_fname)
        printf("BLAS: cblas_dgemm from %s\n", realpath(info.dli_fname, real) ? real : info.dli_fname);
    printf("BLAS: openblas_get_config() = %s\n", openblas_get_config());
    printf("BLAS: openblas_get_corename() = %s, openblas_get_num_threads() = %d (requested %d), "
           "openblas_get_num_procs() = %d\n",
           openblas_get_corename(), openblas_get_num_threads(), requested, openblas_get_num_procs());
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[1024], last[1024] = "";
    while (fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path) continue;
        path[strcspn(path, "\n")] = 0;
        if ((strstr(path, "blas") || strstr(path, "lapack") || strstr(path, "mkl")) && strcmp(path, last)) {
            printf("BLAS: mapped %s\n", path);
            snprintf(last, sizeof last, "%s", path);
        }
    }
    fclose(f);
}

static const char *env_or(const char *name) {
    const char *v = getenv(name);
    return v ? v : "(unset)";
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_mlp [--threads N] [--min-time SECONDS] [--min-runs N] [--warmup N] [--seed S]\n"
               "                 [--check-numerics] [--no-cache]\n"
               "  --threads N        OpenBLAS threads (openblas_set_num_threads), default 1\n"
               "  --min-time S       each measurement lasts at least S seconds, default 2\n"
               "  --min-runs N       and has at least N timed runs, default 10\n"
               "  --warmup N         untimed runs before each measurement, default 3\n"
               "  --seed S           data seed (torch_mlp.py takes the same), default 1\n"
               "  --check-numerics   time with gd_run's check_numerics on (off by default)\n"
               "  --no-cache         no gd_bufcache: every step's buffers come from malloc\n");
}

static int parse(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--check-numerics")) { o->check_numerics = 1; continue; }
        if (!strcmp(a, "--no-cache")) { o->no_cache = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
        if (!v) return usage(stderr), -1;
        char *end;
        if (!strcmp(a, "--threads")) o->threads = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--min-time")) o->min_time = strtod(v, &end);
        else if (!strcmp(a, "--min-runs")) o->min_runs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--warmup")) o->warmup = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, &end, 10);
        else return usage(stderr), -1;
        if (*end || end == v) return fprintf(stderr, "bench_mlp: bad value '%s' for %s\n", v, a), -1;
        i++;
    }
    if (o->threads < 1 || o->min_runs < 1 || o->warmup < 0 || !(o->min_time >= 0))
        return fprintf(stderr, "bench_mlp: out-of-range option\n"), -1;
    return 0;
}

static void print_measure(const char *what, const measure *ms, double flops) {
    printf("%-17s runs=%d median %.2f ms (min %.2f, max %.2f) = %.1f GFLOP/s\n", what, ms->runs, 1e3 * ms->total,
           1e3 * ms->min, 1e3 * ms->max, flops / ms->total * 1e-9);
    printf("%-17s   phases (medians): arena+build+check %.3f ms, gd_run %.2f ms (forward %.2f, backward %.2f), "
           "arena_free %.3f ms\n",
           "", 1e3 * ms->build, 1e3 * ms->run, 1e3 * ms->fwd, 1e3 * ms->bwd, 1e3 * ms->free);
}

int main(int argc, char **argv) {
    opts o = {.threads = 1, .warmup = 3, .min_runs = 10, .min_time = 2.0, .seed = 1};
    if (parse(argc, argv, &o)) return 2;
    openblas_set_num_threads(o.threads);
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("gradd bench_mlp: one MLP training step per request, float64\n");
    printf("model: x [%d, %d] input, labels int64 [%d] input; h1 = relu(x @ W1 + b1), h2 = relu(h1 @ W2 + b2), "
           "logits = h2 @ W3 + b3, loss = softmax_cross_entropy(logits, labels); W1 [%d, %d] W2 [%d, %d] W3 [%d, "
           "%d]; wrt = W1 b1 W2 b2 W3 b3\n",
           B, D_IN, B, D_IN, D_H, D_H, D_H, D_H, D_OUT);
    printf("env: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s OPENBLAS_NUM_THREADS=%s OMP_NUM_THREADS=%s\n",
           env_or("OPENBLAS_CORETYPE"), env_or("OPENBLAS_L2_SIZE"), env_or("OPENBLAS_NUM_THREADS"),
           env_or("OMP_NUM_THREADS"));
    print_blas(o.threads);
    printf("flops: forward F = 2*B*(784*1024 + 1024*1024 + 1024*10) = %.4f GFLOP; step (nominal, used for "
           "GFLOP/s) = F + 2F = %.4f GFLOP; gemms the step really runs (no dx for layer 1) = "
           "F + 2*B*(784*1024 + 2*1024*1024 + 2*1024*10) = %.4f GFLOP\n",
           FWD_FLOPS * 1e-9, 3 * FWD_FLOPS * 1e-9, (FWD_FLOPS + BWD_FLOPS_EXEC) * 1e-9);
    printf("timing: each step = gd_arena_new%s + gd_graph_add x17 + gd_node_set_value + gd_graph_check + gd_run + "
           "gd_arena_free; check_numerics=%d; warm-up %d, then N >= %d runs lasting >= %.1f s; medians\n",
           o.no_cache ? " (no buffer cache)" : "_cached (one gd_bufcache, as a server worker)", o.check_numerics,
           o.warmup, o.min_runs, o.min_time);

    mlp_data m;
    gd_bufcache *cache = o.no_cache ? NULL : gd_bufcache_new((size_t)1 << 30);
    if (data_make(&m, o.seed) || (!o.no_cache && !cache)) return fprintf(stderr, "bench_mlp: out of memory\n"), 1;

    /* Once, with check_numerics: the step is right before it is timed. */
    step_time st;
    step_check ck = {.want = 1};
    if (step(&m, cache, 1, 1, &st, &ck)) return 1;
    double l10 = log(10.0);
    int ok = ck.grads_present && ck.grads_finite && ck.n_diags == 0 && fabs(ck.loss - l10) < 0.25;
    printf("check: loss = %.6f (log 10 = %.6f), gradients present %s, finite %s, diagnostics %d, peak arena %.1f MB: "
           "%s\n",
           ck.loss, l10, ck.grads_present ? "yes" : "NO", ck.grads_finite ? "yes" : "NO", ck.n_diags,
           ck.peak_bytes / 1048576.0, ok ? "ok" : "FAILED");
    printf("CHECK gradd loss=%.15e", ck.loss);
    for (int t = T_W1; t < T_COUNT; t++) printf(" norm_%s=%.15e sum_%s=%.15e", tensor_name[t], ck.norm[t],
                                                tensor_name[t], ck.sum[t]);
    printf("\n");
    if (!ok) return 1;

    measure fw, sp;
    if (measure_steps(&m, cache, 0, &o, &fw) || measure_steps(&m, cache, 1, &o, &sp)) return 1;
    print_measure("forward only:", &fw, FWD_FLOPS);
    print_measure("forward+backward:", &sp, 3 * FWD_FLOPS);
    double ratio = sp.total / fw.total;
    printf("ratio (forward+backward)/forward = %.3f (gd_run only: %.3f)\n", ratio, sp.run / fw.run);
    printf("RESULT gradd threads=%d fwd_ms=%.3f step_ms=%.3f ratio=%.3f gflops=%.2f fwd_gflops=%.2f runs=%d "
           "fwd_runs=%d run_fwd_ms=%.3f run_step_ms=%.3f build_ms=%.3f free_ms=%.3f\n",
           o.threads, 1e3 * fw.total, 1e3 * sp.total, ratio, 3 * FWD_FLOPS / sp.total * 1e-9,
           FWD_FLOPS / fw.total * 1e-9, sp.runs, fw.runs, 1e3 * fw.run, 1e3 * sp.run, 1e3 * sp.build,
           1e3 * sp.free);
    if (cache) printf("buffer cache: %.1f MB held after the last step\n", gd_bufcache_bytes(cache) / 1048576.0);
    gd_bufcache_free(cache);
    data_free(&m);
    return 0;
}
