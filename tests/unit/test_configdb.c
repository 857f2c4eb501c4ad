/*
 * test_configdb: persistence of proxies and registries, their secrets, the
 * one name space, registry order and compatibility, the generation counter,
 * "nothing is written on invalid input", and concurrent writers in separate
 * processes on one state dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/config_crud.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
    char *root;
    struct state *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/upfs-test-configdb.XXXXXX";
    if (!f || !mkdtemp(tmpl))
        return -1;
    f->root = strdup(tmpl);
    if (state_open(f->root, &f->st) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char *cmd = NULL;
    state_close(f->st);
    if (asprintf(&cmd, "rm -rf '%s'", f->root) > 0 && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->root);
    free(cmd);
    free(f->root);
    free(f);
    return 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

static int create_proxy(struct state *st, const char *key, enum proxy_type t, const char *url,
                        const char *access_key, const char *secret, struct config_error *err)
{
    struct proxy p;
    config_proxy_init(&p, key, t);
    if (url)
        assert_int_equal(config_proxy_set_url(&p, url), 0);
    if (access_key) {
        p.auth = AUTH_ACCESS_KEY;
        assert_int_equal(config_set_string(&p.access_key, access_key), 0);
    }
    memset(err, 0, sizeof(*err));
    int rc = configdb_proxy_create(st, &p, secret, err);
    config_proxy_clear(&p);
    return rc;
}

static int create_registry(struct state *st, const char *name, enum proxy_type t, char **ups,
                           struct config_error *err)
{
    struct registry r = {.type = t, .upstreams = ups};
    snprintf(r.name, sizeof(r.name), "%s", name);
    memset(err, 0, sizeof(*err));
    return configdb_registry_create(st, &r, err);
}

static void expect_err(int rc, int want, const struct config_error *err, const char *field,
                       const char *needle)
{
    if (rc != want || strcmp(err->field, field) != 0 || !strstr(err->message, needle))
        fail_msg("rc=%d field=%s message=%s; wanted %d, %s, \"%s\"", rc, err->field, err->message,
                 want, field, needle);
}

static char *secret_file(struct fixture *f, const char *key)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/secrets/%s", f->root, key) > 0);
    return p;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static long long count_rows(struct state *st, const char *table)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    long long n = -1;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    assert_int_equal(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static long long generation(struct state *st)
{
    long long g = -1;
    assert_int_equal(configdb_generation(st, &g), 0);
    return g;
}

/* Everything a write could leave behind: rows, secret files, the generation. */
struct snapshot {
    long long proxies, registries, upstreams, gen;
    int secrets;
};

static struct snapshot snap(struct fixture *f)
{
    char *dir = NULL;
    struct snapshot s = {
        .proxies = count_rows(f->st, "proxies"),
        .registries = count_rows(f->st, "registries"),
        .upstreams = count_rows(f->st, "registry_upstreams"),
        .gen = generation(f->st),
    };
    assert_true(asprintf(&dir, "%s/secrets", f->root) > 0);
    s.secrets = count_files(dir);
    free(dir);
    return s;
}

static void expect_same(struct snapshot a, struct snapshot b)
{
    assert_int_equal(a.proxies, b.proxies);
    assert_int_equal(a.registries, b.registries);
    assert_int_equal(a.upstreams, b.upstreams);
    assert_int_equal(a.gen, b.gen);
    assert_int_equal(a.secrets, b.secrets);
}

/* ---- proxies --------------------------------------------------------------------------- */

static void test_proxy_crud(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy p;

    assert_int_equal(
        create_proxy(f->st, "zeta", PROXY_GENERIC, "https://z.example/", NULL, NULL, &err), 0);
    assert_int_equal(create_proxy(f->st, "hub", PROXY_DOCKER, NULL, NULL, NULL, &err), 0);
    assert_int_equal(
        create_proxy(f->st, "charts", PROXY_HELM, "https://charts.example/x", NULL, NULL, &err), 0);

    assert_int_equal(configdb_proxy_get(f->st, "charts", &p, &err), 0);
    assert_string_equal(p.key, "charts");
    assert_int_equal(p.type, PROXY_HELM);
    assert_int_equal(p.source, SOURCE_NONE);
    assert_string_equal(p.url, "https://charts.example/x/");
    assert_int_equal(p.auth, AUTH_ANONYMOUS);
    assert_false(p.secret_set);
    assert_int_equal(p.metadata_ttl, 600);
    assert_int_equal(p.negative_ttl, 300);
    assert_int_equal(p.max_size, CONFIG_DEFAULT_MAX_SIZE);
    assert_false(p.pass_credentials);
    assert_null(p.allow_host);

    /* Update: change fields, keep the rest. */
    p.metadata_ttl = 60;
    p.offline = true;
    p.pass_credentials = true;
    p.max_size = 5 << 20;
    assert_int_equal(config_strv_push(&p.allow_host, "*.lan"), 0);
    assert_int_equal(config_strv_push(&p.include, "stable/*"), 0);
    assert_int_equal(config_strv_push(&p.include, "incubator/*"), 0);
    assert_int_equal(configdb_proxy_update(f->st, &p, NULL, &err), 0);
    config_proxy_clear(&p);
    assert_int_equal(configdb_proxy_get(f->st, "charts", &p, &err), 0);
    assert_int_equal(p.metadata_ttl, 60);
    assert_true(p.offline);
    assert_true(p.pass_credentials);
    assert_int_equal(p.max_size, 5 << 20);
    assert_string_equal(p.allow_host[0], "*.lan");
    assert_string_equal(p.include[0], "stable/*");
    assert_string_equal(p.include[1], "incubator/*");
    assert_null(p.include[2]);
    assert_null(p.exclude);
    assert_string_equal(p.url, "https://charts.example/x/");

    /* The type cannot change. */
    p.type = PROXY_MAVEN;
    expect_err(configdb_proxy_update(f->st, &p, NULL, &err), -EINVAL, &err, "type",
               "cannot be changed");
    config_proxy_clear(&p);

    struct proxy *list = NULL;
    size_t n = 0;
    assert_int_equal(configdb_proxy_list(f->st, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].key, "charts");
    assert_string_equal(list[1].key, "hub");
    assert_string_equal(list[2].key, "zeta");
    assert_int_equal(list[1].source, SOURCE_DOCKERHUB);
    configdb_proxy_list_free(list, n);

    assert_int_equal(configdb_proxy_delete(f->st, "zeta", &err), 0);
    expect_err(configdb_proxy_get(f->st, "zeta", &p, &err), -ENOENT, &err, "key",
               "no proxy named \"zeta\"");
    expect_err(configdb_proxy_delete(f->st, "zeta", &err), -ENOENT, &err, "key", "no proxy");
    struct proxy q;
    config_proxy_init(&q, "ghost", PROXY_GENERIC);
    assert_int_equal(config_proxy_set_url(&q, "http://g/"), 0);
    expect_err(configdb_proxy_update(f->st, &q, NULL, &err), -ENOENT, &err, "key",
               "no proxy named \"ghost\"");
    config_proxy_clear(&q);
}

static void test_secrets(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy p;
    struct stat sb;
    char *path = secret_file(f, "priv"), *got = NULL;

    assert_int_equal(
        create_proxy(f->st, "priv", PROXY_GENERIC, "https://h/", "bob", "correct horse", &err), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(configdb_secret_read(f->st, "priv", &got), 0);
    assert_string_equal(got, "correct horse");
    free(got);

    assert_int_equal(configdb_proxy_get(f->st, "priv", &p, &err), 0);
    assert_true(p.secret_set);
    assert_string_equal(p.access_key, "bob");
    /* The secret is in no column of the database. */
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->st->db, "SELECT * FROM proxies", -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count(s); i++) {
            const char *v = (const char *)sqlite3_column_text(s, i);
            assert_true(!v || !strstr(v, "correct horse"));
        }
    sqlite3_finalize(s);

    /* Update without a secret keeps it; with one replaces it. */
    p.negative_ttl = 1;
    assert_int_equal(configdb_proxy_update(f->st, &p, NULL, &err), 0);
    assert_int_equal(configdb_secret_read(f->st, "priv", &got), 0);
    assert_string_equal(got, "correct horse");
    free(got);
    assert_int_equal(configdb_proxy_update(f->st, &p, "battery staple", &err), 0);
    assert_int_equal(configdb_secret_read(f->st, "priv", &got), 0);
    assert_string_equal(got, "battery staple");
    free(got);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* Switching to anonymous drops key and secret. */
    config_proxy_set_auth(&p, AUTH_ANONYMOUS);
    assert_int_equal(configdb_proxy_update(f->st, &p, NULL, &err), 0);
    assert_false(p.secret_set);
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(configdb_secret_read(f->st, "priv", &got), 0);
    assert_null(got);
    config_proxy_clear(&p);
    assert_int_equal(configdb_proxy_get(f->st, "priv", &p, &err), 0);
    assert_null(p.access_key);
    assert_false(p.secret_set);
    config_proxy_clear(&p);

    /* Delete removes the secret. */
    assert_int_equal(create_proxy(f->st, "priv2", PROXY_MAVEN, "https://m/", "alice", "pw", &err),
                     0);
    char *path2 = secret_file(f, "priv2");
    assert_int_equal(access(path2, F_OK), 0);
    assert_int_equal(configdb_proxy_delete(f->st, "priv2", &err), 0);
    assert_int_equal(access(path2, F_OK), -1);

    /* A leftover secret file of a deleted proxy is not inherited by a new one. */
    int fd = open(path2, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old", 3), 3);
    close(fd);
    assert_int_equal(create_proxy(f->st, "priv2", PROXY_MAVEN, "https://m/", NULL, NULL, &err), 0);
    assert_int_equal(access(path2, F_OK), -1);

    /* Keys are checked before they become file names. */
    assert_int_equal(configdb_secret_read(f->st, "../index.db", &got), -EINVAL);
    free(path);
    free(path2);
}

static void test_nothing_written_on_invalid(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    assert_int_equal(create_proxy(f->st, "base", PROXY_GENERIC, "https://b/", "u", "pw1", &err), 0);
    struct snapshot before = snap(f);

    expect_err(create_proxy(f->st, "1bad", PROXY_GENERIC, "https://h/", "u", "pw", &err), -EINVAL,
               &err, "key", "start with a letter");
    expect_err(create_proxy(f->st, "ok", PROXY_GENERIC, "ftp://h/", "u", "pw", &err), -EINVAL, &err,
               "url", "http or https");
    expect_err(create_proxy(f->st, "ok", PROXY_GENERIC, "https://h/", NULL, "pw", &err), -EINVAL,
               &err, "secret_key", "anonymous");
    expect_err(create_proxy(f->st, "base", PROXY_GENERIC, "https://h/", "u", "pw", &err), -EEXIST,
               &err, "key", "already exists");
    expect_err(create_proxy(f->st, "ok", PROXY_HELM, NULL, NULL, NULL, &err), -EINVAL, &err, "url",
               "need --url");
    struct proxy p;
    config_proxy_init(&p, "ok", PROXY_GENERIC);
    assert_int_equal(config_proxy_set_url(&p, "https://h/"), 0);
    assert_int_equal(config_set_string(&p.ca_file, "/nonexistent/ca.pem"), 0);
    expect_err(configdb_proxy_create(f->st, &p, NULL, &err), -EINVAL, &err, "ca_file",
               "No such file");
    config_proxy_clear(&p);
    expect_same(before, snap(f));

    /* An invalid update keeps the stored proxy and its secret. */
    assert_int_equal(configdb_proxy_get(f->st, "base", &p, &err), 0);
    assert_int_equal(config_proxy_set_url(&p, "gopher://x/"), 0);
    expect_err(configdb_proxy_update(f->st, &p, "pw2", &err), -EINVAL, &err, "url",
               "http or https");
    config_proxy_clear(&p);
    assert_int_equal(configdb_proxy_get(f->st, "base", &p, &err), 0);
    assert_string_equal(p.url, "https://b/");
    char *got = NULL;
    assert_int_equal(configdb_secret_read(f->st, "base", &got), 0);
    assert_string_equal(got, "pw1");
    free(got);
    config_proxy_clear(&p);
    expect_same(before, snap(f));

    /* Invalid registries too. */
    char *unknown[] = {"nope", NULL};
    expect_err(create_registry(f->st, "reg", PROXY_GENERIC, unknown, &err), -EINVAL, &err,
               "upstreams", "no proxy named \"nope\"");
    expect_err(create_registry(f->st, "base", PROXY_GENERIC, NULL, &err), -EEXIST, &err, "name",
               "a proxy named \"base\" already exists");
    expect_same(before, snap(f));
}

static void test_files(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy p;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->root), 0);
    FILE *fp = fopen("ca.pem", "w");
    assert_non_null(fp);
    fputs("-----BEGIN CERTIFICATE-----\n", fp);
    fclose(fp);

    config_proxy_init(&p, "tls", PROXY_GENERIC);
    assert_int_equal(config_proxy_set_url(&p, "https://h/"), 0);
    assert_int_equal(config_set_string(&p.ca_file, "ca.pem"), 0);
    assert_int_equal(configdb_proxy_create(f->st, &p, NULL, &err), 0);
    config_proxy_clear(&p);
    assert_int_equal(configdb_proxy_get(f->st, "tls", &p, &err), 0);
    char *want = NULL;
    assert_true(asprintf(&want, "%s/ca.pem", f->root) > 0);
    assert_string_equal(p.ca_file, want);
    free(want);

    assert_int_equal(config_set_string(&p.client_cert, f->root), 0);
    assert_int_equal(config_set_string(&p.client_key, "ca.pem"), 0);
    expect_err(configdb_proxy_update(f->st, &p, NULL, &err), -EINVAL, &err, "client_cert",
               "is a directory");
    config_proxy_clear(&p);
    assert_int_equal(chdir(cwd), 0);
}

static void test_ecr_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy p;
    assert_int_equal(create_proxy(f->st, "ecr1", PROXY_ECR,
                                  "https://us-east-1.console.aws.amazon.com/ecr/repositories/"
                                  "private/123456789012/team%2Fapp?region=us-east-1",
                                  "AKIAEXAMPLE", "secret", &err),
                     0);
    assert_int_equal(configdb_proxy_get(f->st, "ecr1", &p, &err), 0);
    assert_string_equal(p.url, "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/");
    assert_string_equal(p.ecr.repository, "team/app");
    assert_string_equal(p.ecr.region, "us-east-1");
    assert_false(p.ecr.is_public);
    /* An update that does not touch url keeps the scope. */
    p.metadata_ttl = 10;
    assert_int_equal(configdb_proxy_update(f->st, &p, NULL, &err), 0);
    config_proxy_clear(&p);
    assert_int_equal(configdb_proxy_get(f->st, "ecr1", &p, &err), 0);
    assert_string_equal(p.ecr.repository, "team/app");
    assert_int_equal(p.metadata_ttl, 10);
    config_proxy_clear(&p);
}

/* ---- registries ------------------------------------------------------------------------ */

/* Every row of the field table survives struct -> database -> struct (two proxies cover the
 * type-specific rows: docker's source, ecr's aws_endpoint). */
static void test_fields_db_round_trip(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    static const char *const bodies[] = {
        "{\"key\":\"d\",\"type\":\"docker\",\"source\":\"custom\",\"url\":\"https://r.example/\","
        "\"auth\":\"access-key\",\"access_key\":\"bob\",\"secret_key\":\"pw\","
        "\"ca_file\":\"/etc/hostname\",\"client_cert\":\"/etc/hostname\","
        "\"client_key\":\"/etc/hostname\",\"http_proxy\":\"http://px.example:3128/\","
        "\"metadata_ttl\":1,\"negative_ttl\":2,\"offline\":true,\"include\":[\"a\",\"b\"],"
        "\"exclude\":[\"c\"]}",
        "{\"key\":\"e\",\"type\":\"ecr\",\"url\":\"123456789012.dkr.ecr.eu-west-1.amazonaws.com/"
        "app\","
        "\"auth\":\"aws-chain\",\"aws_endpoint\":\"http://127.0.0.1:9/\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct proxy p = {0}, back = {0};
        char *secret = NULL;
        json_t *body = json_loads(bodies[i], 0, NULL);
        assert_non_null(body);
        assert_int_equal(config_proxy_apply_json(&p, body, true, &secret, &err), 0);
        if (configdb_proxy_create(f->st, &p, secret, &err) != 0)
            fail_msg("%s: %s", err.field, err.message);
        assert_int_equal(configdb_proxy_get(f->st, p.key, &back, &err), 0);
        json_t *a = config_proxy_to_json(&p), *b = config_proxy_to_json(&back);
        /* Every member differs from its default in one of the two, so each column is read. */
        if (!json_equal(a, b))
            fail_msg("stored %s, read %s", json_dumps(a, 0), json_dumps(b, 0));
        json_decref(a);
        json_decref(b);
        json_decref(body);
        free(secret);
        config_proxy_clear(&p);
        config_proxy_clear(&back);
    }
}

/* A state dir made before a row of the field table existed still loads: the column is added. */
static void test_missing_column_added(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy *list = NULL;
    size_t n = 0;
    assert_int_equal(create_proxy(f->st, "old", PROXY_GENERIC, "https://h/", NULL, NULL, &err), 0);
    assert_int_equal(
        sqlite3_exec(f->st->db, "ALTER TABLE proxies DROP COLUMN http_proxy", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(configdb_proxy_list(f->st, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].key, "old");
    assert_null(list[0].http_proxy);
    configdb_proxy_list_free(list, n);
    assert_int_equal(count_rows(f->st, "pragma_table_info('proxies') WHERE name = 'http_proxy'"),
                     1);
}

/* A state dir made before the egress fields (allow_host, pass_credentials, max_size) loads with
 * their defaults: no schema migration, configdb adds the columns. */
static void test_egress_columns_added(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy *list = NULL;
    size_t n = 0;
    assert_int_equal(create_proxy(f->st, "old", PROXY_HELM, "https://h/", NULL, NULL, &err), 0);
    const char *cols[] = {"allow_host_json", "pass_credentials", "max_size"};
    for (size_t i = 0; i < 3; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "ALTER TABLE proxies DROP COLUMN %s", cols[i]);
        assert_int_equal(sqlite3_exec(f->st->db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    assert_int_equal(configdb_proxy_list(f->st, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_null(list[0].allow_host);
    assert_false(list[0].pass_credentials);
    assert_int_equal(list[0].max_size, CONFIG_DEFAULT_MAX_SIZE);
    configdb_proxy_list_free(list, n);
}

/* The policy fields are stored and read back; a state dir made before them (no columns) loads
 * with their defaults, configdb adding the columns. */
static void test_policy_columns(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy p, got;
    config_proxy_init(&p, "js", PROXY_NPM);
    assert_int_equal(config_proxy_set_url(&p, "https://n/"), 0);
    p.min_age = 7 * 86400;
    p.min_age_unknown = MIN_AGE_UNKNOWN_ALLOW;
    assert_int_equal(config_strv_push(&p.min_age_exempt, "@myorg/*"), 0);
    assert_int_equal(config_strv_push(&p.deny, "event-stream@3.3.6"), 0);
    assert_int_equal(config_strv_push(&p.allow, "lodash@^4"), 0);
    assert_int_equal(configdb_proxy_create(f->st, &p, NULL, &err), 0);
    config_proxy_clear(&p);
    assert_int_equal(configdb_proxy_get(f->st, "js", &got, &err), 0);
    assert_int_equal(got.min_age, 7 * 86400);
    assert_int_equal(got.min_age_unknown, MIN_AGE_UNKNOWN_ALLOW);
    assert_string_equal(got.min_age_exempt[0], "@myorg/*");
    assert_string_equal(got.deny[0], "event-stream@3.3.6");
    assert_string_equal(got.allow[0], "lodash@^4");
    config_proxy_clear(&got);
    /* a rule in another type's syntax is refused with its form */
    config_proxy_init(&p, "py", PROXY_PYPI);
    assert_int_equal(config_proxy_set_url(&p, "https://p/"), 0);
    assert_int_equal(config_strv_push(&p.deny, "requests@=>2"), 0);
    assert_int_equal(configdb_proxy_create(f->st, &p, NULL, &err), -EINVAL);
    assert_string_equal(err.field, "deny");
    config_proxy_clear(&p);

    const char *cols[] = {"min_age", "min_age_unknown", "min_age_exempt_json", "allow_json",
                          "deny_json"};
    for (size_t i = 0; i < 5; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "ALTER TABLE proxies DROP COLUMN %s", cols[i]);
        assert_int_equal(sqlite3_exec(f->st->db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    struct proxy *list = NULL;
    size_t n = 0;
    assert_int_equal(configdb_proxy_list(f->st, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].min_age, 0);
    assert_int_equal(list[0].min_age_unknown, MIN_AGE_UNKNOWN_DENY);
    assert_null(list[0].deny);
    assert_null(list[0].allow);
    configdb_proxy_list_free(list, n);
}

/* The CRUD path refuses a new destination for a stored secret unless the secret comes again. */
static void test_destination_needs_secret(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct proxy p;
    json_error_t jerr;
    assert_int_equal(create_proxy(f->st, "priv", PROXY_MAVEN, "https://m/", "bob", "pw", &err), 0);
    static const struct {
        const char *body;
        int rc;
        const char *field;
    } cases[] = {
        {"{\"url\":\"https://evil/\"}", -EINVAL, "url"},
        {"{\"http_proxy\":\"http://127.0.0.1:3128\"}", -EINVAL, "http_proxy"},
        {"{\"client_cert\":\"/c\",\"client_key\":\"/k\"}", -EINVAL, "client_cert"},
        {"{\"ca_pem\":\"\"}", 0, NULL}, /* nothing stored to remove: no change */
        {"{\"url\":\"https://m/\",\"metadata_ttl\":5}", 0, NULL},
        {"{\"url\":\"https://m2/\",\"secret_key\":\"pw2\"}", 0, NULL},
        {"{\"url\":\"https://m3/\"}", -EINVAL, "url"},
        {"{\"url\":\"https://m3/\",\"auth\":\"anonymous\"}", 0, NULL},
        {"{\"url\":\"https://m4/\"}", 0, NULL}, /* no secret any more */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = json_loads(cases[i].body, 0, &jerr);
        memset(&err, 0, sizeof(err));
        int rc = crud_proxy_update(f->st, "priv", o, &p, &err);
        json_decref(o);
        config_proxy_clear(&p);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d (%s: %s)", cases[i].body, rc, err.field, err.message);
        if (cases[i].field) {
            assert_string_equal(err.field, cases[i].field);
            assert_non_null(strstr(err.message, "needs the secret again"));
        }
    }
}

static void test_registries(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct registry r;

    assert_int_equal(create_proxy(f->st, "hub", PROXY_DOCKER, NULL, NULL, NULL, &err), 0);
    assert_int_equal(
        create_proxy(f->st, "ghcr", PROXY_DOCKER, "https://ghcr.io/", NULL, NULL, &err),
        -EINVAL); /* docker with a url needs --source custom */
    struct proxy p;
    config_proxy_init(&p, "ghcr", PROXY_DOCKER);
    config_proxy_set_source(&p, SOURCE_CUSTOM);
    assert_int_equal(config_proxy_set_url(&p, "https://ghcr.io/"), 0);
    assert_int_equal(configdb_proxy_create(f->st, &p, NULL, &err), 0);
    config_proxy_clear(&p);
    assert_int_equal(
        create_proxy(f->st, "pub", PROXY_ECR, "public.ecr.aws/docker", NULL, NULL, &err), 0);
    assert_int_equal(create_proxy(f->st, "charts", PROXY_HELM, "https://c/", NULL, NULL, &err), 0);

    /* Order is kept, whatever the names' order. */
    char *ups[] = {"pub", "hub", "ghcr", NULL};
    assert_int_equal(create_registry(f->st, "all", PROXY_DOCKER, ups, &err), 0);
    assert_int_equal(configdb_registry_get(f->st, "all", &r, &err), 0);
    assert_string_equal(r.name, "all");
    assert_int_equal(r.type, PROXY_DOCKER);
    assert_string_equal(r.upstreams[0], "pub");
    assert_string_equal(r.upstreams[1], "hub");
    assert_string_equal(r.upstreams[2], "ghcr");
    assert_null(r.upstreams[3]);
    config_registry_clear(&r);

    char *reordered[] = {"ghcr", "pub", NULL};
    assert_int_equal(configdb_registry_set_upstreams(f->st, "all", reordered, &err), 0);
    assert_int_equal(configdb_registry_get(f->st, "all", &r, &err), 0);
    assert_string_equal(r.upstreams[0], "ghcr");
    assert_string_equal(r.upstreams[1], "pub");
    assert_null(r.upstreams[2]);
    config_registry_clear(&r);

    /* Rules. */
    char *helm_in_docker[] = {"hub", "charts", NULL};
    expect_err(configdb_registry_set_upstreams(f->st, "all", helm_in_docker, &err), -EINVAL, &err,
               "upstreams", "\"charts\" is a helm proxy; a docker registry takes docker and ecr");
    char *docker_in_helm[] = {"hub", NULL};
    expect_err(create_registry(f->st, "h", PROXY_HELM, docker_in_helm, &err), -EINVAL, &err,
               "upstreams", "\"hub\" is a docker proxy");
    char *twice[] = {"hub", "pub", "hub", NULL};
    expect_err(configdb_registry_set_upstreams(f->st, "all", twice, &err), -EINVAL, &err,
               "upstreams", "\"hub\" is listed twice");
    char *unknown[] = {"hub", "nope", NULL};
    expect_err(configdb_registry_set_upstreams(f->st, "all", unknown, &err), -EINVAL, &err,
               "upstreams", "no proxy named \"nope\"");
    expect_err(configdb_registry_set_upstreams(f->st, "none", reordered, &err), -ENOENT, &err,
               "name", "no registry named \"none\"");
    /* Still the last good list. */
    assert_int_equal(configdb_registry_get(f->st, "all", &r, &err), 0);
    assert_string_equal(r.upstreams[0], "ghcr");
    config_registry_clear(&r);

    /* One name space. */
    expect_err(create_registry(f->st, "hub", PROXY_DOCKER, NULL, &err), -EEXIST, &err, "name",
               "a proxy named \"hub\" already exists");
    expect_err(create_proxy(f->st, "all", PROXY_GENERIC, "https://x/", NULL, NULL, &err), -EEXIST,
               &err, "key", "a registry named \"all\" already exists");
    expect_err(create_registry(f->st, "all", PROXY_DOCKER, NULL, &err), -EEXIST, &err, "name",
               "a registry named \"all\"");

    /* A used proxy cannot go; the message names the registries. */
    char *one[] = {"hub", NULL};
    assert_int_equal(create_registry(f->st, "second", PROXY_DOCKER, one, &err), 0);
    assert_int_equal(configdb_registry_set_upstreams(f->st, "all", one, &err), 0);
    expect_err(configdb_proxy_delete(f->st, "hub", &err), -EBUSY, &err, "key",
               "upstream of registries all, second");
    assert_int_equal(configdb_registry_delete(f->st, "second", &err), 0);
    expect_err(configdb_proxy_delete(f->st, "hub", &err), -EBUSY, &err, "key", "registry all;");

    /* Zero upstreams is allowed; then the proxy is free. */
    assert_int_equal(configdb_registry_set_upstreams(f->st, "all", NULL, &err), 0);
    assert_int_equal(configdb_registry_get(f->st, "all", &r, &err), 0);
    assert_null(r.upstreams);
    config_registry_clear(&r);
    assert_int_equal(configdb_proxy_delete(f->st, "hub", &err), 0);

    struct registry *list = NULL;
    size_t n = 0;
    assert_int_equal(create_registry(f->st, "aaa", PROXY_HELM, (char *[]){"charts", NULL}, &err),
                     0);
    assert_int_equal(configdb_registry_list(f->st, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "aaa");
    assert_string_equal(list[0].upstreams[0], "charts");
    assert_string_equal(list[1].name, "all");
    assert_null(list[1].upstreams);
    configdb_registry_list_free(list, n);

    assert_int_equal(configdb_registry_delete(f->st, "all", &err), 0);
    expect_err(configdb_registry_delete(f->st, "all", &err), -ENOENT, &err, "name",
               "no registry named");
    expect_err(configdb_registry_get(f->st, "all", &r, &err), -ENOENT, &err, "name",
               "no registry named");
    assert_int_equal(count_rows(f->st, "registry_upstreams"), 1);
}

/* ---- generation ------------------------------------------------------------------------ */

static void test_generation(void **state)
{
    struct fixture *f = *state;
    struct config_error err = {0};
    struct state *other = NULL;
    assert_int_equal(state_open(f->root, &other), 0);

    long long g0 = generation(f->st);
    assert_int_equal(generation(other), g0);
    assert_int_equal(create_proxy(f->st, "g1", PROXY_GENERIC, "https://h/", NULL, NULL, &err), 0);
    long long g1 = generation(other);
    assert_true(g1 > g0);

    /* Reads change nothing. */
    struct proxy p;
    assert_int_equal(configdb_proxy_get(f->st, "g1", &p, &err), 0);
    assert_int_equal(generation(other), g1);

    p.offline = true;
    assert_int_equal(configdb_proxy_update(f->st, &p, NULL, &err), 0);
    config_proxy_clear(&p);
    long long g2 = generation(other);
    assert_true(g2 > g1);
    assert_int_equal(create_registry(other, "rg", PROXY_GENERIC, (char *[]){"g1", NULL}, &err), 0);
    long long g3 = generation(f->st);
    assert_true(g3 > g2);
    assert_int_equal(configdb_registry_set_upstreams(f->st, "rg", NULL, &err), 0);
    long long g4 = generation(other);
    assert_true(g4 > g3);
    assert_int_equal(configdb_proxy_delete(other, "g1", &err), 0);
    assert_true(generation(f->st) > g4);
    state_close(other);
}

/* ---- concurrency ----------------------------------------------------------------------- */

enum { WRITERS = 8, PER_WRITER = 10 };

static void wait_all(pid_t *pids, int n, int *codes)
{
    for (int i = 0; i < n; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        codes[i] = WEXITSTATUS(status);
    }
}

static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    pid_t pids[WRITERS];
    int codes[WRITERS];

    /* Separate processes, each with its own connection, all writing at once. */
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            struct state *st = NULL;
            struct config_error err = {0};
            int bad = state_open(f->root, &st) != 0;
            for (int i = 0; !bad && i < PER_WRITER; i++) {
                char key[32];
                snprintf(key, sizeof(key), "w%d-p%d", w, i);
                struct proxy p;
                config_proxy_init(&p, key, PROXY_GENERIC);
                bad |= config_proxy_set_url(&p, "https://h/") != 0;
                const char *secret = NULL;
                if (i % 2) {
                    p.auth = AUTH_ACCESS_KEY;
                    bad |= config_set_string(&p.access_key, "u") != 0;
                    secret = key;
                }
                if (configdb_proxy_create(st, &p, secret, &err) != 0) {
                    fprintf(stderr, "%s: %s: %s\n", key, err.field, err.message);
                    bad = 1;
                }
                config_proxy_clear(&p);
            }
            state_close(st);
            _exit(bad);
        }
    }
    wait_all(pids, WRITERS, codes);
    for (int w = 0; w < WRITERS; w++)
        assert_int_equal(codes[w], 0);

    struct proxy *list = NULL;
    size_t n = 0;
    assert_int_equal(configdb_proxy_list(f->st, &list, &n), 0);
    assert_int_equal(n, WRITERS * PER_WRITER);
    for (size_t i = 0; i < n; i++) {
        bool odd = list[i].key[strlen(list[i].key) - 1] % 2;
        assert_int_equal(list[i].secret_set, odd);
        if (odd) {
            char *got = NULL;
            assert_int_equal(configdb_secret_read(f->st, list[i].key, &got), 0);
            assert_string_equal(got, list[i].key);
            free(got);
        }
    }
    configdb_proxy_list_free(list, n);

    /* All racing for one key: exactly one wins, the rest are told it exists. */
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            struct state *st = NULL;
            struct config_error err = {0};
            if (state_open(f->root, &st) != 0)
                _exit(9);
            int rc = create_proxy(st, "contested", PROXY_GENERIC, "https://h/", NULL, NULL, &err);
            state_close(st);
            _exit(rc == 0 ? 0 : rc == -EEXIST ? 1 : 9);
        }
    }
    wait_all(pids, WRITERS, codes);
    int wins = 0;
    for (int w = 0; w < WRITERS; w++) {
        assert_true(codes[w] == 0 || codes[w] == 1);
        wins += codes[w] == 0;
    }
    assert_int_equal(wins, 1);

    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->st->db, "PRAGMA integrity_check", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
}

int main(void)
{
    /* Each create/update/delete logs at info; keep the test output to failures. */
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proxy_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_written_on_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecr_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_db_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_column_added, setup, teardown),
        cmocka_unit_test_setup_teardown(test_egress_columns_added, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destination_needs_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
