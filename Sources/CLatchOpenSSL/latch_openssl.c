#ifdef __linux__
#include "latch_openssl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

// Every OpenSSL function used, each held as a pointer of its declared type.
#define LATCH_OPENSSL_FUNCTIONS(X) \
    X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_ctrl) X(SSL_CTX_set_verify) \
    X(SSL_CTX_load_verify_locations) X(SSL_CTX_set_default_verify_paths) X(SSL_CTX_free) \
    X(SSL_new) X(SSL_get0_param) X(SSL_ctrl) X(SSL_set1_host) X(SSL_set_fd) X(SSL_connect) \
    X(SSL_get_verify_result) X(SSL_free) X(SSL_write) X(SSL_read) X(SSL_peek) X(SSL_get_error) \
    X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_verify_cert_error_string) \
    X(ERR_get_error) X(ERR_peek_error) X(ERR_clear_error) X(ERR_error_string_n)

#define LATCH_DECLARE(name) static __typeof__(&name) p_##name;
LATCH_OPENSSL_FUNCTIONS(LATCH_DECLARE)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char failure[256];

static void load(void) {
    void *lib = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "the system OpenSSL 3 (libssl.so.3) cannot be loaded: %s", reason ? reason : "unknown reason");
        return;
    }
#define LATCH_RESOLVE(name) \
    if (!(p_##name = (__typeof__(p_##name))dlsym(lib, #name))) { \
        snprintf(failure, sizeof failure, "libssl.so.3 has no %s", #name); \
        return; \
    }
    LATCH_OPENSSL_FUNCTIONS(LATCH_RESOLVE)
    loaded = 1;
}

int latch_openssl_load(char *why, size_t size) {
    pthread_once(&once, load);
    if (!loaded && why && size) snprintf(why, size, "%s", failure);
    return loaded;
}

SSL_CTX *latch_SSL_CTX_new_tls_client(void) { return p_SSL_CTX_new(p_TLS_client_method()); }
long latch_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return p_SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, version, NULL);
}
void latch_SSL_CTX_set_verify(SSL_CTX *ctx, int mode) { p_SSL_CTX_set_verify(ctx, mode, NULL); }
int latch_SSL_CTX_load_verify_locations(SSL_CTX *ctx, const char *file) { return p_SSL_CTX_load_verify_locations(ctx, file, NULL); }
int latch_SSL_CTX_set_default_verify_paths(SSL_CTX *ctx) { return p_SSL_CTX_set_default_verify_paths(ctx); }
void latch_SSL_CTX_free(SSL_CTX *ctx) { p_SSL_CTX_free(ctx); }
SSL *latch_SSL_new(SSL_CTX *ctx) { return p_SSL_new(ctx); }
int latch_SSL_set1_ip_asc(SSL *ssl, const char *address) { return p_X509_VERIFY_PARAM_set1_ip_asc(p_SSL_get0_param(ssl), address); }
long latch_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return p_SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)name);
}
int latch_SSL_set1_host(SSL *ssl, const char *host) { return p_SSL_set1_host(ssl, host); }
int latch_SSL_set_fd(SSL *ssl, int fd) { return p_SSL_set_fd(ssl, fd); }
int latch_SSL_connect(SSL *ssl) { return p_SSL_connect(ssl); }
long latch_SSL_get_verify_result(const SSL *ssl) { return p_SSL_get_verify_result(ssl); }
const char *latch_X509_verify_cert_error_string(long n) { return p_X509_verify_cert_error_string(n); }
void latch_SSL_free(SSL *ssl) { p_SSL_free(ssl); }
int latch_SSL_write(SSL *ssl, const void *buf, int num) { return p_SSL_write(ssl, buf, num); }
int latch_SSL_read(SSL *ssl, void *buf, int num) { return p_SSL_read(ssl, buf, num); }
int latch_SSL_peek(SSL *ssl, void *buf, int num) { return p_SSL_peek(ssl, buf, num); }
int latch_SSL_get_error(const SSL *ssl, int ret) { return p_SSL_get_error(ssl, ret); }
unsigned long latch_ERR_get_error(void) { return loaded ? p_ERR_get_error() : 0; }
unsigned long latch_ERR_peek_error(void) { return loaded ? p_ERR_peek_error() : 0; }
void latch_ERR_clear_error(void) { if (loaded) p_ERR_clear_error(); }
void latch_ERR_error_string_n(unsigned long e, char *buf, size_t len) {
    if (loaded) p_ERR_error_string_n(e, buf, len);
    else if (len) buf[0] = 0;
}
#endif
