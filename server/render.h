/* render.h - DOT text laid out and drawn as SVG by Graphviz's library, in a
 * child process (A4).
 *
 * Graphviz is not thread-safe, its layout time grows faster than linearly
 * with the graph, and a layout cannot be interrupted from outside. So each
 * picture is drawn by a child: gradd starts its own binary again
 * (/proc/self/exe) under the name "gradd-render", writes the DOT text to its
 * stdin and reads the SVG from its stdout. The child's address space is
 * capped (its start-up size plus --max-memory), it dies with its parent,
 * and the parent kills it (SIGKILL) once the request's deadline passes or
 * the request is cancelled. Only the child calls Graphviz, with two plugins
 * linked in (dot layout, core renderers: no configuration file, no pango, so
 * that text is measured the same everywhere).
 *
 * Built with `configure --without-graphviz`, gd_render_available() is 0 and
 * /v1/explain serves DOT only. Knows core's buffer, error and cancel record;
 * nothing of HTTP, proto or the pool. */
#ifndef GD_SERVER_RENDER_H
#define GD_SERVER_RENDER_H

#include <stddef.h>

#include "core/buf.h"
#include "core/cancel.h"
#include "core/error.h"

/* The name the child runs under (its argv[0]); main() hands over to
 * gd_render_main when it sees it. */
#define GD_RENDER_ARGV0 "gradd-render"

/* 1 when this gradd was built with Graphviz. */
int gd_render_available(void);

/* Lay out `dot` (len bytes) and draw it as SVG, appended to `svg` (whose
 * charge, if any, bounds it: a larger drawing is too_large). The child may
 * use `budget` bytes of memory beyond its start-up size. Returns 0;
 * GD_E_DEADLINE_EXCEEDED when cancel fired first (the child is killed);
 * GD_E_TOO_LARGE; or GD_E_INTERNAL when the child failed (err says how). */
int gd_render_svg(const char *dot, size_t len, const gd_cancel *cancel, size_t budget, gd_buf *svg, gd_error *err);

/* The child's whole life: DOT on stdin, SVG on stdout, exit 0; or a one-line
 * message on stdout and exit 1. argv[1] is the memory budget in bytes. */
int gd_render_main(int argc, char **argv);

#endif
