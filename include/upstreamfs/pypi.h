/*
 * pypi: the PyPI simple repository API's documents (src/parsers/pypi_index.c, pypi_form.c and
 * pypi_render.c, pure), used by the driver, the shim protocol, tests and fuzzing. The driver
 * itself is driver_pypi (driver.h); its design is described at the top of src/drivers/pypi.c.
 *
 * Every index page, HTML (PEP 503) or JSON (PEP 691), is read into one canonical form, struct
 * pypi_index: the normalised project name and its files, each with "filename", "url",
 * "hashes" {alg: hex} and, when given, "requires-python", "yanked" (true or a reason),
 * "core-metadata" (true or hashes), "size" and "upload-time" (PEP 691's members), with every
 * filename usable as a file name and every hash lower-case hex. It is compact (the files'
 * strings live in one buffer, hashes as packed nibbles: about the page's size or less) and
 * indexed by filename, so finding one file among 60,000 is a hash lookup.
 */
#ifndef UPSTREAMFS_PYPI_H
#define UPSTREAMFS_PYPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PYPI_NAME_MAX 255

/* The representations of an index page the shim can answer with. */
enum pypi_variant {
    PYPI_JSON,      /* application/vnd.pypi.simple.v1+json */
    PYPI_HTML,      /* application/vnd.pypi.simple.v1+html */
    PYPI_TEXT_HTML, /* text/html, the same page under its older name */
};

/*
 * The PEP 503 normalised form of a project name (lower case, each run of
 * '-', '_', '.' one '-') into out. -EINVAL for a string that is not a
 * project name (PEP 508: ASCII letters and digits, with '-', '_', '.'
 * inside), -ENAMETOOLONG when out is too small.
 */
int pypi_normalise(const char *name, char *out, size_t outlen);
/* Whether name is a project name in its normalised form already. */
bool pypi_name_is_normalised(const char *name);

struct pypi_index;

/*
 * Reads an index page into the canonical form (*out, freed with pypi_index_free): JSON when
 * content_type names a JSON type (or, without one, the body starts with '{'), else HTML. File
 * URLs are resolved against page_url (HTML: its <base href>) and must be http(s); files with an
 * unusable name are left out and a repeated name keeps its first entry. name is the normalised
 * project name. Returns 0, -EIO for a page that cannot be read (including a JSON api-version
 * whose major is not 1), -EFBIG, -ENOMEM.
 */
int pypi_index_parse(const char *body, size_t len, const char *content_type, const char *page_url,
                     const char *name, struct pypi_index **out);

/* Another reference to ix (freed with pypi_index_free). */
struct pypi_index *pypi_index_ref(struct pypi_index *ix);
/* Drops a reference; the last one frees the index (NULL: nothing). */
void pypi_index_free(struct pypi_index *ix);

/* The number of files, and of bytes the index holds (its own accounting of its allocations). */
size_t pypi_index_count(const struct pypi_index *ix);
size_t pypi_index_bytes(const struct pypi_index *ix);
/* File i's (< count) filename, and its upload-time or NULL. */
const char *pypi_index_filename(const struct pypi_index *ix, size_t i);
const char *pypi_index_upload_time(const struct pypi_index *ix, size_t i);
/* The position of the file named filename, or -1: a hash lookup. */
ptrdiff_t pypi_index_lookup(const struct pypi_index *ix, const char *filename);

/*
 * The index with only the files keep[i] says (a filtered page): a new index that shares ix's
 * strings and holds a reference to it. -ENOMEM.
 */
int pypi_index_subset(struct pypi_index *ix, const bool *keep, struct pypi_index **out);

/*
 * Calls fn for every file of the index: each distribution and each core-metadata file (url
 * absolute, expect as pypi_index_find sets it or NULL, size -1 unknown). fn returns 0 to go
 * on; anything else stops the walk and is returned.
 */
int pypi_index_each(const struct pypi_index *index,
                    int (*fn)(void *arg, const char *file, const char *url, const char *expect,
                              int64_t size),
                    void *arg);

/*
 * What a file of the project is: the distribution "filename", or "<filename>.metadata" of one
 * that has core metadata (PEP 658), the first of them in pypi_index_each's order. Sets
 * malloc'd *url and *expect ("sha256:<hex>", else sha512, else sha1; NULL without a usable
 * hash) and *size (-1 unknown). -ENOENT if there is none.
 */
int pypi_index_find(const struct pypi_index *index, const char *file, char **url, char **expect,
                    int64_t *size);

/*
 * The canonical form as a PEP 691 document (jansson's compact form: {"meta":{"api-version":
 * "1.0"},"name":...,"files":[...]}), malloc'd. The document the mount keeps (and the shim
 * renders from) has each url relative, the escaped filename, so it resolves against the
 * document's own place in the project's directory; with absolute_urls each url is the file's
 * own (for checks and tests).
 */
int pypi_index_emit(const struct pypi_index *index, bool absolute_urls, char **out,
                    size_t *out_len);

struct drv_local_file;

/*
 * A registry's document for project name: doc (in emit's form; NULL when no upstream has the
 * project) with the local files of the project's directory first. Every local file whose
 * name is a distribution's (filename_ok, not starting with '.', not "*.metadata") is listed
 * with its sha256 and size, and with core-metadata when "<file>.metadata" is local too; an
 * upstream entry of the same filename is dropped. -ENOENT when the result lists nothing.
 */
int pypi_index_merge_local(const char *doc, size_t len, const char *name,
                           const struct drv_local_file *files, size_t n, char **out,
                           size_t *out_len);

/*
 * A client's reply from that document: URLs resolved against base (the
 * document's absolute URL on the shim), as PEP 691 JSON or a PEP 503 page
 * with each file's hash in its URL's fragment. *ctype is the content type
 * of the variant. -EIO for a document that is not an index.
 */
int pypi_index_render(const char *doc, size_t len, const char *base, enum pypi_variant v,
                      char **out, size_t *out_len, const char **ctype);

/*
 * The variant an Accept header asks for (PEP 691 negotiation: highest q,
 * explicit types before wildcards, JSON first on a tie); text/html when it
 * names nothing the index serves (or is NULL).
 */
enum pypi_variant pypi_accept_variant(const char *accept);

#endif
