/* The probe's INI configuration file (docs/man/probe.conf.5).
 *
 * Read in this order, later files overriding earlier ones, command-line flags overriding all:
 *   /etc/vantage/probe.conf (or $VANTAGE_SYSTEM_CONFIG, for tests and packagers)
 *   $XDG_CONFIG_HOME/vantage/probe.conf (else $HOME/.config/vantage/probe.conf)
 *   --config FILE
 * A missing system or user file is fine; a missing --config file is an error. A bad line, an
 * unknown key or a bad value is an error naming the file, the line and the key. */
#ifndef VANTAGE_PROBE_CONFIG_H
#define VANTAGE_PROBE_CONFIG_H

#include <stddef.h>

#include "upload.h"
#include "vantage/config.h"
#include "vantage/targets.h"

#define VT_CONF_MAX_TARGETS 32
#define VT_CONF_MAX_JITTER 3600   /* seconds */
#define VT_CONF_MAX_SNI_EVERY 720 /* hours (30 days) */
#define VT_CONF_SYSTEM_PATH "/etc/vantage/probe.conf"

typedef struct vt_probe_conf {
    /* Strings are owned (NULL: not set). Relative paths are resolved against the file's
     * directory. */
    char *collector_url, *collector_cacert, *upload_token, *categories, *state_dir, *cacert,
        *resolver, *sni_test; /* sni_test: "HOST:PORT" or "no" */
    char *targets[VT_CONF_MAX_TARGETS];
    size_t n_targets; /* 0: not set */
    /* -1: not set */
    int concurrency, timeout, upload, accept_risks, jitter, quiet;
    int sni_test_every;          /* hours between two runs' SNI test downloads; 0: every run */
    char accept_risks_from[512]; /* "file:line" that set accept_risks */
    /* The files read and the ones looked for, ", "-separated (cut when long): where a setting
     * that is missing was not found (sudo reads root's ~/.config, not the volunteer's). */
    char files_read[1024], files_looked[1024];
} vt_probe_conf;

void vt_probe_conf_init(vt_probe_conf *c);
void vt_probe_conf_free(vt_probe_conf *c);

/* Reads one file into c (later keys override). must_exist: a missing file is an error (else it
 * is skipped and 1 is returned). Returns 0 read, 1 skipped, -1 with err "file:line: key: ...". */
int vt_probe_conf_load_file(vt_probe_conf *c, const char *path, int must_exist, char *err,
                            size_t errlen);
/* The whole search order above; explicit is --config's FILE or NULL. */
int vt_probe_conf_load(vt_probe_conf *c, const char *explicit_path, char *err, size_t errlen);

/* The value of --config FILE / --config=FILE in argv (after the subcommand), else NULL.
 * Returns "" for a --config without a value (a usage error). */
const char *vt_probe_conf_arg(int argc, char **argv);

/* 0 when s is a resolver address vt_dns_new_udp takes (IP, IP:PORT, [IPv6]:PORT), else -1: a bad
 * one is a configuration error, not a failed run. */
int vt_probe_resolver_check(const char *s);

/* Copies the settings found into cfg and up (strings point into c, which must outlive them). */
void vt_probe_conf_apply(const vt_probe_conf *c, vt_config *cfg, vt_upload_opts *up);

/* Keeps the targets whose category is in the comma-separated list, and the canaries when
 * keep_canaries (verdicts need them). A category no target has is an error naming the ones there
 * are. */
int vt_probe_filter_categories(vt_target_list *l, const char *csv, int keep_canaries, char *err,
                               size_t errlen);

#endif
