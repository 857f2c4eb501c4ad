/*
 * cli_prefetch: the prefetch machinery of src/cli/cli_cache.c, shared with prefetch --from and
 * export (src/cli/cli_from.c, src/cli/cli_export.c). Paths are collected first (names and
 * sizes from the index or the remote's metadata), then every file is read through the engine,
 * which fetches, verifies and stores it; each outcome is reported as it happens.
 */
#ifndef UPSTREAMFS_CLI_PREFETCH_H
#define UPSTREAMFS_CLI_PREFETCH_H

#include "upstreamfs/cli.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/lockfile.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* What a file is fetched for: a lockfile's item (its hashes are checked) and its label. */
struct pf_want {
    const struct lockfile_item *item;
    char label[300];
    int files, failed;         /* outcomes of its files so far */
    enum failure_cause cause;  /* of its first failure (FAILURE_NONE: absent, or an errno) */
    char error[200];           /* what its first failure said */
};

struct pf_item {
    char *path;
    int64_t ino;
    int64_t size;
    struct pf_want *want; /* NULL for a plain prefetch PATH */
    char sha256[65];            /* from mode: of the bytes read */
    size_t dup;                 /* from mode: 1 + the index of the item of the same path, or 0 */
    bool ok;
    enum failure_cause cause;
};

struct prefetch {
    struct engine *e;
    bool tty, json;
    bool from;       /* --from: items are hashed, --json objects carry for/size/sha256 */
    json_t *results; /* --json: one object per path */
    struct pf_item *items;
    size_t n, cap;
    int64_t total, done_bytes, files, failed;
    struct timespec start, last_draw;
    const char *detail; /* the reason of the failure being reported, instead of strerror */
    enum failure_cause detail_cause; /* its cause */
    char detail_buf[200];
};

/* Opens the engine (platforms: the docker platform filter, or NULL for the published one). */
int prefetch_begin(const struct cli_globals *g, struct prefetch *p, const char *platforms);
/* Adds path (a file, or every file below a directory); a failure is reported and returned. */
int prefetch_collect(struct prefetch *p, const char *path, struct pf_want *want, int depth);
/* Reports a failure of want found before any file (detail: the reason, instead of strerror). */
void prefetch_fail(struct prefetch *p, struct pf_want *want, const char *path, int rc,
                   const char *detail);
/* Fetches every collected file. */
void prefetch_run(struct prefetch *p);
void prefetch_end(struct prefetch *p);

/* A lockfile's set, to be fetched through a key (cli_from.c). */
struct from_set {
    struct lockfile lf;
    struct pf_want *wants; /* one per lockfile item */
    enum proxy_type type;  /* of the key */
};

/* The type of proxy or registry key; 0, or a CLI_EXIT_* status (printed). */
int cli_key_type(const struct cli_globals *g, const char *cmd, const char *key,
                 enum proxy_type *type);
/*
 * Reads and parses file (format: NULL to detect) and checks that key serves that format.
 * 0, or a CLI_EXIT_* status (printed, as "CMD: ...").
 */
int from_set_load(const struct cli_globals *g, const char *cmd, const char *file,
                  const char *format, const char *key, struct from_set *s);
/* Collects the files of every item below key (a pip pin: the files of its version). */
void from_set_collect(struct prefetch *p, const char *key, struct from_set *s);
/* After prefetch_run: prints each failed item (unless --json), appends items' objects; failures. */
int from_set_summary(struct prefetch *p, const struct from_set *s, json_t *items);
void from_set_free(struct from_set *s);

/* "prefetch --from FILE KEY" (cli_from.c); argv as cli_prefetch_main's. */
int cli_prefetch_from_main(struct cli_globals *g, int argc, char **argv);

#endif
