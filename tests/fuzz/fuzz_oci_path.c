/*
 * fuzz_oci_path: oci_path_parse on a path inside a docker mount (any name a
 * process looks up), plus the grammar checks and media type and platform
 * helpers it rests on. The first input byte's low bit chooses Docker Hub
 * rules; the rest is the path.
 *
 * Properties: every reading names only valid repositories and references
 * (so no hostile path reaches the network), a blob reading carries 64
 * lower-case hex digits, and Docker Hub repositories are library/-normalised
 * and two components deep.
 */
#include "fuzz.h"

#include "upstreamfs/hash.h"
#include "upstreamfs/oci.h"

#include <errno.h>

static size_t components(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '/';
    return n;
}

static void check_repo(const char *repo, bool hub)
{
    FUZZ_CHECK(oci_name_valid(repo));
    if (hub) {
        FUZZ_CHECK(components(repo) == 2);
        FUZZ_CHECK(strcmp(repo, "library") != 0);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool hub = fuzz_take_byte(&data, &size) & 1;
    char *path = fuzz_cstr(data, size);
    struct oci_path p;
    int rc = oci_path_parse(path, hub, &p);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT);
    FUZZ_CHECK((rc == 0) == (p.layout || p.tagdir || p.nsdir));
    if (p.layout) {
        check_repo(p.repo, hub);
        FUZZ_CHECK(oci_tag_valid(p.ref) || oci_digest_valid(p.ref));
        FUZZ_CHECK(p.part >= OCI_PART_OCI_LAYOUT && p.part <= OCI_PART_BLOB);
        if (p.part == OCI_PART_BLOB)
            FUZZ_CHECK(hash_is_sha256_hex(p.hex));
    }
    if (p.tagdir) {
        check_repo(p.td_repo, hub);
        FUZZ_CHECK(oci_tag_valid(p.td_ref) || oci_digest_valid(p.td_ref));
    }
    if (p.nsdir && p.ns_repo)
        check_repo(p.ns_name, hub);
    if (p.nsdir)
        FUZZ_CHECK(!strstr(p.ns_name, "..") && p.ns_name[0] != '/');

    /* The helpers on the same bytes. */
    oci_name_valid(path);
    oci_tag_valid(path);
    oci_digest_valid(path);
    char base[OCI_MEDIA_TYPE_MAX + 1], small[8];
    oci_media_type_base(path, base, sizeof(base));
    oci_media_type_base(path, small, sizeof(small));
    FUZZ_CHECK(strlen(base) <= OCI_MEDIA_TYPE_MAX && strlen(small) < sizeof(small));
    oci_media_type_is_manifest(path);
    oci_media_type_is_index(path);
    struct oci_platform pl = {(char *)"linux", (char *)"arm64", (char *)"v8"};
    struct oci_platform nv = {(char *)"linux", (char *)"amd64", NULL};
    oci_platform_match(path, &pl);
    oci_platform_match(path, &nv);
    char norm[OCI_NAME_MAX + 1];
    if (oci_hub_normalise(path, norm, sizeof(norm)) == 0)
        FUZZ_CHECK(strchr(norm, '/'));
    free(path);
    return 0;
}
