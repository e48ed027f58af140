/* The probe's INI configuration file, parsed with libinih. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sni_checks.h"
#include "vantage/addr.h"
#include "vantage/tcp.h"

static const char *const known_keys[] = {
    "collector_url",  "collector_cacert", "upload_token", "targets", "categories",
    "concurrency",    "timeout",          "state_dir",    "upload",  "accept_risks",
    "cacert",         "resolver",         "jitter",       "quiet",   "sni_test",
    "sni_test_every",
};
#define N_KEYS (sizeof(known_keys) / sizeof(known_keys[0]))

typedef struct parse_ctx {
    vt_probe_conf *c;
    const char *path;
    char dir[4096]; /* the file's directory, for relative paths */
    FILE *f;
    int lineno;
    int too_long; /* first line longer than the buffer */
    int nul_line; /* first line holding a NUL byte */
    int err_line; /* first error the handler found, 0: none */
    char err[1024];
    /* The line being parsed: where its text starts in inih's buffer, after any indentation.
     * inih (INI_ALLOW_MULTILINE, on by default) takes an indented line as a continuation of
     * the previous key's value and passes exactly that text as the value. */
    const char *line_text;
    int line_indented;
} parse_ctx;

void vt_probe_conf_init(vt_probe_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->concurrency = c->timeout = c->upload = c->accept_risks = c->jitter = c->quiet = -1;
    c->sni_test_every = -1;
}

void vt_probe_conf_free(vt_probe_conf *c)
{
    free(c->collector_url);
    free(c->collector_cacert);
    free(c->upload_token);
    free(c->categories);
    free(c->state_dir);
    free(c->cacert);
    free(c->resolver);
    free(c->sni_test);
    for (size_t i = 0; i < c->n_targets; i++)
        free(c->targets[i]);
    vt_probe_conf_init(c);
}

/* Reads one physical line; a line longer than the buffer, or holding a NUL byte (fgets and
 * strlen would stop there and take the rest for the next line), is noted and read as empty. */
static char *reader(char *str, int num, void *stream)
{
    parse_ctx *p = stream;
    int ch = fgetc(p->f), over = 0, nul = 0;
    size_t n = 0;
    if (ch == EOF) return NULL;
    p->lineno++;
    for (; ch != EOF; ch = fgetc(p->f)) {
        if (n + 1 < (size_t)num)
            str[n++] = (char)ch;
        else
            over = 1;
        nul |= ch == 0;
        if (ch == '\n') break;
    }
    str[n] = 0;
    if (over || nul) {
        if (over && !p->too_long) p->too_long = p->lineno;
        if (nul && !over && !p->nul_line) p->nul_line = p->lineno;
        str[0] = 0; /* parsed as an empty line */
        return str;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)str[i] < 0x20 && str[i] != '\n' && str[i] != '\r' && str[i] != '\t')
            str[i] = ' '; /* control bytes never reach a value */
    const char *t = str;
    while (*t && isspace((unsigned char)*t))
        t++;
    p->line_text = t;
    p->line_indented = t > str && *t;
    return str;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[32], cur[32];
    if (la >= 31 || lb >= 31) return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

static const char *suggest(const char *key)
{
    char norm[64];
    size_t i = 0;
    for (; key[i] && i < sizeof(norm) - 1; i++)
        norm[i] = key[i] == '-' ? '_' : (char)tolower((unsigned char)key[i]);
    norm[i] = 0;
    const char *best = NULL;
    size_t bd = 3;
    for (size_t k = 0; k < N_KEYS; k++) {
        size_t d = edit_distance(norm, known_keys[k]);
        if (d < bd) {
            bd = d;
            best = known_keys[k];
        }
    }
    return best;
}

__attribute__((format(printf, 3, 4))) static int fail(parse_ctx *p, const char *key,
                                                      const char *fmt, ...)
{
    if (p->err_line) return 0;
    p->err_line = p->lineno;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(p->err, sizeof(p->err), "%s:%d: %.64s: %s", p->path, p->lineno, key, what);
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_range(const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) return -1;
    *out = (int)n;
    return 0;
}

static int set_string(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s) return -1;
    free(*dst);
    *dst = s;
    return 0;
}

/* A path value, relative to the config file's directory. "~/..." is the home directory, as in a
 * shell: taken as relative, state_dir = ~/vantage-state was a directory named "~" beside the
 * config file, made without a word. 1: "~" and no HOME to put in its place. */
static int set_path(parse_ctx *p, char **dst, const char *v)
{
    char buf[8192];
    if (v[0] == '~' && (v[1] == '/' || !v[1])) {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') return 1;
        if (snprintf(buf, sizeof(buf), "%s%s", home, v + 1) >= (int)sizeof(buf)) return -1;
        return set_string(dst, buf);
    }
    if (v[0] == '/' || !p->dir[0]) return set_string(dst, v);
    if (snprintf(buf, sizeof(buf), "%s/%s", p->dir, v) >= (int)sizeof(buf)) return -1;
    return set_string(dst, buf);
}

/* append: a continuation line adds to the files named so far instead of replacing them. */
static int set_targets(parse_ctx *p, const char *key, const char *v, int append)
{
    vt_probe_conf *c = p->c;
    char *copy = strdup(v), *save = NULL;
    char *list[VT_CONF_MAX_TARGETS] = {0};
    size_t n0 = append ? c->n_targets : 0, n = n0;
    int ok = copy != NULL, rc;
    memcpy(list, c->targets, n0 * sizeof(*list));
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; ok && tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*tok) continue;
        if (n == VT_CONF_MAX_TARGETS) {
            fail(p, key, "at most %d target files", VT_CONF_MAX_TARGETS);
            ok = 0;
        } else if ((rc = set_path(p, &list[n], tok)) != 0) {
            if (rc > 0)
                fail(p, key, "'%.64s': ~ stands for the home directory, and HOME is not set", tok);
            else
                fail(p, key, "path too long or out of memory");
            ok = 0;
        } else {
            n++;
        }
    }
    if (ok && n == n0) {
        fail(p, key, "no file named");
        ok = 0;
    }
    free(copy);
    if (!ok) {
        for (size_t i = n0; i < n; i++)
            free(list[i]);
        return 0;
    }
    for (size_t i = 0; !append && i < c->n_targets; i++)
        free(c->targets[i]);
    memcpy(c->targets, list, sizeof(list));
    c->n_targets = n;
    return 1;
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *p = user;
    vt_probe_conf *c = p->c;
    if (p->err_line) return 1; /* report the first problem only */
    if (section[0] && strcmp(section, "probe") != 0)
        return fail(p, key, "is in section [%.64s]; keys go at the top or under [probe]", section);
    /* "key = value  # note": the sample file says "#" starts a comment, and inih only knows
     * ";" at the end of a line. Kept, the note would silently become part of a path or the
     * upload token (state_dir = /var/lib/vantage  # mine), so " #" ends the value like " ;". */
    char vbuf[INI_MAX_LINE];
    snprintf(vbuf, sizeof(vbuf), "%s", value);
    for (char *h = strchr(vbuf, '#'); h; h = strchr(h + 1, '#'))
        if (h > vbuf && isspace((unsigned char)h[-1])) {
            *h = 0;
            break;
        }
    for (size_t n = strlen(vbuf); n > 0 && isspace((unsigned char)vbuf[n - 1]);)
        vbuf[--n] = 0;
    if (!vbuf[0]) return fail(p, key, "has no value");
    const char *v = vbuf;
    /* An indented line: inih hands it over as the previous key again, with the whole line as
     * the value. Setting the key again would silently replace what the line above said. */
    if (p->line_indented && value == p->line_text) {
        int list = !strcmp(key, "targets") || !strcmp(key, "categories");
        if (!list)
            return fail(p, key,
                        "the indented line '%.64s' would continue this key's value; only targets "
                        "and categories continue on indented lines: start each key at the "
                        "beginning of its line",
                        v);
        if (strchr(v, '='))
            return fail(p, key,
                        "the indented line '%.64s' looks like a key: start each key at the "
                        "beginning of its line (an indented line continues the list above)",
                        v);
        if (!strcmp(key, "targets")) return set_targets(p, key, v, 1);
        size_t ol = strlen(c->categories), vl = strlen(v);
        char *joined = malloc(ol + vl + 3);
        if (!joined) return fail(p, key, "out of memory");
        snprintf(joined, ol + vl + 3, "%s, %s", c->categories, v);
        free(c->categories);
        c->categories = joined;
        return 1;
    }
    int *num = NULL;
    long lo = 0, hi = 0;
    char **str = NULL;
    int is_path = 0;

    if (!strcmp(key, "collector_url"))
        str = &c->collector_url;
    else if (!strcmp(key, "collector_cacert"))
        str = &c->collector_cacert, is_path = 1;
    else if (!strcmp(key, "upload_token"))
        str = &c->upload_token;
    else if (!strcmp(key, "categories"))
        str = &c->categories;
    else if (!strcmp(key, "state_dir"))
        str = &c->state_dir, is_path = 1;
    else if (!strcmp(key, "cacert"))
        str = &c->cacert, is_path = 1;
    else if (!strcmp(key, "resolver"))
        str = &c->resolver;
    else if (!strcmp(key, "sni_test"))
        str = &c->sni_test;
    else if (!strcmp(key, "targets"))
        return set_targets(p, key, v, 0);
    else if (!strcmp(key, "concurrency"))
        num = &c->concurrency, lo = 1, hi = 1000;
    else if (!strcmp(key, "timeout"))
        num = &c->timeout, lo = 1, hi = 600;
    else if (!strcmp(key, "jitter"))
        num = &c->jitter, lo = 0, hi = VT_CONF_MAX_JITTER;
    else if (!strcmp(key, "sni_test_every"))
        num = &c->sni_test_every, lo = 0, hi = VT_CONF_MAX_SNI_EVERY;
    else if (!strcmp(key, "upload") || !strcmp(key, "accept_risks") || !strcmp(key, "quiet")) {
        int b;
        if (parse_bool(v, &b) < 0) return fail(p, key, "wants yes or no, not '%.64s'", v);
        if (!strcmp(key, "upload"))
            c->upload = b;
        else if (!strcmp(key, "quiet"))
            c->quiet = b;
        else {
            c->accept_risks = b;
            snprintf(c->accept_risks_from, sizeof(c->accept_risks_from), "%s:%d", p->path,
                     p->lineno);
        }
        return 1;
    } else {
        const char *s = suggest(key);
        char msg[128];
        if (s)
            snprintf(msg, sizeof(msg), "unknown key (did you mean %s?)", s);
        else
            snprintf(msg, sizeof(msg), "unknown key");
        return fail(p, key, "%s", msg);
    }

    if (num) {
        if (parse_range(v, lo, hi, num) < 0) {
            return fail(p, key, "wants a whole number %ld..%ld, not '%.64s'", lo, hi, v);
        }
        return 1;
    }
    if (!strcmp(key, "sni_test") && strcmp(v, "no") != 0 && vt_probe_sni_test_check(v) < 0)
        return fail(p, key, "wants HOST:PORT or no, not '%.64s'", v);
    if (!strcmp(key, "resolver") && vt_probe_resolver_check(v) < 0)
        return fail(p, key, "wants IP or IP:PORT ([IPv6]:PORT), not '%.64s'", v);
    if (!strcmp(key, "collector_url") && vt_url_check_secure("collector_url", v, NULL, 0) < 0)
        return fail(p, key, "wants an https:// URL (plain http only to loopback), not '%.64s'", v);
    int rc = is_path ? set_path(p, str, v) : set_string(str, v);
    if (rc > 0)
        return fail(p, key, "'%.64s': ~ stands for the home directory, and HOME is not set", v);
    if (rc < 0) return fail(p, key, "path too long or out of memory");
    return 1;
}

static const char *system_conf_path(void)
{
    const char *sys = getenv("VANTAGE_SYSTEM_CONFIG");
    return sys && *sys ? sys : VT_CONF_SYSTEM_PATH;
}

/* The system file is read by the systemd unit's own user (DynamicUser): it must stay readable by
 * all, and the upload token belongs in the unit's environment file, which only systemd reads. */
#define SYSTEM_TOKEN_HINT                                                                          \
    "the systemd unit's user must read this file (mode 0644): keep the upload token in "           \
    "/etc/vantage/probe.env (VANTAGE_UPLOAD_TOKEN=..., mode 0600) instead"

static void note_file(char *list, size_t n, const char *path)
{
    size_t l = strlen(list);
    if (l < n) snprintf(list + l, n - l, "%s%s", l ? ", " : "", path);
}

int vt_probe_conf_load_file(vt_probe_conf *c, const char *path, int must_exist, char *err,
                            size_t errlen)
{
    parse_ctx p;
    memset(&p, 0, sizeof(p));
    p.c = c;
    p.path = path;
    note_file(c->files_looked, sizeof(c->files_looked), path);
    p.f = fopen(path, "r");
    if (!p.f) {
        int e = errno;
        if (!must_exist && e == ENOENT) return 1;
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(e));
        /* chmod 600 on /etc/vantage/probe.conf (to hide the token in it) stops every run of the
         * systemd unit, and of every user but root: say so. */
        size_t n = strlen(err);
        if (e == EACCES && !strcmp(path, system_conf_path()) && n < errlen)
            snprintf(err + n, errlen - n, " (this probe runs as uid %lu; %s)",
                     (unsigned long)geteuid(), SYSTEM_TOKEN_HINT);
        return -1;
    }
    struct stat dst;
    if (fstat(fileno(p.f), &dst) == 0 && S_ISDIR(dst.st_mode)) {
        fclose(p.f);
        snprintf(err, errlen, "cannot read config file %s: is a directory", path);
        return -1;
    }
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof(p.dir))
        snprintf(p.dir, sizeof(p.dir), "%.*s", (int)(slash - path), path);
    if (slash == path) snprintf(p.dir, sizeof(p.dir), "/");
    char *token_before = c->upload_token;
    int rc = ini_parse_stream(reader, &p, handler, &p);
    int io_error = ferror(p.f);
    struct stat st;
    if (c->upload_token != token_before && fstat(fileno(p.f), &st) == 0 && (st.st_mode & 0044))
        fprintf(stderr,
                "vantage-probe: warning: %s holds upload_token and others can read it; %s\n", path,
                !strcmp(path, system_conf_path()) ? SYSTEM_TOKEN_HINT
                                                  : "chmod 600 it or use VANTAGE_UPLOAD_TOKEN");
    fclose(p.f);
    if (io_error) {
        snprintf(err, errlen, "cannot read config file %s", path);
        return -1;
    }
    /* The earliest problem wins: a syntax error inih found, a too-long line, or a bad key. */
    int first = p.err_line;
    if (p.too_long && (!first || p.too_long < first) && (!p.nul_line || p.too_long < p.nul_line)) {
        snprintf(err, errlen,
                 "%s:%d: line longer than %d bytes (a long targets or categories list continues "
                 "on indented lines)",
                 path, p.too_long, INI_MAX_LINE - 2);
        return -1;
    }
    if (p.nul_line && (!first || p.nul_line < first)) {
        snprintf(err, errlen, "%s:%d: the line holds a NUL byte (a binary file?)", path,
                 p.nul_line);
        return -1;
    }
    if (rc > 0 && (!first || rc < first)) {
        snprintf(err, errlen, "%s:%d: not a 'key = value' line or a [section]", path, rc);
        return -1;
    }
    if (first) {
        snprintf(err, errlen, "%s", p.err);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot read config file %s: out of memory", path);
        return -1;
    }
    note_file(c->files_read, sizeof(c->files_read), path);
    return 0;
}

int vt_probe_resolver_check(const char *s)
{
    /* The forms vt_dns_new_udp (lib/dns.c) takes: "IP", "IP:PORT", "[IPv6]:PORT", a bare IPv6
     * address. */
    unsigned char a[16];
    char host[INET6_ADDRSTRLEN + 2];
    int port;
    if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1) return 0;
    if (vt_split_host_port(s, host, sizeof(host), &port) == 0 &&
        (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1))
        return 0;
    return -1;
}

int vt_probe_conf_load(vt_probe_conf *c, const char *explicit_path, char *err, size_t errlen)
{
    char user[4096];
    const char *sys = system_conf_path();
    if (vt_probe_conf_load_file(c, sys, 0, err, errlen) < 0) return -1;
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n = -1;
    if (xdg && xdg[0] == '/')
        n = snprintf(user, sizeof(user), "%s/vantage/probe.conf", xdg);
    else if (home && home[0] == '/')
        n = snprintf(user, sizeof(user), "%s/.config/vantage/probe.conf", home);
    if (n > 0 && n < (int)sizeof(user) && vt_probe_conf_load_file(c, user, 0, err, errlen) < 0)
        return -1;
    if (explicit_path && vt_probe_conf_load_file(c, explicit_path, 1, err, errlen) < 0) return -1;
    return 0;
}

const char *vt_probe_conf_arg(int argc, char **argv)
{
    const char *found = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--config"))
            found = i + 1 < argc ? argv[++i] : "";
        else if (!strncmp(argv[i], "--config=", 9))
            found = argv[i] + 9;
    }
    return found;
}

void vt_probe_conf_apply(const vt_probe_conf *c, vt_config *cfg, vt_upload_opts *up)
{
    if (c->concurrency > 0) cfg->concurrency = c->concurrency;
    if (c->timeout > 0) {
        cfg->dns_timeout_ms = cfg->connect_timeout_ms = cfg->tls_timeout_ms = c->timeout * 1000;
        cfg->http_timeout_ms = 3 * c->timeout * 1000;
    }
    if (c->cacert) cfg->cacert = c->cacert;
    if (c->resolver) cfg->resolver = c->resolver;
    if (c->sni_test) cfg->sni_test = strcmp(c->sni_test, "no") ? c->sni_test : "";
    if (c->state_dir) up->state_dir = c->state_dir;
    if (c->collector_url) up->collector = c->collector_url;
    if (c->collector_cacert) up->cacert = c->collector_cacert;
    if (c->upload_token && !up->token) /* VANTAGE_UPLOAD_TOKEN in the environment wins */
        up->token = c->upload_token;
    if (c->upload >= 0) up->disabled = !c->upload;
}

/* "no target is in category "x"; there are: a b c": each category once, as long as err holds
 * them. Only the names already listed are compared with, so this stays linear in the list. */
static void no_such_category(const vt_target_list *l, const char *tok, char *err, size_t errlen)
{
    enum { MAX_NAMED = 64 };
    const char *named[MAX_NAMED];
    size_t n_named = 0;
    int n = snprintf(err, errlen, "no target is in category \"%.64s\"; there are:", tok);
    for (size_t i = 0; i < l->n && n > 0 && (size_t)n < errlen && n_named < MAX_NAMED; i++) {
        const char *c = l->items[i].category;
        int seen = 0;
        for (size_t j = 0; j < n_named && !seen; j++)
            seen = !strcmp(named[j], c);
        if (seen) continue;
        named[n_named++] = c;
        n += snprintf(err + n, errlen - (size_t)n, " %s", c);
    }
}

int vt_probe_filter_categories(vt_target_list *l, const char *csv, int keep_canaries, char *err,
                               size_t errlen)
{
    int rc = -1;
    char *copy = strdup(csv ? csv : ""), *save = NULL;
    unsigned char *keep = calloc(l->n ? l->n : 1, 1);
    if (!copy || !keep) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < l->n; i++)
        keep[i] = keep_canaries && !strcmp(l->items[i].category, "canary");
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*tok) continue;
        int any = 0;
        for (size_t i = 0; i < l->n; i++)
            if (!strcmp(l->items[i].category, tok)) keep[i] = 1, any = 1;
        if (!any) {
            no_such_category(l, tok, err, errlen);
            goto done;
        }
    }
    /* Straight from keep[]: going through a list of ids and looking each one up was quadratic
     * (70000 Citizen Lab rows: 16 s). */
    vt_targets_keep(l, keep);
    rc = 0;
done:
    free(copy);
    free(keep);
    return rc;
}
