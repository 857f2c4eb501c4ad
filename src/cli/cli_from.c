/*
 * cli_from: "upstreamfs prefetch --from FILE KEY": the set a lockfile names
 * (include/upstreamfs/lockfile.h), fetched through proxy or registry KEY with the prefetch
 * machinery of cli_cache.c and checked against the hashes the lockfile states. export
 * (cli_export.c) fetches its --from set the same way.
 */
#include "cli_prefetch.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/index.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char from_usage[] =
    "usage: upstreamfs prefetch --from FILE [--format FORMAT] [--platform P] [--json] KEY\n"
    "\n"
    "Fetches what the lockfile FILE names through proxy or registry KEY into the cache:\n"
    "  npm     package-lock.json or npm-shrinkwrap.json (lockfileVersion 2 or 3):\n"
    "          KEY/<name>/-/<name>-<version>.tgz, checked against its integrity\n"
    "  pip     requirements.txt with exact NAME==VERSION pins: every file of that version\n"
    "          in KEY/<project>/, checked against the --hash values when the line has any\n"
    "  helm    Chart.lock: KEY/charts/<name>-<version>.tgz\n"
    "  images  one reference a line, REPO:TAG or REPO@sha256:<hex> (a registry host in\n"
    "          front is dropped): the image layout KEY/<repo>/<tag> with all its blobs\n"
    "  maven   the output of mvn dependency:list (group:artifact:type:version:scope):\n"
    "          the artifact and its pom\n"
    "The format comes from the file's name, else its contents, or from --format.\n"
    "\n"
    "Progress and each failure (with its cause: digest when the bytes do not match the\n"
    "lockfile) go to stderr; then a summary. Exit status 1 when an item failed.\n"
    "\n"
    "  --format F     npm, pip, helm, images or maven\n"
    "  --platform P   images: only these platforms (os/arch[:os/arch...]), as mount -o platform=\n"
    "  --json         print one document: key, format, items (item, ok, cause, error) and\n"
    "                 files (path, for, ok, size, sha256, cause, status, error)\n";

/* Reads a lockfile (at most LOCKFILE_MAX_BYTES); malloc'd into *buf. */
static int read_capped(const char *file, char **buf, size_t *len)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    ssize_t r = 0;
    while (b && (r = read(fd, b + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n > LOCKFILE_MAX_BYTES)
            break;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    int err = r < 0 ? -errno : 0;
    close(fd);
    if (!b)
        return -ENOMEM;
    if (err < 0 || n > LOCKFILE_MAX_BYTES) {
        free(b);
        return err < 0 ? err : -EFBIG;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Which lockfile formats a proxy type serves. */
static bool type_serves(enum proxy_type t, enum lockfile_format f)
{
    switch (f) {
    case LOCKFILE_NPM:
        return t == PROXY_NPM;
    case LOCKFILE_PIP:
        return t == PROXY_PYPI;
    case LOCKFILE_HELM:
        return t == PROXY_HELM;
    case LOCKFILE_IMAGES:
        return t == PROXY_DOCKER || t == PROXY_ECR;
    case LOCKFILE_MAVEN:
        return t == PROXY_MAVEN;
    default:
        return false;
    }
}

/* The type of proxy or registry key; CLI_EXIT_* on failure (printed). */
int cli_key_type(const struct cli_globals *g, const char *cmd, const char *key,
                 enum proxy_type *type)
{
    struct state *st;
    struct proxy px;
    struct registry reg;
    struct config_error err = {0};
    if (cli_open_state(g, &st))
        return CLI_EXIT_FAIL;
    int rc = configdb_proxy_get(st, key, &px, &err);
    if (rc == 0) {
        *type = px.type;
        config_proxy_clear(&px);
    } else if (rc == -ENOENT) {
        memset(&err, 0, sizeof(err));
        rc = configdb_registry_get(st, key, &reg, &err);
        if (rc == 0) {
            *type = reg.type;
            config_registry_clear(&reg);
        }
    }
    state_close(st);
    if (rc == -ENOENT) {
        cli_errorf("%s: KEY: no proxy or registry is called \"%s\"", cmd, key);
        return CLI_EXIT_FAIL;
    }
    return rc < 0 ? cli_report(cmd, rc, &err) : 0;
}

int from_set_load(const struct cli_globals *g, const char *cmd, const char *file,
                  const char *format, const char *key, struct from_set *s)
{
    char *buf = NULL, err[300];
    size_t len = 0;
    memset(s, 0, sizeof(*s));
    enum lockfile_format fmt = LOCKFILE_AUTO;
    if (format && lockfile_format_parse(format, &fmt) < 0) {
        cli_errorf("%s: format: must be one of npm, pip, helm, images, maven (got \"%.40s\")",
                   cmd, format);
        return CLI_EXIT_USAGE;
    }
    int rc = read_capped(file, &buf, &len);
    if (rc < 0) {
        cli_errorf("%s: from: %s: %s", cmd, file,
                   rc == -EFBIG ? "larger than the lockfile cap (32 MiB)" : strerror(-rc));
        return rc == -EFBIG ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    if (fmt == LOCKFILE_AUTO)
        fmt = lockfile_detect(file, buf, len);
    rc = lockfile_parse(buf, len, fmt, &s->lf, err, sizeof(err));
    free(buf);
    if (rc < 0) {
        cli_errorf("%s: from: %s (read as %s): %s", cmd, file, lockfile_format_name(fmt),
                   rc == -ENOMEM ? strerror(ENOMEM) : err);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_key_type(g, cmd, key, &s->type)) != 0) {
        lockfile_free(&s->lf);
        return rc;
    }
    if (!type_serves(s->type, fmt)) {
        static const char *const wants[] = {[LOCKFILE_NPM] = "npm",
                                            [LOCKFILE_PIP] = "pypi",
                                            [LOCKFILE_HELM] = "helm",
                                            [LOCKFILE_IMAGES] = "docker or ecr",
                                            [LOCKFILE_MAVEN] = "maven"};
        cli_errorf("%s: KEY: %s is of type %s; a %s lockfile needs a proxy or registry of type %s",
                   cmd, key, config_type_name(s->type), lockfile_format_name(fmt), wants[fmt]);
        lockfile_free(&s->lf);
        return CLI_EXIT_USAGE;
    }
    s->wants = calloc(s->lf.n ? s->lf.n : 1, sizeof(*s->wants));
    if (!s->wants) {
        lockfile_free(&s->lf);
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < s->lf.n; i++) {
        s->wants[i].item = &s->lf.items[i];
        lockfile_item_label(fmt, &s->lf.items[i], s->wants[i].label, sizeof(s->wants[i].label));
    }
    return 0;
}

void from_set_free(struct from_set *s)
{
    free(s->wants);
    lockfile_free(&s->lf);
    memset(s, 0, sizeof(*s));
}

/* A pip pin: every file of that version in the project's directory. */
static void collect_pip(struct prefetch *p, const char *dir, struct pf_want *w)
{
    struct engine_attr a;
    struct engine_dirent *ents = NULL;
    size_t n = 0;
    int rc = engine_resolve(p->e, dir, &a);
    if (rc == 0 && a.kind != NODE_DIR)
        rc = -ENOTDIR;
    if (rc == 0)
        rc = engine_readdir(p->e, a.ino, &ents, &n);
    if (rc < 0) {
        prefetch_collect(p, dir, w, 0); /* reports the failure with its cause */
        return;
    }
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (ents[i].attr.kind != NODE_FILE || !lockfile_pip_file_of(w->item, ents[i].name))
            continue;
        char path[4 * LOCKFILE_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, ents[i].name);
        prefetch_collect(p, path, w, 0);
        found++;
    }
    engine_dirents_free(ents, n);
    if (!found)
        prefetch_fail(p, w, dir, -ENOENT, "the project's index has no file of that version");
}

void from_set_collect(struct prefetch *p, const char *key, struct from_set *s)
{
    for (size_t i = 0; i < s->lf.n; i++) {
        struct pf_want *w = &s->wants[i];
        char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX];
        int np = lockfile_item_paths(s->lf.format, w->item, paths, LOCKFILE_MAX_PATHS);
        if (np < 0) {
            prefetch_fail(p, w, key, -EINVAL, "its name or version cannot be a path");
            continue;
        }
        for (int k = 0; k < np; k++) {
            char path[2 * LOCKFILE_PATH_MAX + 300];
            snprintf(path, sizeof(path), "%s/%s", key, paths[k]);
            if (s->lf.format == LOCKFILE_PIP)
                collect_pip(p, path, w);
            else
                prefetch_collect(p, path, w, 0);
        }
    }
}

int from_set_summary(struct prefetch *p, const struct from_set *s, json_t *items)
{
    int failed = 0;
    for (size_t i = 0; i < s->lf.n; i++) {
        const struct pf_want *w = &s->wants[i];
        bool ok = w->failed == 0 && w->files > 0;
        failed += !ok;
        if (!ok)
            cli_errorf("failed: %s%s%s%s: %s", w->label, w->cause ? " (cause " : "",
                       w->cause ? failure_cause_name(w->cause) : "", w->cause ? ")" : "",
                       w->error);
        if (items)
            json_array_append_new(
                items, json_pack("{s:s, s:b, s:o, s:o}", "item", w->label, "ok", ok, "cause",
                                 !ok && w->cause ? json_string(failure_cause_name(w->cause))
                                                 : json_null(),
                                 "error", ok ? json_null() : json_string(w->error)));
    }
    return failed;
}

int cli_prefetch_from_main(struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_PLATFORM };
    static const struct option longopts[] = {{"from", required_argument, NULL, 'f'},
                                             {"format", required_argument, NULL, OPT_FORMAT},
                                             {"platform", required_argument, NULL, OPT_PLATFORM},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *from = NULL, *format = NULL, *platform = NULL;
    struct prefetch p = {.tty = isatty(STDERR_FILENO), .from = true};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'f')
            from = optarg;
        else if (c == OPT_FORMAT)
            format = optarg;
        else if (c == OPT_PLATFORM)
            platform = optarg;
        else if (c == 'j')
            p.json = true;
        else if (c == 'h') {
            fputs(from_usage, stdout);
            return CLI_EXIT_OK;
        } else
            return cli_bad_option("prefetch", c, argv);
    }
    if (argc - optind != 1) {
        cli_errorf("prefetch: --from FILE takes exactly one KEY (see prefetch --help)");
        return CLI_EXIT_USAGE;
    }
    const char *key = argv[optind];
    struct from_set s;
    int rc = from_set_load(g, "prefetch", from, format, key, &s);
    if (rc)
        return rc;
    if (prefetch_begin(g, &p, platform)) {
        prefetch_end(&p);
        from_set_free(&s);
        return CLI_EXIT_FAIL;
    }
    from_set_collect(&p, key, &s);
    prefetch_run(&p);
    json_t *items = p.json ? json_array() : NULL;
    int failed = from_set_summary(&p, &s, items);
    if (p.json) {
        json_t *doc = json_pack("{s:s, s:s, s:o, s:O, s:i}", "key", key, "format",
                                lockfile_format_name(s.lf.format), "items", items, "files",
                                p.results, "failed", failed);
        cli_print_json(doc);
    } else {
        printf("prefetched %zu item(s): %lld file(s), %lld bytes; %d item(s) failed\n",
               s.lf.n - (size_t)failed, (long long)p.files, (long long)p.done_bytes, failed);
    }
    prefetch_end(&p);
    from_set_free(&s);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
