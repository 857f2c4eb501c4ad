/*
 * ui.h: the shim's web page (ui.c) and the API routes it needs beyond
 * /api/v1/proxies and /api/v1/registries (ui_api.c). Private to src/shim,
 * like shim_i.h; shim.c routes to these.
 */
#ifndef UPSTREAMFS_SHIM_UI_H
#define UPSTREAMFS_SHIM_UI_H

#include "shim_i.h"

#include <stdbool.h>

/* Whether a normalised path is the page's: "" (GET /) or "ui" and below. */
bool shim__ui_owns(const char *path);
/* GET|HEAD of a page or an asset; 404 for other names below /ui/, 405 for other methods. */
enum MHD_Result shim__ui(struct shim_req *r);

/* Whether a normalised path is one of ui_api.c's: api/v1/cache[/...], api/v1/validate/... */
bool shim__ui_api_owns(const char *path);
/*
 * GET  /api/v1/cache                       totals, counters, use and state per name,
 *                                          largest artifacts
 * POST /api/v1/cache/pin|unpin|evict       {"path": "KEY/..."} -> {"action", "path", "objects"}
 * POST /api/v1/validate/proxy              a create body, checked as POST /api/v1/proxies
 *                                          checks it, nothing written -> 200 {"valid": true}
 * Errors are the API's {"error": {"field", "message"}}.
 */
enum MHD_Result shim__ui_api(struct shim_req *r);

#endif
