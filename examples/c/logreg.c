/* gradd client in C: logistic regression with libcurl and jansson (graph registered once).
 * Build: make check builds it as build/examples/c/logreg, or
 *   cc examples/c/logreg.c $(pkg-config --cflags --libs libcurl jansson) -o logreg
 * Run: ./logreg   (GRADD_URL overrides the server) */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *GRAPH =
    "{\"nodes\": ["
    "{\"name\": \"X\", \"op\": \"input\"}, {\"name\": \"y\", \"op\": \"input\"},"
    "{\"name\": \"w\", \"op\": \"variable\"}, {\"name\": \"b\", \"op\": \"variable\"},"
    "{\"name\": \"Xw\", \"op\": \"matmul\", \"inputs\": [\"X\", \"w\"]},"
    "{\"name\": \"z\", \"op\": \"add\", \"inputs\": [\"Xw\", \"b\"]},"
    "{\"name\": \"sp\", \"op\": \"softplus\", \"inputs\": [\"z\"]},"
    "{\"name\": \"yz\", \"op\": \"mul\", \"inputs\": [\"y\", \"z\"]},"
    "{\"name\": \"l\", \"op\": \"sub\", \"inputs\": [\"sp\", \"yz\"]},"
    "{\"name\": \"loss\", \"op\": \"mean\", \"inputs\": [\"l\"]}]}";
static const char *DATA =
    "{\"X\": [[0.5, 1.0], [1.5, -0.5], [-1.0, 0.5], [-0.5, -1.5],"
    "       [2.0, 0.5], [-1.5, -0.5], [1.0, 1.5], [0.5, -1.0]],"
    " \"y\": [1, 1, 0, 0, 1, 0, 1, 0]}";

struct buf { char *p; size_t n; };

static size_t collect(char *data, size_t size, size_t n, void *user) {
    struct buf *b = user;
    char *p = realloc(b->p, b->n + size * n + 1);
    if (!p) return 0;
    memcpy(p + b->n, data, size * n);
    b->p = p;
    b->n += size * n;
    b->p[b->n] = '\0';
    return size * n;
}

/* POSTs `body` (stolen) to URL + path; the answer as JSON (caller frees), NULL on a transport
 * failure. *status gets the HTTP status. */
static json_t *post(CURL *curl, const char *url, const char *path, json_t *body, long *status) {
    char full[512];
    struct buf b = {NULL, 0};
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(full, sizeof full, "%s%s", url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, full);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(h);
    free(text);
    json_t *answer = NULL;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
        answer = json_loads(b.p ? b.p : "", 0, NULL);
    } else {
        fprintf(stderr, "POST %s: %s\n", full, curl_easy_strerror(rc));
    }
    free(b.p);
    return answer;
}

/* Registers the graph; its id (caller frees), or NULL. */
static char *registered(CURL *curl, const char *url) {
    long status = 0;
    json_t *a = post(curl, url, "/v1/graphs", json_pack("{s:o}", "graph", json_loads(GRAPH, 0, NULL)), &status);
    const char *id = json_string_value(json_object_get(a, "graph_id"));
    char *out = id ? malloc(strlen(id) + 1) : NULL;
    if (out) strcpy(out, id);
    json_decref(a);
    return out;
}

/* The gradient answer for w, b; registers the graph again when the server forgot it
 * (404 unknown_graph). NULL (the error printed) on failure. */
static json_t *grad(CURL *curl, const char *url, char **id, const double w[2], double b) {
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *values = json_loads(DATA, 0, NULL);
        json_object_set_new(values, "w", json_pack("[ff]", w[0], w[1]));
        json_object_set_new(values, "b", json_real(b));
        long status = 0;
        json_t *a = post(curl, url, "/v1/grad",
                         json_pack("{s:s, s:o, s:s}", "graph_id", *id, "values", values, "target", "loss"),
                         &status);
        if (status == 200) return a;
        const char *code = json_string_value(json_object_get(json_object_get(a, "error"), "code"));
        if (attempt == 0 && code && strcmp(code, "unknown_graph") == 0) {
            json_decref(a);
            free(*id);
            if (!(*id = registered(curl, url))) return NULL;
            continue;
        }
        char *text = a ? json_dumps(a, 0) : NULL;
        fprintf(stderr, "HTTP %ld: %s\n", status, text ? text : "(no JSON)");
        free(text);
        json_decref(a);
        return NULL;
    }
    return NULL;
}

int main(void) {
    const char *url = getenv("GRADD_URL") ? getenv("GRADD_URL") : "http://localhost:8080";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();   /* one handle: the connection is kept alive */
    char *id = curl ? registered(curl, url) : NULL;
    double w[2] = {0, 0}, b = 0;
    int rc = id ? 0 : 1;
    for (int step = 0; step <= 50 && rc == 0; step++) {
        json_t *a = grad(curl, url, &id, w, b);
        if (!a) {
            rc = 1;
            break;
        }
        json_t *g = json_object_get(a, "gradients");
        if (step % 10 == 0)
            printf("step %d: loss %.6f\n", step, json_number_value(json_object_get(json_object_get(a, "target"), "loss")));
        w[0] -= 0.5 * json_number_value(json_array_get(json_object_get(g, "w"), 0));
        w[1] -= 0.5 * json_number_value(json_array_get(json_object_get(g, "w"), 1));
        b -= 0.5 * json_number_value(json_object_get(g, "b"));
        json_decref(a);
    }
    if (rc == 0) printf("w = [%.4f, %.4f], b = %.4f\n", w[0], w[1], b);
    free(id);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return rc;
}
