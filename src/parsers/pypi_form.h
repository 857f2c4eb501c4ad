/*
 * pypi_form: the canonical form of a PyPI project page (struct pypi_index,
 * include/upstreamfs/pypi.h) as the page readers of src/parsers/pypi_index.c build it
 * (src/parsers/pypi_form.c). Internal to src/parsers.
 *
 * A file's strings are offsets into the index's one buffer (NUL-terminated there); a hash list
 * is a run of hashes ended by a 0 byte, each the code of a known one (sha256, ...: 0x80 | its
 * index in src/parsers/pypi_form.c) or its name length, name and hex length, then the hex as
 * packed nibbles: a sha256 costs 33 bytes, not a 64-byte string and an object.
 */
#ifndef UPSTREAMFS_PYPI_FORM_H
#define UPSTREAMFS_PYPI_FORM_H

#include "upstreamfs/pypi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PYPI_NONE         UINT32_MAX       /* an offset: the member is absent */
#define PYPI_TRUE         (UINT32_MAX - 1) /* an offset: the member is true (yanked, core-metadata) */
#define PYPI_EMPTY_HASHES 0                /* the offset of an empty hash list */

struct pypi_file {
    int64_t size;             /* -1: none */
    uint32_t filename;        /* a string */
    uint32_t url_dir;         /* the URL up to its last '/', shared by the files beside it */
    uint32_t url_tail;        /* the rest of the URL; PYPI_NONE: the filename as it is */
    uint32_t hashes;          /* a hash list */
    uint32_t core_metadata;   /* a hash list, PYPI_TRUE or PYPI_NONE */
    uint32_t requires_python; /* a string or PYPI_NONE (the string may be a neighbour's) */
    uint32_t yanked;          /* a string (the reason), PYPI_TRUE or PYPI_NONE */
    uint32_t upload_time;     /* a string or PYPI_NONE */
};

/* A distribution file name the mount can show: no '/', no control byte, no leading '.'. */
bool pypi_filename_ok(const char *f);

/* A new, empty index for project name (normalised); hint: the page's size. -ENOMEM. */
int pypi_form_new(const char *name, size_t hint, struct pypi_index **out);
/* Forgets every file (a page read again from its start). */
void pypi_form_reset(struct pypi_index *ix);
/* Frees what the reading left unused; the index is complete. */
void pypi_form_done(struct pypi_index *ix);

/*
 * Appends the file filename at url (absolute) with no hashes and nothing else set: *f, valid
 * until the next file is added. *f is NULL (and nothing is added) when the name is unusable
 * (pypi_filename_ok, UTF-8), the URL is NULL or not UTF-8, or the name is listed already.
 * -ENOMEM, -EFBIG (the strings past 4 GiB).
 */
int pypi_form_add(struct pypi_index *ix, const char *filename, const char *url,
                  struct pypi_file **f);

/* The members a text sets (pypi_form_text). */
enum pypi_text { PYPI_REQUIRES_PYTHON, PYPI_YANKED, PYPI_UPLOAD_TIME };
/*
 * Sets member t of the last file added to s when s is UTF-8 of at most 1024 bytes: true, or
 * false (nothing set, or out of memory: pypi_form_error says which).
 */
bool pypi_form_text(struct pypi_index *ix, enum pypi_text t, const char *s);

/*
 * A hash list: begin, then add each "alg": value (added when alg is 1-16 of [a-z0-9] and
 * value 1-128 hex digits, lower-cased; true), then end gives its offset (PYPI_EMPTY_HASHES when
 * nothing was added). Nothing else is written to the index between begin and end.
 */
void pypi_form_hashes_begin(struct pypi_index *ix);
bool pypi_form_hash_add(struct pypi_index *ix, const char *alg, size_t alg_len, const char *value);
uint32_t pypi_form_hashes_end(struct pypi_index *ix);

/* The last file added (NULL: none). */
struct pypi_file *pypi_form_last(struct pypi_index *ix);
/* The first failure to store something since the index was made (-ENOMEM, -EFBIG), or 0. */
int pypi_form_error(const struct pypi_index *ix);

#endif
