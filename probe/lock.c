/* One run at a time per state directory (flock on <state>/run.lock), and the start jitter. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "volunteer.h"

int vt_state_dir_resolve(const char *explicit_dir, char *out, size_t n, char *err, size_t errlen)
{
    if (explicit_dir && *explicit_dir) {
        if (snprintf(out, n, "%s", explicit_dir) >= (int)n) {
            snprintf(err, errlen, "state directory path too long");
            return -1;
        }
        return 0;
    }
    return vt_spool_default_state_dir(out, n, err, errlen);
}

int vt_state_dir_make(const char *dir, char *err, size_t errlen)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf) || !buf[0]) {
        snprintf(err, errlen, "bad state directory path");
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                snprintf(err, errlen, "cannot create %s: %s", buf, strerror(e));
                if (e == EACCES) vt_spool_owner_hint_above(buf, err, errlen);
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

int vt_lock_acquire(const char *state_dir, char *err, size_t errlen)
{
    char path[4096];
    if (vt_state_dir_make(state_dir, err, errlen) < 0) return -1;
    if (snprintf(path, sizeof(path), "%s/run.lock", state_dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "state directory path too long");
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        if (e == EACCES)
            vt_spool_owner_hint(access(path, F_OK) == 0 ? path : state_dir, err, errlen);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) return -2;
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return -1;
    }
    /* Who holds it, for a person looking: the pid, rewritten in place. */
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) {
        /* informative only */
    }
    return fd;
}

int vt_lock_holder(const char *state_dir, long *pid, double *since)
{
    char path[4096], buf[32];
    struct stat st;
    *pid = 0;
    *since = 0;
    if (snprintf(path, sizeof(path), "%s/run.lock", state_dir) >= (int)sizeof(path)) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return -1;
    ssize_t n = fstat(fd, &st) == 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    *pid = strtol(buf, NULL, 10);
    /* The holder rewrote the file as it took the lock (vt_lock_acquire). */
    *since = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
    return 0;
}

void vt_lock_release(int fd)
{
    if (fd >= 0) close(fd); /* releases the flock */
}

long vt_jitter_pick_ms(int max_s)
{
    if (max_s <= 0) return 0;
    uint64_t r = 0, range = (uint64_t)max_s * 1000 + 1, limit = UINT64_MAX - UINT64_MAX % range;
    for (int tries = 0; tries < 16; tries++) {
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            r = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)getpid() << 32; /* fallback */
        }
        if (r < limit) break;
    }
    return (long)(r % range);
}
