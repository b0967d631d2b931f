/* replay.c - make check's side of the fuzzer: feeds every file of the given
 * directories (default: the committed regressions, then the seed corpus,
 * under GD_FUZZ_DIR) to LLVMFuzzerTestOneInput (fuzz_request.c), compiled
 * with the project's own compiler and no libFuzzer. A finding that was
 * fixed stays fixed in the plain and the sanitizer builds: a regression
 * aborts (fuzz_request.c's checks) or trips the sanitizer of the build.
 *
 * Usage: tests/fuzz/replay [DIR_OR_FILE...]; dot files and *.md are
 * skipped. Prints each file before running it (the last line names the
 * culprit of a crash) when GD_FUZZ_VERBOSE is set, and a count per
 * directory at the end. Exit 0, or 1 when a file or directory cannot be
 * read. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef GD_FUZZ_DIR
#define GD_FUZZ_DIR "tests/fuzz"
#endif

static int verbose;

/* Read a whole file into a malloc'ed buffer of exactly its size (so that
 * ASan sees a read past its end); the caller frees it. NULL on error. */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || !buf) {
        free(buf);
        return NULL;
    }
    uint8_t *exact = malloc(n ? n : 1);
    if (exact) memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

static int run_file(const char *path) {
    size_t n = 0;
    uint8_t *data = slurp(path, &n);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    if (verbose) {
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
        fflush(stderr);
    }
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file of dir (not recursive, dot files skipped), in name
 * order. Returns the number run, or -1. */
static int run_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return run_file(dir) ? -1 : 1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || (len > 3 && !strcmp(e->d_name + len - 3, ".md"))) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    int ran = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i] ? names[i] : "");
        if (names[i] && run_file(path) == 0)
            ran++;
        else
            bad = 1;
        free(names[i]);
    }
    free(names);
    return bad ? -1 : ran;
}

int main(int argc, char **argv) {
    static const char *defaults[] = {GD_FUZZ_DIR "/regressions", GD_FUZZ_DIR "/corpus"};
    const char **dirs = argc > 1 ? (const char **)argv + 1 : defaults;
    int ndirs = argc > 1 ? argc - 1 : 2;
    verbose = getenv("GD_FUZZ_VERBOSE") != NULL;
    int status = 0;
    for (int i = 0; i < ndirs; i++) {
        int ran = run_dir(dirs[i]);
        printf("replay: %s: %d inputs\n", dirs[i], ran < 0 ? 0 : ran);
        if (ran < 0) status = 1;
    }
    return status;
}
