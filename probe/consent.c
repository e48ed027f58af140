/* Informed consent: the probe measures only after its user has read what it does and accepted the
 * risks, once per notice version, recorded in the state directory. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "spool.h"
#include "volunteer.h"

void vt_consent_print_notice(FILE *f)
{
    fprintf(f,
            "\n"
            "vantage-probe: please read this before the first measurement.\n"
            "\n"
            "What it does: it tries to reach social platforms, messaging services, VPN and Tor\n"
            "  endpoints and a few reference sites from this network, the way a browser or app\n"
            "  would (DNS lookups, TCP connections, TLS handshakes, web page downloads), and\n"
            "  works out whether each is blocked, slowed down or fine. When the collector offers\n"
            "  a test server, it also downloads a little data from it naming each platform in\n"
            "  the connection, and asks it for the platforms' addresses: a watcher sees the\n"
            "  platforms' names in these too (about 6 MB a run, see docs/volunteer.md).\n"
            "\n"
            "What it uploads (only when a collector is configured): one measurement per target:\n"
            "  the target, the time, your country and network (AS number, e.g. AS12345, as the\n"
            "  collector sees it), and what happened at each step. Your IP address is never\n"
            "  uploaded: the collector looks up country and network and keeps neither the\n"
            "  address nor anything that names you. Measurements are published as open data.\n"
            "  When the collector cannot be reached, the probe may upload through another\n"
            "  address it named (a CDN, for one), which then sees your address too.\n"
            "\n"
            "The risks: anyone who watches this network (your ISP, employer, government) can see\n"
            "  these connection attempts, and they look like someone trying to reach blocked\n"
            "  services and circumvention tools. Where such access or measuring censorship is\n"
            "  illegal or dangerous, running this probe can expose you to penalties or worse.\n"
            "  Do not run it on a network you do not own or where you are not allowed to,\n"
            "  and do not run it if you are unsure about your situation.\n"
            "\n"
            "You can stop at any time: remove the cron line or disable the timer, and delete the\n"
            "  state directory (it holds measurements not yet uploaded).\n"
            "\n");
}

int vt_consent_recorded(const char *state_dir, char *when, size_t whenlen)
{
    char path[4096], line[256];
    int version = -1;
    if (when && whenlen) when[0] = 0;
    if (!state_dir || snprintf(path, sizeof(path), "%s/consent", state_dir) >= (int)sizeof(path))
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    for (int i = 0; i < 64 && fgets(line, sizeof(line), f); i++) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strncmp(line, "version=", 8)) {
            char *end;
            long v = strtol(line + 8, &end, 10);
            version = (end != line + 8 && !*end && v > 0 && v < 1000000) ? (int)v : -1;
        } else if (!strncmp(line, "date=", 5) && when && whenlen) {
            snprintf(when, whenlen, "%.40s", line + 5);
        }
    }
    fclose(f);
    return version >= VT_CONSENT_VERSION;
}

static int record(const char *state_dir, const char *how, int quiet)
{
    char path[4096], err[512], buf[1024], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!state_dir) {
        fprintf(stderr, "vantage-probe: warning: no state directory, so the acceptance is not "
                        "recorded and will be asked for again\n");
        return 0;
    }
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(buf, sizeof(buf),
                     "# vantage-probe: the risks of running this probe were accepted.\n"
                     "# Delete this file to be asked again.\n"
                     "version=%d\ndate=%s\nhow=%.200s\n",
                     VT_CONSENT_VERSION, ts, how);
    if (vt_state_dir_make(state_dir, err, sizeof(err)) < 0 ||
        snprintf(path, sizeof(path), "%s/consent", state_dir) >= (int)sizeof(path) ||
        vt_spool_write_file_atomic(path, buf, (size_t)n, err, sizeof(err)) < 0) {
        fprintf(stderr, "vantage-probe: warning: cannot record the acceptance in %s: %s\n",
                state_dir, err);
        return 0;
    }
    if (!quiet) fprintf(stderr, "vantage-probe: acceptance recorded in %s\n", path);
    return 0;
}

static int env_accepts(void)
{
    const char *e = getenv("VANTAGE_ACCEPT_RISKS");
    return e && (!strcasecmp(e, "yes") || !strcasecmp(e, "1") || !strcasecmp(e, "true"));
}

const char *vt_consent_accepted_by(const vt_consent_opts *o)
{
    if (o && o->accepted) return o->how ? o->how : "--accept-risks";
    return env_accepts() ? "VANTAGE_ACCEPT_RISKS in the environment" : NULL;
}

int vt_consent_check(const char *state_dir, const vt_consent_opts *o)
{
    if (vt_consent_recorded(state_dir, NULL, 0)) return VT_EXIT_OK;
    const char *how = vt_consent_accepted_by(o);
    if (how) {
        if (!o->quiet)
            fprintf(stderr,
                    "vantage-probe: the risks of measuring from this network were accepted by "
                    "%s (see `vantage-probe consent` for what they are)\n",
                    how);
        return record(state_dir, how, o->quiet);
    }
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr,
                "vantage-probe: not measuring: the risks of running this probe have not been "
                "accepted yet.\n"
                "vantage-probe: read them with `vantage-probe consent`, then run once on a "
                "terminal and type yes,\n"
                "vantage-probe: or pass --accept-risks (or set accept_risks = yes in probe.conf) "
                "for unattended runs.\n");
        return VT_EXIT_NO_CONSENT;
    }
    vt_consent_print_notice(stderr);
    fprintf(stderr, "Type yes to accept these risks and start measuring: ");
    fflush(stderr);
    char answer[64] = "";
    if (!fgets(answer, sizeof(answer), stdin)) answer[0] = 0;
    char *a = answer, *e;
    while (isspace((unsigned char)*a))
        a++;
    e = a + strlen(a);
    while (e > a && isspace((unsigned char)e[-1]))
        *--e = 0;
    if (strcasecmp(a, "yes") != 0) {
        fprintf(stderr, "vantage-probe: not accepted; nothing was measured\n");
        return VT_EXIT_NO_CONSENT;
    }
    return record(state_dir, "typed yes at the prompt", o->quiet);
}
