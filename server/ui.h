/* ui.h - the playground page of GET / (contract A4): one self-contained
 * HTML document, its inline script and style included, and the
 * Content-Security-Policy that allows exactly those (by their SHA-256) and
 * calls to gradd's own origin. The page's source is server/ui/index.html;
 * scripts/embed_ui.py turns it, with the documentation's examples, into
 * gd_ui_page.c in the build directory at build time. Knows nothing else:
 * http.c serves it. */
#ifndef GD_SERVER_UI_H
#define GD_SERVER_UI_H

#include <stddef.h>

extern const char gd_ui_page[];     /* UTF-8 HTML, gd_ui_page_len bytes (and a NUL) */
extern const size_t gd_ui_page_len;
extern const char gd_ui_csp[];      /* the Content-Security-Policy header value */

#endif
