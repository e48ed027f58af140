/* The VPN kinds end to end on loopback, against servers on the test's own loop that speak
 * just enough of each protocol (the real servers are in tests/integration/test_vpn_servers.sh):
 * verdict keys, inconclusive WireGuard without a provisioned key, garbage answers, secrets kept
 * out of measurements, and the shipped targets/vpn.json accepted by every kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vantage/config.h"
#include "vantage/dns.h"
#include "vantage/json.h"
#include "vantage/secrets.h"
#include "vantage/targets.h"
#include "vantage/task.h"
#include "vantage/verdict.h"
#include "vantage/wireguard.h"

extern const vt_kind vt_kind_openvpn, vt_kind_wireguard, vt_kind_ikev2, vt_kind_tor, vt_kind_tlsvpn,
    vt_kind_port;

/* ---- servers on the loop ------------------------------------------------------------------ */

enum { S_OPENVPN, S_WIREGUARD, S_IKEV2, S_GARBAGE, S_SILENT, S_DNS };

typedef struct server {
    int fd, port, mode, natt;
    struct event *ev;
    unsigned char wg_priv[32], wg_peer[32], psk[32];
    int seen;
} server;

static void answer_openvpn(server *s, const unsigned char *b, size_t n, unsigned char *out,
                           size_t *olen)
{
    if (n != 14 || b[0] != 0x38) return;
    static const unsigned char srv[8] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8};
    out[0] = 0x40;
    memcpy(out + 1, srv, 8);
    out[9] = 1;
    memset(out + 10, 0, 4);
    memcpy(out + 14, b + 1, 8);
    memset(out + 22, 0, 4);
    *olen = 26;
}

static void answer_wireguard(server *s, const unsigned char *b, size_t n, unsigned char *out,
                             size_t *olen)
{
    vt_wg_responder st;
    char err[128];
    if (vt_wg_responder_consume(&st, s->wg_priv, s->psk, b, n, err, sizeof(err)) < 0) return;
    if (memcmp(st.init_static, s->wg_peer, 32) != 0)
        return; /* an unknown peer: WireGuard stays silent */
    if (vt_wg_responder_respond(&st, 0x55667788, out, err, sizeof(err)) == 0)
        *olen = VT_WG_RESP_LEN;
}

static void answer_ikev2(server *s, const unsigned char *b, size_t n, unsigned char *out,
                         size_t *olen)
{
    size_t off = s->natt ? 4 : 0;
    if (n < off + 28 || b[off + 18] != 34) return;
    memset(out, 0, off);
    unsigned char *m = out + off;
    memcpy(m, b + off, 8);
    memset(m + 8, 0x42, 8);
    m[16] = 41; /* N */
    m[17] = 0x20;
    m[18] = 34;
    m[19] = 0x20;
    memset(m + 20, 0, 4);
    m[24] = m[25] = m[26] = 0;
    m[27] = 36;
    const unsigned char notify[8] = {0, 0, 0, 8, 0, 0, 0, 14}; /* NO_PROPOSAL_CHOSEN */
    memcpy(m + 28, notify, 8);
    *olen = off + 36;
}

/* A DNS server: "blocked.test" is NXDOMAIN, any other A question is 127.0.0.1. */
static void answer_dns(const unsigned char *b, size_t n, unsigned char *out, size_t *olen)
{
    if (n < 12 + 5 || n > 512) return;
    size_t q = 12;
    while (q < n && b[q])
        q += b[q] + 1;
    if (q + 5 > n) return;
    size_t qend = q + 5;
    memcpy(out, b, qend);
    int blocked = memmem(b + 12, q - 12, "\007blocked\004test", 13) != NULL;
    out[2] = 0x81;
    out[3] = blocked ? 0x83 : 0x80;
    out[6] = 0;
    out[7] = blocked ? 0 : 1;
    memset(out + 8, 0, 4);
    *olen = qend;
    if (blocked || b[q + 2] != 1) {
        out[7] = 0;
        return;
    }
    const unsigned char a[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
    memcpy(out + qend, a, sizeof(a));
    *olen = qend + sizeof(a);
}

static void on_server(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    unsigned char buf[2048], out[2048];
    size_t olen = 0;
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    if (n < 0) return;
    s->seen++;
    switch (s->mode) {
    case S_OPENVPN:
        answer_openvpn(s, buf, (size_t)n, out, &olen);
        break;
    case S_WIREGUARD:
        answer_wireguard(s, buf, (size_t)n, out, &olen);
        break;
    case S_IKEV2:
        answer_ikev2(s, buf, (size_t)n, out, &olen);
        break;
    case S_DNS:
        answer_dns(buf, (size_t)n, out, &olen);
        break;
    case S_GARBAGE:
        memcpy(out, "garbage! not a vpn reply", 24);
        olen = 24;
        break;
    default:
        break;
    }
    if (olen) sendto(fd, out, olen, 0, (struct sockaddr *)&from, fl);
}

static void server_start(vt_loop *loop, server *s, int mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    s->mode = mode;
    s->ev = event_new(vt_loop_base(loop), s->fd, EV_READ | EV_PERSIST, on_server, s);
    event_add(s->ev, NULL);
}

static void server_stop(server *s)
{
    event_free(s->ev);
    close(s->fd);
}

/* ---- running one target ------------------------------------------------------------------- */

static void on_task_done(vt_task *t, void *arg)
{
    t->kind->finish(t);
    vt_loop_break(t->env->loop);
}

/* Loads one target from JSON text (with PORT replaced), runs its kind, returns test_keys
 * (owned by the caller) or NULL when create refused it (err filled). */
static int dns_port; /* when set, names are resolved by the test's DNS server there */

static cJSON *run_target(vt_loop *loop, const vt_kind *k, const char *json, int port, char *err,
                         size_t errlen)
{
    char doc[4096], ep[32];
    snprintf(ep, sizeof(ep), "%d", port);
    const char *p = strstr(json, "PORT");
    if (p)
        snprintf(doc, sizeof(doc), "{\"version\":1,\"targets\":[%.*s%s%s]}", (int)(p - json), json,
                 ep, p + 4);
    else
        snprintf(doc, sizeof(doc), "{\"version\":1,\"targets\":[%s]}", json);
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(vt_targets_load_json(&l, doc, strlen(doc), "test", err, errlen), 0);
    vt_config cfg;
    vt_config_defaults(&cfg);
    cfg.connect_timeout_ms = 900; /* UDP: 3 tries of 300 ms */
    vt_env env = {.loop = loop, .cfg = &cfg};
    if (dns_port) {
        char srv[32];
        snprintf(srv, sizeof(srv), "127.0.0.1:%d", dns_port);
        env.dns = vt_dns_new_udp(loop, &cfg, srv, err, errlen);
        assert_non_null(env.dns);
    }
    vt_task t = {.env = &env, .target = &l.items[0], .kind = k, .on_done = on_task_done};
    t.test_keys = cJSON_CreateObject();
    t.t0 = vt_now();
    if (k->create(&t, err, errlen) < 0) {
        cJSON_Delete(t.test_keys);
        vt_targets_free(&l);
        if (env.dns) vt_dns_free(env.dns);
        return NULL;
    }
    k->start(&t);
    vt_loop_run(loop);
    vt_targets_free(&l);
    if (env.dns) vt_dns_free(env.dns);
    return t.test_keys;
}

static const cJSON *first_handshake(const cJSON *tk)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(tk, "handshakes");
    assert_true(cJSON_IsArray(h));
    assert_true(cJSON_GetArraySize(h) >= 1);
    return cJSON_GetArrayItem(h, 0);
}

static void assert_key_null(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_non_null(v);
    assert_true(cJSON_IsNull(v));
}

static void assert_key_string(const cJSON *o, const char *key, const char *want)
{
    const char *v = vt_json_get_string(o, key);
    assert_non_null(v);
    assert_string_equal(v, want);
}

static vt_loop *new_loop(void)
{
    char err[128];
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    return loop;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void openvpn_udp_server_is_reachable_with_rtt(void **state)
{
    vt_loop *loop = new_loop();
    server s = {0};
    server_start(loop, &s, S_OPENVPN);
    char err[256];
    cJSON *tk = run_target(loop, &vt_kind_openvpn,
                           "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\","
                           "\"kind\":\"openvpn\",\"endpoints\":[\"127.0.0.1:PORT\"]}",
                           s.port, err, sizeof(err));
    assert_non_null(tk);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
    assert_key_null(tk, "failure");
    assert_key_null(tk, "failure_phase");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tk, "rtt_ms")));
    const cJSON *h = first_handshake(tk);
    assert_key_string(h, "protocol", "openvpn");
    assert_key_string(h, "transport", "udp");
    assert_key_string(h, "server_session_id", "a1a2a3a4a5a6a7a8");
    assert_key_null(h, "failure");
    vt_verdict_inputs in = {.host = "127.0.0.1"};
    vt_verdict_decide(tk, &in);
    assert_key_string(tk, "verdict", "ok");
    cJSON_Delete(tk);
    server_stop(&s);
    vt_loop_free(loop);
}

static void names_are_resolved_once_and_dns_failure_is_its_own_phase(void **state)
{
    vt_loop *loop = new_loop();
    server dns = {0}, ovpn = {0};
    server_start(loop, &dns, S_DNS);
    server_start(loop, &ovpn, S_OPENVPN);
    dns_port = dns.port;
    char err[256];
    cJSON *tk = run_target(loop, &vt_kind_openvpn,
                           "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\","
                           "\"kind\":\"openvpn\",\"endpoints\":[\"vpn.test:PORT\"]}",
                           ovpn.port, err, sizeof(err));
    assert_non_null(tk);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(tk, "queries");
    assert_int_equal(cJSON_GetArraySize(q), 1);
    assert_key_string(cJSON_GetArrayItem(q, 0), "hostname", "vpn.test");
    const cJSON *h = first_handshake(tk);
    assert_key_string(h, "hostname", "vpn.test");
    assert_key_string(h, "ip", "127.0.0.1");
    cJSON_Delete(tk);

    tk = run_target(loop, &vt_kind_openvpn,
                    "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\","
                    "\"kind\":\"openvpn\",\"endpoints\":[\"blocked.test:PORT\"]}",
                    ovpn.port, err, sizeof(err));
    assert_non_null(tk);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
    assert_key_string(tk, "failure_phase", "dns");
    assert_key_string(tk, "failure", "dns_nxdomain_error");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tk, "handshakes")), 0);
    assert_int_equal(ovpn.seen, 1); /* nothing sent for the name that did not resolve */
    cJSON_Delete(tk);
    dns_port = 0;
    server_stop(&dns);
    server_stop(&ovpn);
    vt_loop_free(loop);
}

static void garbage_answers_are_a_handshake_failure(void **state)
{
    vt_loop *loop = new_loop();
    server s = {0};
    server_start(loop, &s, S_GARBAGE);
    char err[256];
    const char *kinds[3] = {
        "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
        "\"openvpn\",\"endpoints\":[\"127.0.0.1:PORT\"]}",
        "{\"id\":\"w\",\"name\":\"w\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
        "\"wireguard\",\"endpoints\":[\"127.0.0.1:PORT\"],\"server_public_key\":"
        "\"bmXOC+F1FxEMF9dyiK2H5/1SUtzH0JuVo51h2wPfgyo=\"}",
        "{\"id\":\"i\",\"name\":\"i\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
        "\"ikev2\",\"endpoints\":[\"127.0.0.1:PORT\"],\"natt\":false}",
    };
    const vt_kind *k[3] = {&vt_kind_openvpn, &vt_kind_wireguard, &vt_kind_ikev2};
    const char *want[3] = {"openvpn_unexpected_opcode_12", "wireguard_unexpected_message",
                           "ikev2_truncated_reply"};
    for (int i = 0; i < 3; i++) {
        cJSON *tk = run_target(loop, k[i], kinds[i], s.port, err, sizeof(err));
        assert_non_null(tk);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
        assert_key_string(tk, "failure_phase", "handshake");
        assert_key_string(tk, "failure", want[i]);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(tk, "rtt_ms")));
        /* garbage is not silence: no inconclusive_reason; without a control, no blocking
         * verdict either */
        assert_null(cJSON_GetObjectItemCaseSensitive(tk, "inconclusive_reason"));
        vt_verdict_inputs in = {.host = "127.0.0.1"};
        vt_verdict_decide(tk, &in);
        assert_key_string(tk, "verdict", "inconclusive");
        assert_non_null(strstr(vt_json_get_string(tk, "verdict_reason"), "handshake"));
        cJSON_Delete(tk);
    }
    server_stop(&s);
    vt_loop_free(loop);
}

static char secrets_path[64];

static void write_secrets(const char *json, mode_t mode)
{
    snprintf(secrets_path, sizeof(secrets_path), "/tmp/vt-vpn-secrets-XXXXXX");
    int fd = mkstemp(secrets_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    chmod(secrets_path, mode);
    vt_secrets_set_path(secrets_path);
}

static void drop_secrets(void)
{
    unlink(secrets_path);
    vt_secrets_set_path(NULL);
}

static void wireguard_with_provisioned_key_authenticates_and_hides_secrets(void **state)
{
    vt_loop *loop = new_loop();
    server s = {0};
    server_start(loop, &s, S_WIREGUARD);
    unsigned char cpriv[32], spub[32];
    char cpriv64[45], spub64[45], psk64[45], secrets[512], target[1024], err[256];
    vt_wg_generate_private(cpriv);
    vt_wg_generate_private(s.wg_priv);
    vt_wg_public_key(cpriv, s.wg_peer);
    vt_wg_public_key(s.wg_priv, spub);
    for (int i = 0; i < 32; i++)
        s.psk[i] = (unsigned char)(i * 3 + 1);
    vt_wg_key_to_base64(cpriv, cpriv64);
    vt_wg_key_to_base64(spub, spub64);
    vt_wg_key_to_base64(s.psk, psk64);
    snprintf(secrets, sizeof(secrets), "{\"lab_wg\": \"%s\", \"lab_psk\": \"%s\"}", cpriv64, psk64);
    write_secrets(secrets, 0600);
    snprintf(target, sizeof(target),
             "{\"id\":\"w\",\"name\":\"w\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
             "\"wireguard\",\"endpoints\":[\"127.0.0.1:PORT\"],\"server_public_key\":\"%s\","
             "\"client_private_key\":{\"secret\":\"lab_wg\"},"
             "\"preshared_key\":{\"secret\":\"lab_psk\"}}",
             spub64);
    cJSON *tk = run_target(loop, &vt_kind_wireguard, target, s.port, err, sizeof(err));
    assert_non_null(tk);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
    const cJSON *h = first_handshake(tk);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "authenticated")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "provisioned_key")));
    assert_key_string(h, "reply", "handshake_response");
    char *text = vt_json_print(tk);
    assert_null(strstr(text, cpriv64));
    assert_null(strstr(text, psk64));
    /* nor a fragment of them */
    char frag[17];
    memcpy(frag, cpriv64, 16);
    frag[16] = 0;
    assert_null(strstr(text, frag));
    free(text);
    cJSON_Delete(tk);

    /* The wrong PSK: the server answers, the answer does not authenticate. */
    snprintf(secrets, sizeof(secrets), "{\"lab_wg\": \"%s\", \"lab_psk\": \"%s\"}", cpriv64,
             spub64);
    drop_secrets();
    write_secrets(secrets, 0600);
    tk = run_target(loop, &vt_kind_wireguard, target, s.port, err, sizeof(err));
    assert_non_null(tk);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
    assert_key_string(tk, "failure", "wireguard_decrypt_error");
    cJSON_Delete(tk);

    /* A secrets file others can read: the target is refused, with the fix in the message. */
    drop_secrets();
    write_secrets(secrets, 0644);
    assert_null(run_target(loop, &vt_kind_wireguard, target, s.port, err, sizeof(err)));
    assert_non_null(strstr(err, "chmod 600"));
    assert_null(strstr(err, cpriv64));
    drop_secrets();
    server_stop(&s);
    vt_loop_free(loop);
}

static void wireguard_without_provisioned_key_is_inconclusive(void **state)
{
    vt_loop *loop = new_loop();
    server s = {0};
    server_start(loop, &s, S_WIREGUARD);
    unsigned char spub[32];
    char spub64[45], target[1024], err[256];
    vt_wg_generate_private(s.wg_priv);
    vt_wg_public_key(s.wg_priv, spub);
    vt_wg_key_to_base64(spub, spub64);
    snprintf(target, sizeof(target),
             "{\"id\":\"w\",\"name\":\"w\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
             "\"wireguard\",\"endpoints\":[\"127.0.0.1:PORT\"],\"server_public_key\":\"%s\"}",
             spub64);
    cJSON *tk = run_target(loop, &vt_kind_wireguard, target, s.port, err, sizeof(err));
    assert_non_null(tk);
    assert_int_equal(s.seen, 3); /* it did send: three initiations */
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
    assert_key_null(tk, "failure");
    assert_key_null(tk, "failure_phase");
    assert_key_string(tk, "inconclusive_reason", "no_provisioned_key");
    assert_key_null(first_handshake(tk), "failure");
    /* The verdict says so too: neither ok nor blocked. */
    vt_verdict_inputs in = {.host = "127.0.0.1"};
    vt_verdict_decide(tk, &in);
    assert_key_string(tk, "verdict", "inconclusive");
    assert_non_null(strstr(vt_json_get_string(tk, "verdict_reason"), "WireGuard"));
    cJSON_Delete(tk);
    server_stop(&s);
    vt_loop_free(loop);
}

static void ikev2_notify_counts_as_an_answer_on_500_and_natt(void **state)
{
    vt_loop *loop = new_loop();
    server s = {0};
    char err[256];
    for (int natt = 0; natt < 2; natt++) {
        server_start(loop, &s, S_IKEV2);
        s.natt = natt;
        cJSON *tk = run_target(
            loop, &vt_kind_ikev2,
            natt ? "{\"id\":\"i\",\"name\":\"i\",\"platform\":\"p\",\"category\":\"vpn\","
                   "\"kind\":\"ikev2\",\"endpoints\":[\"127.0.0.1:PORT\"],\"natt\":true,"
                   "\"ke_group\":31}"
                 : "{\"id\":\"i\",\"name\":\"i\",\"platform\":\"p\",\"category\":\"vpn\","
                   "\"kind\":\"ikev2\",\"endpoints\":[\"127.0.0.1:PORT\"],\"natt\":false}",
            s.port, err, sizeof(err));
        assert_non_null(tk);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tk, "reachable")));
        const cJSON *h = first_handshake(tk);
        assert_key_string(h, "error_notify", "NO_PROPOSAL_CHOSEN");
        assert_key_string(h, "spi_r", "4242424242424242");
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "natt")), natt);
        cJSON_Delete(tk);
        server_stop(&s);
    }
    vt_loop_free(loop);
}

static void udp_port_silence_is_inconclusive_and_closed_port_refused(void **state)
{
    vt_loop *loop = new_loop();
    server s = {0};
    server_start(loop, &s, S_SILENT);
    char err[256];
    const char *target = "{\"id\":\"u\",\"name\":\"u\",\"platform\":\"p\",\"category\":\"vpn\","
                         "\"kind\":\"port\",\"transport\":\"udp\",\"payload_hex\":\"00ff\","
                         "\"endpoints\":[\"127.0.0.1:PORT\"]}";
    cJSON *tk = run_target(loop, &vt_kind_port, target, s.port, err, sizeof(err));
    assert_non_null(tk);
    assert_key_string(tk, "inconclusive_reason", "udp_no_reply");
    assert_key_string(first_handshake(tk), "method", "udp_probe");
    assert_key_null(tk, "failure");
    cJSON_Delete(tk);
    int port = s.port;
    server_stop(&s);
    tk = run_target(loop, &vt_kind_port, target, port, err, sizeof(err));
    assert_non_null(tk);
    assert_key_string(tk, "failure", "connection_refused");
    assert_key_string(tk, "failure_phase", "handshake");
    cJSON_Delete(tk);
    vt_loop_free(loop);
}

static void bad_options_are_refused_with_the_key_named(void **state)
{
    vt_loop *loop = new_loop();
    char err[256];
    struct {
        const vt_kind *k;
        const char *json, *want;
    } cases[] = {
        {&vt_kind_openvpn,
         "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"openvpn\",\"endpoints\":[\"127.0.0.1:1194\"],\"tls_auth_key\":\"-----BEGIN\"}",
         "secrets are not written in target files"},
        {&vt_kind_openvpn,
         "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"openvpn\",\"endpoints\":[\"127.0.0.1:1194\"],\"transport\":\"sctp\"}",
         "transport"},
        {&vt_kind_openvpn,
         "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"openvpn\",\"endpoints\":[\"127.0.0.1:1194\"],\"auth\":\"MD5\"}",
         "auth"},
        {&vt_kind_wireguard,
         "{\"id\":\"w\",\"name\":\"w\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"wireguard\",\"endpoints\":[\"127.0.0.1:51820\"]}",
         "server_public_key"},
        {&vt_kind_wireguard,
         "{\"id\":\"w\",\"name\":\"w\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"wireguard\",\"endpoints\":[\"127.0.0.1:51820\"],\"server_public_key\":\"abc\"}",
         "server_public_key"},
        {&vt_kind_ikev2,
         "{\"id\":\"i\",\"name\":\"i\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"ikev2\",\"endpoints\":[\"127.0.0.1:500\"],\"ke_group\":2}",
         "ke_group"},
        {&vt_kind_tlsvpn,
         "{\"id\":\"t\",\"name\":\"t\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"tlsvpn\",\"endpoints\":[\"127.0.0.1:443\"],\"protocol\":\"pptp\"}",
         "protocol"},
        {&vt_kind_tor,
         "{\"id\":\"t\",\"name\":\"t\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"tor\",\"endpoints\":[\"127.0.0.1:443\"],\"method\":\"tcp_connect_only\","
         "\"dir_port\":80}",
         "dir_port"},
        {&vt_kind_port,
         "{\"id\":\"u\",\"name\":\"u\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"port\",\"endpoints\":[\"127.0.0.1:53\"],\"payload_hex\":\"abc\"}",
         "payload_hex"},
        {&vt_kind_openvpn,
         "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"openvpn\",\"endpoints\":[\"127.0.0.1:1194\"],\"address_check\":[0]}",
         "address_check"},
        {&vt_kind_openvpn,
         "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"openvpn\",\"endpoints\":[\"127.0.0.1:1194\"],\"address_check\":[\"22/udp\"]}",
         "address_check"},
        {&vt_kind_ikev2,
         "{\"id\":\"i\",\"name\":\"i\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"ikev2\",\"endpoints\":[\"127.0.0.1:500\"],\"address_check\":[1e300]}",
         "address_check"},
        {&vt_kind_tor,
         "{\"id\":\"t\",\"name\":\"t\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"tor\",\"endpoints\":[\"127.0.0.1:443\"],\"address_check\":[1,2,3,4,5]}",
         "address_check"},
        {&vt_kind_port,
         "{\"id\":\"u\",\"name\":\"u\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"port\",\"endpoints\":[\"127.0.0.1:53\"],\"address_check\":\"22\"}",
         "address_check"},
        {&vt_kind_port,
         "{\"id\":\"u\",\"name\":\"u\",\"platform\":\"p\",\"category\":\"vpn\",\"kind\":"
         "\"port\",\"endpoints\":[\"127.0.0.1:53\"],\"mimics\":1}",
         "mimics"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = 0;
        assert_null(run_target(loop, cases[i].k, cases[i].json, 0, err, sizeof(err)));
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
    }
    vt_loop_free(loop);
}

/* A failed handshake with "address_check": the listed TCP ports of the same address are
 * connected to, once, and recorded (a listening one succeeds, a closed one is refused). */
static void address_check_after_a_failure(void **state)
{
    vt_loop *loop = new_loop();
    char err[256], json[512];
    int lfd = socket(AF_INET, SOCK_STREAM, 0), ufd = socket(AF_INET, SOCK_DGRAM, 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_true(lfd >= 0 && ufd >= 0 && cfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    int open_port = ntohs(a.sin_port);
    a.sin_port = 0;
    assert_int_equal(bind(ufd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(bind(cfd, (struct sockaddr *)&a, sizeof(a)), 0); /* bound, not listening */
    al = sizeof(a);
    assert_int_equal(getsockname(ufd, (struct sockaddr *)&a, &al), 0);
    int udp_port = ntohs(a.sin_port);
    al = sizeof(a);
    assert_int_equal(getsockname(cfd, (struct sockaddr *)&a, &al), 0);
    int closed_port = ntohs(a.sin_port);
    close(ufd); /* the UDP port is closed now: the handshake is refused */
    snprintf(json, sizeof(json),
             "{\"id\":\"o\",\"name\":\"o\",\"platform\":\"p\",\"category\":\"vpn\","
             "\"kind\":\"openvpn\",\"endpoints\":[\"127.0.0.1:%d\"],"
             "\"address_check\":[%d,\"%d/tcp\"]}",
             udp_port, open_port, closed_port);
    cJSON *tk = run_target(loop, &vt_kind_openvpn, json, 0, err, sizeof(err));
    assert_non_null(tk);
    assert_key_string(tk, "failure", "connection_refused");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(tk, "address_checks");
    assert_int_equal(cJSON_GetArraySize(c), 2);
    const cJSON *c0 = cJSON_GetArrayItem(c, 0), *c1 = cJSON_GetArrayItem(c, 1);
    assert_key_null(c0, "failure");
    assert_key_string(c0, "transport", "tcp");
    assert_key_string(c0, "method", "tcp_connect_only");
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(c0, "port")->valuedouble, open_port);
    assert_key_string(c1, "failure", "connection_refused");
    cJSON_Delete(tk);
    close(lfd);
    close(cfd);
    vt_loop_free(loop);
}

/* Every shipped VPN target is accepted by its kind (no secrets needed); nothing is sent. */
static void shipped_vpn_targets_are_accepted_by_their_kinds(void **state)
{
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/targets/vpn.json", VT_SOURCE_DIR);
    vt_target_list l;
    vt_targets_init(&l);
    if (vt_targets_load_file(&l, path, err, sizeof(err)) < 0) fail_msg("%s", err);
    assert_true(l.n >= 12);
    const vt_kind *all[] = {&vt_kind_openvpn, &vt_kind_wireguard, &vt_kind_ikev2,
                            &vt_kind_tor,     &vt_kind_tlsvpn,    &vt_kind_port};
    vt_config cfg;
    vt_config_defaults(&cfg);
    vt_env env = {.cfg = &cfg};
    int tor = 0, wg = 0;
    for (size_t i = 0; i < l.n; i++) {
        const vt_kind *k = NULL;
        for (size_t j = 0; j < 6; j++)
            if (strcmp(all[j]->name, l.items[i].kind) == 0) k = all[j];
        if (!k) fail_msg("%s: kind %s is not a VPN kind", l.items[i].id, l.items[i].kind);
        vt_task t = {.env = &env, .target = &l.items[i], .kind = k};
        t.test_keys = cJSON_CreateObject();
        if (k->create(&t, err, sizeof(err)) < 0) fail_msg("%s: %s", l.items[i].id, err);
        k->finish(&t);
        cJSON_Delete(t.test_keys);
        tor += strcmp(k->name, "tor") == 0;
        wg += strcmp(k->name, "wireguard") == 0;
    }
    assert_true(tor >= 10); /* the directory authorities */
    assert_true(wg >= 1);
    vt_targets_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openvpn_udp_server_is_reachable_with_rtt),
        cmocka_unit_test(names_are_resolved_once_and_dns_failure_is_its_own_phase),
        cmocka_unit_test(garbage_answers_are_a_handshake_failure),
        cmocka_unit_test(wireguard_with_provisioned_key_authenticates_and_hides_secrets),
        cmocka_unit_test(wireguard_without_provisioned_key_is_inconclusive),
        cmocka_unit_test(ikev2_notify_counts_as_an_answer_on_500_and_natt),
        cmocka_unit_test(udp_port_silence_is_inconclusive_and_closed_port_refused),
        cmocka_unit_test(bad_options_are_refused_with_the_key_named),
        cmocka_unit_test(address_check_after_a_failure),
        cmocka_unit_test(shipped_vpn_targets_are_accepted_by_their_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
