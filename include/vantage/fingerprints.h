/* Blocking fingerprints: DNS answers, blockpage bodies and HTTP headers known to come from
 * censorship equipment. Loads OONI's format (ooni/blocking-fingerprints: name,scope,other_names,
 * location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes)
 * and Citizen Lab's (filtering-annotations dns.csv and http.csv), told apart by the header.
 * See docs/targets.md. */
#ifndef VANTAGE_FINGERPRINTS_H
#define VANTAGE_FINGERPRINTS_H

#include <stddef.h>

typedef enum vt_fp_location {
    VT_FP_DNS,    /* an address (or name) in a DNS answer */
    VT_FP_BODY,   /* the HTTP response body */
    VT_FP_HEADER, /* an HTTP response header value */
} vt_fp_location;

typedef enum vt_fp_pattern_type {
    VT_FP_FULL,     /* equal (DNS: case-insensitive) */
    VT_FP_PREFIX,   /* starts with */
    VT_FP_CONTAINS, /* contains, case-sensitive */
    VT_FP_REGEXP,   /* POSIX extended regexp translated from OONI's RE2 syntax */
} vt_fp_pattern_type;

typedef struct vt_fp {
    char *name;        /* "ooni.pk_1" */
    char *scope;       /* nat, isp, prod, inst, vbw, fp, injb, ... */
    char *other_names; /* as in the file, may be "" */
    vt_fp_location location;
    char *header_name; /* lowercased, for VT_FP_HEADER; NULL: any header (Citizen Lab "header") */
    vt_fp_pattern_type pattern_type;
    char *pattern;
    size_t pattern_len;
    int confidence_no_fp;
    char **expected_countries; /* upper-case ISO codes */
    size_t n_expected_countries;
    char *source; /* the file's source column: "ooni", "censored planet", ... */
    char *exp_url;
    char *notes;
    char *origin; /* "fingerprints.csv:12", for messages */
    void *re;     /* private: compiled regexp */
} vt_fp;

typedef struct vt_fp_index vt_fp_index; /* private: body "contains" index */

typedef struct vt_fp_set {
    vt_fp *items;
    size_t n, cap;
    size_t n_skipped; /* rows left out with a warning (regexps that do not compile here) */
    char **warnings;  /* one message per skipped row, "file:line: name: why" */
    size_t n_warnings;
    vt_fp_index *index; /* rebuilt lazily after a load */
} vt_fp_set;

void vt_fp_init(vt_fp_set *s);
void vt_fp_free(vt_fp_set *s);
/* Appends the fingerprints of a CSV file in either format. Returns the number of rows added, or
 * -1 with err naming file:line and the problem (and nothing appended). Rows whose regexp cannot
 * be compiled are skipped and counted in n_skipped with a message in warnings. */
int vt_fp_load(vt_fp_set *s, const char *path, char *err, size_t errlen);
/* The same from memory; name is used in messages. */
int vt_fp_load_csv(vt_fp_set *s, const char *csv, size_t len, const char *name, char *err,
                   size_t errlen);

/* Appends the shipped list (fingerprints.csv beside the shipped target lists,
 * vt_targets_default_dir). 0 when there is none (an install without it), else as vt_fp_load. */
int vt_fp_load_shipped(vt_fp_set *s, char *err, size_t errlen);

/* The first fingerprint (in load order) that matches, or NULL. */
const vt_fp *vt_fp_match_dns(const vt_fp_set *s, const char *addr);
const vt_fp *vt_fp_match_body(const vt_fp_set *s, const void *body, size_t len);
const vt_fp *vt_fp_match_header(const vt_fp_set *s, const char *name, const char *value);
/* OONI's rule: a match confirms blocking when the scope is nat or isp, or when probe_cc is one
 * of the fingerprint's expected countries. */
int vt_fp_confirms(const vt_fp *fp, const char *probe_cc);
const vt_fp *vt_fp_find(const vt_fp_set *s, const char *name);

#endif
