/* The probe's spool: durable puts, listing, acknowledgement, rejection, crash leftovers, disk full.
 * Disk full is simulated two ways: the spool's write/fsync seam (ENOSPC, EDQUOT), and once for
 * real with setrlimit(RLIMIT_FSIZE) in a child with SIGXFSZ ignored (the kernel's EFBIG). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

/* probe/ sources are not in a library; compile the spool into this test. */
#include "../../probe/spool.c"
#include "../../probe/committer.c"

#include <semaphore.h>

#include "vantage/measurement.h"

typedef struct fixture {
    char root[64];
    char state[128];
    vt_spool *sp;
} fixture;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char err[512];
    snprintf(f->root, sizeof(f->root), "/tmp/vt-spool-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->state, sizeof(f->state), "%s/state/vantage", f->root);
    f->sp = vt_spool_open(f->state, err, sizeof(err));
    assert_non_null(f->sp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vt_spool_close(f->sp);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static char *measurement(const char *uid)
{
    char *s = NULL;
    assert_true(
        asprintf(&s, "{\"measurement_uid\":\"%s\",\"probe_cc\":\"ZZ\",\"test_keys\":{}}", uid) > 0);
    return s;
}

static void put(fixture *f, const char *uid)
{
    char err[512], *m = measurement(uid);
    int rc = vt_spool_put(f->sp, uid, m, strlen(m), err, sizeof(err));
    if (rc != 0) fail_msg("put %s: %s", uid, err);
    free(m);
}

static int exists(fixture *f, const char *sub, const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/spool/%s%s%s", f->state, sub, *sub ? "/" : "", name);
    return stat(p, &st) == 0;
}

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d) return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int count_sub(fixture *f, const char *sub)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/spool/%s", f->state, sub);
    return count_dir(p);
}

static void open_creates_private_directories(void **state)
{
    fixture *f = *state;
    struct stat st;
    char p[512];
    assert_int_equal(stat(f->state, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(p, sizeof(p), "%s/spool/tmp", f->state);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(p, sizeof(p), "%s/spool/rejected", f->state);
    assert_int_equal(stat(p, &st), 0);
}

static void put_stores_one_file_per_uid_and_list_returns_them(void **state)
{
    fixture *f = *state;
    vt_spool_listing l;
    char err[512];
    put(f, "aaaa0000000000000000000000000001");
    put(f, "aaaa0000000000000000000000000002");
    put(f, "aaaa0000000000000000000000000003");
    assert_true(exists(f, "", "aaaa0000000000000000000000000002.json"));
    assert_int_equal(count_sub(f, "tmp"), 0);
    assert_int_equal(vt_spool_list(f->sp, &l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.corrupt, 0);
    int seen = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!strcmp(l.items[i].uid, "aaaa0000000000000000000000000003")) seen++;
    assert_int_equal(seen, 1);
    vt_spool_listing_free(&l);

    cJSON *m = NULL;
    assert_int_equal(vt_spool_read(f->sp, "aaaa0000000000000000000000000001", &m, err, sizeof(err)),
                     0);
    assert_string_equal(vt_json_get_string(m, "probe_cc"), "ZZ");
    cJSON_Delete(m);
    size_t n;
    vt_spool_totals(f->sp, &n, NULL);
    assert_int_equal(n, 3);
}

static void a_spooled_file_is_private_and_survives_reopen(void **state)
{
    fixture *f = *state;
    char err[512], p[512];
    struct stat st;
    put(f, "b1");
    snprintf(p, sizeof(p), "%s/spool/b1.json", f->state);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    vt_spool_close(f->sp);
    f->sp = vt_spool_open(f->state, err, sizeof(err));
    assert_non_null(f->sp);
    size_t n;
    vt_spool_totals(f->sp, &n, NULL);
    assert_int_equal(n, 1);
}

static void put_measurement_names_the_file_after_measurement_uid(void **state)
{
    fixture *f = *state;
    char err[512], name[64];
    vt_config cfg;
    vt_config_defaults(&cfg);
    cJSON *m = vt_measurement_new(&cfg, "web_connectivity", "0.1.0", "https://example.org/", 1e9,
                                  0.5, NULL, NULL);
    assert_non_null(m);
    assert_int_equal(vt_spool_put_measurement(f->sp, m, err, sizeof(err)), 0);
    snprintf(name, sizeof(name), "%s.json", vt_json_get_string(m, "measurement_uid"));
    assert_true(exists(f, "", name));
    cJSON_Delete(m);
}

static void bad_uids_are_refused(void **state)
{
    fixture *f = *state;
    char err[512];
    const char *bad[] = {
        "",           "../escape",
        "a/b",        "x.json",
        "with space", "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(vt_spool_put(f->sp, bad[i], "{}", 2, err, sizeof(err)), VT_SPOOL_ERR);
        assert_non_null(strstr(err, "not stored"));
    }
    assert_int_equal(count_sub(f, ""), 3); /* tmp/, rejected/ and damaged/ only */
}

static void ack_deletes_only_the_acknowledged_uid(void **state)
{
    fixture *f = *state;
    char err[512];
    put(f, "c1");
    put(f, "c2");
    assert_int_equal(vt_spool_ack(f->sp, "c1", err, sizeof(err)), 0);
    assert_int_equal(vt_spool_sync(f->sp, err, sizeof(err)), 0);
    assert_false(exists(f, "", "c1.json"));
    assert_true(exists(f, "", "c2.json"));
    /* Acknowledged twice (a duplicate answer, another upload): harmless. */
    assert_int_equal(vt_spool_ack(f->sp, "c1", err, sizeof(err)), 0);
    size_t n;
    vt_spool_totals(f->sp, &n, NULL);
    assert_int_equal(n, 1);
}

static char *slurp_spool(fixture *f, const char *name)
{
    char p[512], *buf = calloc(1, 4096);
    snprintf(p, sizeof(p), "%s/spool/%s", f->state, name);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 4095, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

/* spool/rejected/ is capped: past it a refused measurement is deleted, not kept; the count
 * includes what earlier runs left there. */
static void rejected_is_capped(void **state)
{
    fixture *f = *state;
    char err[512];
    vt_spool_set_rejected_limits(f->sp, 2, 0);
    put(f, "r1");
    put(f, "r2");
    put(f, "r3");
    assert_int_equal(vt_spool_reject(f->sp, "r1", "no", err, sizeof(err)), 0);
    assert_int_equal(vt_spool_reject(f->sp, "r2", "no", err, sizeof(err)), 0);
    assert_int_equal(vt_spool_reject(f->sp, "r3", "no", err, sizeof(err)), 1);
    assert_false(exists(f, "", "r3.json"));
    assert_false(exists(f, "rejected", "r3.json"));
    assert_true(exists(f, "rejected", "r2.json"));
    /* A new process counts what is there. */
    vt_spool_close(f->sp);
    f->sp = vt_spool_open(f->state, err, sizeof(err));
    assert_non_null(f->sp);
    vt_spool_set_rejected_limits(f->sp, 3, 0);
    put(f, "r4");
    put(f, "r5");
    assert_int_equal(vt_spool_reject(f->sp, "r4", "no", err, sizeof(err)), 0);
    assert_int_equal(vt_spool_reject(f->sp, "r5", "no", err, sizeof(err)), 1);
    /* And a byte cap: the reasons count too. */
    vt_spool_set_rejected_limits(f->sp, 0, 1);
    put(f, "r6");
    assert_int_equal(vt_spool_reject(f->sp, "r6", "no", err, sizeof(err)), 1);
    assert_false(exists(f, "", "r6.json"));
}

static void rejected_moves_to_rejected_with_its_reason(void **state)
{
    fixture *f = *state;
    char err[512], p[512], buf[256] = "";
    vt_spool_listing l;
    put(f, "d1");
    put(f, "d2");
    assert_int_equal(
        vt_spool_reject(f->sp, "d1", "probe_cc must match ^[A-Z]{2}$", err, sizeof(err)), 0);
    assert_false(exists(f, "", "d1.json"));
    assert_true(exists(f, "rejected", "d1.json"));
    snprintf(p, sizeof(p), "%s/spool/rejected/d1.reason", f->state);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    assert_string_equal(buf, "probe_cc must match ^[A-Z]{2}$\n");
    /* Not offered for upload again. */
    assert_int_equal(vt_spool_list(f->sp, &l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].uid, "d2");
    vt_spool_listing_free(&l);
    /* The same uid refused again (spooled a second time) keeps the first copy and its reason. */
    put(f, "d1");
    assert_int_equal(vt_spool_reject(f->sp, "d1", "second", err, sizeof(err)), 0);
    assert_false(exists(f, "", "d1.json"));
    assert_true(exists(f, "rejected", "d1.1.json"));
    char *why = slurp_spool(f, "rejected/d1.1.reason");
    assert_string_equal(why, "second\n");
    free(why);
    why = slurp_spool(f, "rejected/d1.reason");
    assert_string_equal(why, "probe_cc must match ^[A-Z]{2}$\n");
    free(why);
}

static void stale_tmp_files_are_removed_on_open_but_a_live_writer_is_left_alone(void **state)
{
    fixture *f = *state;
    char err[512], stale[512], live[512];
    snprintf(stale, sizeof(stale), "%s/spool/tmp/e1.json.tmp", f->state);
    snprintf(live, sizeof(live), "%s/spool/tmp/e2.json.tmp", f->state);
    int fd = open(stale, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"measurement_uid\":", 19), 19); /* crashed mid-write */
    close(fd);
    int lfd = open(live, O_WRONLY | O_CREAT, 0600);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX), 0); /* as vt_spool_put holds it while writing */
    vt_spool_close(f->sp);
    f->sp = vt_spool_open(f->state, err, sizeof(err));
    assert_non_null(f->sp);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    close(lfd);
    /* The half-written file never showed up as a measurement. */
    size_t n;
    vt_spool_totals(f->sp, &n, NULL);
    assert_int_equal(n, 0);
}

typedef struct reports {
    int n, moved;
    char last[512];
} reports;

static void on_report(const char *path, const char *why, int moved, void *arg)
{
    reports *r = arg;
    r->n++;
    r->moved += moved;
    snprintf(r->last, sizeof(r->last), "%s: %s", path, why);
}

static void write_raw(fixture *f, const char *name, const char *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/spool/%s", f->state, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void damaged_files_are_set_aside_once(void **state)
{
    fixture *f = *state;
    char err[512], p[512];
    vt_spool_listing l;
    reports r = {0};
    put(f, "f0");
    write_raw(f, "f1.json", "{\"measurement_uid\":\"f1\",\"te", 27); /* truncated */
    write_raw(f, "f2.json", "{\"measurement_uid\":\"other\"}", 27);  /* wrong uid */
    write_raw(f, "f3.json", "", 0);                                  /* empty */
    write_raw(f, "f4.json", "[1,2]", 5);                             /* not an object */
    write_raw(f, "f5.json", "{\"measurement_uid\":\"f5\"}\0xx", 27); /* NUL bytes */
    write_raw(f, "notes.txt", "hello", 5);                           /* not ours */
    snprintf(p, sizeof(p), "%s/spool/sub.json", f->state);
    assert_int_equal(mkdir(p, 0700), 0); /* someone's directory: theirs to move */

    /* Without anyone told, nothing moves. */
    assert_int_equal(vt_spool_list(f->sp, &l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.corrupt, 7);
    assert_int_equal(l.set_aside, 0);
    vt_spool_listing_free(&l);
    assert_true(exists(f, "", "f1.json"));

    /* Told: every damaged file goes to spool/damaged/ beside its reason, reported as moved. */
    assert_int_equal(vt_spool_list(f->sp, &l, on_report, &r, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].uid, "f0");
    assert_int_equal(l.set_aside, 6);
    assert_int_equal(l.corrupt, 1);
    assert_int_equal(r.n, 7);
    assert_int_equal(r.moved, 6);
    vt_spool_listing_free(&l);
    const char *names[] = {"f1.json", "f2.json", "f3.json", "f4.json", "f5.json", "notes.txt"};
    for (size_t i = 0; i < 6; i++) {
        assert_false(exists(f, "", names[i]));
        assert_true(exists(f, "damaged", names[i]));
    }
    assert_true(exists(f, "", "sub.json"));
    char *why = slurp_spool(f, "damaged/f4.json.reason");
    assert_non_null(strstr(why, "not a JSON object"));
    free(why);
    why = slurp_spool(f, "damaged/notes.txt.reason");
    assert_non_null(strstr(why, "not a spool file name"));
    free(why);
    char *kept = slurp_spool(f, "damaged/f1.json");
    assert_string_equal(kept, "{\"measurement_uid\":\"f1\",\"te");
    free(kept);

    /* The next listing is quiet about them; only the directory is still in the way. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(vt_spool_list(f->sp, &l, on_report, &r, err, sizeof(err)), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.set_aside, 0);
    assert_int_equal(l.corrupt, 1);
    assert_int_equal(r.n, 1);
    vt_spool_listing_free(&l);

    /* A second damaged file of the same name never replaces the first. */
    write_raw(f, "f1.json", "{\"again", 7);
    assert_int_equal(vt_spool_list(f->sp, &l, on_report, &r, err, sizeof(err)), 0);
    assert_int_equal(l.set_aside, 1);
    vt_spool_listing_free(&l);
    kept = slurp_spool(f, "damaged/f1.json");
    assert_string_equal(kept, "{\"measurement_uid\":\"f1\",\"te");
    free(kept);
    kept = slurp_spool(f, "damaged/f1.json.1");
    assert_string_equal(kept, "{\"again");
    free(kept);
    assert_true(exists(f, "damaged", "f1.json.1.reason"));
    /* A damaged file named like another one's reason file: neither is written over. */
    write_raw(f, "n.reason", "first", 5);
    assert_int_equal(vt_spool_list(f->sp, &l, on_report, &r, err, sizeof(err)), 0);
    vt_spool_listing_free(&l);
    write_raw(f, "n", "second", 6);
    assert_int_equal(vt_spool_list(f->sp, &l, on_report, &r, err, sizeof(err)), 0);
    vt_spool_listing_free(&l);
    kept = slurp_spool(f, "damaged/n.reason");
    assert_string_equal(kept, "first");
    free(kept);
    kept = slurp_spool(f, "damaged/n.1");
    assert_string_equal(kept, "second");
    free(kept);
    assert_int_equal(rmdir(p), 0);

    cJSON *m = NULL;
    write_raw(f, "f6.json", "{\"measurement_uid\":\"f6\",\"te", 27);
    assert_int_equal(vt_spool_read(f->sp, "f6", &m, err, sizeof(err)), VT_SPOOL_ERR);
    assert_null(m);
    assert_int_equal(vt_spool_read(f->sp, "gone", &m, err, sizeof(err)), 1);
}

/* The seam: writes fail with fail_errno once fail_after bytes went through. */
static size_t fail_after;
static int fail_errno;
static size_t written;

static ssize_t failing_write(int fd, const void *b, size_t n)
{
    if (written >= fail_after) {
        errno = fail_errno;
        return -1;
    }
    if (n > fail_after - written)
        n = fail_after - written; /* a short write first, as a filling disk does */
    ssize_t w = write(fd, b, n);
    if (w > 0) written += (size_t)w;
    return w;
}

static int failing_fsync(int fd)
{
    errno = fail_errno;
    return -1;
}

static void disk_full_on_write_stores_nothing_and_says_so(void **state)
{
    fixture *f = *state;
    char err[512], *m = measurement("a1000000000000000000000000000001");
    vt_spool_io io = {.write = failing_write};
    fail_after = 10;
    fail_errno = ENOSPC;
    written = 0;
    vt_spool_set_io(f->sp, &io);
    int rc =
        vt_spool_put(f->sp, "a1000000000000000000000000000001", m, strlen(m), err, sizeof(err));
    assert_int_equal(rc, VT_SPOOL_DISK_FULL);
    assert_non_null(strstr(err, "spool: disk full writing "));
    assert_non_null(strstr(err, ": measurement not stored"));
    assert_int_equal(count_sub(f, ""), 3);
    assert_int_equal(count_sub(f, "tmp"), 0);
    /* Space again: the same measurement goes in whole. */
    vt_spool_set_io(f->sp, NULL);
    assert_int_equal(
        vt_spool_put(f->sp, "a1000000000000000000000000000001", m, strlen(m), err, sizeof(err)), 0);
    cJSON *j = NULL;
    assert_int_equal(vt_spool_read(f->sp, "a1000000000000000000000000000001", &j, err, sizeof(err)),
                     0);
    cJSON_Delete(j);
    free(m);
}

static void quota_exceeded_on_fsync_stores_nothing_and_says_so(void **state)
{
    fixture *f = *state;
    char err[512], *m = measurement("a2");
    vt_spool_io io = {.fsync = failing_fsync};
    fail_errno = EDQUOT;
    vt_spool_set_io(f->sp, &io);
    assert_int_equal(vt_spool_put(f->sp, "a2", m, strlen(m), err, sizeof(err)), VT_SPOOL_DISK_FULL);
    assert_non_null(strstr(err, "spool: disk full writing "));
    assert_int_equal(count_sub(f, ""), 3);
    assert_int_equal(count_sub(f, "tmp"), 0);
    free(m);
}

static void other_write_errors_are_errors_not_disk_full(void **state)
{
    fixture *f = *state;
    char err[512], *m = measurement("a3");
    vt_spool_io io = {.write = failing_write};
    fail_after = 0;
    fail_errno = EIO;
    written = 0;
    vt_spool_set_io(f->sp, &io);
    assert_int_equal(vt_spool_put(f->sp, "a3", m, strlen(m), err, sizeof(err)), VT_SPOOL_ERR);
    assert_non_null(strstr(err, "measurement not stored"));
    assert_int_equal(count_sub(f, "tmp"), 0);
    free(m);
}

static void real_file_size_limit_behaves_as_disk_full(void **state)
{
    fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512];
        size_t len = 64 * 1024;
        char *big = malloc(len + 100);
        int off = snprintf(big, 100, "{\"measurement_uid\":\"big1\",\"pad\":\"");
        memset(big + off, 'x', len);
        memcpy(big + off + len, "\"}", 3);
        struct rlimit rl = {4096, 4096};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0) _exit(3);
        int rc = vt_spool_put(f->sp, "big1", big, strlen(big), err, sizeof(err));
        _exit(rc == VT_SPOOL_DISK_FULL && strstr(err, "disk full writing") ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_false(exists(f, "", "big1.json"));
    assert_int_equal(count_sub(f, "tmp"), 0);
}

static void over_the_cap_new_measurements_are_refused_with_a_warning(void **state)
{
    fixture *f = *state;
    char err[512], *m = measurement("g3");
    vt_spool_set_limits(f->sp, 2, 0);
    put(f, "g1");
    assert_null(vt_spool_cap_warning(f->sp));
    put(f, "g2");
    assert_non_null(vt_spool_cap_warning(f->sp));
    assert_non_null(strstr(vt_spool_cap_warning(f->sp), "is full"));
    assert_int_equal(vt_spool_put(f->sp, "g3", m, strlen(m), err, sizeof(err)), VT_SPOOL_OVER_CAP);
    assert_non_null(strstr(err, "not stored"));
    assert_false(exists(f, "", "g3.json"));
    /* Rewriting a measurement already there is not growth. */
    put(f, "g2");
    assert_int_equal(vt_spool_ack(f->sp, "g1", err, sizeof(err)), 0);
    assert_null(vt_spool_cap_warning(f->sp));
    assert_int_equal(vt_spool_put(f->sp, "g3", m, strlen(m), err, sizeof(err)), 0);
    /* A byte cap too. */
    vt_spool_set_limits(f->sp, 0, 10);
    assert_int_equal(vt_spool_put(f->sp, "g4", m, strlen(m), err, sizeof(err)), VT_SPOOL_OVER_CAP);
    free(m);
}

static void default_state_dir_follows_xdg_then_home(void **state)
{
    char out[512], err[256];
    char *old_x = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
    char *old_h = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_STATE_HOME", "/x/state", 1);
    setenv("HOME", "/home/v", 1);
    assert_int_equal(vt_spool_default_state_dir(out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "/x/state/vantage");
    unsetenv("XDG_STATE_HOME");
    assert_int_equal(vt_spool_default_state_dir(out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "/home/v/.local/state/vantage");
    unsetenv("HOME");
    assert_int_equal(vt_spool_default_state_dir(out, sizeof(out), err, sizeof(err)), -1);
    if (old_x) setenv("XDG_STATE_HOME", old_x, 1);
    if (old_h) setenv("HOME", old_h, 1);
    free(old_x);
    free(old_h);
}

static void atomic_file_write_replaces_whole(void **state)
{
    fixture *f = *state;
    char p[512], err[256], buf[64] = "";
    snprintf(p, sizeof(p), "%s/last-upload.json", f->state);
    assert_int_equal(vt_spool_write_file_atomic(p, "first\n", 6, err, sizeof(err)), 0);
    assert_int_equal(vt_spool_write_file_atomic(p, "second\n", 7, err, sizeof(err)), 0);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    assert_string_equal(buf, "second\n");
    assert_int_equal(count_dir(f->state), 2); /* spool/ and last-upload.json, no tmp */
}

/* ---- batched puts (vt_spool_stage / vt_spool_commit) ---- */

static int n_fsyncs, fail_fsync_at; /* fail the n-th fsync (1-based), 0: none */

static int counting_fsync(int fd)
{
    if (++n_fsyncs == fail_fsync_at) {
        errno = EDQUOT;
        return -1;
    }
    return fsync(fd);
}

typedef struct committed {
    int n;
    char uid[8][VT_SPOOL_UID_MAX + 1];
    int rc[8];
} committed;

static void on_commit(const char *uid, int rc, const char *err, void *arg)
{
    committed *c = arg;
    assert_true(c->n < 8);
    snprintf(c->uid[c->n], sizeof(c->uid[0]), "%s", uid);
    c->rc[c->n++] = rc;
    if (rc == 0)
        assert_string_equal(err, "");
    else
        assert_non_null(strstr(err, "measurement not stored"));
}

static void stage(fixture *f, const char *uid)
{
    char err[512], *m = measurement(uid);
    int rc = vt_spool_stage(f->sp, uid, m, strlen(m), err, sizeof(err));
    if (rc != 0) fail_msg("stage %s: %s", uid, err);
    free(m);
}

static void a_batch_is_taken_at_commit_with_one_directory_fsync(void **state)
{
    fixture *f = *state;
    vt_spool_io io = {.fsync = counting_fsync};
    size_t count;
    committed c = {0};
    n_fsyncs = fail_fsync_at = 0;
    vt_spool_set_io(f->sp, &io);
    stage(f, "b0000000000000000000000000000001");
    stage(f, "b0000000000000000000000000000002");
    stage(f, "b0000000000000000000000000000003");
    /* Staged: written under spool/tmp/, not taken, nothing fsync'd yet. */
    assert_int_equal(vt_spool_staged(f->sp), 3);
    assert_int_equal(count_sub(f, ""), 3);
    assert_int_equal(count_sub(f, "tmp"), 3);
    assert_int_equal(n_fsyncs, 0);
    vt_spool_totals(f->sp, &count, NULL);
    assert_int_equal(count, 0);
    assert_int_equal(vt_spool_commit(f->sp, on_commit, &c), 3);
    /* Three files and the directory once (per measurement it was file + directory each). */
    assert_int_equal(n_fsyncs, 4);
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++) {
        char want[40];
        snprintf(want, sizeof(want), "b000000000000000000000000000000%d", i + 1);
        assert_string_equal(c.uid[i], want); /* in staging order */
        assert_int_equal(c.rc[i], 0);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), ".json");
        assert_true(exists(f, "", want));
    }
    assert_int_equal(count_sub(f, "tmp"), 0);
    assert_int_equal(vt_spool_staged(f->sp), 0);
    vt_spool_totals(f->sp, &count, NULL);
    assert_int_equal(count, 3);
    assert_int_equal(vt_spool_commit(f->sp, on_commit, &c), 0); /* nothing staged: no-op */
    assert_int_equal(n_fsyncs, 4);
    vt_spool_set_io(f->sp, NULL);
}

static void a_failed_fsync_in_a_batch_loses_only_that_measurement(void **state)
{
    fixture *f = *state;
    vt_spool_io io = {.fsync = counting_fsync};
    committed c = {0};
    vt_spool_listing l;
    char err[512];
    n_fsyncs = 0;
    fail_fsync_at = 2;
    vt_spool_set_io(f->sp, &io);
    stage(f, "c0000000000000000000000000000001");
    stage(f, "c0000000000000000000000000000002");
    stage(f, "c0000000000000000000000000000003");
    assert_int_equal(vt_spool_commit(f->sp, on_commit, &c), 2);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.rc[0], 0);
    assert_int_equal(c.rc[1], VT_SPOOL_DISK_FULL);
    assert_int_equal(c.rc[2], 0);
    assert_false(exists(f, "", "c0000000000000000000000000000002.json"));
    assert_int_equal(count_sub(f, "tmp"), 0);
    assert_int_equal(vt_spool_list(f->sp, &l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.corrupt, 0);
    vt_spool_listing_free(&l);
    /* The directory's fsync failing: none of the batch counts as taken, none is left. */
    n_fsyncs = 0;
    fail_fsync_at = 3;
    memset(&c, 0, sizeof(c));
    stage(f, "c0000000000000000000000000000004");
    stage(f, "c0000000000000000000000000000005");
    assert_int_equal(vt_spool_commit(f->sp, on_commit, &c), 0);
    assert_int_equal(c.rc[0], VT_SPOOL_DISK_FULL);
    assert_int_equal(c.rc[1], VT_SPOOL_DISK_FULL);
    assert_false(exists(f, "", "c0000000000000000000000000000004.json"));
    assert_false(exists(f, "", "c0000000000000000000000000000005.json"));
    vt_spool_set_io(f->sp, NULL);
}

static void staged_counts_against_the_cap_and_twice_is_refused(void **state)
{
    fixture *f = *state;
    char err[512], *m = measurement("d3");
    vt_spool_set_limits(f->sp, 2, 0);
    stage(f, "d1");
    assert_int_equal(vt_spool_stage(f->sp, "d1", m, strlen(m), err, sizeof(err)), VT_SPOOL_ERR);
    assert_non_null(strstr(err, "staged already"));
    stage(f, "d2");
    assert_int_equal(vt_spool_stage(f->sp, "d3", m, strlen(m), err, sizeof(err)),
                     VT_SPOOL_OVER_CAP);
    assert_int_equal(vt_spool_commit(f->sp, NULL, NULL), 2);
    free(m);
}

/* The committer: a batch's fsyncs run on its thread while the owner goes on. Here the fsyncs wait
 * on a gate the test opens: the test keeps staging (and hits the cap, which counts the detached
 * batch) while the batch is in its fsync, nothing is in spool/ or reported before the gate opens,
 * then done runs on the loop with every measurement taken. */
static sem_t fsync_gate;
static int gated_fsyncs;

static int gated_fsync(int fd)
{
    __atomic_add_fetch(&gated_fsyncs, 1, __ATOMIC_SEQ_CST);
    sem_wait(&fsync_gate);
    return fsync(fd);
}

typedef struct batch_done {
    fixture *f;
    vt_loop *loop;
    committed c;
    int calls;
    size_t taken;
} batch_done;

static void on_batch(vt_spool_batch *b, void *job, void *arg)
{
    batch_done *d = arg;
    assert_ptr_equal(job, d);
    d->calls++;
    d->taken += vt_spool_batch_finish(d->f->sp, b, on_commit, &d->c);
    if (d->loop)
        vt_loop_break(d->loop);
}

static void give_up(void *arg)
{
    vt_loop_break(arg);
}

static void committer_runs_the_fsyncs_off_the_owners_thread(void **state)
{
    fixture *f = *state;
    char err[512], *m = measurement("g5");
    vt_spool_io io = {.write = sys_write, .fsync = gated_fsync};
    batch_done d = {.f = f};
    assert_int_equal(sem_init(&fsync_gate, 0, 0), 0);
    vt_loop *loop = vt_loop_new(err, sizeof(err));
    assert_non_null(loop);
    d.loop = loop;
    vt_committer *c = vt_committer_new(loop, f->sp, on_batch, &d, err, sizeof(err));
    assert_non_null(c);
    vt_spool_set_io(f->sp, &io);
    vt_spool_set_limits(f->sp, 4, 0);
    stage(f, "g1");
    stage(f, "g2");
    stage(f, "g3");
    vt_spool_batch *b = vt_spool_detach(f->sp);
    assert_non_null(b);
    assert_int_equal(vt_spool_staged(f->sp), 0);
    assert_int_equal(vt_committer_submit(c, b, &d), 0);
    assert_true(vt_committer_busy(c));
    assert_int_equal(vt_committer_submit(c, b, &d), -1); /* one batch at a time */
    /* The worker is held in the first fsync; this thread goes on staging. */
    for (int i = 0; i < 500 && __atomic_load_n(&gated_fsyncs, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(10000);
    assert_int_equal(__atomic_load_n(&gated_fsyncs, __ATOMIC_SEQ_CST), 1);
    stage(f, "g4");
    /* the three being committed count against the cap of 4 */
    assert_int_equal(vt_spool_stage(f->sp, "g5", m, strlen(m), err, sizeof(err)),
                     VT_SPOOL_OVER_CAP);
    assert_false(exists(f, "", "g1.json"));
    assert_int_equal(d.calls, 0);
    assert_true(vt_committer_busy(c));
    /* Open the gate: done runs on the loop (bounded by a 10 s timer). */
    for (int i = 0; i < 16; i++)
        sem_post(&fsync_gate);
    struct event *bound = vt_timer_start(d.loop, 10000, give_up, d.loop);
    assert_non_null(bound);
    vt_loop_run(d.loop);
    assert_int_equal(d.calls, 1); /* (not the 10 s bound) */
    vt_timer_cancel(bound);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.taken, 3);
    assert_int_equal(d.c.n, 3);
    assert_string_equal(d.c.uid[0], "g1");
    assert_string_equal(d.c.uid[2], "g3");
    assert_int_equal(d.c.rc[0] | d.c.rc[1] | d.c.rc[2], 0);
    assert_true(exists(f, "", "g1.json") && exists(f, "", "g3.json"));
    assert_false(vt_committer_busy(c));
    size_t count;
    vt_spool_totals(f->sp, &count, NULL);
    assert_int_equal(count, 3);
    /* The next batch through vt_committer_wait (the end of a run), without the loop. */
    d.loop = NULL;
    assert_non_null(b = vt_spool_detach(f->sp));
    assert_int_equal(vt_committer_submit(c, b, &d), 0);
    for (int i = 0; i < 16; i++)
        sem_post(&fsync_gate);
    vt_committer_wait(c);
    assert_int_equal(d.calls, 2);
    assert_int_equal(d.taken, 4);
    assert_true(exists(f, "", "g4.json"));
    vt_spool_totals(f->sp, &count, NULL);
    assert_int_equal(count, 4);
    vt_committer_free(c);
    vt_spool_set_io(f->sp, NULL);
    for (int i = 0; i < 64; i++)
        sem_post(&fsync_gate);
    sem_destroy(&fsync_gate);
    vt_loop_free(loop);
    free(m);
}

/* A crash (here: _exit) between staging and commit: the committed batch is whole in spool/, the
 * staged one is gone after the next open, and no partial file is ever listed. */
static void a_crash_before_commit_loses_only_the_staged_batch(void **state)
{
    fixture *f = *state;
    char err[512];
    vt_spool_listing l;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vt_spool *sp = vt_spool_open(f->state, err, sizeof(err));
        const char *uids[] = {"e1", "e2", "e3"};
        for (int i = 0; i < 3; i++) {
            char *m = measurement(uids[i]);
            if (!sp || vt_spool_stage(sp, uids[i], m, strlen(m), err, sizeof(err)) != 0) _exit(2);
            free(m);
            if (i == 1 && vt_spool_commit(sp, NULL, NULL) != 2) _exit(3);
        }
        _exit(0); /* e3 staged, never committed */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(count_sub(f, "tmp"), 1); /* e3's tmp file, left by the "crash" */
    vt_spool_close(f->sp);
    f->sp = vt_spool_open(f->state, err, sizeof(err));
    assert_non_null(f->sp);
    assert_int_equal(count_sub(f, "tmp"), 0);
    assert_int_equal(vt_spool_list(f->sp, &l, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.corrupt, 0);
    vt_spool_listing_free(&l);
    assert_false(exists(f, "", "e3.json"));
    /* Closing with a staged measurement drops it too. */
    stage(f, "e4");
    vt_spool_close(f->sp);
    f->sp = vt_spool_open(f->state, err, sizeof(err));
    assert_false(exists(f, "", "e4.json"));
    assert_int_equal(count_sub(f, "tmp"), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(open_creates_private_directories),
        T(put_stores_one_file_per_uid_and_list_returns_them),
        T(a_spooled_file_is_private_and_survives_reopen),
        T(put_measurement_names_the_file_after_measurement_uid),
        T(bad_uids_are_refused),
        T(ack_deletes_only_the_acknowledged_uid),
        T(rejected_moves_to_rejected_with_its_reason),
        T(rejected_is_capped),
        T(stale_tmp_files_are_removed_on_open_but_a_live_writer_is_left_alone),
        T(damaged_files_are_set_aside_once),
        T(disk_full_on_write_stores_nothing_and_says_so),
        T(quota_exceeded_on_fsync_stores_nothing_and_says_so),
        T(other_write_errors_are_errors_not_disk_full),
        T(real_file_size_limit_behaves_as_disk_full),
        T(over_the_cap_new_measurements_are_refused_with_a_warning),
        T(atomic_file_write_replaces_whole),
        T(a_batch_is_taken_at_commit_with_one_directory_fsync),
        T(a_failed_fsync_in_a_batch_loses_only_that_measurement),
        T(staged_counts_against_the_cap_and_twice_is_refused),
        T(a_crash_before_commit_loses_only_the_staged_batch),
        T(committer_runs_the_fsyncs_off_the_owners_thread),
        cmocka_unit_test(default_state_dir_follows_xdg_then_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
