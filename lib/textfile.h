/* Reading small text files (target lists, CSVs, fingerprints) with a size cap, and turning byte
 * offsets into line:column for messages. Internal to libvantage. */
#ifndef VANTAGE_TEXTFILE_H
#define VANTAGE_TEXTFILE_H

#include <stddef.h>

/* Default cap for every text file the library reads. */
#define VT_TEXTFILE_MAX (8u * 1024u * 1024u)

/* Reads the whole file into a malloc'd, NUL-terminated buffer (*data, *len without the NUL).
 * Fails with a message naming the path on a missing, unreadable or larger-than-max file. */
int vt_textfile_read(const char *path, size_t max, char **data, size_t *len, char *err,
                     size_t errlen);
/* 1-based line and column (in bytes) of offset in data. */
void vt_textfile_position(const char *data, size_t len, size_t offset, size_t *line, size_t *col);
/* Offset of the first byte that is not valid UTF-8 (or is NUL), or len when all is valid. */
size_t vt_textfile_utf8_invalid(const unsigned char *s, size_t len);
/* Last path component without a trailing extension: "lists/pk.csv" -> "pk". */
void vt_textfile_stem(const char *path, char *out, size_t outlen);
/* Last path component: "lists/pk.csv" -> "pk.csv" (a pointer into path). */
const char *vt_textfile_basename(const char *path);
/* Where the project's data lies (target lists, the dashboard), into buf: env when non-empty;
 * else the first <dir>/<src> holding <marker>, for dir the executable's directory and up to
 * `up` levels above it (a source tree and its build directory); else <exe dir>/../share/vantage/
 * <installed> holding <marker> (a relocated install: make install PREFIX=X, DESTDIR); else
 * <datadir>/<installed> (the configured prefix). Returns buf. */
const char *vt_data_dir(const char *env, const char *src, const char *installed, const char *marker,
                        int up, const char *datadir, char *buf, size_t n);

#endif
