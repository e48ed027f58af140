/* The probe's spool: one durable file per measurement, kept until the collector acknowledged it.
 *
 * Layout under the state directory (created 0700):
 *   spool/<uid>.json            a measurement that counts as taken (fsync'd, atomically renamed)
 *   spool/tmp/<uid>.json.tmp    being written; leftovers of a crash are removed on open
 *   spool/rejected/<uid>.json   refused by the collector, never retried, kept for a person (the
 *                               first VT_SPOOL_REJECTED_MAX_COUNT; later ones are deleted)
 *   spool/rejected/<uid>.reason why (the collector's words)
 *   spool/damaged/<name>        found in spool/ but not a measurement that can be sent (cut short,
 *   spool/damaged/<name>.reason  not JSON, a stranger's file): kept for a person, never sent
 */
#ifndef VANTAGE_PROBE_SPOOL_H
#define VANTAGE_PROBE_SPOOL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VT_SPOOL_UID_MAX 64              /* [A-Za-z0-9_-]{1,64}; measurement uids are 32 hex */
#define VT_SPOOL_FILE_MAX (16u << 20)    /* a spooled file larger than this is corrupt */
#define VT_SPOOL_DEFAULT_MAX_COUNT 50000 /* cap on spooled measurements */
#define VT_SPOOL_DEFAULT_MAX_BYTES (512ull << 20)
/* spool/rejected/ keeps at most this many refused measurements (or bytes): a collector that
 * refuses everything for months would otherwise fill the disk with copies nobody can send. */
#define VT_SPOOL_REJECTED_MAX_COUNT 1000
#define VT_SPOOL_REJECTED_MAX_BYTES (64ull << 20)

/* Status codes (negative). */
enum {
    VT_SPOOL_ERR = -1,       /* I/O or argument error; err says which */
    VT_SPOOL_DISK_FULL = -2, /* ENOSPC/EDQUOT/EFBIG: the measurement was not stored */
    VT_SPOOL_OVER_CAP = -3,  /* the spool's own cap is reached: the measurement was not stored */
};

typedef struct vt_spool vt_spool;

/* Test seam: the write and fsync the spool uses for measurement files and, when it takes them,
 * for spool/ itself (default: the syscalls). */
typedef struct vt_spool_io {
    ssize_t (*write)(int fd, const void *buf, size_t n);
    int (*fsync)(int fd);
} vt_spool_io;

typedef struct vt_spool_entry {
    char uid[VT_SPOOL_UID_MAX + 1];
    size_t bytes;
    double mtime; /* listing is oldest first */
} vt_spool_entry;

typedef struct vt_spool_listing {
    vt_spool_entry *items;
    size_t n;
    size_t corrupt;   /* files skipped and left in place (unreadable for now, or not movable) */
    size_t set_aside; /* damaged files moved to spool/damaged/ by this listing */
} vt_spool_listing;

/* Called once per damaged or unreadable file found while listing: its path, why, and whether it
 * was moved to spool/damaged/ (1) or left in place (0). */
typedef void (*vt_spool_report_fn)(const char *path, const char *why, int moved, void *arg);

/* The default state directory: $XDG_STATE_HOME/vantage, else $HOME/.local/state/vantage. */
int vt_spool_default_state_dir(char *out, size_t n, char *err, size_t errlen);

/* Opens (creating 0700 as needed) the spool under state_dir, removes stale tmp files.
 * NULL state_dir: the default. */
vt_spool *vt_spool_open(const char *state_dir, char *err, size_t errlen);
void vt_spool_close(vt_spool *sp);
const char *vt_spool_state_dir(const vt_spool *sp);
const char *vt_spool_dir(const vt_spool *sp);
/* Caps (0: unlimited). Default VT_SPOOL_DEFAULT_MAX_COUNT / _MAX_BYTES. */
void vt_spool_set_limits(vt_spool *sp, size_t max_count, uint64_t max_bytes);
void vt_spool_set_io(vt_spool *sp, const vt_spool_io *io); /* NULL: back to the syscalls */
/* Current totals of spool/ (kept up to date by this handle; rescanned on open). */
void vt_spool_totals(const vt_spool *sp, size_t *count, uint64_t *bytes);
/* A warning a person can act on when the spool is over its cap, or its disk is full (less than
 * VT_SPOOL_MIN_FREE left to this user), else NULL. */
const char *vt_spool_cap_warning(vt_spool *sp);
#define VT_SPOOL_MIN_FREE (16 * 1024)

int vt_spool_uid_valid(const char *uid);

/* Stores one measurement durably: after 0 it survives a crash. On failure nothing is left in
 * spool/ and the return says why (VT_SPOOL_DISK_FULL, VT_SPOOL_OVER_CAP, VT_SPOOL_ERR). */
int vt_spool_put(vt_spool *sp, const char *uid, const char *data, size_t len, char *err,
                 size_t errlen);
/* Same for a df-000 measurement object; the uid is its measurement_uid. */
int vt_spool_put_measurement(vt_spool *sp, const cJSON *m, char *err, size_t errlen);

/* Batched puts, for a run that produces many measurements: one fsync of spool/ per batch instead
 * of one per measurement. vt_spool_stage writes the measurement to spool/tmp/ (checked against
 * the caps, counting what is staged); it is NOT taken yet. vt_spool_commit makes every staged one
 * durable (each file fsync'd and then renamed into spool/, then one fsync of spool/) and calls fn
 * for each, in staging order, with 0 (taken) or the VT_SPOOL_* code and message of
 * vt_spool_put. A crash before the commit returns loses only the staged measurements (their tmp
 * files are removed on the next open) and never leaves a partial file in spool/; callers report
 * a measurement as stored only from fn. vt_spool_close drops what was never committed. */
int vt_spool_stage(vt_spool *sp, const char *uid, const char *data, size_t len, char *err,
                   size_t errlen);
typedef void (*vt_spool_commit_fn)(const char *uid, int rc, const char *err, void *arg);
size_t vt_spool_commit(vt_spool *sp, vt_spool_commit_fn fn, void *arg); /* returns # taken */
size_t vt_spool_staged(const vt_spool *sp);                             /* # waiting */

/* vt_spool_commit in three steps, so that the slow part (the fsyncs) can run on another thread
 * while the owner's event loop goes on (probe/main.c): vt_spool_detach takes the staged
 * measurements as a batch (NULL when none, or out of memory: they stay staged), and staging
 * starts afresh; vt_spool_batch_commit does the durable part and may run on any one thread
 * while the owner stages more (it touches only the batch, the spool's paths and io);
 * vt_spool_batch_finish, back on the owner's thread, updates the totals, calls fn as
 * vt_spool_commit does, frees the batch and returns how many were taken. A detached batch counts
 * against the caps until it is finished; finish every batch before vt_spool_close. */
typedef struct vt_spool_batch vt_spool_batch;
vt_spool_batch *vt_spool_detach(vt_spool *sp);
void vt_spool_batch_commit(const vt_spool *sp, vt_spool_batch *b);
size_t vt_spool_batch_finish(vt_spool *sp, vt_spool_batch *b, vt_spool_commit_fn fn, void *arg);

/* Lists the valid measurements, oldest first. With report, files that are not measurements (not a
 * JSON object, cut short, measurement_uid not matching the name, too large, not named <uid>.json)
 * are moved to spool/damaged/ and reported; files that cannot be read now (permissions, no file
 * descriptors) and non-regular entries are reported and left alone. Without report, all of them
 * are skipped in place. */
int vt_spool_list(vt_spool *sp, vt_spool_listing *out, vt_spool_report_fn report, void *arg,
                  char *err, size_t errlen);
void vt_spool_listing_free(vt_spool_listing *l);

/* Reads one spooled measurement and checks it as vt_spool_list does. *out is cJSON owned by the
 * caller. Returns 0, 1 when it is gone (acknowledged meanwhile), or VT_SPOOL_ERR (corrupt). */
int vt_spool_read(vt_spool *sp, const char *uid, cJSON **out, char *err, size_t errlen);

/* The collector acknowledged uid (accepted or duplicate): deletes it. A missing file is fine.
 * The removal is made durable by vt_spool_sync (losing it only means a harmless duplicate). */
int vt_spool_ack(vt_spool *sp, const char *uid, char *err, size_t errlen);
/* The collector refused uid: moves it to spool/rejected/ with the reason, durably, and returns 0;
 * when spool/rejected/ holds its cap already, deletes it instead (made durable by vt_spool_sync)
 * and returns 1. */
int vt_spool_reject(vt_spool *sp, const char *uid, const char *reason, char *err, size_t errlen);
/* Caps of spool/rejected/ (0: unlimited). Default VT_SPOOL_REJECTED_MAX_COUNT / _MAX_BYTES. */
void vt_spool_set_rejected_limits(vt_spool *sp, size_t max_count, uint64_t max_bytes);
/* fsyncs spool/ (after a batch of acks). */
int vt_spool_sync(vt_spool *sp, char *err, size_t errlen);

/* Appends to msg, after a permission error on path, who owns path when it is not this process's
 * user (a run as root, or as another user, in the same state directory). */
void vt_spool_owner_hint(const char *path, char *msg, size_t msglen);
/* After a permission error creating path (mkdir): names the nearest directory above it that
 * another user made inside one of this user's (sudo with this user's HOME made ~/.local/state, so
 * chown of the state directory alone would not do), with its owner. */
void vt_spool_owner_hint_above(const char *path, char *msg, size_t msglen);

/* Writes path atomically and durably (tmp file in the same directory, fsync, rename, fsync dir). */
int vt_spool_write_file_atomic(const char *path, const char *data, size_t len, char *err,
                               size_t errlen);

#endif
