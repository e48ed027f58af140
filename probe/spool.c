/* The probe's spool: a measurement counts as taken only once its file is fsync'd and renamed into
 * spool/, and it leaves spool/ only when the collector acknowledged it (or refused it, into
 * spool/rejected/). Nothing here ever deletes a measurement it has not been told to. */
#include "spool.h"

/* Messages naming long paths may be cut to the caller's buffer; that is intended. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "vantage/json.h"

struct vt_spool {
    char state[PATH_MAX];
    char dir[PATH_MAX];    /* <state>/spool */
    char tmpdir[PATH_MAX]; /* <state>/spool/tmp */
    char rejdir[PATH_MAX]; /* <state>/spool/rejected */
    char dmgdir[PATH_MAX]; /* <state>/spool/damaged */
    size_t count;
    uint64_t bytes;
    size_t max_count;
    uint64_t max_bytes;
    vt_spool_io io;
    char warning[PATH_MAX + 512];
    struct staged *staged; /* vt_spool_stage: written, flock'd, waiting for vt_spool_commit */
    size_t n_staged, cap_staged, staged_new;
    uint64_t staged_bytes;
    /* detached batches not finished yet (vt_spool_detach): still counted against the caps */
    size_t detached_new;
    uint64_t detached_bytes;
    /* spool/rejected/: its caps, and what it holds (counted at the first refusal) */
    size_t rej_max_count, rej_count;
    uint64_t rej_max_bytes, rej_bytes;
    int rej_counted;
};

struct vt_spool_batch {
    struct staged *items;
    size_t n, n_new;
    uint64_t bytes;
};

typedef struct staged {
    char uid[VT_SPOOL_UID_MAX + 1];
    int fd;
    size_t len;
    int existed; /* spool/<uid>.json was there already (a re-put replaces it) */
    int rc;
    char err[PATH_MAX + 256];
} staged;

static ssize_t sys_write(int fd, const void *buf, size_t n)
{
    return write(fd, buf, n);
}

static int sys_fsync(int fd)
{
    return fsync(fd);
}

static int is_full_errno(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

int vt_spool_uid_valid(const char *uid)
{
    size_t n = 0;
    if (!uid) return 0;
    for (const char *p = uid; *p; p++, n++) {
        char c = *p;
        if (n >= VT_SPOOL_UID_MAX) return 0;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

int vt_spool_default_state_dir(char *out, size_t n, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int w;
    if (xdg && xdg[0] == '/')
        w = snprintf(out, n, "%s/vantage", xdg);
    else if (home && home[0] == '/')
        w = snprintf(out, n, "%s/.local/state/vantage", home);
    else {
        snprintf(err, errlen, "spool: no state directory: set --state-dir, XDG_STATE_HOME or HOME");
        return -1;
    }
    if (w < 0 || (size_t)w >= n) {
        snprintf(err, errlen, "spool: state directory path too long");
        return -1;
    }
    return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int mkdirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        snprintf(err, errlen, "spool: bad directory path");
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "spool: cannot create %s: %s", buf, strerror(e));
            if (e == EACCES) vt_spool_owner_hint_above(buf, err, errlen);
            return -1;
        }
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "spool: %s is not a directory", path);
        return -1;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static int path_join(char *out, size_t n, const char *dir, const char *name, const char *suffix)
{
    size_t a = strlen(dir), b = strlen(name), c = strlen(suffix);
    if (a + 1 + b + c + 1 > n) return -1;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b);
    memcpy(out + a + 1 + b, suffix, c + 1);
    return 0;
}

/* Removes tmp files no live writer holds (a writer keeps an flock on its tmp file). */
static void clean_tmp(vt_spool *sp)
{
    DIR *d = opendir(sp->tmpdir);
    struct dirent *de;
    if (!d) return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
            /* A symlink or something odd is not ours; but out of descriptors or memory, a live
             * writer's file must not go (its rename would fail, the measurement lost). */
            if (errno == ELOOP || errno == ENXIO || errno == EACCES)
                unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) unlinkat(dirfd(d), de->d_name, 0);
        close(fd);
    }
    closedir(d);
}

/* Counts spool/<uid>.json files and their bytes. */
static void rescan(vt_spool *sp)
{
    DIR *d = opendir(sp->dir);
    struct dirent *de;
    sp->count = 0;
    sp->bytes = 0;
    if (!d) return;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        struct stat st;
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        sp->count++;
        sp->bytes += (uint64_t)st.st_size;
    }
    closedir(d);
}

vt_spool *vt_spool_open(const char *state_dir, char *err, size_t errlen)
{
    char def[PATH_MAX];
    vt_spool *sp = NULL;
    if (!state_dir || !*state_dir) {
        if (vt_spool_default_state_dir(def, sizeof(def), err, errlen) < 0) return NULL;
        state_dir = def;
    }
    if (!(sp = calloc(1, sizeof(*sp)))) {
        snprintf(err, errlen, "spool: out of memory");
        return NULL;
    }
    if (snprintf(sp->state, sizeof(sp->state), "%s", state_dir) >= (int)sizeof(sp->state) ||
        path_join(sp->dir, sizeof(sp->dir), sp->state, "spool", "") < 0 ||
        path_join(sp->tmpdir, sizeof(sp->tmpdir), sp->dir, "tmp", "") < 0 ||
        path_join(sp->rejdir, sizeof(sp->rejdir), sp->dir, "rejected", "") < 0 ||
        path_join(sp->dmgdir, sizeof(sp->dmgdir), sp->dir, "damaged", "") < 0) {
        snprintf(err, errlen, "spool: state directory path too long");
        goto fail;
    }
    if (mkdirs(sp->state, err, errlen) < 0 || mkdirs(sp->dir, err, errlen) < 0 ||
        mkdirs(sp->tmpdir, err, errlen) < 0 || mkdirs(sp->rejdir, err, errlen) < 0 ||
        mkdirs(sp->dmgdir, err, errlen) < 0)
        goto fail;
    if (access(sp->dir, W_OK | X_OK) < 0) {
        int e = errno;
        snprintf(err, errlen, "spool: cannot write to %s: %s", sp->dir, strerror(e));
        if (e == EACCES) vt_spool_owner_hint(sp->dir, err, errlen);
        goto fail;
    }
    sp->io.write = sys_write;
    sp->io.fsync = sys_fsync;
    sp->max_count = VT_SPOOL_DEFAULT_MAX_COUNT;
    sp->max_bytes = VT_SPOOL_DEFAULT_MAX_BYTES;
    sp->rej_max_count = VT_SPOOL_REJECTED_MAX_COUNT;
    sp->rej_max_bytes = VT_SPOOL_REJECTED_MAX_BYTES;
    clean_tmp(sp);
    rescan(sp);
    return sp;
fail:
    free(sp);
    return NULL;
}

static void unlink_tmp(vt_spool *sp, const char *uid)
{
    char tmp[PATH_MAX];
    if (path_join(tmp, sizeof(tmp), sp->tmpdir, uid, ".json.tmp") == 0) unlink(tmp);
}

static void drop_staged(vt_spool *sp)
{
    for (size_t i = 0; i < sp->n_staged; i++) {
        unlink_tmp(sp, sp->staged[i].uid);
        close(sp->staged[i].fd);
    }
    sp->n_staged = sp->staged_new = 0;
    sp->staged_bytes = 0;
}

void vt_spool_close(vt_spool *sp)
{
    if (!sp) return;
    drop_staged(sp); /* never committed: never taken */
    free(sp->staged);
    free(sp);
}

const char *vt_spool_state_dir(const vt_spool *sp)
{
    return sp->state;
}

const char *vt_spool_dir(const vt_spool *sp)
{
    return sp->dir;
}

void vt_spool_set_limits(vt_spool *sp, size_t max_count, uint64_t max_bytes)
{
    sp->max_count = max_count;
    sp->max_bytes = max_bytes;
}

void vt_spool_set_rejected_limits(vt_spool *sp, size_t max_count, uint64_t max_bytes)
{
    sp->rej_max_count = max_count;
    sp->rej_max_bytes = max_bytes;
}

/* Counts the measurements (*.json) in spool/rejected/ and the bytes of every file there. */
static void count_rejected(vt_spool *sp)
{
    DIR *d = opendir(sp->rejdir);
    struct dirent *de;
    sp->rej_count = 0;
    sp->rej_bytes = 0;
    sp->rej_counted = 1;
    if (!d) return;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n > 5 && !strcmp(de->d_name + n - 5, ".json")) sp->rej_count++;
        sp->rej_bytes += (uint64_t)st.st_size;
    }
    closedir(d);
}

void vt_spool_set_io(vt_spool *sp, const vt_spool_io *io)
{
    sp->io.write = io && io->write ? io->write : sys_write;
    sp->io.fsync = io && io->fsync ? io->fsync : sys_fsync;
}

void vt_spool_totals(const vt_spool *sp, size_t *count, uint64_t *bytes)
{
    if (count) *count = sp->count;
    if (bytes) *bytes = sp->bytes;
}

const char *vt_spool_cap_warning(vt_spool *sp)
{
    int over_n = sp->max_count && sp->count >= sp->max_count;
    int over_b = sp->max_bytes && sp->bytes >= sp->max_bytes;
    /* A full disk (an SD card filled by logs) takes no measurement either: a run from cron with
     * its output discarded measured, put the traffic on record, and lost every measurement. Root
     * may still write into the blocks reserved for it. */
    struct statvfs vfs;
    if (!over_n && !over_b && statvfs(sp->dir, &vfs) == 0) {
        unsigned long long left =
            (unsigned long long)(geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) * vfs.f_frsize;
        if (left < VT_SPOOL_MIN_FREE) {
            snprintf(sp->warning, sizeof(sp->warning),
                     "spool: the disk holding %s is full (%llu bytes left): new measurements "
                     "cannot be stored; make room on it (df -h shows the disks)",
                     sp->dir, left);
            return sp->warning;
        }
    }
    if (!over_n && !over_b) return NULL;
    snprintf(sp->warning, sizeof(sp->warning),
             "spool: %s is full (%zu measurements, %llu bytes; cap %zu measurements, %llu bytes): "
             "new measurements are not stored until `vantage-probe upload` empties it",
             sp->dir, sp->count, (unsigned long long)sp->bytes, sp->max_count,
             (unsigned long long)sp->max_bytes);
    return sp->warning;
}

static int write_all(vt_spool *sp, int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = sp->io.write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Checks uid, size and cap, then writes data into spool/tmp/<uid>.json.tmp under an flock; the
 * file is neither fsync'd nor in spool/ yet. 0 with *fd set, or a VT_SPOOL_* code with err. */
static int write_tmp(vt_spool *sp, const char *uid, const char *data, size_t len, int *fd_out,
                     int *existed_out, char *err, size_t errlen)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    int fd = -1, existed;

    if (!vt_spool_uid_valid(uid)) {
        snprintf(err, errlen, "spool: invalid measurement uid: measurement not stored");
        return VT_SPOOL_ERR;
    }
    if (!data || len == 0 || len > VT_SPOOL_FILE_MAX) {
        snprintf(err, errlen, "spool: measurement %s is empty or too large (%zu bytes): not stored",
                 uid, len);
        return VT_SPOOL_ERR;
    }
    if (path_join(tmp, sizeof(tmp), sp->tmpdir, uid, ".json.tmp") < 0 ||
        path_join(dst, sizeof(dst), sp->dir, uid, ".json") < 0) {
        snprintf(err, errlen, "spool: path too long: measurement not stored");
        return VT_SPOOL_ERR;
    }
    existed = stat(dst, &st) == 0;
    size_t count = sp->count + sp->staged_new + sp->detached_new;
    uint64_t bytes = sp->bytes + sp->staged_bytes + sp->detached_bytes;
    if (!existed && ((sp->max_count && count + 1 > sp->max_count) ||
                     (sp->max_bytes && bytes + len > sp->max_bytes))) {
        snprintf(err, errlen,
                 "spool: full (%zu measurements, %llu bytes; cap %zu, %llu bytes): measurement %s "
                 "not stored; run `vantage-probe upload`",
                 count, (unsigned long long)bytes, sp->max_count, (unsigned long long)sp->max_bytes,
                 uid);
        return VT_SPOOL_OVER_CAP;
    }

    /* The flock tells another process's clean_tmp that this tmp file is alive. */
    for (int tries = 0;; tries++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "spool: %s writing %s: %s: measurement not stored",
                     is_full_errno(e) ? "disk full" : "error", tmp, strerror(e));
            return is_full_errno(e) ? VT_SPOOL_DISK_FULL : VT_SPOOL_ERR;
        }
        struct stat fst;
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &fst) == 0 && fst.st_nlink > 0) break;
        close(fd);
        fd = -1;
        if (tries == 3) {
            snprintf(err, errlen, "spool: cannot hold %s: measurement not stored", tmp);
            return VT_SPOOL_ERR;
        }
    }
    if (write_all(sp, fd, data, len) < 0) {
        int e = errno;
        snprintf(err, errlen, "spool: %s writing %s: %s: measurement not stored",
                 is_full_errno(e) ? "disk full" : "error", tmp, strerror(e));
        unlink(tmp);
        close(fd);
        return is_full_errno(e) ? VT_SPOOL_DISK_FULL : VT_SPOOL_ERR;
    }
    *fd_out = fd;
    *existed_out = existed;
    return 0;
}

/* Makes written tmp files taken: each fsync'd, renamed into spool/, then one fsync of spool/.
 * A file is in spool/ only after its own fsync, so a crash never leaves a partial one there; the
 * rename is durable after the directory's fsync, which is when the caller hears rc 0. Sets each
 * item's rc and err and closes the files (their flocks go with them). It reads only the spool's
 * paths and io, never its totals (count_items does that): it may run on another thread while
 * the owner stages the next batch. */
static void commit_items(const vt_spool *sp, staged *it, size_t n)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    size_t renamed = 0;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start every file's writeback first: the fsyncs below then mostly wait on I/O already under
     * way, together, instead of one file after the other. */
    if (n > 1)
        for (size_t i = 0; i < n; i++)
            sync_file_range(it[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    for (size_t i = 0; i < n; i++) {
        path_join(tmp, sizeof(tmp), sp->tmpdir, it[i].uid, ".json.tmp");
        path_join(dst, sizeof(dst), sp->dir, it[i].uid, ".json");
        it[i].rc = 0;
        if (sp->io.fsync(it[i].fd) < 0) {
            int e = errno;
            if (is_full_errno(e)) {
                snprintf(it[i].err, sizeof(it[i].err),
                         "spool: disk full writing %s: measurement not stored (%s)", tmp,
                         strerror(e));
                it[i].rc = VT_SPOOL_DISK_FULL;
            } else {
                snprintf(it[i].err, sizeof(it[i].err),
                         "spool: error writing %s: %s: measurement not stored", tmp, strerror(e));
                it[i].rc = VT_SPOOL_ERR;
            }
            unlink(tmp);
            continue;
        }
        if (rename(tmp, dst) < 0) {
            snprintf(it[i].err, sizeof(it[i].err),
                     "spool: cannot move %s into %s: %s: measurement not stored", tmp, sp->dir,
                     strerror(errno));
            it[i].rc = VT_SPOOL_ERR;
            unlink(tmp);
            continue;
        }
        renamed++;
    }
    int dfd = renamed ? open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (renamed && (dfd < 0 || sp->io.fsync(dfd) < 0)) {
        int e = errno;
        for (size_t i = 0; i < n; i++) {
            if (it[i].rc != 0) continue;
            path_join(dst, sizeof(dst), sp->dir, it[i].uid, ".json");
            if (!it[i].existed) unlink(dst);
            snprintf(it[i].err, sizeof(it[i].err),
                     "spool: cannot sync %s: %s: measurement not stored", sp->dir, strerror(e));
            it[i].rc = is_full_errno(e) ? VT_SPOOL_DISK_FULL : VT_SPOOL_ERR;
        }
    }
    if (dfd >= 0) close(dfd);
    for (size_t i = 0; i < n; i++) {
        close(it[i].fd);
        it[i].fd = -1;
    }
}

/* The totals after commit_items; returns how many were taken. */
static size_t count_items(vt_spool *sp, const staged *it, size_t n)
{
    size_t stored = 0;
    for (size_t i = 0; i < n; i++)
        if (it[i].rc == 0) {
            stored++;
            if (!it[i].existed) {
                sp->count++;
                sp->bytes += it[i].len;
            }
        }
    return stored;
}

int vt_spool_put(vt_spool *sp, const char *uid, const char *data, size_t len, char *err,
                 size_t errlen)
{
    staged one;
    memset(&one, 0, sizeof(one));
    int rc = write_tmp(sp, uid, data, len, &one.fd, &one.existed, err, errlen);
    if (rc != 0) return rc;
    snprintf(one.uid, sizeof(one.uid), "%s", uid);
    one.len = len;
    commit_items(sp, &one, 1);
    count_items(sp, &one, 1);
    if (one.rc != 0) snprintf(err, errlen, "%s", one.err);
    return one.rc;
}

int vt_spool_stage(vt_spool *sp, const char *uid, const char *data, size_t len, char *err,
                   size_t errlen)
{
    for (size_t i = 0; uid && i < sp->n_staged; i++)
        if (strcmp(sp->staged[i].uid, uid) == 0) {
            snprintf(err, errlen, "spool: measurement %s is staged already: not stored twice", uid);
            return VT_SPOOL_ERR;
        }
    if (sp->n_staged == sp->cap_staged) {
        size_t nc = sp->cap_staged ? sp->cap_staged * 2 : 16;
        staged *ns = realloc(sp->staged, nc * sizeof(*ns));
        if (!ns) {
            snprintf(err, errlen, "spool: out of memory: measurement %s not stored",
                     uid ? uid : "?");
            return VT_SPOOL_ERR;
        }
        sp->staged = ns;
        sp->cap_staged = nc;
    }
    staged *it = &sp->staged[sp->n_staged];
    memset(it, 0, sizeof(*it));
    int rc = write_tmp(sp, uid, data, len, &it->fd, &it->existed, err, errlen);
    if (rc != 0) return rc;
    snprintf(it->uid, sizeof(it->uid), "%s", uid);
    it->len = len;
    sp->n_staged++;
    if (!it->existed) sp->staged_new++;
    sp->staged_bytes += len;
    return 0;
}

size_t vt_spool_staged(const vt_spool *sp)
{
    return sp ? sp->n_staged : 0;
}

size_t vt_spool_commit(vt_spool *sp, vt_spool_commit_fn fn, void *arg)
{
    vt_spool_batch *b = vt_spool_detach(sp);
    if (!b) return 0;
    vt_spool_batch_commit(sp, b);
    return vt_spool_batch_finish(sp, b, fn, arg);
}

vt_spool_batch *vt_spool_detach(vt_spool *sp)
{
    if (!sp || sp->n_staged == 0) return NULL;
    vt_spool_batch *b = malloc(sizeof(*b));
    if (!b) return NULL; /* the staged ones stay staged: a later detach or commit takes them */
    b->items = sp->staged;
    b->n = sp->n_staged;
    b->n_new = sp->staged_new;
    b->bytes = sp->staged_bytes;
    sp->detached_new += b->n_new;
    sp->detached_bytes += b->bytes;
    sp->staged = NULL;
    sp->n_staged = sp->cap_staged = sp->staged_new = 0;
    sp->staged_bytes = 0;
    return b;
}

void vt_spool_batch_commit(const vt_spool *sp, vt_spool_batch *b)
{
    commit_items(sp, b->items, b->n);
}

size_t vt_spool_batch_finish(vt_spool *sp, vt_spool_batch *b, vt_spool_commit_fn fn, void *arg)
{
    size_t stored = count_items(sp, b->items, b->n);
    sp->detached_new -= b->n_new;
    sp->detached_bytes -= b->bytes;
    for (size_t i = 0; fn && i < b->n; i++)
        fn(b->items[i].uid, b->items[i].rc, b->items[i].rc ? b->items[i].err : "", arg);
    if (!sp->staged) { /* keep the buffer for the next batch (fn may have staged one) */
        sp->staged = b->items;
        sp->cap_staged = b->n;
        sp->n_staged = 0;
    } else {
        free(b->items);
    }
    free(b);
    return stored;
}

int vt_spool_put_measurement(vt_spool *sp, const cJSON *m, char *err, size_t errlen)
{
    const char *uid = vt_json_get_string(m, "measurement_uid");
    if (!uid) {
        snprintf(err, errlen, "spool: measurement has no measurement_uid: not stored");
        return VT_SPOOL_ERR;
    }
    char *s = vt_json_print(m);
    if (!s) {
        snprintf(err, errlen, "spool: out of memory: measurement %s not stored", uid);
        return VT_SPOOL_ERR;
    }
    int rc = vt_spool_put(sp, uid, s, strlen(s), err, errlen);
    free(s);
    return rc;
}

void vt_spool_owner_hint(const char *path, char *msg, size_t msglen)
{
    struct stat st;
    size_t n = strlen(msg);
    if (lstat(path, &st) < 0 || st.st_uid == geteuid() || n >= msglen) return;
    snprintf(msg + n, msglen - n,
             " (it belongs to uid %lu, this probe runs as uid %lu: a run as another user, with "
             "sudo?, made it; give it back with chown, or run as that user)",
             (unsigned long)st.st_uid, (unsigned long)geteuid());
}

void vt_spool_owner_hint_above(const char *path, char *msg, size_t msglen)
{
    char buf[PATH_MAX];
    struct stat st, pst;
    size_t n = strlen(msg);
    if (n >= msglen || snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) return;
    char *slash;
    while (lstat(buf, &st) < 0) { /* the nearest directory on the way that can be looked at */
        if (!(slash = strrchr(buf, '/')) || slash == buf) return;
        *slash = 0;
    }
    if (st.st_uid == geteuid() || !(slash = strrchr(buf, '/'))) return;
    /* Only in a directory of this user's: /var/lib, root's, is not another run's doing. */
    *slash = 0;
    int ours = lstat(slash == buf ? "/" : buf, &pst) == 0 && pst.st_uid == geteuid();
    *slash = '/';
    if (!ours) return;
    snprintf(msg + n, msglen - n,
             " (%s belongs to uid %lu, this probe runs as uid %lu: a run as another user, with "
             "sudo?, made it; give it back with chown, or run as that user)",
             buf, (unsigned long)st.st_uid, (unsigned long)geteuid());
}

/* Reads a regular file of at most VT_SPOOL_FILE_MAX bytes. 1: does not exist; -1: the file is
 * not a measurement (its size, its type); -2: it could not be read (the file may be fine). */
static int read_small(const char *path, char **out, size_t *len, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int rc = -2;
    *out = NULL;
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return 1;
        snprintf(why, whylen, "cannot open: %s", strerror(e));
        if (e == EACCES) vt_spool_owner_hint(path, why, whylen);
        return e == ELOOP ? -1 : -2; /* O_NOFOLLOW: a symbolic link */
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        rc = -1;
        goto fail;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > VT_SPOOL_FILE_MAX) {
        snprintf(why, whylen, "size %lld out of bounds", (long long)st.st_size);
        rc = -1;
        goto fail;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(why, whylen, "short read");
            goto fail;
        }
        got += (size_t)r;
    }
    buf[got] = 0;
    close(fd);
    *out = buf;
    *len = got;
    return 0;
fail:
    free(buf);
    close(fd);
    return rc;
}

/* Parses and checks one spooled file. 0 ok (*m set unless m is NULL), 1 gone, -1 damaged (not a
 * measurement of ours), -2 unreadable for now. */
static int load_entry(vt_spool *sp, const char *uid, cJSON **m, char *why, size_t whylen)
{
    char path[PATH_MAX], *buf = NULL;
    size_t len = 0;
    if (path_join(path, sizeof(path), sp->dir, uid, ".json") < 0) {
        snprintf(why, whylen, "path too long");
        return -1;
    }
    int r = read_small(path, &buf, &len, why, whylen);
    if (r != 0) return r;
    if (memchr(buf, 0, len)) {
        free(buf);
        snprintf(why, whylen, "contains NUL bytes (partial or damaged)");
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "not a JSON object (partial or damaged)");
        return -1;
    }
    const char *u = vt_json_get_string(j, "measurement_uid");
    if (!u || strcmp(u, uid) != 0) {
        cJSON_Delete(j);
        snprintf(why, whylen, "measurement_uid does not match the file name");
        return -1;
    }
    if (m)
        *m = j;
    else
        cJSON_Delete(j);
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const vt_spool_entry *x = a, *y = b;
    if (x->mtime != y->mtime) return x->mtime < y->mtime ? -1 : 1;
    return strcmp(x->uid, y->uid);
}

/* Moves <dfd>/<name> into dir beside a reason file holding reason, durably and never over a file
 * already there: the copy is <stem><ext> with <stem>.reason, or, when that name is taken,
 * <stem>.1<ext>, <stem>.2<ext> ... The reason is written first: a crash between the two steps
 * leaves the file where it was. 0 moved, 1 gone meanwhile, 2 moved but not synced, -1 left in
 * place; msg says why for 2 and -1. */
static int move_with_reason(int dfd, const char *name, const char *dir, const char *stem,
                            const char *ext, const char *reason, char *msg, size_t msglen)
{
    char dst[NAME_MAX + 1], rname[NAME_MAX + 1], rpath[PATH_MAX], text[512];
    int ddfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ddfd < 0) {
        snprintf(msg, msglen, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int n = snprintf(text, sizeof(text), "%s\n", reason && *reason ? reason : "rejected");
    if (n < 0 || (size_t)n >= sizeof(text)) n = (int)sizeof(text) - 1;
    for (int k = 0; k < 10; k++) {
        char num[4] = "";
        if (k) snprintf(num, sizeof(num), ".%d", k);
        int m = snprintf(dst, sizeof(dst), "%s%s%s", stem, num, ext);
        int r = snprintf(rname, sizeof(rname), "%s%s.reason", stem, num);
        if (m < 0 || (size_t)m >= sizeof(dst) || r < 0 || (size_t)r >= sizeof(rname) ||
            path_join(rpath, sizeof(rpath), dir, rname, "") < 0)
            break;
        /* taken: the name, or its reason's name (a damaged file can be called anything) */
        if (faccessat(ddfd, dst, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
            faccessat(ddfd, rname, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        if (vt_spool_write_file_atomic(rpath, text, (size_t)n, msg, msglen) < 0) {
            close(ddfd);
            return -1;
        }
        if (renameat2(dfd, name, ddfd, dst, RENAME_NOREPLACE) == 0) {
            int synced = fsync(ddfd) == 0 && fsync(dfd) == 0;
            if (!synced) snprintf(msg, msglen, "cannot sync %s: %s", dir, strerror(errno));
            close(ddfd);
            return synced ? 0 : 2;
        }
        int e = errno;
        unlinkat(ddfd, rname, 0);
        if (e == EEXIST) continue;
        close(ddfd);
        if (e == ENOENT) return 1;
        snprintf(msg, msglen, "cannot move it to %s: %s", dir, strerror(e));
        return -1;
    }
    close(ddfd);
    snprintf(msg, msglen, "no free name in %s", dir);
    return -1;
}

/* Moves spool/<name>, which is not a measurement this spool can send, to spool/damaged/ beside a
 * <name>.reason (a second damaged copy of a name gets ".1", ".2", ...). 0 moved, 1 gone
 * meanwhile, -1 left in place (why says so). */
static int set_aside(vt_spool *sp, int dfd, const char *name, const char *reason, char *why,
                     size_t whylen)
{
    char msg[PATH_MAX + 128];
    int r = move_with_reason(dfd, name, sp->dmgdir, name, "", reason, msg, sizeof(msg));
    if (r == 2) return 0; /* moved: the next run finds it there either way */
    if (r < 0) snprintf(why + strlen(why), whylen - strlen(why), "; left in place: %s", msg);
    return r;
}

int vt_spool_list(vt_spool *sp, vt_spool_listing *out, vt_spool_report_fn report, void *arg,
                  char *err, size_t errlen)
{
    DIR *d = opendir(sp->dir);
    struct dirent *de;
    size_t cap = 0;
    memset(out, 0, sizeof(*out));
    if (!d) {
        snprintf(err, errlen, "spool: cannot list %s: %s", sp->dir, strerror(errno));
        return VT_SPOOL_ERR;
    }
    sp->count = 0;
    sp->bytes = 0;
    while ((de = readdir(d))) {
        char name[VT_SPOOL_UID_MAX + 1], path[PATH_MAX], why[PATH_MAX + 400];
        size_t n = strlen(de->d_name);
        struct stat st;
        int r = -1;
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "tmp") || !strcmp(de->d_name, "rejected") ||
            !strcmp(de->d_name, "damaged"))
            continue;
        path_join(path, sizeof(path), sp->dir, de->d_name, "");
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* acknowledged meanwhile */
        if (!S_ISREG(st.st_mode)) {
            snprintf(why, sizeof(why), "not a regular file");
            r = -2; /* a directory or link someone made: theirs to move */
            goto bad;
        }
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || n - 5 > VT_SPOOL_UID_MAX) {
            snprintf(why, sizeof(why), "not a spool file name (<uid>.json)");
            goto bad;
        }
        memcpy(name, de->d_name, n - 5);
        name[n - 5] = 0;
        if (!vt_spool_uid_valid(name)) {
            snprintf(why, sizeof(why), "not a spool file name (<uid>.json)");
            goto bad;
        }
        r = load_entry(sp, name, NULL, why, sizeof(why));
        if (r == 1) continue;
        if (r < 0) goto bad;
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            vt_spool_entry *ni = realloc(out->items, nc * sizeof(*ni));
            if (!ni) {
                closedir(d);
                vt_spool_listing_free(out);
                snprintf(err, errlen, "spool: out of memory listing %s", sp->dir);
                return VT_SPOOL_ERR;
            }
            out->items = ni;
            cap = nc;
        }
        vt_spool_entry *e = &out->items[out->n++];
        memcpy(e->uid, name, n - 4);
        e->bytes = (size_t)st.st_size;
        e->mtime = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
        sp->count++;
        sp->bytes += (uint64_t)st.st_size;
        continue;
    bad:
        /* A file that is not a sendable measurement goes to spool/damaged/ when someone is told
         * (report): kept for a person, and out of every later run's way. One that could not be
         * read this time (r == -2: permissions, no file descriptors left) stays. */
        if (r == -1 && report) {
            char reason[sizeof(why)];
            snprintf(reason, sizeof(reason), "%s", why);
            int moved = set_aside(sp, dirfd(d), de->d_name, reason, why, sizeof(why));
            if (moved == 1) continue;
            if (moved == 0) {
                out->set_aside++;
                report(path, why, 1, arg);
                continue;
            }
        }
        out->corrupt++;
        if (report) report(path, why, 0, arg);
    }
    closedir(d);
    if (out->n > 1) qsort(out->items, out->n, sizeof(*out->items), entry_cmp);
    return 0;
}

void vt_spool_listing_free(vt_spool_listing *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int vt_spool_read(vt_spool *sp, const char *uid, cJSON **out, char *err, size_t errlen)
{
    char why[160];
    *out = NULL;
    if (!vt_spool_uid_valid(uid)) {
        snprintf(err, errlen, "spool: invalid uid");
        return VT_SPOOL_ERR;
    }
    int r = load_entry(sp, uid, out, why, sizeof(why));
    if (r < 0) snprintf(err, errlen, "spool: %s/%s.json: %s", sp->dir, uid, why);
    return r < 0 ? VT_SPOOL_ERR : r;
}

int vt_spool_ack(vt_spool *sp, const char *uid, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct stat st;
    if (!vt_spool_uid_valid(uid) || path_join(path, sizeof(path), sp->dir, uid, ".json") < 0) {
        snprintf(err, errlen, "spool: invalid uid");
        return VT_SPOOL_ERR;
    }
    int had = lstat(path, &st) == 0;
    if (unlink(path) < 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "spool: cannot delete acknowledged %s: %s", path, strerror(errno));
        return VT_SPOOL_ERR;
    }
    if (had) {
        if (sp->count) sp->count--;
        sp->bytes = sp->bytes > (uint64_t)st.st_size ? sp->bytes - (uint64_t)st.st_size : 0;
    }
    return 0;
}

int vt_spool_sync(vt_spool *sp, char *err, size_t errlen)
{
    if (fsync_dir(sp->dir) < 0) {
        snprintf(err, errlen, "spool: cannot sync %s: %s", sp->dir, strerror(errno));
        return VT_SPOOL_ERR;
    }
    return 0;
}

int vt_spool_write_file_atomic(const char *path, const char *data, size_t len, char *err,
                               size_t errlen)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int fd;
    /* A name of its own: a run's end-of-run upload and a manual `upload` may write the same
     * state file at once, and a shared "PATH.tmp" made one's rename fail (or mixed the two). */
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp) ||
        snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) { /* 0600, O_EXCL */
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) < 0) goto fail;
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) goto fail;
    fsync_dir(dir);
    return 0;
fail:
    snprintf(err, errlen, "cannot write %s: %s", path,
             is_full_errno(errno) ? "disk full" : strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
    return -1;
}

int vt_spool_reject(vt_spool *sp, const char *uid, const char *reason, char *err, size_t errlen)
{
    char src[PATH_MAX], name[VT_SPOOL_UID_MAX + 8], msg[PATH_MAX + 128];
    struct stat st;
    if (!vt_spool_uid_valid(uid) || path_join(src, sizeof(src), sp->dir, uid, ".json") < 0) {
        snprintf(err, errlen, "spool: invalid uid");
        return VT_SPOOL_ERR;
    }
    if (lstat(src, &st) < 0) return 0; /* gone already (another upload handled it) */
    if (!sp->rej_counted) count_rejected(sp);
    if ((sp->rej_max_count && sp->rej_count + 1 > sp->rej_max_count) ||
        (sp->rej_max_bytes && sp->rej_bytes + (uint64_t)st.st_size > sp->rej_max_bytes)) {
        /* Full of earlier refusals, kept for a person to read: this one goes. */
        if (unlink(src) < 0 && errno != ENOENT) {
            snprintf(err, errlen, "spool: cannot delete refused %s: %s", src, strerror(errno));
            return VT_SPOOL_ERR;
        }
        if (sp->count) sp->count--;
        sp->bytes = sp->bytes > (uint64_t)st.st_size ? sp->bytes - (uint64_t)st.st_size : 0;
        return 1;
    }
    snprintf(name, sizeof(name), "%s.json", uid);
    int dfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "spool: cannot open %s: %s", sp->dir, strerror(errno));
        return VT_SPOOL_ERR;
    }
    /* A crash before the move leaves the measurement spooled, to be refused again on the next
     * upload; an earlier refusal of the same uid is kept beside it. */
    int r = move_with_reason(dfd, name, sp->rejdir, uid, ".json", reason, msg, sizeof(msg));
    close(dfd);
    if (r == 1) return 0;
    if (r != 0) {
        snprintf(err, errlen, "spool: %s: %s", src, msg);
        return VT_SPOOL_ERR;
    }
    sp->rej_count++;
    sp->rej_bytes += (uint64_t)st.st_size + strlen(reason && *reason ? reason : "rejected") + 1;
    if (sp->count) sp->count--;
    sp->bytes = sp->bytes > (uint64_t)st.st_size ? sp->bytes - (uint64_t)st.st_size : 0;
    return 0;
}
