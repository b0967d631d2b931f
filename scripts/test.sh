#!/usr/bin/env bash
# test.sh - THE test command of gradd (CI runs it through .ci/run).
#
# Usage: scripts/test.sh [--quick]
#
# From a clean clone, with no prior state, it:
#   1. installs the build dependencies      (scripts/install-deps.sh)
#   2. regenerates the build system         (autoreconf -fi)
#   3. plain build + make check             in build/
#      make bench-smoke (every benchmark briefly, answers checked, no
#      timing asserted), deployment checks, the scale-out test, the soak
#      and make distcheck from it
#      built with configure --without-graphviz in build-nogv/: /v1/explain
#      answers DOT only (tests/explain_test.py)
#   3d. deploy/docker_test.sh in the background, beside step 4: the image
#      built (make check inside) and run, the compose stack with a replica
#      killed under load; its log is printed and its result checked after
#      step 4d (a failure fails the run; it skips only where no Docker
#      engine can be started).  About 10-15 minutes of its own.
#   4. ASan/UBSan build + make check        in build-asan/
#      TSan build, the HTTP tests (gradd's worker pool) in build-tsan/
#      fuzzing: `make fuzz FUZZ_SECONDS=120` (libFuzzer, clang, in
#      build/fuzz-build/) over the committed corpus tests/fuzz/corpus/, and
#      tests/http_fuzz.py for 60 s against build-asan/gradd (mutated
#      request lines, headers and framing over raw sockets); any finding
#      (crash, sanitizer report, hang, malformed status line) fails
#   5. coverage build + make check + gcovr  in build-cov/  (reports over
#      core/: build-cov/coverage.txt, plus build-cov/coverage.json)
#   6. tests/check_backward_coverage.sh (coverage.json joined with the op
#      table as build-cov/tests/backward_probe prints it), if that script exists
# --quick skips steps 5 and 6.
#
# Every build directory is removed and recreated, and all builds are out of
# tree: the source directory itself must stay unconfigured.
# OPENBLAS_NUM_THREADS defaults to 1 so tests don't oversubscribe small boxes.
# One time scale stretches every time window of the tests in the slow builds:
# GD_TEST_TIME_SCALE (tests/http_harness.h: drain and deadline windows, the
# harness's waits; tests/scaleout_test.sh's waits) and, from the same number,
# Check's timeouts (CK_TIMEOUT_MULTIPLIER): x1 for the plain build, x4 for
# ASan and TSan, x2 for -O0 coverage, each multiplied by GD_TEST_TIME_SCALE
# from the environment (e.g. 2 on a loaded machine).  JOBS (default 2) sets
# make -j.
set -euo pipefail

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${JOBS:-2}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
COVERAGE_REPORT="$ROOT/build-cov/coverage.txt"
COVERAGE_JSON="$ROOT/build-cov/coverage.json"

SAN_FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all"
ASAN_CFLAGS="-O1 -g -fno-omit-frame-pointer $SAN_FLAGS"
ASAN_LDFLAGS="-fno-omit-frame-pointer $SAN_FLAGS"
# time_scale FACTOR: a build's factor times the caller's scale (if any).
time_scale() {
    awk -v f="$1" -v s="${GD_TEST_TIME_SCALE:-1}" 'BEGIN { printf "%g", f * (s > 1 ? s : 1) }'
}
PLAIN_SCALE=$(time_scale 1)
ASAN_SCALE=$(time_scale 4)
TSAN_SCALE=$(time_scale 4)
COV_SCALE=$(time_scale 2)
TSAN_CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=thread"
TSAN_LDFLAGS="-fsanitize=thread"

step() {
    printf '\n==== %s ====\n' "$*"
}

# Show the effective compiler flags of a configured build directory.
show_flags() {
    sed -n -e 's/^\(CC\|CFLAGS\|GD_STD_CFLAGS\|GD_WARN_CFLAGS\|LDFLAGS\|LIBS\) = /  \1 = /p' Makefile
}

# use_time_scale S: export S as GD_TEST_TIME_SCALE and as Check's multiplier.
use_time_scale() {
    export GD_TEST_TIME_SCALE="$1" CK_TIMEOUT_MULTIPLIER="$1"
    echo "test.sh: time scale x$1 (GD_TEST_TIME_SCALE, CK_TIMEOUT_MULTIPLIER)"
}

# make check in the current build dir; on failure show the logs and stop.
run_check() {
    if ! make -j"$JOBS" check; then
        echo "---- test-suite.log ($(pwd)) ----"
        cat test-suite.log 2>/dev/null || echo "(no test-suite.log)"
        exit 1
    fi
    # The harness keeps each test's stdout in its .log: show Check's summary.
    for log in tests/*.log; do
        [ -f "$log" ] || continue
        echo "---- $log ----"
        cat "$log"
    done
}

# fresh_build DIR [configure args...]: configure DIR from scratch, out of tree.
fresh_build() {
    local dir=${1:?}; shift
    rm -rf "${ROOT:?}/$dir"
    mkdir -p "$ROOT/$dir"
    cd "$ROOT/$dir"
    ../configure "$@"
    show_flags
}

step "1/6 install dependencies"
bash "$ROOT/scripts/install-deps.sh"

step "2/6 autoreconf -fi"
if [ -f "$ROOT/config.status" ]; then
    echo "test.sh: the source directory is configured in-tree; out-of-tree" >&2
    echo "builds need it clean: run 'make distclean' in $ROOT first." >&2
    exit 1
fi
autoreconf -fi

step "3/6 plain build (build/)"
fresh_build build
make -j"$JOBS"
use_time_scale "$PLAIN_SCALE"   # also for 3b's scale-out test
run_check
# Every benchmark briefly (bench/deadline_smoke.py, bench/issue10.py --smoke:
# each row of issue 10's targets table at small sizes, against its peer:
# wrk + bench/bare_mhd, PyTorch, bench/triad), each answer checked; no timing
# is asserted. About a minute and a half.
make -j"$JOBS" bench-smoke

step "3b/6 deployment: offline checks, scale-out behind nginx, soak, make distcheck"
# deploy_checks: nginx -t, systemd-analyze verify, deploy/k8s rendered
# (tests/k8s_render.py, and kubectl kustomize where kubectl exists: both must
# agree), compose/k8s consistency; with CI=true a check that cannot run
# fails rather than skips. scaleout_test: three gradd
# replicas behind the compose nginx config on loopback, one SIGKILLed and
# one SIGTERMed under load; every request must get its correct answer.
bash "$ROOT/tests/deploy_checks.sh" "$ROOT/build/gradd"
bash "$ROOT/tests/scaleout_test.sh" "$ROOT/build/gradd"
# soak: 60 s of mixed load (8 clients: JSON and binary grads, evals, diagnostics,
# errors, 413s, 504s), every answer checked, /metrics reconciled, RSS growth
# under 50 % from the warm point; prints the RSS curve.
GRADD_BIN="$ROOT/build/gradd" python3 "$ROOT/tests/soak.py" --seconds 60
(cd "$ROOT/build" && make -j"$JOBS" distcheck)

step "3c/6 built without Graphviz (build-nogv/): /v1/explain answers DOT only"
# configure --without-graphviz must build, link no Graphviz library, and serve
# DOT text to every /v1/explain request (tests/explain_test.py checks that
# when the SVG is not there). About a minute: mostly compiling.
fresh_build build-nogv --without-graphviz
make -j"$JOBS" gradd
if ldd ./gradd | grep -q libgvc; then
    echo "test.sh: build-nogv/gradd links Graphviz despite --without-graphviz" >&2
    exit 1
fi
GRADD_BIN="$ROOT/build-nogv/gradd" python3 "$ROOT/tests/explain_test.py"

step "3d/6 deploy/docker_test.sh: image build and run, compose stack (in the background, beside step 4)"
# It shares the CPUs with steps 4-4d, so its time windows (and the make check
# inside the image build) are stretched x2 on top of the caller's scale.
DOCKER_TEST_LOG="$ROOT/build/docker_test.log"
DOCKER_TEST_T0=$(date +%s)
GD_TEST_TIME_SCALE=$(time_scale 2) bash "$ROOT/deploy/docker_test.sh" >"$DOCKER_TEST_LOG" 2>&1 &
DOCKER_TEST_PID=$!
# If a later step fails first: stop it (it removes what it made, stops the
# dockerd it started) and show how far it got.
trap 'if kill -0 "$DOCKER_TEST_PID" 2>/dev/null; then kill -TERM "$DOCKER_TEST_PID"; wait "$DOCKER_TEST_PID" 2>/dev/null; tail -n 20 "$DOCKER_TEST_LOG"; fi' EXIT
echo "test.sh: deploy/docker_test.sh started (pid $DOCKER_TEST_PID, log $DOCKER_TEST_LOG)"
# docker_test_result: wait for it, show its log, fail loudly if it failed.
docker_test_result() {
    local rc=0
    step "3d/6 deploy/docker_test.sh: result"
    wait "$DOCKER_TEST_PID" || rc=$?
    cat "$DOCKER_TEST_LOG"
    echo "test.sh: deploy/docker_test.sh took $(( $(date +%s) - DOCKER_TEST_T0 )) s (exit $rc)"
    if [ "$rc" -ne 0 ]; then
        echo "test.sh: FAIL: deploy/docker_test.sh (log above)" >&2
        exit 1
    fi
}

step "4/6 sanitizer build (build-asan/)"
fresh_build build-asan CFLAGS="$ASAN_CFLAGS" LDFLAGS="$ASAN_LDFLAGS"
(
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1
    # Check's timeouts and the HTTP tests' windows assume an optimised build.
    use_time_scale "$ASAN_SCALE"
    run_check
)

step "4b/6 ThreadSanitizer build (build-tsan/): gradd's worker pool end to end"
# The HTTP tests drive gradd's listener thread, worker pool and signal
# handling with 64 concurrent clients, SIGTERM drains and saturation; here
# the gradd they start is built with -fsanitize=thread and halts on the first
# race. Nothing is suppressed: OpenBLAS stays single-threaded here, since
# its uninstrumented worker threads cannot be suppressed without hiding
# gradd's own races (see tests/tsan.supp). setarch -R: TSan's fixed shadow
# layout clashes with high-entropy ASLR on recent kernels.
fresh_build build-tsan CFLAGS="$TSAN_CFLAGS" LDFLAGS="$TSAN_LDFLAGS"
(
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp"
    use_time_scale "$TSAN_SCALE"
    make -j"$JOBS" gradd tests/test_http
    if ! setarch "$(uname -m)" -R make check TESTS=tests/test_http; then
        cat tests/test_http.log 2>/dev/null || true
        exit 1
    fi
    tail -n 3 tests/test_http.log
)

step "4c/6 fuzzing: the in-process libFuzzer harness, 120 s (build/fuzz-build/)"
# tests/fuzz/fuzz_request.c (decode -> run -> encode -> free, plain and
# binary framing) built with clang -fsanitize=fuzzer,address,undefined, run
# over the committed corpus; a finding leaves its input in
# build/fuzz-build/findings/ and fails. Commit it, fixed, under
# tests/fuzz/regressions/ (make check replays them).
(cd "$ROOT/build" && make fuzz FUZZ_SECONDS=120)

step "4d/6 HTTP fuzzing: raw-socket mutations against build-asan/gradd, 60 s"
# Asserts only no crash, no sanitizer report, no hang (each connection
# answered or closed in time), well-formed status lines and /healthz 200.
(
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1
    use_time_scale "$ASAN_SCALE"
    python3 "$ROOT/tests/http_fuzz.py" "$ROOT/build-asan/gradd" --seconds 60
)

docker_test_result

if [ "$QUICK" -eq 1 ]; then
    step "5/6 coverage: skipped (--quick)"
    step "6/6 backward-rule coverage check: skipped (--quick)"
    cd "$ROOT"
    echo
    echo "test.sh: all selected steps passed (quick)"
    exit 0
fi

step "5/6 coverage build (build-cov/)"
fresh_build build-cov --enable-coverage
(
    use_time_scale "$COV_SCALE"
    run_check
)
cd "$ROOT"
# Text report (lines per file) for people and for step 6; the JSON twin has
# per-function execution counts for scripts that need them.
gcovr -r "$ROOT" \
      --filter 'core/' \
      --print-summary \
      --txt "$COVERAGE_REPORT" \
      --json "$COVERAGE_JSON" \
      "$ROOT/build-cov"
echo "---- $COVERAGE_REPORT ----"
cat "$COVERAGE_REPORT"
export COVERAGE_REPORT COVERAGE_JSON

step "6/6 backward-rule coverage check"
if [ -f "$ROOT/tests/check_backward_coverage.sh" ]; then
    bash "$ROOT/tests/check_backward_coverage.sh" "$COVERAGE_JSON" "$ROOT/build-cov/tests/backward_probe"
else
    echo "tests/check_backward_coverage.sh not present: nothing to check"
fi

echo
echo "test.sh: all steps passed"
