/*
 * aws_credentials: AWS access keys, and the default credential chain that
 * the AWS SDKs use (--auth aws-chain):
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally
 *      AWS_SESSION_TOKEN;
 *   2. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE (a leading
 *      "~/" is the home directory), else ~/.aws/credentials; the profile is
 *      AWS_PROFILE, else "default";
 *   3. the EC2 instance metadata service, IMDSv2 only: a PUT for a session
 *      token, then the role name and the role's credentials. The endpoint is
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT, else the defaults table;
 *      AWS_EC2_METADATA_DISABLED=true skips this step. Each request has a
 *      1 s connect deadline and a 2 s total one, so a host that is not on
 *      EC2 costs at most a few seconds, once per resolution.
 * The first source that has credentials wins. A source that has half of a
 * key pair (an access key id without its secret, or the reverse) stops the
 * chain with -EINVAL, as the SDKs do: the user meant to configure it.
 *
 * The credentials file is read the way botocore's configparser reads it:
 * sections "[name]" (name trimmed, case-sensitive), "key = value" or
 * "key: value" (key case-insensitive, both sides trimmed), whole-line
 * comments starting with '#' or ';', no inline comments, indented lines
 * after a key are its continuation (nested settings) and set nothing, a
 * repeated key or section merges with the last value winning. Lines that
 * are none of these are ignored; after a malformed section header, keys
 * belong to no profile until the next good header. The file is capped at
 * AWS_CREDENTIALS_FILE_MAX bytes and must be a regular file without NUL
 * bytes.
 *
 * Every credential string is checked to be printable ASCII without spaces
 * (so none can inject a header) and at most AWS_CREDENTIALS_VALUE_MAX bytes.
 * Secrets are wiped when the struct is cleared. Nothing here logs a secret;
 * the chain logs only which source it used.
 *
 * Functions return 0 or a negative errno: -ENOENT when the source has no
 * credentials, -EINVAL for partial or malformed ones, -EFBIG for an
 * oversized file, -ENOMEM, and for IMDS also fetch's transport errors and
 * -EIO for an answer that does not parse.
 */
#ifndef UPSTREAMFS_AWS_CREDENTIALS_H
#define UPSTREAMFS_AWS_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>

#define AWS_CREDENTIALS_FILE_MAX  (1 << 20)
#define AWS_CREDENTIALS_VALUE_MAX 8192
#define AWS_IMDS_CONNECT_MS       1000
#define AWS_IMDS_TIMEOUT_MS       2000
#define AWS_IMDS_TOKEN_TTL_S      21600

enum aws_credentials_source {
    AWS_CREDS_NONE,
    AWS_CREDS_STATIC, /* given by the caller (--auth access-key) */
    AWS_CREDS_ENV,
    AWS_CREDS_FILE,
    AWS_CREDS_IMDS,
};

struct aws_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL for long-term keys */
    int64_t expires_at;  /* epoch seconds; 0 when they do not expire */
    enum aws_credentials_source source;
};

/* "static", "environment", "shared credentials file", "instance metadata". */
const char *aws_credentials_source_name(enum aws_credentials_source s);

/*
 * Fills *out (cleared first) with copies of the given strings after checking
 * them. session_token may be NULL. -EINVAL for an empty, oversized or
 * non-printable value.
 */
int aws_credentials_set(struct aws_credentials *out, const char *access_key_id,
                        const char *secret_access_key, const char *session_token,
                        int64_t expires_at, enum aws_credentials_source source);

/* Wipes the secrets, frees every string, and zeroes the struct. */
void aws_credentials_clear(struct aws_credentials *c);

/* Step 1. */
int aws_credentials_from_env(struct aws_credentials *out);

/* Step 2 on text already read: profile's keys, or -ENOENT if it has none. */
int aws_credentials_parse_ini(const char *text, size_t len, const char *profile,
                              struct aws_credentials *out);

/* Step 2 on a file: -ENOENT when the file does not exist. */
int aws_credentials_from_file(const char *path, const char *profile, struct aws_credentials *out);

/* The file and profile step 2 reads; *path is malloc'd, *profile points into the environment. */
int aws_credentials_file_location(char **path, const char **profile);

/* The role credentials document IMDS returns (JSON with Code, AccessKeyId, ..., Expiration). */
int aws_credentials_parse_imds(const char *body, size_t len, struct aws_credentials *out);

/* Step 3 against endpoint ("http://host[:port]", no trailing path). */
int aws_credentials_from_imds(const char *endpoint, struct aws_credentials *out);

/*
 * The whole chain. On failure, when why is not NULL, it receives one line
 * saying what each step found (for the log; it never holds a secret).
 * Returns -ENOENT when no source has credentials.
 */
int aws_credentials_resolve(struct aws_credentials *out, char *why, size_t why_len);

#endif
