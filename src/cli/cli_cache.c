/*
 * cli_cache: "upstreamfs cache stats|gc|verify|pin PATH|unpin PATH|evict PATH|purge SPEC [--json]"
 * and "upstreamfs prefetch PATH...". Both open the engine on the state dir
 * directly; a running mount shares the same index and store (SQLite WAL,
 * content-addressed files), so they can run beside it.
 */
#include "cli_prefetch.h"
#include "upstreamfs/cli.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The cache's commands; cache_help holds the --help line of each, in the same order. */
const struct cli_subcommand cli_cache_subs[] = {
    {"stats", NULL}, {"gc", NULL},    {"verify", NULL},
    {"pin", NULL},   {"unpin", NULL}, {"evict", NULL},
    {"purge", NULL},
};
const size_t cli_cache_nsubs = sizeof(cli_cache_subs) / sizeof(cli_cache_subs[0]);
static const char *const cache_help[] = {
    "          cache size, object counts, local content, and the counters (hits,\n"
    "                 misses, upstream requests and bytes, evictions, stale serves) of the\n"
    "                 mounts, servers and prefetches running on the state dir; the cached\n"
    "                 versions marked removed-upstream",
    "             remove objects no path refers to, and unfinished downloads",
    "         re-hash every object; remove (and report) any that do not match",
    " PATH       keep everything cached under PATH (as in the mount: KEY/...) from eviction",
    " PATH     let it be evicted again",
    " PATH     remove what is cached under PATH now (local content is never evicted)",
    " KEY/NAME[@VERSION]\n"
    "                 delete for good what is marked removed-upstream of NAME (every\n"
    "                 version without @VERSION): files, index entries, stored objects\n"
    "                 (docs/policy.md, \"Upstream removals\")",
};
/* After the list: what pin, unpin and evict say when part of their work failed. */
static const char cache_help_tail[] =
    "\npin, unpin and evict print how many objects they changed; when some could not be\n"
    "(evict: held open by a reader; an index error) they say how many failed and exit 1.\n";
_Static_assert(sizeof(cache_help) / sizeof(cache_help[0]) ==
                   sizeof(cli_cache_subs) / sizeof(cli_cache_subs[0]),
               "one help line per cache command");

static void cache_usage(FILE *f)
{
    fputs("usage: upstreamfs cache COMMAND [--json]\n\n", f);
    for (size_t i = 0; i < cli_cache_nsubs; i++)
        fprintf(f, "  %s%s\n", cli_cache_subs[i].name, cache_help[i]);
    fputs(cache_help_tail, f);
}

/* The commands' names from the table, "stats, gc, ...". */
static const char *cache_words(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cli_cache_nsubs && off < len; i++)
        off +=
            (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", cli_cache_subs[i].name);
    return buf;
}

static const char prefetch_usage[] =
    "usage: upstreamfs prefetch [--json] PATH...\n"
    "       upstreamfs prefetch --from FILE [--format F] [--platform P] [--json] KEY\n"
    "\n"
    "Fetches every file under each PATH (as in the mount: KEY/<artifact path>) into the\n"
    "cache, so it can be read later without the remote. Shows progress on a terminal.\n"
    "A path that fails is named with its cause (dns, connect, tls, timeout, auth, http,\n"
    "digest, too-large, policy, offline; docs/troubleshooting.md) and the remote's status.\n"
    "\n"
    "  --json   print an array with one object per path: path, ok, bytes, digest,\n"
    "           cause, status, error (null where they do not apply)\n"
    "\n"
    "With --from, what a lockfile names (package-lock.json, requirements.txt, Chart.lock,\n"
    "an image list, mvn dependency:list output) is fetched through KEY and checked against\n"
    "the lockfile's hashes; \"prefetch --from x --help\" says more.\n";

static int open_engine(const struct cli_globals *g, const char *platforms, struct engine **e)
{
    if (cli_state_exists(g))
        return CLI_EXIT_FAIL;
    int rc = fetch_global_init();
    struct engine_opts eo = {.state_dir = g->state_dir, .platforms = platforms};
    if (rc == 0)
        rc = engine_open(&eo, e);
    if (rc < 0) {
        cli_errorf("cannot open the cache in %s: %s", g->state_dir, strerror(-rc));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static void close_engine(struct engine *e)
{
    engine_close(e);
    fetch_global_cleanup();
}

static int path_error(const char *cmd, const char *path, int rc)
{
    cli_errorf("%s: %s: %s", cmd, path, rc == -ENODATA ? "nothing cached there" : strerror(-rc));
    return rc == -ENOENT ? CLI_EXIT_FAIL : CLI_EXIT_FAIL;
}

/* The totals of the index and the running processes' counters: into out, or printed. */
static void print_stats(const struct engine_stats *s, int procs, json_t *out)
{
    const struct {
        const char *name;
        int64_t v;
    } f[] = {{"cache_bytes", s->cache_bytes},
             {"cache_objects", s->cache_objects},
             {"local_bytes", s->local_bytes},
             {"local_objects", s->local_objects},
             {"partial_bytes", s->partial_bytes},
             {"partial_objects", s->partial_objects},
             {"quota_bytes", s->quota_bytes},
             {"processes", procs},
             {"hits", s->hits},
             {"misses", s->misses},
             {"upstream_requests", s->upstream_requests},
             {"upstream_bytes", s->upstream_bytes},
             {"evictions", s->evictions},
             {"stale_serves", s->stale_serves},
             {"removed_upstream", s->removed_upstream}};
    if (out) {
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
            json_object_set_new(out, f[i].name, json_integer(f[i].v));
        return;
    }
    printf("cache: %lld bytes in %lld objects (quota %lld bytes)\n"
           "partial objects: %lld bytes present in %lld (counted in the quota)\n"
           "local content: %lld bytes in %lld objects (never evicted)\n"
           "counters of the %d process(es) running on the state dir: %lld hits, %lld misses, "
           "%lld upstream requests (%lld bytes downloaded), %lld evictions, %lld stale serves\n",
           (long long)s->cache_bytes, (long long)s->cache_objects, (long long)s->quota_bytes,
           (long long)s->partial_bytes, (long long)s->partial_objects, (long long)s->local_bytes, (long long)s->local_objects, procs, (long long)s->hits,
           (long long)s->misses, (long long)s->upstream_requests, (long long)s->upstream_bytes,
           (long long)s->evictions, (long long)s->stale_serves);
    printf("removed upstream: %lld cached entr%s no longer listed by their upstream "
           "(cache purge deletes them)\n",
           (long long)s->removed_upstream, s->removed_upstream == 1 ? "y" : "ies");
}

/* A cache command line, as cache_parse leaves it. */
struct cache_args {
    bool json;
    const char *cmd;
    char *rest[64]; /* the arguments after the command that are not options */
    int nrest;
};

/*
 * Parses "cache [--json] COMMAND [ARGS] [--json]" into *a: -1 to run the command, else the
 * exit code after --help (printed) or a usage error (said).
 */
static int cache_parse(int argc, char **argv, struct cache_args *a)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:jh", longopts, NULL)) != -1) {
        if (c == 'j')
            a->json = true;
        else if (c == 'h') {
            cache_usage(stdout);
            return CLI_EXIT_OK;
        } else
            return cli_bad_option("cache", c, argv);
    }
    if (optind >= argc) {
        cache_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = a->cmd = argv[optind++];
    /* Options may also follow the subcommand. */
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            a->json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cache_usage(stdout);
            return CLI_EXIT_OK;
        } else if (a->nrest < 64)
            a->rest[a->nrest++] = argv[i];
    }
    const struct cli_subcommand *sub = NULL;
    for (size_t i = 0; i < cli_cache_nsubs && !sub; i++)
        if (!strcmp(cmd, cli_cache_subs[i].name))
            sub = &cli_cache_subs[i];
    if (!sub) {
        char q[CONFIG_QUOTE_MAX], words[128];
        cli_errorf("cache: unknown command %s (%s)", config_quote(q, sizeof(q), cmd),
                   cache_words(words, sizeof(words)));
        return CLI_EXIT_USAGE;
    }
    const char *h = cache_help[sub - cli_cache_subs];
    bool needs_path = !strncmp(h, " PATH", 5) || !strncmp(h, " KEY/", 5);
    if (needs_path && a->nrest != 1) {
        if (h[1] == 'K')
            cli_errorf("cache %s: KEY/NAME[@VERSION]: exactly one is required", cmd);
        else
            cli_errorf("cache %s: PATH: exactly one path is required", cmd);
        return CLI_EXIT_USAGE;
    }
    if (!needs_path && a->nrest != 0) {
        cli_errorf("cache %s: takes no arguments (got \"%s\")", cmd, a->rest[0]);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/*
 * pin, unpin or evict PATH (a->rest[0]): the number of objects into out, and printed. A
 * partial one (*partial) is a failure that says how many failed. The exit code.
 */
static int cache_path_cmd(struct engine *e, const struct cache_args *a, json_t *out,
                          bool *partial)
{
    const char *cmd = a->cmd;
    int failed = 0;
    int n = !strcmp(cmd, "evict") ? engine_evict_path(e, a->rest[0], &failed)
                                  : engine_pin(e, a->rest[0], !strcmp(cmd, "pin"), &failed);
    if (n < 0)
        return path_error(cmd, a->rest[0], n);
    json_object_set_new(out, "objects", json_integer(n));
    if (failed > 0)
        json_object_set_new(out, "failed", json_integer(failed));
    if (!a->json && failed == 0)
        printf("%s: %d object(s)\n", cmd, n);
    if (failed == 0)
        return CLI_EXIT_OK;
    /* A partial pin or evict is a failure: say how much did not happen. */
    if (!a->json)
        printf("%s: %d object(s), %d failed\n", cmd, n, failed);
    cli_errorf("%s: %s: %d object(s) could not be %s (see the log)", cmd, a->rest[0], failed,
               !strcmp(cmd, "evict") ? "evicted (in use or an index error)"
               : !strcmp(cmd, "pin") ? "pinned"
                                     : "unpinned");
    *partial = true;
    return CLI_EXIT_FAIL;
}

/* purge KEY/NAME[@VERSION]: the entries deleted into out (and printed). The exit code. */
static int cache_purge(struct engine *e, const struct cache_args *a, json_t *out, bool *partial)
{
    char **paths = NULL;
    size_t n = 0;
    int failed = 0;
    int rc = engine_purge(e, a->rest[0], &paths, &n, &failed);
    if (rc == -EINVAL) {
        cli_errorf("purge: %s: expected KEY/NAME[@VERSION]", a->rest[0]);
        return CLI_EXIT_USAGE;
    }
    if (rc == -ENODATA) {
        cli_errorf("purge: %s: nothing marked removed-upstream matches", a->rest[0]);
        return CLI_EXIT_FAIL;
    }
    if (rc < 0)
        return path_error("purge", a->rest[0], rc);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, json_string(paths[i]));
        if (!a->json)
            printf("purged %s\n", paths[i]);
        free(paths[i]);
    }
    free(paths);
    json_object_set_new(out, "purged", list);
    json_object_set_new(out, "failed", json_integer(failed));
    if (failed == 0)
        return CLI_EXIT_OK;
    cli_errorf("purge: %s: %d object(s) could not be removed (see the log)", a->rest[0], failed);
    *partial = true;
    return CLI_EXIT_FAIL;
}

/* Runs a->cmd on the open engine: its numbers into out (and printed without --json). */
static int cache_run(const struct cli_globals *g, struct engine *e, const struct cache_args *a,
                     json_t *out, bool *partial)
{
    const char *cmd = a->cmd;
    int rc = CLI_EXIT_OK;
    if (!strcmp(cmd, "stats")) {
        struct engine_stats s;
        int procs = 0;
        if (engine_stats(e, &s) < 0 || engine_counters_running(g->state_dir, &s, &procs) < 0)
            return CLI_EXIT_FAIL;
        print_stats(&s, procs, a->json ? out : NULL);
    } else if (!strcmp(cmd, "gc")) {
        int64_t removed = 0;
        if (engine_gc(e, &removed) < 0)
            rc = CLI_EXIT_FAIL;
        json_object_set_new(out, "removed", json_integer(removed));
        if (!a->json && rc == 0)
            printf("removed %lld unreferenced object(s)\n", (long long)removed);
    } else if (!strcmp(cmd, "verify")) {
        int64_t checked = 0, bad = 0;
        if (engine_verify(e, &checked, &bad) < 0)
            rc = CLI_EXIT_FAIL;
        json_object_set_new(out, "checked", json_integer(checked));
        json_object_set_new(out, "bad", json_integer(bad));
        if (!a->json)
            printf("verified %lld object(s): %lld bad (removed)\n", (long long)checked,
                   (long long)bad);
        if (bad > 0)
            rc = CLI_EXIT_FAIL;
    } else if (!strcmp(cmd, "purge")) {
        rc = cache_purge(e, a, out, partial);
    } else {
        rc = cache_path_cmd(e, a, out, partial);
    }
    return rc;
}

/* "upstreamfs cache ...": parses the command line, runs the command on the engine and
 * prints its JSON, also after a failed verify or a partial pin or evict (the steps above). */
int cli_cache_main(struct cli_globals *g, int argc, char **argv)
{
    struct cache_args a = {.json = false, .nrest = 0};
    int rc = cache_parse(argc, argv, &a);
    if (rc >= 0)
        return rc;
    struct engine *e;
    if (open_engine(g, NULL, &e))
        return CLI_EXIT_FAIL;
    bool partial = false;
    json_t *out = json_object();
    rc = cache_run(g, e, &a, out, &partial);
    close_engine(e);
    /* A failed verify, a partial pin or evict still report what they did. */
    if (a.json && (rc == CLI_EXIT_OK || !strcmp(a.cmd, "verify") || partial)) {
        int prc = cli_print_json(out);
        return rc != CLI_EXIT_OK ? rc : prc;
    }
    json_decref(out);
    return rc;
}

/*
 * Prefetch walks the paths first (names and sizes come from the index or
 * the remote's metadata, no download), so the progress line knows the total;
 * then it reads every file through the engine, which fetches and stores it.
 * On a terminal one line is redrawn (bytes, rate, ETA); otherwise one plain
 * line per file, so logs stay readable.
 */
static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void human(double b, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void draw(struct prefetch *p, const char *path, bool force)
{
    if (!p->tty || (!force && seconds_since(&p->last_draw) < 0.2))
        return;
    clock_gettime(CLOCK_MONOTONIC, &p->last_draw);
    double el = seconds_since(&p->start), rate = el > 0 ? (double)p->done_bytes / el : 0;
    char have[32], total[32], r[32], eta[32] = "--";
    human((double)p->done_bytes, have, sizeof(have));
    human((double)p->total, total, sizeof(total));
    human(rate, r, sizeof(r));
    if (rate > 0 && p->total > p->done_bytes) {
        long s = (long)((double)(p->total - p->done_bytes) / rate);
        snprintf(eta, sizeof(eta), "%ld:%02ld", s / 60, s % 60);
    }
    int pct = p->total > 0 ? (int)(100 * p->done_bytes / p->total) : 0;
    fprintf(stderr, "\r\033[K%3d%% %s / %s  %s/s  ETA %s  %zu/%zu files  %.40s", pct, have, total,
            r, eta, (size_t)p->files, p->n, path);
}

/*
 * One path's outcome: a line on failure (with its cause, as the shim's body
 * and user.upstreamfs.error name it), and with --json its object. The cause
 * is the one recorded on the node (user.upstreamfs.error: also for a download
 * another thread ran), else the one the engine found on this thread
 * (failure_note_get: a name that did not resolve), else the errno's.
 */
/*
 * The failure recorded on node ino. A download's thread records its cause before its readers
 * learn that it failed (dl_fail runs before the flight's state changes, src/fetch/flight.c), so
 * one look is enough; absence is not recorded.
 */
static bool node_failure(struct prefetch *p, int64_t ino, struct failure *f)
{
    return ino > 0 && engine_node_failure(p->e, ino, f, NULL) == 0;
}

static void report(struct prefetch *p, struct pf_item *it, const char *path, int64_t ino, int rc,
                   int64_t bytes)
{
    struct failure f = {0};
    struct failure_note note;
    char digest[80] = "";
    if (rc < 0) {
        bool known = p->detail || node_failure(p, ino, &f);
        if (p->detail)
            f.cause = p->detail_cause; /* found here (the lockfile's hash), not by a fetch */
        else if (!known && failure_note_get(&note) && note.f.cause != FAILURE_NONE)
            f = note.f;
        else if (!known)
            f.cause = failure_cause_of_errno(rc);
        char why[80] = "";
        if (f.cause != FAILURE_NONE)
            failure_format(&f, why, sizeof(why));
        if (p->tty)
            fputc('\n', stderr);
        cli_errorf("prefetch: %s%s%s: %s%s%s%s", it && it->want ? it->want->label : "",
                   it && it->want ? ": " : "", path, p->detail ? p->detail : strerror(-rc),
                   why[0] ? " (cause " : "", why, why[0] ? ")" : "");
        p->failed++;
    } else if (engine_getxattr(p->e, ino, "user.upstreamfs.digest", digest, sizeof(digest) - 1) <
               0) {
        digest[0] = '\0';
    }
    failure_note_clear();
    if (it) {
        it->ok = rc >= 0;
        it->cause = f.cause;
    }
    if (it && it->want && rc >= 0)
        it->want->files++;
    else if (it && it->want && it->want->failed++ == 0) {
        it->want->cause = f.cause;
        snprintf(it->want->error, sizeof(it->want->error), "%s: %s", path,
                 p->detail ? p->detail : strerror(-rc));
    }
    if (!p->json || !p->results)
        return;
    digest[sizeof(digest) - 1] = '\0';
    if (p->from) {
        json_array_append_new(
            p->results,
            json_pack("{s:s, s:o, s:b, s:I, s:o, s:o, s:o, s:o}", "path", path, "for",
                      it && it->want ? json_string(it->want->label) : json_null(), "ok", rc >= 0,
                      "size", (json_int_t)bytes, "sha256",
                      it && it->sha256[0] ? json_string(it->sha256) : json_null(), "cause",
                      f.cause ? json_string(failure_cause_name(f.cause)) : json_null(), "status",
                      f.status > 0 ? json_integer(f.status) : json_null(), "error",
                      rc < 0 ? json_string(p->detail ? p->detail : strerror(-rc)) : json_null()));
        return;
    }
    json_array_append_new(
        p->results,
        json_pack("{s:s, s:b, s:I, s:o, s:o, s:o, s:o}", "path", path, "ok", rc >= 0, "bytes",
                  (json_int_t)bytes, "digest", digest[0] ? json_string(digest) : json_null(),
                  "cause", f.cause ? json_string(failure_cause_name(f.cause)) : json_null(),
                  "status", f.status > 0 ? json_integer(f.status) : json_null(), "error",
                  rc < 0 ? json_string(strerror(-rc)) : json_null()));
}

int prefetch_collect(struct prefetch *p, const char *path, struct pf_want *want, int depth)
{
    struct engine_attr a;
    struct pf_item failed = {.want = want};
    failure_note_clear();
    int rc = engine_resolve(p->e, path, &a);
    if (rc < 0) {
        report(p, &failed, path, 0, rc, 0);
        return rc;
    }
    if (a.kind == NODE_DIR) {
        struct engine_dirent *ents = NULL;
        size_t n = 0;
        if (depth > 64)
            return -ELOOP;
        rc = engine_readdir(p->e, a.ino, &ents, &n);
        if (rc < 0) {
            report(p, &failed, path, a.ino, rc, 0);
            return rc;
        }
        for (size_t i = 0; i < n; i++) {
            char child[4200];
            snprintf(child, sizeof(child), "%s/%s", path, ents[i].name);
            prefetch_collect(p, child, want, depth + 1);
        }
        engine_dirents_free(ents, n);
        return 0;
    }
    size_t dup = 0;
    for (size_t i = 0; p->from && i < p->n && !dup; i++)
        if (!p->items[i].dup && !strcmp(p->items[i].path, path))
            dup = i + 1; /* one fetch; its outcome counts for every item that names it */
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct pf_item *ni = realloc(p->items, cap * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        p->items = ni;
        p->cap = cap;
    }
    p->items[p->n++] = (struct pf_item){
        .path = strdup(path), .ino = a.ino, .size = a.size, .want = want, .dup = dup};
    p->total += dup ? 0 : a.size;
    return 0;
}

void prefetch_fail(struct prefetch *p, struct pf_want *want, const char *path, int rc,
                   const char *detail)
{
    struct pf_item failed = {.want = want};
    failure_note_clear();
    p->detail = detail;
    p->detail_cause = FAILURE_NONE;
    report(p, &failed, path, 0, rc, 0);
    p->detail = NULL;
}

/*
 * The expectation a file is hashed against: the strongest the lockfile states (one of
 * several sha256 is compared after the pass, any one matching), or none.
 */
static const struct hash_expect *strongest(const struct pf_want *w)
{
    const struct hash_expect *best = NULL;
    for (size_t i = 0; w && w->item && i < w->item->nhashes; i++)
        if (!best || w->item->hashes[i].algo > best->algo)
            best = &w->item->hashes[i];
    return best;
}

/* 0 when the file's bytes match what the lockfile states; -EBADMSG (p->detail says which) if not. */
static int check_hashes(struct prefetch *p, const struct pf_item *it, const struct hash_expect *e,
                        int end_rc)
{
    if (!e)
        return 0;
    if (e->algo == HASH_SHA256) {
        for (size_t i = 0; i < it->want->item->nhashes; i++)
            if (it->want->item->hashes[i].algo == HASH_SHA256 &&
                !strcmp(it->want->item->hashes[i].hex, it->sha256))
                return 0;
    } else if (end_rc == 0) {
        return 0;
    }
    snprintf(p->detail_buf, sizeof(p->detail_buf),
             "its %s does not match the %s the lockfile states",
             e->algo == HASH_SHA512 ? "sha512" : e->algo == HASH_SHA1 ? "sha1" : "sha256",
             e->algo == HASH_SHA256 && it->want->item->nhashes > 1 ? "hashes" : "hash");
    p->detail = p->detail_buf;
    p->detail_cause = FAILURE_DIGEST;
    return -EBADMSG;
}

/* Reads one file through the engine (fetching it), counting bytes as they arrive. */
static int fetch_one(struct prefetch *p, struct pf_item *it)
{
    static char buf[1 << 20];
    struct engine_file *f = NULL;
    bool keep, changed;
    int64_t got = 0;
    const struct hash_expect *want = strongest(it->want);
    struct hash_ctx *h = p->from ? hash_begin(want) : NULL;
    failure_note_clear();
    p->detail = NULL;
    int rc = p->from && !h ? -ENOMEM : engine_file_open(p->e, it->ino, NULL, &f, &keep, &changed);
    for (ssize_t r = 1; rc == 0 && r > 0;) {
        r = engine_file_read(f, buf, sizeof(buf), (off_t)got, NULL);
        if (r < 0)
            rc = (int)r;
        if (r > 0 && h)
            hash_update(h, buf, (size_t)r);
        got += r > 0 ? r : 0;
        p->done_bytes += r > 0 ? r : 0;
        draw(p, it->path, false);
    }
    if (rc == 0)
        rc = engine_file_wait(f, NULL); /* stored and verified, not just read */
    if (f)
        engine_file_close(f);
    if (h && rc == 0)
        rc = check_hashes(p, it, want, hash_end(h, it->sha256));
    else if (h)
        hash_abort(h);
    report(p, it, it->path, it->ino, rc, got);
    p->detail = NULL;
    if (rc < 0)
        return rc;
    p->files++;
    if (!p->tty && !p->json)
        fprintf(p->from ? stderr : stdout, "fetched %s (%lld bytes)\n", it->path,
                (long long)got); /* --from: stdout is for the summary */
    return 0;
}

int prefetch_begin(const struct cli_globals *g, struct prefetch *p, const char *platforms)
{
    if (p->json) {
        p->tty = false; /* no progress line: the output is for a program */
        p->results = json_array();
    }
    return open_engine(g, platforms, &p->e);
}

/* An item whose path another item fetched: that outcome, credited to its own want. */
static void same_outcome(struct pf_item *it, const struct pf_item *first)
{
    it->ok = first->ok;
    it->cause = first->cause;
    memcpy(it->sha256, first->sha256, sizeof(it->sha256));
    if (!it->want)
        return;
    if (it->ok)
        it->want->files++;
    else if (it->want->failed++ == 0) {
        it->want->cause = it->cause;
        snprintf(it->want->error, sizeof(it->want->error), "%s",
                 first->want && first->want->failed ? first->want->error : it->path);
    }
}

void prefetch_run(struct prefetch *p)
{
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    for (size_t i = 0; i < p->n; i++) {
        if (p->items[i].dup)
            same_outcome(&p->items[i], &p->items[p->items[i].dup - 1]);
        else
            fetch_one(p, &p->items[i]);
    }
    if (p->tty) {
        draw(p, "", true);
        fputc('\n', stderr);
    }
}

void prefetch_end(struct prefetch *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i].path);
    free(p->items);
    p->items = NULL;
    p->n = p->cap = 0;
    json_decref(p->results);
    p->results = NULL;
    if (p->e)
        close_engine(p->e);
    p->e = NULL;
}

int cli_prefetch_main(struct cli_globals *g, int argc, char **argv)
{
    struct prefetch p = {.tty = isatty(STDERR_FILENO)};
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(prefetch_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--from") || !strncmp(argv[i], "--from=", 7))
            return cli_prefetch_from_main(g, argc, argv);
        if (!strcmp(argv[i], "--json"))
            p.json = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            cli_errorf("prefetch: unknown option %s", argv[i]);
            return CLI_EXIT_USAGE;
        } else
            npaths++;
    }
    if (!npaths) {
        fputs(prefetch_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (prefetch_begin(g, &p, NULL)) {
        prefetch_end(&p);
        return CLI_EXIT_FAIL;
    }
    for (int i = 1; i < argc; i++) {
        const char *path = argv[i];
        if (!strcmp(path, "--json"))
            continue;
        while (*path == '/')
            path++;
        prefetch_collect(&p, path, NULL, 0);
    }
    prefetch_run(&p);
    if (p.json) {
        cli_print_json(p.results ? p.results : json_array());
        p.results = NULL;
    } else
        printf("prefetched %lld file(s), %lld bytes; %lld failed\n", (long long)p.files,
               (long long)p.done_bytes, (long long)p.failed);
    int64_t failed = p.failed;
    prefetch_end(&p);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
