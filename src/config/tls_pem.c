/*
 * tls_pem: what the PEM fields of a proxy must hold (ca_pem, client_cert_pem,
 * client_key_pem; rows in src/config/proxy_fields.c), parsed with OpenSSL,
 * and the rules that join the TLS fields (config_proxy_validate).
 */
#include "config_int.h"
#include "upstreamfs/proxy_fields.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

static int bad_pem(const char *field, const char *what, struct config_error *err)
{
    ERR_clear_error();
    config_error_set(err, field, "must be %s in PEM form", what);
    return -EINVAL;
}

/* The certificates in pem, in order (NULL when none parses or any PEM block is not one). */
static STACK_OF(X509) * read_certs(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    if (!b || !certs)
        goto fail;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            goto fail;
        }
    /* The end of the input is the one error that ends a good read. */
    unsigned long e = ERR_peek_last_error();
    if (sk_X509_num(certs) == 0 ||
        (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)))
        goto fail;
    ERR_clear_error();
    BIO_free(b);
    return certs;
fail:
    sk_X509_pop_free(certs, X509_free);
    BIO_free(b);
    return NULL;
}

static EVP_PKEY *read_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
    BIO_free(b);
    return k;
}

/* pem holds certificates and nothing else; what names them in the message. */
static int check_certs(const char *field, const char *pem, const char *what,
                       struct config_error *err)
{
    STACK_OF(X509) *c = read_certs(pem);
    if (!c)
        return bad_pem(field, what, err);
    sk_X509_pop_free(c, X509_free);
    return 0;
}

int config_pem_check_certs(const char *field, char *pem, struct config_error *err)
{
    return check_certs(field, pem, "one or more X.509 certificates", err);
}

int config_pem_check_cert(const char *field, char *pem, struct config_error *err)
{
    return check_certs(field, pem, "an X.509 certificate (and its chain)", err);
}

int config_pem_check_key(const char *field, char *pem, struct config_error *err)
{
    EVP_PKEY *k = read_key(pem);
    if (!k)
        return bad_pem(field, "an unencrypted private key", err);
    EVP_PKEY_free(k);
    return 0;
}

/* Whether the client key is the private half of the client certificate's key. */
static int check_pair(const char *cert_pem, const char *key_pem, struct config_error *err)
{
    STACK_OF(X509) *c = read_certs(cert_pem);
    EVP_PKEY *k = read_key(key_pem);
    int ok = c && k && X509_check_private_key(sk_X509_value(c, 0), k) == 1;
    sk_X509_pop_free(c, X509_free);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (!ok) {
        config_error_set(err, "client_key_pem", "is not the key of client_cert_pem's certificate");
        return -EINVAL;
    }
    return 0;
}

int config__tls_check(const struct proxy *p, struct config_error *err)
{
    const struct proxy_pem *c = &p->client_cert_pem, *k = &p->client_key_pem;
    bool cert = c->text ? *c->text != '\0' : c->path != NULL;
    bool key = k->text ? *k->text != '\0' : k->path != NULL;
    if (p->ca_file && (p->ca_pem.text ? *p->ca_pem.text : p->ca_pem.path != NULL)) {
        config_error_set(err, "ca_pem", "give ca_file or ca_pem, not both");
        return -EINVAL;
    }
    if ((cert || key) && p->client_cert) {
        config_error_set(err, cert ? "client_cert_pem" : "client_key_pem",
                         "give client_cert/client_key or client_cert_pem/client_key_pem, not "
                         "both");
        return -EINVAL;
    }
    /* The pair is given together, so the two that are stored always match. */
    bool cert_new = c->text && *c->text, key_new = k->text && *k->text;
    if (cert != key || cert_new != key_new) {
        config_error_set(err, cert_new || (cert && !key) ? "client_key_pem" : "client_cert_pem",
                         "client_cert_pem and client_key_pem are given together");
        return -EINVAL;
    }
    return cert_new ? check_pair(c->text, k->text, err) : 0;
}
