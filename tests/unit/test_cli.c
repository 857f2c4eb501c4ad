/*
 * test_cli: the command-line front door, run in-process (cli_main in a
 * forked child, stdout and stderr captured): help at every level, version,
 * exit codes, the one-line error format, how the state dir and log level
 * are chosen. The end-to-end behaviour of the commands is in
 * tests/integration/cli_test.sh, which drives the real binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/cli.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/proxy_fields.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    int code;
    char *out, *err;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs cli_main(argv) in a child with the given environment changes ("NAME=VALUE" or "NAME"). */
static struct run run_cli(const char *const *argv, const char *const *env)
{
    char out[] = "/tmp/upfs-test-cli-out.XXXXXX", err[] = "/tmp/upfs-test-cli-err.XXXXXX";
    int fo = mkstemp(out), fe = mkstemp(err);
    assert_true(fo >= 0 && fe >= 0);
    int argc = 0;
    while (argv[argc])
        argc++;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char **copy = calloc((size_t)argc + 1, sizeof(*copy));
        for (int i = 0; i < argc; i++)
            copy[i] = strdup(argv[i]);
        for (size_t i = 0; env && env[i]; i++) {
            char *e = strdup(env[i]), *eq = strchr(e, '=');
            if (eq) {
                *eq = '\0';
                setenv(e, eq + 1, 1);
            } else {
                unsetenv(e);
            }
        }
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        int rc = cli_main(argc, copy);
        fflush(stdout);
        fflush(stderr);
        /* _exit: the parent's atexit handlers (cmocka, sanitizers) are not the child's. */
        _exit(rc);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    struct run r = {.code = WEXITSTATUS(status), .out = slurp(out), .err = slurp(err)};
    close(fo);
    close(fe);
    unlink(out);
    unlink(err);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* Exactly one line on stderr, in the "upstreamfs: " format, containing needle. */
static void expect_one_error_line(const struct run *r, const char *needle)
{
    if (strncmp(r->err, "upstreamfs: ", 12) != 0 || !strstr(r->err, needle) ||
        strchr(r->err, '\n') != r->err + strlen(r->err) - 1)
        fail_msg("stderr is not one error line with \"%s\": [%s]", needle, r->err);
}

static void test_help_everywhere(void **state)
{
    static const char *const helps[][6] = {
        {"upstreamfs", "--help"},
        {"upstreamfs", "-h"},
        {"upstreamfs", "proxy", "--help"},
        {"upstreamfs", "proxy", "-h"},
        {"upstreamfs", "proxy", "create", "--help"},
        {"upstreamfs", "proxy", "update", "-h"},
        {"upstreamfs", "proxy", "list", "--help"},
        {"upstreamfs", "proxy", "show", "--help"},
        {"upstreamfs", "proxy", "delete", "--help"},
        {"upstreamfs", "registry", "--help"},
        {"upstreamfs", "registry", "create", "--help"},
        {"upstreamfs", "registry", "set-upstreams", "--help"},
        {"upstreamfs", "registry", "list", "-h"},
        {"upstreamfs", "registry", "show", "--help"},
        {"upstreamfs", "registry", "delete", "--help"},
        /* Help wins over missing arguments. */
        {"upstreamfs", "proxy", "create", "-h", "--type"},
    };
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
        struct run r = run_cli(helps[i], NULL);
        if (r.code != 0 || strncmp(r.out, "Usage: upstreamfs", 17) != 0 || r.err[0])
            fail_msg("%s %s %s: code %d, out [%.60s], err [%s]", helps[i][1], helps[i][2],
                     helps[i][3] ? helps[i][3] : "", r.code, r.out, r.err);
        run_free(&r);
    }
}

/* The create help documents every option create accepts (and update's extras). */
static void test_help_is_complete(void **state)
{
    static const char *const opts[] = {
        "--type",
        "--source",
        "--url",
        "--auth",
        "--access-key",
        "--secret-key-file",
        "--secret-key-stdin",
        "--aws-endpoint",
        "--ca-file",
        "--client-cert",
        "--client-key",
        "--http-proxy",
        "--metadata-ttl",
        "--negative-ttl",
        "--offline",
        "--no-offline",
        "--include",
        "--exclude",
        "--no-include",
        "--no-exclude",
    };
    struct run r = run_cli((const char *[]){"upstreamfs", "proxy", "create", "--help", NULL}, NULL);
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (!strstr(r.out, opts[i]))
            fail_msg("proxy create --help does not mention %s", opts[i]);
    run_free(&r);

    r = run_cli((const char *[]){"upstreamfs", "--help", NULL}, NULL);
    const char *cmds[] = {"proxy", "registry", "mount",       "serve",    "prefetch",
                          "cache", "--state",  "--log-level", "--version"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strstr(r.out, cmds[i]))
            fail_msg("--help does not mention %s", cmds[i]);
    run_free(&r);
}

/* Every row of the field table with an option is in create's and update's help, with its type. */
static void test_help_has_every_field(void **state)
{
    const char *cmds[] = {"create", "update"};
    for (size_t c = 0; c < 2; c++) {
        struct run r =
            run_cli((const char *[]){"upstreamfs", "proxy", cmds[c], "--help", NULL}, NULL);
        assert_int_equal(r.code, 0);
        for (size_t i = 0; i < proxy_fields_count; i++) {
            const struct proxy_field *f = &proxy_fields[i];
            char want[300], names[256];
            if (!f->cli)
                continue;
            if (f->kind == FIELD_SECRET)
                snprintf(want, sizeof(want), "\n  --%s-file FILE ", f->cli);
            else if (f->kind == FIELD_PEM) /* may stand alone on its line */
                snprintf(want, sizeof(want), "\n  --%s-file FILE", f->cli);
            else if (f->kind == FIELD_ENUM)
                snprintf(want, sizeof(want), "\n  --%s %s", f->cli,
                         proxy_field_enum_list(f->names, f->nnames, "|", names, sizeof(names)));
            else if (f->kind == FIELD_BOOL)
                snprintf(want, sizeof(want), "\n  --%s ", f->cli);
            else
                snprintf(want, sizeof(want), "\n  --%s %s ", f->cli, proxy_field_metavar(f));
            if (!strstr(r.out, want))
                fail_msg("proxy %s --help lacks [%s]", cmds[c], want + 1);
            if ((f->kind == FIELD_BOOL || f->kind == FIELD_LIST)) {
                snprintf(want, sizeof(want), "\n  --no-%s ", f->cli);
                if (!strstr(r.out, want))
                    fail_msg("proxy %s --help lacks [%s]", cmds[c], want + 1);
            }
            if (f->types != FIELD_TYPES_ALL && f->kind != FIELD_ENUM) {
                snprintf(want, sizeof(want), "%s only", config_type_name(PROXY_ECR));
                assert_non_null(strstr(r.out, want));
            }
        }
        run_free(&r);
    }
}

static void test_version_and_usage_errors(void **state)
{
    struct run r = run_cli((const char *[]){"upstreamfs", "--version", NULL}, NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "upstreamfs " UPSTREAMFS_VERSION "\n");
    run_free(&r);

    r = run_cli((const char *[]){"upstreamfs", NULL}, NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "Usage:"));
    run_free(&r);

    r = run_cli((const char *[]){"upstreamfs", "proxy", NULL}, NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "Usage:"));
    run_free(&r);

    const struct {
        const char *argv[8];
        const char *needle;
    } bad[] = {
        {{"upstreamfs", "frobnicate"}, "command: unknown command \"frobnicate\""},
        {{"upstreamfs", "--bogus", "proxy", "list"}, "unknown or ambiguous option \"--bogus\""},
        {{"upstreamfs", "--state"}, "option \"--state\" needs a value"},
        {{"upstreamfs", "--log-level", "loud", "proxy", "list"}, "log_level: must be one of"},
        {{"upstreamfs", "proxy", "explode"}, "proxy: unknown command \"explode\""},
        {{"upstreamfs", "registry", "explode"}, "registry: unknown command \"explode\""},
        {{"upstreamfs", "proxy", "create"}, "proxy create: expects one KEY"},
        {{"upstreamfs", "proxy", "create", "a", "b", "--type", "helm"}, "expects one KEY"},
        {{"upstreamfs", "proxy", "create", "x", "--url"}, "option \"--url\" needs a value"},
        {{"upstreamfs", "proxy", "create", "x", "--colour", "red"}, "option \"--colour\""},
        {{"upstreamfs", "proxy", "create", "x"}, "type: is required"},
        {{"upstreamfs", "proxy", "list", "--json", "extra"}, "proxy list: takes no arguments"},
        {{"upstreamfs", "proxy", "delete", "x", "--json"}, "option \"--json\""},
        {{"upstreamfs", "registry", "create", "r"}, "type: is required"},
        {{"upstreamfs", "registry", "set-upstreams"}, "expects NAME"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = run_cli(bad[i].argv, (const char *[]){"UPSTREAMFS_STATE=/nonexistent/x", NULL});
        if (r.code != 2)
            fail_msg("%s %s: code %d, err [%s]", bad[i].argv[1],
                     bad[i].argv[2] ? bad[i].argv[2] : "", r.code, r.err);
        expect_one_error_line(&r, bad[i].needle);
        run_free(&r);
    }
}

static char *tmp_dir(void)
{
    char tmpl[] = "/tmp/upfs-test-cli.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void rm_rf(const char *d)
{
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "rm -rf '%s'", d) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_state_dir_choice(void **state)
{
    char *root = tmp_dir(), *env_dir = NULL, *opt_dir = NULL, *env = NULL, *db = NULL;
    assert_true(asprintf(&env_dir, "%s/from-env", root) > 0);
    assert_true(asprintf(&opt_dir, "%s/from-opt", root) > 0);
    assert_true(asprintf(&env, "UPSTREAMFS_STATE=%s", env_dir) > 0);
    const char *envs[] = {env, "UPSTREAMFS_LOG", NULL};

    struct run r = run_cli(
        (const char *[]){"upstreamfs", "proxy", "create", "hub", "--type", "docker", NULL}, envs);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "created proxy hub (docker)\n");
    assert_string_equal(r.err, ""); /* config changes are logged only when a level is asked */
    run_free(&r);
    assert_true(asprintf(&db, "%s/index.db", env_dir) > 0);
    assert_int_equal(access(db, F_OK), 0);
    free(db);

    /* --state wins over the environment; --log-level info shows the change. */
    r = run_cli((const char *[]){"upstreamfs", "--state", opt_dir, "--log-level", "info", "proxy",
                                 "create", "hub", "--type", "docker", NULL},
                envs);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "info  config: proxy hub (docker) created"));
    run_free(&r);
    assert_true(asprintf(&db, "%s/index.db", opt_dir) > 0);
    assert_int_equal(access(db, F_OK), 0);
    free(db);

    /* $UPSTREAMFS_LOG is the level when --log-level is not given. */
    const char *envs_log[] = {env, "UPSTREAMFS_LOG=info", NULL};
    r = run_cli((const char *[]){"upstreamfs", "proxy", "delete", "hub", NULL}, envs_log);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "config: proxy hub (docker) deleted"));
    run_free(&r);
    const char *envs_bad[] = {env, "UPSTREAMFS_LOG=chatty", NULL};
    r = run_cli((const char *[]){"upstreamfs", "proxy", "list", NULL}, envs_bad);
    assert_int_equal(r.code, 2);
    expect_one_error_line(&r, "UPSTREAMFS_LOG: must be one of");
    run_free(&r);

    /* Not found is a runtime failure (1), in one line. */
    r = run_cli((const char *[]){"upstreamfs", "proxy", "show", "hub", NULL}, envs);
    assert_int_equal(r.code, 1);
    expect_one_error_line(&r, "key: no proxy named \"hub\"");
    run_free(&r);
    r = run_cli((const char *[]){"upstreamfs", "registry", "show", "nope", NULL}, envs);
    assert_int_equal(r.code, 1);
    expect_one_error_line(&r, "name: no registry named \"nope\"");
    run_free(&r);

    /* A state dir that cannot be created is a runtime failure. */
    char *file = NULL, *stfile = NULL;
    assert_true(asprintf(&file, "%s/plain", root) > 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_true(asprintf(&stfile, "%s/sub", file) > 0);
    r = run_cli((const char *[]){"upstreamfs", "--state", stfile, "proxy", "create", "gen",
                                 "--type", "generic", "--url", "https://files.example/", NULL},
                envs);
    assert_int_equal(r.code, 1);
    expect_one_error_line(&r, "state: cannot open");
    run_free(&r);
    /* A command that only reads refuses a state dir that is not there (issue 13). */
    r = run_cli((const char *[]){"upstreamfs", "--state", stfile, "proxy", "list", NULL}, envs);
    assert_int_equal(r.code, 1);
    expect_one_error_line(&r, "does not exist; create a proxy first or check --state");
    run_free(&r);

    free(file);
    free(stfile);
    free(env);
    free(env_dir);
    free(opt_dir);
    rm_rf(root);
    free(root);
}

/*
 * The same bad value gets the same error line from the CLI and from the API's path
 * (config_crud with the API's body; shim/api.c adds only the status).
 */
static void test_cli_and_api_agree(void **state)
{
    static const struct {
        const char *opt, *arg, *json; /* json: the member's value as the API takes it */
    } bad[] = {
        {"--url", "ftp://x/", "\"ftp://x/\""},
        {"--aws-endpoint", "http://e/", "\"http://e/\""},
        {"--metadata-ttl", "99999999999", "99999999999"},
        {"--metadata-ttl", "10m", "\"10m\""},
        {"--negative-ttl", "-1", "-1"},
        {"--auth", "kerberos", "\"kerberos\""},
        {"--source", "dockerhub", "\"dockerhub\""},
        {"--include", "", "[\"\"]"},
        {"--ca-file", "/nonexistent/ca.pem", "\"/nonexistent/ca.pem\""},
        {"--http-proxy", "nope", "\"nope\""},
        {"--access-key", "bob", "\"bob\""},
    };
    char *root = tmp_dir(), *env = NULL;
    struct state *st = NULL;
    assert_true(asprintf(&env, "UPSTREAMFS_STATE=%s", root) > 0);
    assert_int_equal(state_open(root, &st), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *member = bad[i].opt + 2;
        char name[32], *body = NULL, line[600];
        snprintf(name, sizeof(name), "%s", member);
        for (char *c = name; *c; c++)
            *c = *c == '-' ? '_' : *c;
        struct run r =
            run_cli((const char *[]){"upstreamfs", "proxy", "create", "x", "--type", "generic",
                                     "--url", "http://h/", bad[i].opt, bad[i].arg, NULL},
                    (const char *[]){env, NULL});
        if (!strcmp(bad[i].opt, "--url")) /* the option given once: it replaces the first */
            r = (run_free(&r),
                 run_cli((const char *[]){"upstreamfs", "proxy", "create", "x", "--type", "generic",
                                          "--url", bad[i].arg, NULL},
                         (const char *[]){env, NULL}));
        assert_int_equal(r.code, 2);
        assert_true(asprintf(&body,
                             "{\"key\":\"x\",\"type\":\"generic\",\"url\":\"http://h/\",\"%s\":%s}",
                             name, bad[i].json) > 0);
        json_t *obj = json_loads(body, 0, NULL);
        assert_non_null(obj);
        struct config_error err = {0};
        struct proxy p = {0};
        assert_int_equal(crud_proxy_create(st, obj, &p, &err), -EINVAL);
        snprintf(line, sizeof(line), "upstreamfs: %s: %s\n", err.field, err.message);
        if (strcmp(line, r.err) != 0)
            fail_msg("%s %s: CLI [%s], API [%s]", bad[i].opt, bad[i].arg, r.err, line);
        config_proxy_clear(&p);
        json_decref(obj);
        free(body);
        run_free(&r);
    }
    state_close(st);
    free(env);
    rm_rf(root);
    free(root);
}

/* --url repeats: the first is url, the others mirrors in order; one --url on update drops them. */
static void test_url_repeats(void **state)
{
    (void)state;
    char *root = tmp_dir(), *env = NULL;
    assert_true(asprintf(&env, "UPSTREAMFS_STATE=%s", root) > 0);
    const char *const envv[] = {env, NULL};
    struct run r = run_cli((const char *[]){"upstreamfs", "proxy", "create", "g", "--type",
                                            "generic", "--url", "http://127.0.0.2:81/f",
                                            "--url", "http://127.0.0.3:81/f", "--url",
                                            "http://origin.example/f", NULL},
                           envv);
    assert_int_equal(r.code, 0);
    run_free(&r);
    r = run_cli((const char *[]){"upstreamfs", "proxy", "show", "g", "--json", NULL}, envv);
    assert_int_equal(r.code, 0);
    json_t *o = json_loads(r.out, 0, NULL), *want = json_pack(
                                                 "[s, s]", "http://127.0.0.3:81/f/",
                                                 "http://origin.example/f/");
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "url")), "http://127.0.0.2:81/f/");
    assert_true(json_equal(json_object_get(o, "mirrors"), want));
    json_decref(o);
    json_decref(want);
    run_free(&r);
    r = run_cli((const char *[]){"upstreamfs", "proxy", "list", NULL}, envv);
    assert_non_null(strstr(r.out, "http://127.0.0.2:81/f/ (+2 more)\n"));
    run_free(&r);
    r = run_cli((const char *[]){"upstreamfs", "proxy", "update", "g", "--url", "http://h/f",
                                 "--url", "ftp://x/", NULL},
                envv);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "upstreamfs: mirrors: "));
    run_free(&r);
    r = run_cli((const char *[]){"upstreamfs", "proxy", "update", "g", "--url", "http://h/f", NULL},
                envv);
    assert_int_equal(r.code, 0);
    run_free(&r);
    r = run_cli((const char *[]){"upstreamfs", "proxy", "show", "g", "--json", NULL}, envv);
    o = json_loads(r.out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "url")), "http://h/f/");
    assert_int_equal(json_array_size(json_object_get(o, "mirrors")), 0);
    json_decref(o);
    run_free(&r);
    free(env);
    rm_rf(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_everywhere),
        cmocka_unit_test(test_help_is_complete),
        cmocka_unit_test(test_help_has_every_field),
        cmocka_unit_test(test_version_and_usage_errors),
        cmocka_unit_test(test_state_dir_choice),
        cmocka_unit_test(test_cli_and_api_agree),
        cmocka_unit_test(test_url_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
