/* run.c - the engine's sweeps, then the diagnostics (see run.h). */
#include "core/run.h"

#include "core/samevalue.h"

int gd_run(gd_graph *g, const gd_run_spec *spec, gd_run_result *res, gd_error *err) {
    gd_trace trace;
    int rc = gd_engine_run(g, spec, res, &trace, err);
    if (rc) return rc;
    res->trace = trace;
    if ((rc = gd_diagnose_run(g, spec, &trace, res, err))) return rc;
    (void)gd_same_value_search(g, spec, res); /* evidence only: skipped, never an error (A2) */
    return 0;
}
