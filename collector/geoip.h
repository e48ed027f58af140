/* IP address to ASN / country, from the operator's ip-location-db CSV files:
 * `ip_start,ip_end,asn,org` and `ip_start,ip_end,country`, IPv4 and IPv6, addresses written as
 * text or as decimal numbers (the "-num" files), and from MaxMind DB files (GeoLite2, DB-IP,
 * ip-location-db's MMDB). CSV ranges sit in sorted arrays; a lookup is a binary search, and
 * the MMDB files answer what the CSV files do not. Nested or overlapping CSV ranges (in a file or
 * across files): the narrowest range holding the address answers; of identical ranges, the one
 * loaded last. */
#ifndef VANTAGE_COLLECTOR_GEOIP_H
#define VANTAGE_COLLECTOR_GEOIP_H

#include <stddef.h>

typedef struct vt_geoip vt_geoip;

typedef struct vt_geoip_result {
    char cc[3];    /* "ZZ" when unknown */
    char asn[16];  /* "AS0" when unknown */
    char org[128]; /* "" when unknown */
} vt_geoip_result;

vt_geoip *vt_geoip_new(void);
void vt_geoip_free(vt_geoip *g);
/* Each load appends a file's ranges (call again for the IPv6 file). -1 with err naming the file
 * and line on a malformed file (nothing of that file is kept). In an ASN file the organisation,
 * the last field, runs to the end of the line, commas included. */
int vt_geoip_load_asn(vt_geoip *g, const char *path, char *err, size_t errlen);
int vt_geoip_load_country(vt_geoip *g, const char *path, char *err, size_t errlen);
/* A MaxMind DB file (at most 8), memory-mapped until vt_geoip_free: -1 with err when it cannot
 * be opened or is not an MMDB file. Its country.iso_code or country_code, and
 * autonomous_system_number / _organization, answer lookups the CSV files left unanswered; a
 * country that is not two letters, an ASN of 0 and an organisation that is not UTF-8 are not
 * taken. */
int vt_geoip_load_mmdb(vt_geoip *g, const char *path, char *err, size_t errlen);
size_t vt_geoip_mmdb_count(const vt_geoip *g);
/* Looks up an address in text form (IPv4, IPv6, IPv4-mapped IPv6). Always fills r. */
void vt_geoip_lookup(const vt_geoip *g, const char *addr, vt_geoip_result *r);
/* Ranges loaded (as in the files, before nested ones are cut apart). */
size_t vt_geoip_count(const vt_geoip *g, int country);

#endif
