/*
 * egress: where a proxy's requests may go and what they may carry there
 * (docs/SECURITY.md has the rules and their tests).
 *
 * A proxy's policy knows its configured origins (scheme://host:port of its
 * URL, and of endpoints a variant names at run time such as ECR's
 * proxyEndpoint). fetch.c asks it, per hop of every request:
 *  - credentials (Basic, and Authorization headers) go only to a configured
 *    origin, to a token realm the registry named, and, with pass_credentials,
 *    to another origin that is the first hop (a URL an index names) — never
 *    to a redirect's target on another origin;
 *  - the address rule: a host that is not configured (learned from remote
 *    content) must not resolve to a loopback, unspecified, link-local,
 *    private, shared (100.64/10), unique-local or multicast address (nor
 *    their IPv4-mapped or NAT64 forms) unless allow_host names it.
 */
#ifndef UPSTREAMFS_EGRESS_H
#define UPSTREAMFS_EGRESS_H

#include <stdbool.h>
#include <sys/socket.h>

struct egress_policy;

/* allow_host: NULL-terminated patterns (host, IP literal or "*.suffix"), copied. NULL on ENOMEM. */
struct egress_policy *egress_policy_new(char *const *allow_host, bool pass_credentials);
struct egress_policy *egress_policy_ref(struct egress_policy *p);
void egress_policy_unref(struct egress_policy *p);

/* Adds url's origin to the configured ones (a configured endpoint). 0, -EINVAL or -ENOMEM. */
int egress_policy_trust(struct egress_policy *p, const char *url);
/* Whether url's origin (scheme, host, port) is configured. */
bool egress_origin_configured(struct egress_policy *p, const char *url);
/* Whether host (lower case) is the host of a configured origin, whatever the port. */
bool egress_host_configured(struct egress_policy *p, const char *host);
bool egress_pass_credentials(const struct egress_policy *p);
/* Whether allow_host lets host (any case) through the address rule. */
bool egress_host_allowed(const struct egress_policy *p, const char *host);

/* One allow_host pattern against a host: exact (case-insensitive), or "*.suffix" for names under it. */
bool egress_host_match(const char *pattern, const char *host);

/*
 * The address rule: NULL when sa is a public address, else the name of the
 * range it falls in ("loopback", "private (RFC 1918)", ...).
 */
const char *egress_addr_refusal(const struct sockaddr *sa, socklen_t len);
/* The same for an address in text form (IPv4 or IPv6 literal, no brackets); NULL when not one. */
const char *egress_text_refusal(const char *ip, bool *is_ip);

#endif
