/* libFuzzer: the OpenVPN reply check, plain, with tls-auth and with tls-crypt, UDP and TCP framing,
 * and the static key file parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vantage/openvpn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    unsigned char key[VT_OVPN_STATIC_KEY_LEN];
    char f[160], err[160];
    memset(key, 0x5a, sizeof(key));
    for (int tcp = 0; tcp < 2; tcp++) {
        vt_openvpn_opts plain = {.tcp = tcp, .key_direction = VT_OVPN_KEYDIR_NONE};
        vt_openvpn_opts ta = {.tcp = tcp,
                              .tls_auth = key,
                              .key_direction = 1,
                              .auth_digest = size % 2 ? "SHA256" : "SHA1"};
        vt_openvpn_reply r;
        vt_openvpn_parse_reply(&plain, sid, data, size, &r, f, sizeof(f));
        vt_openvpn_parse_reply(&ta, sid, data, size, &r, f, sizeof(f));
        vt_openvpn_opts tc = {.tcp = tcp, .tls_crypt = key, .key_direction = VT_OVPN_KEYDIR_NONE};
        vt_openvpn_parse_reply(&tc, sid, data, size, &r, f, sizeof(f));
    }
    vt_openvpn_parse_static_key((const char *)data, size, key, err, sizeof(err));
    return 0;
}
