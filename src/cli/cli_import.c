/*
 * cli_import: "upstreamfs registry import NAME DIR --as REPOSITORY[:TAG]|PATH",
 * the air-gapped end of the round trip: a tree copied out of a mount (an OCI
 * image layout from MNT/<key>/<repo>/<tag>, or any file tree) becomes local
 * content of a registry, so the mount and the shim serve it with no upstream.
 *
 * An OCI layout is checked whole before anything is written: oci-layout and
 * index.json parse, every blob's sha256 equals its name, and every blob the
 * index names is there. Then it lands at NAME/REPOSITORY/TAG, the place a
 * docker registry's mount and /v2 routes serve a tag from (the layout's
 * paths: include/upstreamfs/oci_layout.h).
 */
#include "cli_bundle.h"
#include "upstreamfs/cli.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/oci_layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

static const char usage_import[] =
    "Usage: upstreamfs registry import NAME DIR --as REPOSITORY[:TAG]|PATH\n"
    "       upstreamfs registry import NAME BUNDLE\n"
    "\n"
    "Makes the tree DIR local content of registry NAME, served by the mount and the\n"
    "shim with no upstream (never evicted). DIR is either an OCI image layout, such\n"
    "as a copy of MNT/<key>/<repo>/<tag> (then --as names the repository and tag it\n"
    "is served as; the tag defaults to the layout's " REF_NAME_ANNOTATION "),\n"
    "or any file tree (then --as is the path inside the registry).\n"
    "\n"
    "Every blob of a layout is checked against its digest before anything is written.\n"
    "\n"
    "A BUNDLE (a directory with the bundle.json that \"upstreamfs export\" writes; no --as)\n"
    "is checked whole first: every file it lists is there with its size and sha256, and\n"
    "nothing else is; one missing or damaged file refuses all of it. Then each file lands at\n"
    "its path in the bundle; a delta (export --since) lands on top of an earlier import.\n"
    "\n"
    "Options:\n"
    "  --as TARGET    REPOSITORY[:TAG] for a layout, PATH for a file tree\n"
    "  -h, --help     show this help\n";

/* Hashes one file; 0 if its sha256 is hex. */
static int file_matches(int dir_fd, const char *name, const char *hex)
{
    char buf[1 << 16], got[65];
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct hash_ctx *h = hash_begin(NULL);
    ssize_t r;
    while (h && (r = read(fd, buf, sizeof(buf))) > 0)
        hash_update(h, buf, (size_t)r);
    close(fd);
    if (!h)
        return -ENOMEM;
    hash_end(h, got);
    return strcmp(got, hex) == 0 ? 0 : -EBADMSG;
}

/* Checks an OCI layout; fills *tag from its index when it names one (malloc'd). */
static int check_layout(const char *dir, char **tag)
{
    char path[4200];
    json_error_t je;
    int rc = 0;
    *tag = NULL;
    oci_layout_path(dir, OCI_PART_OCI_LAYOUT, NULL, path, sizeof(path));
    json_t *layout = json_load_file(path, 0, &je);
    if (!json_is_string(json_object_get(layout, OCI_LAYOUT_VERSION_KEY))) {
        cli_errorf("registry import: DIR: %s is not an OCI image layout file", path);
        json_decref(layout);
        return -EINVAL;
    }
    json_decref(layout);
    oci_layout_path(dir, OCI_PART_INDEX_JSON, NULL, path, sizeof(path));
    json_t *index = json_load_file(path, 0, &je);
    json_t *manifests = json_object_get(index, "manifests");
    if (!json_is_array(manifests) || json_array_size(manifests) == 0) {
        cli_errorf("registry import: DIR: %s names no manifest", path);
        json_decref(index);
        return -EINVAL;
    }
    oci_layout_path(dir, OCI_PART_BLOBS_SHA256, NULL, path, sizeof(path));
    int bfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0) {
        cli_errorf("registry import: DIR: %s: %s", path, strerror(errno));
        json_decref(index);
        return -EINVAL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(manifests, i, m)
    {
        const char *digest = json_string_value(json_object_get(m, "digest"));
        if (!digest || !oci_digest_valid(digest) || faccessat(bfd, digest + 7, R_OK, 0) < 0) {
            cli_errorf("registry import: DIR: index.json names blob %s, which the layout lacks",
                       digest ? digest : "(none)");
            rc = -EINVAL;
            break;
        }
        const char *ref = json_string_value(
            json_object_get(json_object_get(m, "annotations"), REF_NAME_ANNOTATION));
        if (ref && !*tag)
            *tag = strdup(ref);
    }
    json_decref(index);
    DIR *d = rc == 0 ? fdopendir(bfd) : NULL;
    struct dirent *de;
    while (d && rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (!hash_is_sha256_hex(de->d_name)) {
            cli_errorf("registry import: DIR: " OCI_LAYOUT_BLOBS_DIR
                       "/%s is not named by a sha256 digest",
                       de->d_name);
            rc = -EINVAL;
        } else if (file_matches(bfd, de->d_name, de->d_name) < 0) {
            cli_errorf("registry import: DIR: " OCI_LAYOUT_BLOBS_DIR
                       "/%s does not match its digest; "
                       "nothing imported",
                       de->d_name);
            rc = -EBADMSG;
        }
    }
    if (d)
        closedir(d);
    else
        close(bfd);
    if (rc < 0) {
        free(*tag);
        *tag = NULL;
    }
    return rc;
}

/*
 * Where the OCI layout DIR lands in docker registry NAME (of type type), --as
 * REPOSITORY[:TAG] (the tag defaults to the one the layout names): NAME/REPOSITORY/TAG in
 * dest, once the layout checked whole. CLI_EXIT_OK, or the exit code after printing why.
 */
static int layout_dest(const char *name, enum proxy_type type, const char *dir, const char *as,
                       char *dest, size_t destlen)
{
    char repo[1100];
    char *tag = NULL;
    const char *colon = strrchr(as, ':');
    snprintf(repo, sizeof(repo), "%.*s", colon ? (int)(colon - as) : (int)strlen(as), as);
    if (type != PROXY_DOCKER) {
        cli_errorf("registry import: NAME: an OCI layout goes into a docker registry (%s is "
                   "%s)",
                   name, config_type_name(type));
        return CLI_EXIT_USAGE;
    }
    if (!oci_name_valid(repo)) {
        cli_errorf("registry import: as: \"%s\" is not a repository name (lowercase "
                   "components separated by '/')",
                   repo);
        return CLI_EXIT_USAGE;
    }
    int rc = check_layout(dir, &tag);
    if (rc < 0)
        return rc == -EBADMSG ? CLI_EXIT_FAIL : CLI_EXIT_USAGE;
    if (colon) {
        free(tag);
        tag = strdup(colon + 1);
    }
    if (!tag || !oci_tag_valid(tag)) {
        cli_errorf("registry import: as: %s; give REPOSITORY:TAG",
                   tag ? "the tag is not valid" : "the layout names no tag");
        free(tag);
        return CLI_EXIT_USAGE;
    }
    oci_layout_dir(name, repo, tag, dest, destlen);
    free(tag);
    return CLI_EXIT_OK;
}

/* Imports the tree dir at dest through the engine and says how much; the exit code. */
static int import_tree(struct cli_globals *g, const char *dest, const char *dir)
{
    struct engine *e = NULL;
    struct engine_opts eo = {.state_dir = g->state_dir};
    int64_t files = 0, bytes = 0;
    int rc = fetch_global_init();
    if (rc == 0)
        rc = engine_open(&eo, &e);
    if (rc == 0)
        rc = engine_import(e, dest, dir, &files, &bytes);
    engine_close(e);
    fetch_global_cleanup();
    if (rc < 0) {
        cli_errorf("registry import: %s: %s", dest, strerror(-rc));
        return CLI_EXIT_FAIL;
    }
    printf("imported %lld file(s), %lld bytes into %s\n", (long long)files, (long long)bytes, dest);
    return CLI_EXIT_OK;
}

/* "registry import": parses the options, hands a bundle to cli_bundle_import, else finds the
 * registry, where DIR lands (a layout or a file tree) and imports it (the steps above). */
int cli_registry_import(struct cli_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"as", required_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *as = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'a')
            as = optarg;
        else if (c == 'h') {
            fputs(usage_import, stdout);
            return CLI_EXIT_OK;
        } else
            return cli_bad_option("registry import", c, argv);
    }
    if (argc - optind == 2 && !as && cli_is_bundle(argv[optind + 1]))
        return cli_bundle_import(g, argv[optind], argv[optind + 1]);
    if (argc - optind != 2 || !as) {
        cli_errorf("registry import: expects NAME DIR --as TARGET (see registry import --help)");
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[optind], *dir = argv[optind + 1];
    struct state *st;
    struct registry reg;
    struct config_error err = {0};
    if (cli_open_state(g, &st))
        return CLI_EXIT_FAIL;
    int rc = configdb_registry_get(st, name, &reg, &err);
    state_close(st);
    if (rc < 0)
        return cli_report("registry import", rc, &err);
    struct stat sb;
    if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        cli_errorf("registry import: DIR: %s is not a directory", dir);
        config_registry_clear(&reg);
        return CLI_EXIT_USAGE;
    }
    char layout_file[4200], dest[2400];
    int exit_rc = CLI_EXIT_USAGE;
    if (oci_layout_path(dir, OCI_PART_OCI_LAYOUT, NULL, layout_file, sizeof(layout_file)) == 0 &&
        access(layout_file, F_OK) == 0) {
        exit_rc = layout_dest(name, reg.type, dir, as, dest, sizeof(dest));
    } else if (!bundle_path_ok(as)) {
        cli_errorf("registry import: as: \"%s\" must be a relative path without . or .. "
                   "components",
                   as);
    } else {
        snprintf(dest, sizeof(dest), "%s/%s", name, as);
        exit_rc = CLI_EXIT_OK;
    }
    if (exit_rc == CLI_EXIT_OK)
        exit_rc = import_tree(g, dest, dir);
    config_registry_clear(&reg);
    return exit_rc;
}
