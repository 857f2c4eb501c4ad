/*
 * shim: the HTTP front door, the second one over the engine.
 *
 * A shim serves one engine with libmicrohttpd, a thread per connection, in
 * the background: `upstreamfs serve` runs one on its own engine, and
 * `upstreamfs mount -o listen=HOST:PORT` runs one on the engine the FUSE
 * mount uses, so a download started by either door is shared by both.
 * Handlers translate a request into engine calls and a reply and know no
 * registry protocol; the engine takes its locks only inside its calls, so a
 * slow client holds nothing but its own connection thread.
 *
 * Routes: GET|HEAD /<key-or-registry>/<path> (files, and HTML index pages
 * for directories), /api/v1/proxies[/KEY] and /api/v1/registries[/NAME]
 * (the CLI's JSON objects and validation), /metrics, /healthz, / and
 * /ui/ (the web page), and /v2/ (the registry API, pull side: manifests,
 * blobs, tags/list, referrers; --default for prefix-less mirror clients).
 *
 * Exposure (docs/SECURITY.md): the default address is 127.0.0.1:5000; any
 * address that is not loopback needs TLS and --htpasswd, or --open.
 *
 * Access (docs/SECURITY.md): /api/v1 needs an admin, the state dir's admin
 * token (shim_admin.h) as a Bearer header or an htpasswd user named by
 * --admin; pulls need an htpasswd user when --htpasswd is given, else none;
 * /healthz needs nothing. A request whose Host is not an IP literal,
 * localhost or a --public-name is answered 421 (but /healthz), and a
 * state-changing request whose Origin is not this server is answered 403.
 */
#ifndef UPSTREAMFS_SHIM_H
#define UPSTREAMFS_SHIM_H

#include "upstreamfs/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define SHIM_DEFAULT_LISTEN "127.0.0.1:5000"

struct engine;
struct shim;

struct shim_opts {
    const char *listen;       /* "HOST:PORT"; NULL for SHIM_DEFAULT_LISTEN */
    const char *default_name; /* --default: where /v2/<repository> without a known key goes */
    const char *tls_cert;     /* PEM files; both or neither */
    const char *tls_key;
    const char *htpasswd; /* Basic auth for every route but /healthz */
    bool open;            /* the operator accepts an open cache on a non-loopback address */
    /*
     * --cache-public: answers behind htpasswd may be kept by shared caches (Cache-Control
     * public); without it they are private (docs/SCALE-OUT.md)
     */
    bool cache_public;
    /* --admin USER: htpasswd users who may use /api/v1 (besides the admin token) */
    const char *const *admins;
    size_t n_admins;
    /* --public-name NAME: Host names answered besides IP literals and localhost */
    const char *const *public_names;
    size_t n_public_names;
};

/*
 * Checks the options as shim_start would (address syntax and resolution,
 * the exposure rule, readable certificate, key and htpasswd files) without
 * binding. Returns 0, or -EINVAL with err naming the option and the rule.
 */
int shim_opts_check(const struct shim_opts *o, struct config_error *err);

/*
 * Starts serving e in background threads; state_dir is the engine's (the
 * /api routes edit its configuration). Returns 0; -EINVAL (err filled) for
 * options shim_opts_check refuses; another negative errno (err filled) when
 * the address cannot be bound or the server cannot start.
 */
int shim_start(struct engine *e, const char *state_dir, const struct shim_opts *o,
               struct shim **out, struct config_error *err);

/* The port the shim listens on (useful with port 0). */
unsigned shim_port(const struct shim *s);

/* Prints the web page's address on f (shim_admin_print: the token only to a terminal). */
void shim_print_page(const struct shim *s, FILE *f);

/*
 * Stops accepting, ends waits of requests in flight, waits for the
 * connection threads and frees s. Call before engine_close.
 */
void shim_stop(struct shim *s);

#endif
