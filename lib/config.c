/* Defaults for the run-time settings. */
#include "vantage/config.h"

#include <string.h>

#include "vantage/version.h"

void vt_config_defaults(vt_config *c)
{
    memset(c, 0, sizeof(*c));
    c->concurrency = 8;
    c->dns_timeout_ms = 5000;
    c->connect_timeout_ms = 10000;
    c->tls_timeout_ms = 10000;
    c->http_timeout_ms = 30000;
    c->max_addrs_per_family = 2;
    c->max_body_bytes = 64 * 1024;
    c->max_download_bytes = 4 * 1024 * 1024;
    c->max_redirects = 10;
    c->user_agent = "vantage-probe/" VT_VERSION;
    c->probe_cc = "ZZ";
    c->probe_asn = "AS0";
}
