/* Trusted reverse proxies and X-Forwarded-For (proxy.h). */
#include "proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROXIES 64
#define ENTRY_MAX 64 /* longer than any address text, brackets included */

typedef struct net {
    unsigned char a[16]; /* IPv4 in the first 4 bytes */
    int v6, bits;
} net;

struct vt_proxies {
    net n[MAX_PROXIES];
    int count;
};

/* Text to address; IPv4-mapped IPv6 becomes IPv4. */
static int parse_addr(const char *s, net *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->a) == 1) {
        out->bits = 32;
        return 0;
    }
    unsigned char b[16];
    if (inet_pton(AF_INET6, s, b) != 1) return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, 12) == 0) {
        memcpy(out->a, b + 12, 4);
        out->bits = 32;
        return 0;
    }
    memcpy(out->a, b, 16);
    out->v6 = 1;
    out->bits = 128;
    return 0;
}

static int in_net(const net *n, const net *x)
{
    if (n->v6 != x->v6) return 0;
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->a, x->a, (size_t)full) != 0) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->a[full] & mask) == (x->a[full] & mask);
}

static int contains(const vt_proxies *p, const net *x)
{
    for (int i = 0; p && i < p->count; i++)
        if (in_net(&p->n[i], x)) return 1;
    return 0;
}

/* s[0..len) without the spaces and tabs around it, NUL-terminated into e (ENTRY_MAX bytes):
 * -1 when nothing is left or it is too long for an address. */
static int trimmed(const char *s, size_t len, char e[ENTRY_MAX])
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= ENTRY_MAX) return -1;
    memcpy(e, s, len);
    e[len] = 0;
    return 0;
}

vt_proxies *vt_proxies_parse(const char *list, char *err, size_t errlen)
{
    vt_proxies *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *s = list ? list : "";
    for (;;) {
        size_t len = strcspn(s, ",");
        const char *next = s + len;
        char e[ENTRY_MAX];
        if (trimmed(s, len, e) < 0) goto bad;
        char *slash = strchr(e, '/');
        long bits = -1;
        if (slash) {
            char *end;
            *slash = 0;
            bits = strtol(slash + 1, &end, 10);
            if (!isdigit((unsigned char)slash[1]) || *end) bits = -2;
        }
        net n;
        if (parse_addr(e, &n) < 0 || bits == -2 || bits > n.bits) goto bad;
        if (bits >= 0) n.bits = (int)bits;
        if (p->count == MAX_PROXIES) {
            snprintf(err, errlen, "--trusted-proxy: at most %d entries", MAX_PROXIES);
            goto fail;
        }
        p->n[p->count++] = n;
        if (*next != ',') break;
        s = next + 1; /* and an entry must follow */
        continue;
    bad:
        if (strspn(s, " \t") >= len)
            snprintf(err, errlen, "--trusted-proxy: an empty entry in '%.64s'", list ? list : "");
        else
            snprintf(err, errlen, "--trusted-proxy: '%.*s' is not an address or ADDR/PREFIX",
                     (int)(len < 64 ? len : 64), s);
        goto fail;
    }
    return p;
fail:
    free(p);
    return NULL;
}

void vt_proxies_free(vt_proxies *p)
{
    free(p);
}

int vt_proxies_contains(const vt_proxies *p, const char *addr)
{
    net x;
    return addr && parse_addr(addr, &x) == 0 && contains(p, &x);
}

static int is_port(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= 5 && !s[n] && atoi(s) <= 65535;
}

static void canonical(const net *x, char *out, size_t n)
{
    if (!inet_ntop(x->v6 ? AF_INET6 : AF_INET, x->a, out, (socklen_t)n) && n) out[0] = 0;
}

/* One X-Forwarded-For entry, trimmed: "ADDR", "[v6]", or with the client's port as some proxies
 * write it ("1.2.3.4:5678", "[v6]:5678"; the port is dropped); -1 when not an address. */
static int parse_entry(const char *s, size_t len, net *out)
{
    char e[ENTRY_MAX];
    if (trimmed(s, len, e) < 0) return -1;
    if (e[0] == '[') {
        char *close = strchr(e, ']');
        if (!close || (close[1] && (close[1] != ':' || !is_port(close + 2)))) return -1;
        *close = 0;
        return parse_addr(e + 1, out);
    }
    char *colon = strchr(e, ':');
    if (colon && !strchr(colon + 1, ':') && is_port(colon + 1)) *colon = 0; /* IPv4:port */
    return parse_addr(e, out);
}

int vt_proxies_client(const vt_proxies *p, const char *peer, const char *xff, char *out, size_t n)
{
    net hop;
    if (n) out[0] = 0;
    if (!peer || parse_addr(peer, &hop) < 0) return 0;
    canonical(&hop, out, n);
    if (!p || !xff || !contains(p, &hop)) return 0;
    /* From the right: every trusted hop passes the word on to the entry left of it. */
    size_t end = strlen(xff);
    int from_header = 0;
    for (;;) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        net x;
        if (parse_entry(xff + start, end - start, &x) < 0) break; /* stays at the last hop */
        hop = x;
        from_header = 1;
        if (!contains(p, &x) || start == 0) break;
        end = start - 1;
    }
    canonical(&hop, out, n);
    return from_header;
}
