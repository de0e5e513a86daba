// The system OpenSSL 3 (Debian: libssl3 to run, libssl-dev to build), used by LatchClient for
// https on Linux. `latch` does not link it: libssl and libcrypto are opened on the first https
// connection (`latch_openssl_load`), so a process that never speaks TLS does not pay for loading
// and relocating them at every start. Each function below calls its OpenSSL namesake.
#ifndef LATCH_OPENSSL_H
#define LATCH_OPENSSL_H
#ifdef __linux__
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/// Opens libssl (and through it libcrypto) once per process. 1 when every function below is
/// ready; 0 otherwise, with the reason in `why`. Call it before any other function here.
int latch_openssl_load(char *why, size_t size);

SSL_CTX *latch_SSL_CTX_new_tls_client(void);
long latch_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
void latch_SSL_CTX_set_verify(SSL_CTX *ctx, int mode);
int latch_SSL_CTX_load_verify_locations(SSL_CTX *ctx, const char *file);
int latch_SSL_CTX_set_default_verify_paths(SSL_CTX *ctx);
void latch_SSL_CTX_free(SSL_CTX *ctx);
SSL *latch_SSL_new(SSL_CTX *ctx);
int latch_SSL_set1_ip_asc(SSL *ssl, const char *address);
long latch_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
int latch_SSL_set1_host(SSL *ssl, const char *host);
int latch_SSL_set_fd(SSL *ssl, int fd);
int latch_SSL_connect(SSL *ssl);
long latch_SSL_get_verify_result(const SSL *ssl);
const char *latch_X509_verify_cert_error_string(long n);
void latch_SSL_free(SSL *ssl);
int latch_SSL_write(SSL *ssl, const void *buf, int num);
int latch_SSL_read(SSL *ssl, void *buf, int num);
int latch_SSL_peek(SSL *ssl, void *buf, int num);
int latch_SSL_get_error(const SSL *ssl, int ret);
// The error queue: 0 and no-ops until OpenSSL is loaded.
unsigned long latch_ERR_get_error(void);
unsigned long latch_ERR_peek_error(void);
void latch_ERR_clear_error(void);
void latch_ERR_error_string_n(unsigned long e, char *buf, size_t len);

#endif
#endif
