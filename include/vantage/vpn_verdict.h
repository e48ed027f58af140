/* The VPN kinds' evidence across a run (lib/vpn_verdict.c; the rules in docs/methodology.md).
 *
 * A failed VPN handshake alone cannot say whether the address, the port or the protocol is
 * blocked, or whether the server is down. Other measurements of the same run can: another port
 * of the same address answered (the host is up), the same port answered at other addresses or
 * failed at addresses that are up, the same address:port carried other traffic, a look-alike of
 * the protocol's first message went unanswered where another datagram was answered. The runner
 * holds the measurements of the VPN kinds (openvpn, wireguard, ikev2, tor, tlsvpn, port) until
 * every one of them is over, then calls vt_vpn_gather once on all of them: each failed one gets
 * "vpn_evidence" in its test_keys, which vt_verdict_decide turns into verdict and "blocking". */
#ifndef VANTAGE_VPN_VERDICT_H
#define VANTAGE_VPN_VERDICT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "targets.h"

/* Entries kept in each evidence list. */
#define VT_VPN_EVIDENCE_MAX 8

/* 1 for the kinds whose verdict uses the run's other VPN measurements. */
int vt_vpn_verdict_kind(const char *kind);

typedef struct vt_vpn_item {
    const vt_target *target; /* its id names the evidence; its options (payload_hex, mimics) */
    cJSON *test_keys;        /* after the kind's finish; gets "vpn_evidence" when it failed */
} vt_vpn_item;

/* The post-pass over one run's VPN measurements. Adds to each failed measurement's test_keys
 * (not reachable, a failure in phase tcp/tls/handshake, no inconclusive_reason of its own):
 *   "vpn_evidence": {address, port, transport, protocol,  the failed handshake
 *                    replied, connected,                  what came back from it
 *                    same_port, address_up, port_elsewhere, port_failed_up, mimic_blocked:
 *                      arrays of "target-id ip:port/transport" strings (the evidence),
 *                    address_silent, ports_tried_at_address,
 *                    control_input: "ip:port" (a TCP port of that address for the control
 *                      endpoint, only when the run's evidence cannot decide) or null}
 * Hostile or odd test_keys are skipped, never trusted. */
void vt_vpn_gather(vt_vpn_item *items, size_t n);

#endif
