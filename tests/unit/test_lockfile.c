/*
 * test_lockfile: the lockfile parsers (src/lockfile/lockfile.c), one test per format, and the
 * mount paths their items map to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/lockfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ABC256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC1   "a9993e364706816aba3e25717850c26c9cd0d89d"
#define ABC512_B64                                                                                 \
    "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="

static int parse(const char *s, enum lockfile_format f, struct lockfile *lf, char *err)
{
    return lockfile_parse(s, strlen(s), f, lf, err, 200);
}

static const struct lockfile_item *find(const struct lockfile *lf, const char *name)
{
    for (size_t i = 0; i < lf->n; i++)
        if (!strcmp(lf->items[i].name, name))
            return &lf->items[i];
    return NULL;
}

static void npm_lock(void **state)
{
    (void)state;
    const char *doc =
        "{\"name\":\"app\",\"lockfileVersion\":3,\"packages\":{"
        "\"\":{\"name\":\"app\",\"version\":\"1.0.0\"},"
        "\"node_modules/left-pad\":{\"version\":\"1.3.0\",\"resolved\":"
        "\"http://127.0.0.1:1/left-pad/-/left-pad-1.3.0.tgz\",\"integrity\":\"sha512-" ABC512_B64
        "\"},"
        "\"node_modules/@s/tool\":{\"version\":\"2.0.0\",\"resolved\":\"https://x/t.tgz\","
        "\"integrity\":\"sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\"},"
        "\"node_modules/a/node_modules/left-pad\":{\"version\":\"1.3.0\",\"resolved\":"
        "\"http://127.0.0.1:1/left-pad/-/left-pad-1.3.0.tgz\"},"
        "\"node_modules/local\":{\"version\":\"0.1.0\",\"resolved\":\"file:../local\"},"
        "\"node_modules/linked\":{\"link\":true,\"resolved\":\"../x\"}}}";
    struct lockfile lf;
    char err[200];
    assert_int_equal(lockfile_detect("/x/package-lock.json", "", 0), LOCKFILE_NPM);
    assert_int_equal(parse(doc, LOCKFILE_AUTO, &lf, err), 0);
    assert_int_equal(lf.format, LOCKFILE_NPM);
    assert_int_equal(lf.n, 2); /* the nested copy is the same package; file: and links skipped */
    const struct lockfile_item *lp = find(&lf, "left-pad"), *t = find(&lf, "@s/tool");
    assert_non_null(lp);
    assert_non_null(t);
    assert_int_equal(lp->nhashes, 1);
    assert_int_equal(lp->hashes[0].algo, HASH_SHA512);
    assert_int_equal(strncmp(lp->hashes[0].hex, "ddaf35a193617aba", 16), 0);
    assert_int_equal(t->hashes[0].algo, HASH_SHA1);
    assert_string_equal(t->hashes[0].hex, ABC1);
    char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX], label[100];
    assert_int_equal(lockfile_item_paths(LOCKFILE_NPM, t, paths, LOCKFILE_MAX_PATHS), 1);
    assert_string_equal(paths[0], "@s/tool/-/tool-2.0.0.tgz");
    lockfile_item_label(LOCKFILE_NPM, t, label, sizeof(label));
    assert_string_equal(label, "@s/tool@2.0.0");
    lockfile_free(&lf);

    assert_int_equal(parse("{\"lockfileVersion\":1,\"dependencies\":{}}", LOCKFILE_NPM, &lf, err),
                     -EINVAL);
    assert_non_null(strstr(err, "lockfileVersion 2"));
    assert_int_equal(parse("{\"packages\":{\"node_modules/x\":{\"version\":\"1\",\"integrity\":"
                           "\"sha512-!!\"}}}",
                           LOCKFILE_NPM, &lf, err),
                     -EINVAL);
    assert_int_equal(parse("{\"packages\":{\"node_modules/../../etc\":{\"version\":\"1\"}}}",
                           LOCKFILE_NPM, &lf, err),
                     -EINVAL);
}

static void pip_requirements(void **state)
{
    (void)state;
    const char *txt = "# generated\n"
                      "--index-url http://127.0.0.1:1/simple/\n"
                      "Demo_Pkg[extra]==1.0 ; python_version >= \"3\" \\\n"
                      "    --hash=sha256:" ABC256 " \\\n"
                      "    --hash=sha256:" ABC256 "\n"
                      "six==1.16.0  # a comment\n";
    struct lockfile lf;
    char err[200];
    assert_int_equal(lockfile_detect("requirements-dev.txt", "", 0), LOCKFILE_PIP);
    assert_int_equal(lockfile_detect(NULL, txt, strlen(txt)), LOCKFILE_PIP);
    assert_int_equal(parse(txt, LOCKFILE_PIP, &lf, err), 0);
    assert_int_equal(lf.n, 2);
    const struct lockfile_item *d = find(&lf, "Demo_Pkg");
    assert_non_null(d);
    assert_string_equal(d->version, "1.0");
    assert_int_equal(d->nhashes, 1);
    assert_string_equal(d->hashes[0].hex, ABC256);
    assert_int_equal(find(&lf, "six")->nhashes, 0);
    char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX];
    assert_int_equal(lockfile_item_paths(LOCKFILE_PIP, d, paths, LOCKFILE_MAX_PATHS), 1);
    assert_string_equal(paths[0], "demo-pkg");
    assert_true(lockfile_pip_file_of(d, "demo_pkg-1.0-py3-none-any.whl"));
    assert_true(lockfile_pip_file_of(d, "Demo-Pkg-1.0.tar.gz"));
    assert_false(lockfile_pip_file_of(d, "demo_pkg-1.0.1-py3-none-any.whl"));
    assert_false(lockfile_pip_file_of(d, "demo_pkg-1.0.tar.gz.metadata"));
    assert_false(lockfile_pip_file_of(d, "other-1.0.tar.gz"));
    lockfile_free(&lf);

    assert_int_equal(parse("six>=1.0\n", LOCKFILE_PIP, &lf, err), -EINVAL);
    assert_non_null(strstr(err, "line 1"));
    assert_int_equal(parse("six==1.*\n", LOCKFILE_PIP, &lf, err), -EINVAL);
    assert_int_equal(parse("six==1 --hash=md5:00\n", LOCKFILE_PIP, &lf, err), -EINVAL);
}

static void chart_lock(void **state)
{
    (void)state;
    const char *y = "dependencies:\n"
                    "- name: nginx\n"
                    "  repository: http://127.0.0.1:1/charts\n"
                    "  version: 15.0.0\n"
                    "- name: redis\n"
                    "  repository: http://127.0.0.1:1/charts\n"
                    "  version: 17.1.2\n"
                    "digest: sha256:" ABC256 "\n"
                    "generated: \"2024-01-01T00:00:00Z\"\n";
    struct lockfile lf;
    char err[200];
    assert_int_equal(lockfile_detect(NULL, y, strlen(y)), LOCKFILE_HELM);
    assert_int_equal(parse(y, LOCKFILE_AUTO, &lf, err), 0);
    assert_int_equal(lf.n, 2);
    char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX];
    assert_int_equal(lockfile_item_paths(LOCKFILE_HELM, &lf.items[1], paths, 2), 1);
    assert_string_equal(paths[0], "charts/redis-17.1.2.tgz");
    lockfile_free(&lf);
    assert_int_equal(parse("dependencies:\n- name: ../x\n  version: 1\n", LOCKFILE_HELM, &lf, err),
                     -EINVAL);
    assert_int_equal(parse("name: x\n", LOCKFILE_HELM, &lf, err), -EINVAL);
    assert_int_equal(parse("dependencies: [\n", LOCKFILE_HELM, &lf, err), -EINVAL);
}

static void image_list(void **state)
{
    (void)state;
    const char *l = "# images\n"
                    "library/alpine:3.19\n"
                    "docker.io/library/nginx\n"
                    "localhost:5000/team/app@sha256:" ABC256 "\n"
                    "\n";
    struct lockfile lf;
    char err[200];
    assert_int_equal(lockfile_detect(NULL, l, strlen(l)), LOCKFILE_IMAGES);
    assert_int_equal(parse(l, LOCKFILE_AUTO, &lf, err), 0);
    assert_int_equal(lf.n, 3);
    assert_string_equal(lf.items[0].version, "3.19");
    assert_string_equal(lf.items[1].name, "library/nginx");
    assert_string_equal(lf.items[1].version, "latest");
    char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX], label[200];
    assert_int_equal(lockfile_item_paths(LOCKFILE_IMAGES, &lf.items[2], paths, 2), 1);
    assert_string_equal(paths[0], "team/app/sha256:" ABC256);
    lockfile_item_label(LOCKFILE_IMAGES, &lf.items[2], label, sizeof(label));
    assert_string_equal(label, "team/app@sha256:" ABC256);
    lockfile_free(&lf);
    assert_int_equal(parse("Bad/Name:1\n", LOCKFILE_IMAGES, &lf, err), -EINVAL);
    assert_int_equal(parse("a/b@sha256:12\n", LOCKFILE_IMAGES, &lf, err), -EINVAL);
}

static void maven_list(void **state)
{
    (void)state;
    const char *l = "[INFO] The following files have been resolved:\n"
                    "[INFO]    org.slf4j:slf4j-api:jar:1.7.36:compile\n"
                    "[INFO]    com.example:demo:jar:tests:1.0:test -- module demo\n"
                    "[INFO]    com.example:parent:pom:2.0:import\n"
                    "[INFO]    none\n";
    struct lockfile lf;
    char err[200];
    assert_int_equal(lockfile_detect(NULL, l, strlen(l)), LOCKFILE_MAVEN);
    assert_int_equal(parse(l, LOCKFILE_AUTO, &lf, err), 0);
    assert_int_equal(lf.n, 3);
    char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX];
    assert_int_equal(lockfile_item_paths(LOCKFILE_MAVEN, &lf.items[0], paths, 2), 2);
    assert_string_equal(paths[0], "org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar");
    assert_string_equal(paths[1], "org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.pom");
    assert_int_equal(lockfile_item_paths(LOCKFILE_MAVEN, &lf.items[1], paths, 2), 2);
    assert_string_equal(paths[0], "com/example/demo/1.0/demo-1.0-tests.jar");
    assert_int_equal(lockfile_item_paths(LOCKFILE_MAVEN, &lf.items[2], paths, 2), 1);
    assert_string_equal(paths[0], "com/example/parent/2.0/parent-2.0.pom");
    lockfile_free(&lf);
    assert_int_equal(parse("a:..:jar:1:compile\n", LOCKFILE_MAVEN, &lf, err), -EINVAL);
    /* a group ending in '.' would be an empty path component (found by fuzz_lockfile) */
    assert_int_equal(parse("com.:demo:jar:1:compile\n", LOCKFILE_MAVEN, &lf, err), -EINVAL);
}

static void caps(void **state)
{
    (void)state;
    struct lockfile lf;
    char err[200];
    assert_int_equal(lockfile_parse("", (size_t)LOCKFILE_MAX_BYTES + 1, LOCKFILE_PIP, &lf, err,
                                    sizeof(err)),
                     -EFBIG);
    enum lockfile_format f;
    assert_int_equal(lockfile_format_parse("pypi", &f), 0);
    assert_int_equal(f, LOCKFILE_PIP);
    assert_int_equal(lockfile_format_parse("gradle", &f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npm_lock),   cmocka_unit_test(pip_requirements),
        cmocka_unit_test(chart_lock), cmocka_unit_test(image_list),
        cmocka_unit_test(maven_list), cmocka_unit_test(caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
