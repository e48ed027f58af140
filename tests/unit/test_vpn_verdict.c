/* The VPN verdict rules (lib/vpn_verdict.c, then lib/verdict.c) on synthetic runs: sets of
 * VPN measurements with hand-made handshakes, one rule per test, including a server that is
 * simply down (never claimed as blocked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vantage/verdict.h"
#include "vantage/vpn_verdict.h"

#define MAXI 8

typedef struct run {
    vt_target tg[MAXI];
    vt_vpn_item it[MAXI];
    size_t n;
} run;

/* A measurement: target id, kind, the target's options (JSON), failure_phase and failure (NULL
 * when it worked), handshakes and address_checks (JSON arrays, "[]" allowed). */
static cJSON *add(run *r, const char *id, const char *kind, const char *opts, const char *phase,
                  const char *failure, const char *handshakes, const char *checks)
{
    assert_true(r->n < MAXI);
    vt_target *t = &r->tg[r->n];
    memset(t, 0, sizeof(*t));
    t->id = (char *)id;
    t->kind = (char *)kind;
    t->options = cJSON_Parse(opts ? opts : "{}");
    assert_non_null(t->options);
    cJSON *tk = cJSON_CreateObject();
    cJSON *h = cJSON_Parse(handshakes);
    assert_non_null(h);
    cJSON_AddItemToObject(tk, "handshakes", h);
    if (checks) {
        cJSON *c = cJSON_Parse(checks);
        assert_non_null(c);
        cJSON_AddItemToObject(tk, "address_checks", c);
    }
    if (phase)
        cJSON_AddStringToObject(tk, "failure_phase", phase);
    else
        cJSON_AddNullToObject(tk, "failure_phase");
    if (failure)
        cJSON_AddStringToObject(tk, "failure", failure);
    else
        cJSON_AddNullToObject(tk, "failure");
    cJSON_AddBoolToObject(tk, "reachable", failure == NULL);
    r->it[r->n].target = t;
    r->it[r->n].test_keys = tk;
    r->n++;
    return tk;
}

static void run_free(run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        cJSON_Delete(r->tg[i].options);
        cJSON_Delete(r->it[i].test_keys);
    }
}

static vt_verdict_ctx canaries(size_t ok)
{
    vt_verdict_ctx c;
    vt_verdict_ctx_init(&c);
    c.n_canaries = 2;
    c.n_canaries_ok = ok;
    return c;
}

/* The collector's control of kind "endpoint": connected or not. */
static cJSON *control(int connected)
{
    char buf[256];
    snprintf(buf, sizeof(buf),
             "{\"failure_phase\": %s, \"failure\": %s, \"tcp_connect\": [{\"status\": "
             "{\"success\": %s}}]}",
             connected ? "null" : "\"tcp\"", connected ? "null" : "\"generic_timeout_error\"",
             connected ? "true" : "false");
    cJSON *c = cJSON_Parse(buf);
    assert_non_null(c);
    return c;
}

static void decide(cJSON *tk, const vt_verdict_ctx *ctx, const cJSON *ctl, const char *host)
{
    vt_verdict_inputs in = {.ctx = ctx, .host = host, .control = ctl};
    vt_verdict_decide(tk, &in);
}

static const char *s(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *vpn_ev(const cJSON *tk)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tk, "evidence"),
                                            "vpn");
}

static void assert_null_key(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(v == NULL || cJSON_IsNull(v));
}

#define UDP_FAIL(ip, port, proto)                                                                  \
    "{\"ip\":\"" ip "\",\"port\":" #port ",\"transport\":\"udp\",\"protocol\":\"" proto            \
    "\",\"failure\":\"generic_timeout_error\",\"sent\":3,\"received\":0,\"bytes_received\":0}"
#define TCP_ENTRY(ip, port, failure)                                                               \
    "{\"ip\":\"" ip "\",\"port\":" #port ",\"transport\":\"tcp\",\"protocol\":null,"               \
    "\"method\":\"tcp_connect_only\",\"failure\":" failure "}"
#define ECHO(ip, port, failure, inc)                                                               \
    "{\"ip\":\"" ip "\",\"port\":" #port ",\"transport\":\"udp\",\"protocol\":null,"               \
    "\"method\":\"udp_probe\",\"failure\":" failure ",\"received\":0" inc "}"

/* An OpenVPN server over UDP whose address answers nothing at all (its ssh port neither),
 * while the network works and UDP 1194 works elsewhere: a server that is down looks exactly
 * like this. Without a control: inconclusive, never blocked. With a control that cannot reach
 * it either: down. Only a control that connects makes it address blocking. */
static void server_down_is_not_blocked(void **st)
{
    (void)st;
    for (int mode = 0; mode < 3; mode++) { /* no control, control fails, control connects */
        run r = {0};
        cJSON *tk = add(&r, "ovpn", "openvpn", "{\"address_check\":[22]}", "handshake",
                        "generic_timeout_error", "[" UDP_FAIL("192.0.2.7", 1194, "openvpn") "]",
                        "[" TCP_ENTRY("192.0.2.7", 22, "\"generic_timeout_error\"") "]");
        cJSON *echo = add(&r, "echo", "port", "{\"transport\":\"udp\",\"payload_hex\":\"00\"}",
                          NULL, NULL, "[" ECHO("198.51.100.9", 1194, "null", "") "]", NULL);
        vt_vpn_gather(r.it, r.n);
        assert_null(cJSON_GetObjectItem(echo, "vpn_evidence")); /* it worked */
        const cJSON *ev = cJSON_GetObjectItem(tk, "vpn_evidence");
        assert_non_null(ev);
        assert_string_equal(s(ev, "control_input"), "192.0.2.7:22");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ev, "address_silent")));
        vt_verdict_ctx c = canaries(2);
        cJSON *ctl = mode == 0 ? NULL : control(mode == 2);
        decide(tk, &c, ctl, "192.0.2.7");
        if (mode == 0) {
            assert_string_equal(s(tk, "verdict"), "inconclusive");
            assert_string_equal(s(tk, "inconclusive_reason"), "address_unreachable_no_control");
            assert_null_key(tk, "blocking");
        } else if (mode == 1) {
            assert_string_equal(s(tk, "verdict"), "down");
            assert_null_key(tk, "blocking");
            assert_null(cJSON_GetObjectItem(tk, "inconclusive_reason"));
        } else {
            assert_string_equal(s(tk, "verdict"), "tcp_blocking");
            assert_string_equal(s(tk, "blocking"), "address");
            assert_string_equal(s(tk, "verdict_phase"), "handshake");
            assert_false(cJSON_IsTrue(cJSON_GetObjectItem(tk, "blocking_confirmed")));
        }
        assert_non_null(vpn_ev(tk)); /* the evidence is kept in the measurement */
        assert_null(cJSON_GetObjectItem(tk, "vpn_evidence"));
        cJSON_Delete(ctl);
        run_free(&r);
    }
}

/* The failed handshake measured again once the run was over (lib/verdict.c, start_repeat_vpn):
 * n repeats with these failures (NULL: it worked). */
static void decide_repeated(cJSON *tk, const cJSON *ctl, int n, const char *const *fails)
{
    vt_verdict_ctx c = canaries(2);
    cJSON *rp = cJSON_CreateObject();
    cJSON_AddStringToObject(rp, "address", "192.0.2.7:1194/udp");
    if (fails[0])
        cJSON_AddStringToObject(rp, "failure", fails[0]);
    else
        cJSON_AddNullToObject(rp, "failure");
    cJSON *l = cJSON_AddArrayToObject(rp, "failures");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(l, fails[i] ? cJSON_CreateString(fails[i]) : cJSON_CreateNull());
    vt_verdict_inputs in = {.ctx = &c, .host = "192.0.2.7", .control = ctl, .repeat = rp};
    vt_verdict_decide(tk, &in);
    cJSON_Delete(rp);
}

static int intermittent(const cJSON *tk)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "intermittent"));
}

/* A run in which OpenVPN over UDP failed with the address answering on TCP 22 and the control
 * connecting (address blocking without repeats), its tk; *r to free. */
static cJSON *ovpn_failed(run *r)
{
    cJSON *tk = add(r, "ovpn", "openvpn", "{\"address_check\":[22]}", "handshake",
                    "generic_timeout_error", "[" UDP_FAIL("192.0.2.7", 1194, "openvpn") "]",
                    "[" TCP_ENTRY("192.0.2.7", 22, "\"generic_timeout_error\"") "]");
    vt_vpn_gather(r->it, r->n);
    return tk;
}

/* A VPN handshake that failed, measured again: working each time is a passing failure (packets
 * lost for a while), not the block the run's evidence alone would have said; working and then
 * failing again is intermittent, decided as before with the pattern in the reason; failing at
 * once changes nothing. A failure the repeat does not apply to (the server answered something
 * else) keeps its verdict whatever a repeat says. */
static void repeated_handshake(void **st)
{
    (void)st;
    const char *clean[] = {NULL, NULL, NULL, NULL}, *mixed[] = {NULL, "generic_timeout_error"},
               *again[] = {"generic_timeout_error"};
    cJSON *ctl = control(1);
    run r = {0};
    cJSON *tk = ovpn_failed(&r);
    decide_repeated(tk, ctl, 4, clean);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_non_null(strstr(s(tk, "verdict_reason"), "worked when tried again 4 times in a row"));
    assert_null_key(tk, "blocking");
    assert_false(intermittent(tk));
    run_free(&r);

    memset(&r, 0, sizeof(r));
    tk = ovpn_failed(&r);
    decide_repeated(tk, ctl, 2, mixed);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_string_equal(s(tk, "blocking"), "address");
    assert_non_null(strstr(s(tk, "verdict_reason"), "2 of 3 attempts failed"));
    assert_non_null(strstr(s(tk, "verdict_reason"), "The block is intermittent"));
    assert_true(intermittent(tk));
    assert_string_equal(s(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "evidence"), "repeat"),
                          "address"),
                        "192.0.2.7:1194/udp");
    run_free(&r);

    memset(&r, 0, sizeof(r));
    tk = ovpn_failed(&r);
    decide_repeated(tk, ctl, 1, again);
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_null(strstr(s(tk, "verdict_reason"), "intermittent"));
    assert_false(intermittent(tk));
    run_free(&r);

    /* the server answered, but not as OpenVPN: not a failure a repeat can tell */
    memset(&r, 0, sizeof(r));
    tk = add(&r, "ovpn", "openvpn", NULL, "handshake", "generic_timeout_error",
             "[{\"ip\":\"192.0.2.7\",\"port\":1194,\"transport\":\"udp\",\"protocol\":"
             "\"openvpn\",\"failure\":\"generic_timeout_error\",\"sent\":3,\"received\":2,"
             "\"bytes_received\":40}]",
             NULL);
    vt_vpn_gather(r.it, r.n);
    decide_repeated(tk, ctl, 4, clean);
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_null(strstr(s(tk, "verdict_reason"), "tried again"));
    run_free(&r);
    cJSON_Delete(ctl);
}

/* One port tried, nothing else known: the control connecting says blocked, not by what. */
static void one_port_blocked_but_not_which(void **st)
{
    (void)st;
    run r = {0};
    cJSON *tk = add(&r, "sstp", "tlsvpn", NULL, "tcp", "generic_timeout_error",
                    "[" TCP_ENTRY("192.0.2.8", 443, "\"generic_timeout_error\"") "]", NULL);
    vt_vpn_gather(r.it, r.n);
    assert_string_equal(s(cJSON_GetObjectItem(tk, "vpn_evidence"), "control_input"),
                        "192.0.2.8:443");
    vt_verdict_ctx c = canaries(1);
    cJSON *ctl = control(1);
    decide(tk, &c, ctl, "192.0.2.8");
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_null_key(tk, "blocking");
    assert_string_equal(s(tk, "verdict_phase"), "tcp");
    cJSON_Delete(ctl);
    run_free(&r);
}

/* UDP port blocking from the run alone: the server's address answers on TCP 22, and an echo
 * that answers a datagram on 5353 is silent on 1194 with the same datagram. */
static void udp_port_blocked(void **st)
{
    (void)st;
    run r = {0};
    cJSON *tk = add(&r, "ovpn", "openvpn", NULL, "handshake", "generic_timeout_error",
                    "[" UDP_FAIL("192.0.2.7", 1194, "openvpn") "]",
                    "[" TCP_ENTRY("192.0.2.7", 22, "null") "]");
    const char *o = "{\"transport\":\"udp\",\"payload_hex\":\"00ff\"}";
    add(&r, "echo-1194", "port", o, NULL, NULL,
        "[" ECHO("198.51.100.9", 1194, "null", ",\"inconclusive_reason\":\"udp_no_reply\"") "]",
        NULL);
    add(&r, "echo-5353", "port", o, NULL, NULL, "[" ECHO("198.51.100.9", 5353, "null", "") "]",
        NULL);
    vt_vpn_gather(r.it, r.n);
    const cJSON *ev = cJSON_GetObjectItem(tk, "vpn_evidence");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ev, "port_failed_up")), 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ev, "control_input"))); /* decided already */
    vt_verdict_ctx c = canaries(2);
    decide(tk, &c, NULL, "192.0.2.7");
    assert_string_equal(s(tk, "verdict"), "tcp_blocking");
    assert_string_equal(s(tk, "blocking"), "port");
    run_free(&r);

    /* The echo's silence on 1194 alone (it answered nothing else) proves nothing: the host is
     * up, the port silent, no rule applies. */
    run r2 = {0};
    tk = add(&r2, "ovpn", "openvpn", NULL, "handshake", "generic_timeout_error",
             "[" UDP_FAIL("192.0.2.7", 1194, "openvpn") "]",
             "[" TCP_ENTRY("192.0.2.7", 22, "null") "]");
    add(&r2, "echo-1194", "port", o, NULL, NULL,
        "[" ECHO("198.51.100.9", 1194, "null", ",\"inconclusive_reason\":\"udp_no_reply\"") "]",
        NULL);
    vt_vpn_gather(r2.it, r2.n);
    /* the control only connects over TCP: it cannot help with a silent UDP port */
    assert_true(cJSON_IsNull(
        cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "vpn_evidence"), "control_input")));
    decide(tk, &c, NULL, "192.0.2.7");
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_string_equal(s(tk, "inconclusive_reason"), "port_unanswered_host_up");
    assert_null_key(tk, "blocking");
    run_free(&r2);
}

/* Another server of the same protocol failing on the same port is no evidence of port
 * blocking: protocol filtering would look the same. */
static void same_protocol_elsewhere_is_not_port_evidence(void **st)
{
    (void)st;
    run r = {0};
    cJSON *tk = add(&r, "a", "openvpn", NULL, "handshake", "generic_timeout_error",
                    "[" UDP_FAIL("192.0.2.7", 1194, "openvpn") "]",
                    "[" TCP_ENTRY("192.0.2.7", 22, "null") "]");
    add(&r, "b", "openvpn", NULL, "handshake", "generic_timeout_error",
        "[" UDP_FAIL("192.0.2.8", 1194, "openvpn") "]", "[" TCP_ENTRY("192.0.2.8", 22, "null") "]");
    vt_vpn_gather(r.it, r.n);
    vt_verdict_ctx c = canaries(2);
    decide(tk, &c, NULL, "192.0.2.7");
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_null_key(tk, "blocking");
    run_free(&r);
}

/* Protocol blocking: a declared look-alike of the handshake is unanswered where another
 * datagram to the same echo and port is answered. Without the answered one, nothing. */
static void protocol_blocked_by_mimic(void **st)
{
    (void)st;
    for (int with_other = 0; with_other < 2; with_other++) {
        run r = {0};
        cJSON *tk = add(&r, "wg", "wireguard", NULL, "handshake", "generic_timeout_error",
                        "[" UDP_FAIL("192.0.2.9", 51820, "wireguard") "]", NULL);
        add(&r, "shape", "port",
            "{\"transport\":\"udp\",\"payload_hex\":\"01\",\"mimics\":\"wireguard\"}", NULL, NULL,
            "[" ECHO("198.51.100.9", 51820, "null",
                     ",\"inconclusive_reason\":\"udp_no_reply\"") "]",
            NULL);
        if (with_other)
            add(&r, "plain", "port", "{\"transport\":\"udp\",\"payload_hex\":\"00\"}", NULL, NULL,
                "[" ECHO("198.51.100.9", 51820, "null", "") "]", NULL);
        vt_vpn_gather(r.it, r.n);
        vt_verdict_ctx c = canaries(2);
        decide(tk, &c, NULL, "192.0.2.9");
        if (with_other) {
            assert_string_equal(s(tk, "verdict"), "tls_blocking");
            assert_string_equal(s(tk, "blocking"), "protocol");
            assert_string_equal(s(tk, "verdict_phase"), "handshake");
            const cJSON *m = cJSON_GetObjectItem(vpn_ev(tk), "mimic_blocked");
            assert_int_equal(cJSON_GetArraySize(m), 1);
            assert_non_null(strstr(cJSON_GetArrayItem(m, 0)->valuestring, "shape"));
        } else {
            assert_string_equal(s(tk, "verdict"), "inconclusive");
            assert_null_key(tk, "blocking");
        }
        run_free(&r);
    }
}

/* Over TCP: connected, then the protocol's first message got no answer: protocol. */
static void protocol_blocked_after_connect(void **st)
{
    (void)st;
    run r = {0};
    cJSON *tk = add(&r, "ovpn-tcp", "openvpn", NULL, "handshake", "connection_reset",
                    "[{\"ip\":\"192.0.2.7\",\"port\":1194,\"transport\":\"tcp\",\"protocol\":"
                    "\"openvpn\",\"failure\":\"connection_reset\",\"failed_operation\":\"read\","
                    "\"bytes_received\":0,\"tls_auth\":true,\"tls_crypt\":false,"
                    "\"tcp_connect\":{\"status\":{\"success\":true}}}]",
                    NULL);
    vt_vpn_gather(r.it, r.n);
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(tk, "vpn_evidence"), "connected")));
    vt_verdict_ctx c = canaries(2);
    decide(tk, &c, NULL, "192.0.2.7");
    assert_string_equal(s(tk, "verdict"), "tls_blocking");
    assert_string_equal(s(tk, "blocking"), "protocol");
    run_free(&r);
}

/* OpenVPN over TCP without a tls-auth/tls-crypt key: connected, then a close, a reset or
 * silence. A server that requires a key does exactly that (OpenVPN 2.6: "cannot locate HMAC",
 * then it closes), so it is no evidence of protocol filtering. The same failure with a key is. */
static void unkeyed_openvpn_tcp_is_not_protocol_blocking(void **st)
{
    (void)st;
    const char *fails[] = {"eof_error", "connection_reset", "generic_timeout_error"};
    for (size_t i = 0; i < 3; i++) {
        char h[600];
        snprintf(h, sizeof(h),
                 "[{\"ip\":\"192.0.2.7\",\"port\":1194,\"transport\":\"tcp\",\"protocol\":"
                 "\"openvpn\",\"failure\":\"%s\",\"failed_operation\":\"read\","
                 "\"bytes_received\":0,\"tls_auth\":false,\"tls_crypt\":false,"
                 "\"tcp_connect\":{\"status\":{\"success\":true}}}]",
                 fails[i]);
        run r = {0};
        cJSON *tk = add(&r, "ovpn-tcp", "openvpn", NULL, "handshake", fails[i], h, NULL);
        vt_vpn_gather(r.it, r.n);
        const cJSON *ev = cJSON_GetObjectItem(tk, "vpn_evidence");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ev, "unkeyed")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ev, "connected")));
        vt_verdict_ctx c = canaries(2);
        decide(tk, &c, NULL, "192.0.2.7");
        assert_string_equal(s(tk, "verdict"), "inconclusive");
        assert_string_equal(s(tk, "inconclusive_reason"), "no_tls_auth_key");
        assert_null_key(tk, "blocking");
        run_free(&r);
    }
}

/* Tor, SSTP, OpenConnect: TLS completed, then the protocol inside it failed (silence, a close,
 * bytes that are not the protocol). A censor on the path cannot read inside TLS: the server
 * answered, and that is not blocking. A TLS handshake that itself fails after the connect is
 * still protocol blocking (SNI or fingerprint filtering). */
static void failure_inside_tls_is_not_blocking(void **st)
{
    (void)st;
#define TLS_OK                                                                                     \
    "\"tls_handshake\":{\"failure\":null,\"tls_version\":\"TLSv1.3\",\"peer_certificates\":[]}"
    run r = {0};
    cJSON *tor = add(&r, "tor", "tor", NULL, "handshake", "generic_timeout_error",
                     "[{\"ip\":\"192.0.2.50\",\"port\":9001,\"transport\":\"tcp\",\"protocol\":"
                     "\"tor\",\"failure\":\"generic_timeout_error\",\"bytes_received\":0,"
                     "\"tcp_connect\":{\"status\":{\"success\":true}}," TLS_OK "}]",
                     NULL);
    /* tlsvpn: the TLS entry (worked), then the protocol's own entry (failed) */
    cJSON *sstp =
        add(&r, "sstp", "tlsvpn", NULL, "handshake", "eof_error",
            "[{\"ip\":\"192.0.2.51\",\"port\":443,\"transport\":\"tcp\",\"protocol\":"
            "\"sstp\",\"failure\":null,\"tcp_connect\":{\"status\":{\"success\":true}}," TLS_OK "},"
            "{\"ip\":\"192.0.2.51\",\"port\":443,\"transport\":\"tcp\",\"protocol\":"
            "\"sstp\",\"failure\":\"eof_error\",\"status_code\":null}]",
            NULL);
    cJSON *reset =
        add(&r, "tor-reset", "tor", NULL, "tls", "connection_reset",
            "[{\"ip\":\"192.0.2.52\",\"port\":9001,\"transport\":\"tcp\",\"protocol\":"
            "\"tor\",\"failure\":\"connection_reset\",\"failed_operation\":"
            "\"tls_handshake\",\"tcp_connect\":{\"status\":{\"success\":true}},"
            "\"tls_handshake\":{\"failure\":\"connection_reset\",\"tls_version\":\"\"}}]",
            NULL);
#undef TLS_OK
    vt_vpn_gather(r.it, r.n);
    vt_verdict_ctx c = canaries(2);
    cJSON *done[] = {tor, sstp};
    for (int i = 0; i < 2; i++) {
        assert_true(cJSON_IsTrue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(done[i], "vpn_evidence"), "tls_completed")));
        decide(done[i], &c, NULL, "h");
        assert_string_equal(s(done[i], "verdict"), "inconclusive");
        assert_string_equal(s(done[i], "inconclusive_reason"), "failed_inside_tls");
        assert_null_key(done[i], "blocking");
    }
    decide(reset, &c, NULL, "h");
    assert_string_equal(s(reset, "verdict"), "tls_blocking");
    assert_string_equal(s(reset, "blocking"), "protocol");
    run_free(&r);
}

/* An ICMP port unreachable on UDP is the host (or a filter in its name) saying nothing listens:
 * not silence. It is no evidence of port blocking for itself, nor for another address's silent
 * server on that port (rule 4); with a control that cannot reach the host either: down. */
static void udp_refused_is_not_port_blocking(void **st)
{
    (void)st;
    for (int ctl_mode = 0; ctl_mode < 2; ctl_mode++) {
        run r = {0};
        /* 192.0.2.2: an echo answers on 5353, nothing listens on 1194 */
        cJSON *closed = add(&r, "closed-1194", "port",
                            "{\"transport\":\"udp\",\"payload_hex\":"
                            "\"00\"}",
                            "handshake", "connection_refused",
                            "[" ECHO("192.0.2.2", 1194, "\"connection_refused\"", "") "]", NULL);
        add(&r, "echo-5353", "port", "{\"transport\":\"udp\",\"payload_hex\":\"00\"}", NULL, NULL,
            "[" ECHO("192.0.2.2", 5353, "null", "") "]", NULL);
        /* 192.0.2.3: a silent OpenVPN on 1194, ssh up */
        cJSON *ovpn = add(&r, "ovpn", "openvpn", NULL, "handshake", "generic_timeout_error",
                          "[" UDP_FAIL("192.0.2.3", 1194, "openvpn") "]",
                          "[" TCP_ENTRY("192.0.2.3", 22, "null") "]");
        /* 192.0.2.4: nothing answers at all; its OpenVPN port is refused */
        cJSON *gone = add(&r, "gone", "openvpn", "{\"address_check\":[22]}", "handshake",
                          "connection_refused",
                          "[{\"ip\":\"192.0.2.4\",\"port\":1194,\"transport\":\"udp\","
                          "\"protocol\":\"openvpn\",\"failure\":\"connection_refused\"}]",
                          "[" TCP_ENTRY("192.0.2.4", 22, "\"connection_refused\"") "]");
        vt_vpn_gather(r.it, r.n);
        const cJSON *ev = cJSON_GetObjectItem(closed, "vpn_evidence");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ev, "refused")));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
                             cJSON_GetObjectItem(ovpn, "vpn_evidence"), "port_failed_up")),
                         0);
        assert_string_equal(s(cJSON_GetObjectItem(gone, "vpn_evidence"), "control_input"),
                            "192.0.2.4:22");
        vt_verdict_ctx c = canaries(2);
        cJSON *ctl = ctl_mode ? control(0) : NULL;
        decide(closed, &c, NULL, "192.0.2.2");
        assert_string_equal(s(closed, "verdict"), "inconclusive");
        assert_string_equal(s(closed, "inconclusive_reason"), "udp_port_refused");
        assert_null_key(closed, "blocking");
        decide(ovpn, &c, NULL, "192.0.2.3");
        assert_string_equal(s(ovpn, "verdict"), "inconclusive");
        assert_null_key(ovpn, "blocking");
        decide(gone, &c, ctl, "192.0.2.4");
        assert_string_equal(s(gone, "verdict"), ctl_mode ? "down" : "inconclusive");
        assert_null_key(gone, "blocking");
        cJSON_Delete(ctl);
        run_free(&r);
    }
}

/* TCP refused on the only VPN port; the address answers elsewhere. The control connects: port
 * blocking. The control is refused too: the service is down. */
static void tcp_port_refused(void **st)
{
    (void)st;
    for (int up = 0; up < 2; up++) {
        run r = {0};
        cJSON *tk = add(&r, "ovpn-tcp", "openvpn", NULL, "tcp", "connection_refused",
                        "[{\"ip\":\"192.0.2.7\",\"port\":1194,\"transport\":\"tcp\",\"protocol\":"
                        "\"openvpn\",\"failure\":\"connection_refused\",\"failed_operation\":"
                        "\"connect\",\"tcp_connect\":{\"status\":{\"success\":false}}}]",
                        "[" TCP_ENTRY("192.0.2.7", 22, "null") "]");
        vt_vpn_gather(r.it, r.n);
        assert_string_equal(s(cJSON_GetObjectItem(tk, "vpn_evidence"), "control_input"),
                            "192.0.2.7:1194");
        vt_verdict_ctx c = canaries(2);
        cJSON *ctl = control(up);
        decide(tk, &c, ctl, "192.0.2.7");
        assert_string_equal(s(tk, "verdict"), up ? "tcp_blocking" : "down");
        if (up)
            assert_string_equal(s(tk, "blocking"), "port");
        else
            assert_null_key(tk, "blocking");
        cJSON_Delete(ctl);
        run_free(&r);
    }
}

/* Rule 4 counts the failed port at other live addresses, not at one where the same port works
 * (another target connected there): that address is evidence against port blocking. */
static void port_failed_where_it_also_works(void **st)
{
    (void)st;
    run r = {0};
    cJSON *tk = add(&r, "ovpn-443", "openvpn", NULL, "tcp", "generic_timeout_error",
                    "[{\"ip\":\"192.0.2.7\",\"port\":443,\"transport\":\"tcp\",\"protocol\":"
                    "\"openvpn\",\"failure\":\"generic_timeout_error\",\"failed_operation\":"
                    "\"connect\",\"tcp_connect\":{\"status\":{\"success\":false}}}]",
                    "[" TCP_ENTRY("192.0.2.7", 22, "null") "]");
    add(&r, "probe-443", "port", NULL, "tcp", "generic_timeout_error",
        "[" TCP_ENTRY("198.51.100.9", 443, "\"generic_timeout_error\"") "]", NULL);
    add(&r, "sstp-443", "tlsvpn", NULL, NULL, NULL,
        "[{\"ip\":\"198.51.100.9\",\"port\":443,\"transport\":\"tcp\",\"protocol\":"
        "\"sstp\",\"failure\":null,\"tcp_connect\":{\"status\":{\"success\":true}}}]",
        NULL);
    vt_vpn_gather(r.it, r.n);
    cJSON *ev = cJSON_GetObjectItem(tk, "vpn_evidence");
    assert_int_equal(cJSON_GetObjectItem(ev, "port_failed_up_addresses")->valueint, 0);
    vt_verdict_ctx c = canaries(2);
    decide(tk, &c, NULL, "192.0.2.7");
    assert_string_not_equal(s(tk, "verdict"), "tcp_blocking");
    run_free(&r);
}

/* A wrong answer is the server's, not a censor's; an unprovisioned WireGuard key stays
 * inconclusive; an offline probe says nothing about blocking. */
static void garbage_unprovisioned_offline(void **st)
{
    (void)st;
    run r = {0};
    cJSON *g = add(&r, "garbage", "openvpn", NULL, "handshake", "openvpn_bad_ack_array",
                   "[{\"ip\":\"192.0.2.39\",\"port\":1194,\"transport\":\"udp\",\"protocol\":"
                   "\"openvpn\",\"failure\":\"openvpn_bad_ack_array\",\"received\":3}]",
                   NULL);
    cJSON *wg = add(&r, "wg", "wireguard", NULL, NULL, NULL,
                    "[{\"ip\":\"192.0.2.32\",\"port\":51820,\"transport\":\"udp\",\"protocol\":"
                    "\"wireguard\",\"failure\":null,\"inconclusive_reason\":"
                    "\"no_provisioned_key\"}]",
                    NULL);
    cJSON_ReplaceItemInObject(wg, "reachable", cJSON_CreateFalse());
    cJSON_AddStringToObject(wg, "inconclusive_reason", "no_provisioned_key");
    cJSON *cert = add(&r, "cert", "tlsvpn", NULL, "tls", "ssl_unknown_authority",
                      "[{\"ip\":\"192.0.2.40\",\"port\":443,\"transport\":\"tcp\","
                      "\"protocol\":\"sstp\",\"failure\":\"ssl_unknown_authority\","
                      "\"tcp_connect\":{\"status\":{\"success\":true}}}]",
                      NULL);
    cJSON *off = add(&r, "off", "ikev2", NULL, "handshake", "generic_timeout_error",
                     "[" UDP_FAIL("192.0.2.33", 500, "ikev2") "]", NULL);
    vt_vpn_gather(r.it, r.n);
    assert_null(cJSON_GetObjectItem(wg, "vpn_evidence"));
    vt_verdict_ctx c = canaries(2);
    decide(g, &c, NULL, "192.0.2.39");
    assert_string_equal(s(g, "verdict"), "inconclusive");
    assert_null_key(g, "blocking");
    assert_null(cJSON_GetObjectItem(g, "inconclusive_reason"));
    decide(wg, &c, NULL, "192.0.2.32");
    assert_string_equal(s(wg, "verdict"), "inconclusive");
    assert_string_equal(s(wg, "inconclusive_reason"), "no_provisioned_key");
    assert_null_key(wg, "blocking");
    decide(cert, &c, NULL, "192.0.2.40"); /* the server answered with a certificate */
    assert_string_equal(s(cert, "verdict"), "inconclusive");
    assert_null_key(cert, "blocking");
    vt_verdict_ctx none = canaries(0);
    decide(off, &none, NULL, "192.0.2.33");
    assert_string_equal(s(off, "verdict"), "probe_offline");
    assert_null_key(off, "blocking");
    run_free(&r);
}

/* Hostile test_keys: wrong types, non-addresses, out-of-range ports, no handshakes at all. */
static void hostile_keys(void **st)
{
    (void)st;
    run r = {0};
    add(&r, "a", "openvpn", NULL, "handshake", "x",
        "[1, \"s\", null, {\"ip\":5}, {\"ip\":\"not an ip\",\"port\":1,\"transport\":\"udp\"},"
        "{\"ip\":\"192.0.2.1\",\"port\":70000,\"transport\":\"udp\",\"failure\":\"x\"},"
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"transport\":\"sctp\",\"failure\":\"x\"},"
        "{\"ip\":\"192.0.2.1\",\"port\":1,\"transport\":\"udp\",\"failure\":7,"
        "\"tcp_connect\":[],\"received\":\"many\"}]",
        "{\"not\":\"an array\"}");
    cJSON *b = add(&r, "b", "port", "{\"payload_hex\":5,\"mimics\":[1]}", "tcp", "x", "{}", NULL);
    add(&r, "c", "tor", NULL, "tls", "x",
        "[{\"ip\":\"2001:db8::1\",\"port\":443,\"transport\":\"tcp\",\"failure\":\"x\"}]", "[]");
    vt_vpn_gather(r.it, r.n);
    vt_vpn_gather(NULL, 0);
    assert_null(cJSON_GetObjectItem(b, "vpn_evidence"));
    vt_verdict_ctx c = canaries(2);
    for (size_t i = 0; i < r.n; i++) {
        decide(r.it[i].test_keys, &c, NULL, "h");
        assert_non_null(s(r.it[i].test_keys, "verdict"));
    }
    assert_string_equal(
        s(cJSON_GetObjectItem(r.it[2].test_keys, "evidence") ? vpn_ev(r.it[2].test_keys) : NULL,
          "control_input"),
        "[2001:db8::1]:443");
    run_free(&r);
}

/* The same server answered the same protocol to another target of the run (e.g. one without
 * a wrong tls-auth key): this target's failure is not blocking. */
static void same_server_answered(void **st)
{
    (void)st;
    run r = {0};
    cJSON *tk = add(&r, "bad-key", "openvpn", NULL, "handshake", "generic_timeout_error",
                    "[" UDP_FAIL("192.0.2.7", 1194, "openvpn") "]", NULL);
    add(&r, "good", "openvpn", NULL, NULL, NULL,
        "[{\"ip\":\"192.0.2.7\",\"port\":1194,\"transport\":\"udp\",\"protocol\":"
        "\"openvpn\",\"failure\":null,\"received\":1,\"rtt_ms\":3}]",
        NULL);
    vt_vpn_gather(r.it, r.n);
    vt_verdict_ctx c = canaries(2);
    decide(tk, &c, NULL, "192.0.2.7");
    assert_string_equal(s(tk, "verdict"), "inconclusive");
    assert_string_equal(s(tk, "inconclusive_reason"), "answered_in_run");
    assert_null_key(tk, "blocking");
    run_free(&r);
}

static void kinds(void **st)
{
    (void)st;
    assert_true(vt_vpn_verdict_kind("openvpn"));
    assert_true(vt_vpn_verdict_kind("port"));
    assert_false(vt_vpn_verdict_kind("web"));
    assert_false(vt_vpn_verdict_kind(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_down_is_not_blocked),
        cmocka_unit_test(one_port_blocked_but_not_which),
        cmocka_unit_test(repeated_handshake),
        cmocka_unit_test(udp_port_blocked),
        cmocka_unit_test(same_protocol_elsewhere_is_not_port_evidence),
        cmocka_unit_test(protocol_blocked_by_mimic),
        cmocka_unit_test(protocol_blocked_after_connect),
        cmocka_unit_test(unkeyed_openvpn_tcp_is_not_protocol_blocking),
        cmocka_unit_test(failure_inside_tls_is_not_blocking),
        cmocka_unit_test(udp_refused_is_not_port_blocking),
        cmocka_unit_test(tcp_port_refused),
        cmocka_unit_test(port_failed_where_it_also_works),
        cmocka_unit_test(garbage_unprovisioned_offline),
        cmocka_unit_test(hostile_keys),
        cmocka_unit_test(same_server_answered),
        cmocka_unit_test(kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
