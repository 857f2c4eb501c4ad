/*
 * fuzz_oci_manifest: oci_manifest_parse on a registry's manifest or index.
 * The first input line is the Content-Type the registry sent; the rest is
 * the body.
 *
 * Properties: an accepted document is a manifest (config plus layers) or an
 * index (manifests), with a media type of that kind; every descriptor has
 * a valid sha256 digest and a size >= 0; counts are capped; platform
 * filters can be applied to every index entry. A refusal says why.
 */
#include "fuzz.h"

#include "upstreamfs/oci.h"

#include <errno.h>

static void check_desc(const struct oci_desc *d, bool index_entry)
{
    FUZZ_CHECK(oci_digest_valid(d->digest));
    FUZZ_CHECK(d->size >= 0);
    FUZZ_CHECK(!d->media_type || (d->media_type[0] && strlen(d->media_type) <= OCI_MEDIA_TYPE_MAX));
    FUZZ_CHECK(index_entry || !d->has_platform);
    if (d->has_platform) {
        FUZZ_CHECK(d->platform.os && d->platform.arch);
        oci_platform_match("linux/amd64:linux/arm64/v8:windows/amd64", &d->platform);
        oci_platform_match(d->platform.os, &d->platform);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *content_type = fuzz_take_line(&data, &size);
    struct oci_manifest m;
    char err[160] = "";
    int rc = oci_manifest_parse((const char *)data, size, content_type[0] ? content_type : NULL, &m,
                                err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(m.media_type != NULL);
        if (m.kind == OCI_KIND_INDEX) {
            FUZZ_CHECK(oci_media_type_is_index(m.media_type));
            FUZZ_CHECK(m.n_manifests <= OCI_DESC_MAX && m.n_layers == 0);
            for (size_t i = 0; i < m.n_manifests; i++)
                check_desc(&m.manifests[i], true);
        } else {
            FUZZ_CHECK(m.kind == OCI_KIND_MANIFEST);
            FUZZ_CHECK(oci_media_type_is_manifest(m.media_type));
            FUZZ_CHECK(m.n_layers <= OCI_DESC_MAX && m.n_manifests == 0);
            check_desc(&m.config, false);
            for (size_t i = 0; i < m.n_layers; i++)
                check_desc(&m.layers[i], false);
        }
        oci_manifest_clear(&m);
    } else {
        FUZZ_CHECK(rc != -EIO || err[0]);
        FUZZ_CHECK(!m.media_type && !m.layers && !m.manifests);
    }
    free(content_type);
    return 0;
}
