/* run.c - the engine's sweeps, then the diagnostics (see run.h). */
#include "core/run.h"

int gd_run(gd_graph *g, const gd_run_spec *spec, gd_run_result *res, gd_error *err) {
    gd_trace trace;
    int rc = gd_engine_run(g, spec, res, &trace, err);
    if (rc) return rc;
    res->trace = trace;
    return gd_diagnose_run(g, spec, &trace, res, err);
}
