/*
 * test_driver: a scriptable driver for engine tests (tests/unit/test_engine.c),
 * compiled only into tests and plugged in through engine_opts.driver_override
 * (include/upstreamfs/engine.h).
 *
 * Its lookup, list and expectation answers come from a script the test sets,
 * per proxy key and path: a file, a directory, or an errno (-ENOENT,
 * -EREMOTEIO, -EACCES, ...); a path never scripted is -ENOENT. An answer
 * reaches the proxy's health and back-off as a real driver's request would
 * (a 200, 503 or 403 through upstream_outcome). A directory's
 * listing is the scripted names directly below it. Every call is counted per
 * op, key and path. A file's bytes come from an in-process HTTP server on
 * 127.0.0.1 (tests/unit/test_httpd.c) at td_base()/KEY/PATH, which counts
 * requests and can be told to fail (enum td_fault) or to hold bodies back.
 */
#ifndef UPSTREAMFS_TEST_DRIVER_H
#define UPSTREAMFS_TEST_DRIVER_H

#include "upstreamfs/driver.h"

#include <stdbool.h>
#include <stddef.h>

enum td_op { TD_LOOKUP, TD_LIST, TD_EXPECTATION, TD_OPS };

enum td_fault {
    TD_OK,
    TD_500,         /* status 500, empty body */
    TD_HANG,        /* headers, then nothing until the gate opens (td_gate) */
    TD_CLOSE_EARLY, /* announces the whole length, closes after the first half */
    TD_WRONG_BYTES, /* the right length, one byte flipped */
};

extern const struct driver_ops td_driver;

/* Starts the server (once) and clears the script and every counter. 0 or -1. */
int td_start(void);
void td_stop(void);
void td_reset(void);
/* "http://127.0.0.1:PORT": a proxy's URL is td_base()/KEY/. */
const char *td_base(void);

/* key/path is a file of len bytes (copied), is_mutable as the driver says. */
void td_file(const char *key, const char *path, const void *body, size_t len, bool is_mutable);
/* key/path's entry names the sha256 of its scripted bytes (as an OCI descriptor would). */
void td_expect_digest(const char *key, const char *path);
void td_dir(const char *key, const char *path);
/* lookup and list of key/path answer rc (a negative errno) from now on. */
void td_answer(const char *key, const char *path, int rc);
/* How the server answers requests for key/path from now on. */
void td_fault(const char *key, const char *path, enum td_fault f);
/*
 * Closed: every body stops after its first 64 KiB (and TD_HANG before its first byte) until
 * it opens again. Open at td_reset.
 */
void td_gate(bool open);

struct state;
/*
 * Creates proxy key (type generic, URL td_base()/KEY/, --metadata-ttl and --negative-ttl ttl
 * seconds) in st. 0, or the -errno of configdb_proxy_create (its message on stderr).
 */
int td_proxy_create(struct state *st, const char *key, long ttl);

int td_calls(enum td_op op, const char *key, const char *path);
int td_requests(const char *key, const char *path);

#endif
