/* The SNI test server (docs/api.md, "SNI test"): a TLS endpoint on the collector's loop that
 * serves N incompressible bytes to whoever asks, whatever name the ClientHello carries. A probe
 * downloads the same amount twice at once, once naming a platform (x.com) and once a neutral
 * name: same server, same path, only the name differs, so a rate far lower for the platform's
 * name is throttling by SNI, measured without fetching anything from the platform.
 *
 * A public bandwidth service, so bounded: VT_SNI_TEST_MAX_CONNS connections at once (beyond:
 * closed at accept), a deadline for the handshake and the request, one for the whole connection,
 * one request per connection, and a token bucket per client address (ratelimit.h: a keyed hash,
 * the address itself is dropped at accept). Nothing logs or keeps a client's address. */
#ifndef VANTAGE_COLLECTOR_SNI_TEST_H
#define VANTAGE_COLLECTOR_SNI_TEST_H

#include <stddef.h>

#include "vantage/loop.h"

#define VT_SNI_TEST_PATH "/vantage/sni-test"
#define VT_SNI_TEST_DEFAULT_BYTES 131072L
#define VT_SNI_TEST_MAX_BYTES 1048576L
#define VT_SNI_TEST_MAX_HEADER 8192      /* request line and headers together, at most */
#define VT_SNI_TEST_MAX_CONNS 64         /* open at once */
#define VT_SNI_TEST_REQUEST_TIMEOUT_S 10 /* TLS handshake and request headers */
#define VT_SNI_TEST_TOTAL_TIMEOUT_S 60   /* a whole connection */

typedef struct vt_sni_test_opts {
    const char *listen;      /* ADDR:PORT ([ADDR6]:PORT); port 0 picks one */
    const char *cert, *key;  /* PEM files; both NULL: a self-signed certificate made at start */
    const char *public_addr; /* HOST:PORT advertised at check-in; NULL: from listen */
    double rate_per_min;     /* requests per minute per client address (<= 0: off) */
    double burst;
} vt_sni_test_opts;

void vt_sni_test_opts_default(vt_sni_test_opts *o);

typedef struct vt_sni_test vt_sni_test;

/* Loads or makes the certificate and binds; NULL with err (usage or system error). */
vt_sni_test *vt_sni_test_new(vt_loop *loop, const vt_sni_test_opts *o, char *err, size_t errlen);
int vt_sni_test_port(const vt_sni_test *s);
/* "sha256//BASE64" of the certificate's SubjectPublicKeyInfo (libcurl's CURLOPT_PINNEDPUBLICKEY
 * form). */
const char *vt_sni_test_pin(const vt_sni_test *s);
/* HOST:PORT for the check-in: --sni-test-public, else the listen address with the port bound
 * when it names one address; NULL when not known (0.0.0.0, [::]). */
const char *vt_sni_test_endpoint(const vt_sni_test *s);
/* Stops accepting and closes every open connection now. Safe to call twice. */
void vt_sni_test_shutdown(vt_sni_test *s);
void vt_sni_test_free(vt_sni_test *s);

/* The request line (without its line end) of an SNI test request: 200 with *bytes set, 404 for
 * another path, 400 for anything else (a method other than GET, a bad or repeated bytes=,
 * a malformed line). A pure function, for the unit test and the fuzzer. */
int vt_sni_test_parse_request(const char *line, size_t len, long *bytes);

#endif
