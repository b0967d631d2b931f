/* numfmt.h - numbers as the wire prints them: the shortest decimal that
 * reads back to the same float64 or float32, laid out as Python's repr.
 *
 * For response bodies and for messages that quote a value. It formats into
 * a caller's fixed buffer; it does not parse, allocate, do I/O, or know
 * JSON (a non-finite value comes out as the bare word NaN / Infinity /
 * -Infinity; quoting it is the caller's business). */
#ifndef GD_NUMFMT_H
#define GD_NUMFMT_H

/* Shortest decimal that reads back (strtod / strtof) to the same value (of
 * those, the nearest to it; of two equally near, the one ending in an even
 * digit), formatted as Python's repr formats a float: "2.0", "0.1", "1e-05",
 * "1.2345678901234568e+17", "-0.0"; fixed notation for decimal exponents in
 * [-4, 16), exponent notation (at least two exponent digits) outside. Non-finite
 * values give NaN, Infinity, -Infinity (no quotes). Returns the length.
 * Assumes the "C" numeric locale. */
int gd_fmt_double(char buf[32], double v);
int gd_fmt_float(char buf[32], float v);

#endif
