/* Citizen Lab test lists: RFC 4180 quoting, LF and CRLF, row-level errors naming file:line, and
 * every row of the real lists in ../shared/data. Nothing here contacts the listed hosts. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "vantage/targets.h"

#define HEADER "url,category_code,category_description,date_added,source,notes"

static char err[1024];
static char tmpdir[64];
static char path[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vt-cl-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/xx.csv", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

static int load_csv(vt_target_list *l, const char *content, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
    err[0] = 0;
    return vt_targets_load_citizenlab(l, path, err, sizeof err);
}

static int load_s(vt_target_list *l, const char *content)
{
    return load_csv(l, content, strlen(content));
}

static const char *notes(const vt_target *t)
{
    const cJSON *cl = cJSON_GetObjectItem(t->options, "citizenlab");
    return cJSON_GetObjectItem(cl, "notes")->valuestring;
}

static void rows_become_web_targets(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_s(&l,
                            HEADER "\n"
                                   "https://discomaulvi.wordpress.com/,CULTR,Culture,2014-04-15,"
                                   "citizenlab,\n"
                                   "http://www.Vtunnel.info:8080/x,ANON,Anonymization,2014-04-15,"
                                   "citizenlab,a note\n"),
                     0);
    assert_int_equal(l.n, 2);
    const vt_target *t = &l.items[0];
    assert_string_equal(t->id, "citizenlab-xx-discomaulvi.wordpress.com");
    assert_string_equal(t->kind, "web");
    assert_string_equal(t->platform, "discomaulvi.wordpress.com");
    assert_string_equal(t->category, "CULTR");
    assert_string_equal(t->source, "xx.csv:2");
    assert_int_equal(t->n_endpoints, 1);
    assert_string_equal(t->endpoints[0], "https://discomaulvi.wordpress.com/");
    /* options holds the row's columns only: the target's fields are in the struct. */
    assert_null(cJSON_GetObjectItem(t->options, "kind"));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(t->options, "citizenlab"), "url")->valuestring,
        "https://discomaulvi.wordpress.com/");
    t = &l.items[1];
    assert_string_equal(t->id, "citizenlab-xx-www.vtunnel.info");
    assert_string_equal(t->platform, "www.vtunnel.info");
    assert_string_equal(t->endpoints[0], "http://www.Vtunnel.info:8080/x");
    assert_string_equal(t->source, "xx.csv:3");
    assert_string_equal(notes(t), "a note");
    const cJSON *cl = cJSON_GetObjectItem(t->options, "citizenlab");
    assert_string_equal(cJSON_GetObjectItem(cl, "category_description")->valuestring,
                        "Anonymization");
    assert_string_equal(cJSON_GetObjectItem(cl, "date_added")->valuestring, "2014-04-15");
    vt_targets_free(&l);
}

static void quoted_notes_keep_commas_quotes_and_newlines(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_s(&l,
                            HEADER "\n"
                                   "https://a.example/,NEWS,News,2020-01-01,cl,\"one, two\"\n"
                                   "https://b.example/,NEWS,News,2020-01-01,cl,\"say \"\"hi\"\"\"\n"
                                   "https://c.example/,NEWS,News,2020-01-01,cl,\"line1\nline2\n"
                                   "line3\"\n"
                                   "https://d.example/,NEWS,News,2020-01-01,cl,\"\"\n"
                                   "\"https://e.example/\",NEWS,\"News, Media\",2020-01-01,cl,"
                                   "x\"y\n"),
                     0);
    assert_int_equal(l.n, 5);
    assert_string_equal(notes(&l.items[0]), "one, two");
    assert_string_equal(notes(&l.items[1]), "say \"hi\"");
    assert_string_equal(notes(&l.items[2]), "line1\nline2\nline3");
    assert_string_equal(notes(&l.items[3]), "");
    assert_string_equal(notes(&l.items[4]), "x\"y"); /* a bare quote mid-field is data */
    /* Lines count the newlines inside quotes: row 4 starts on line 4, row 5 on line 7. */
    assert_string_equal(l.items[2].source, "xx.csv:4");
    assert_string_equal(l.items[3].source, "xx.csv:7");
    assert_string_equal(l.items[4].source, "xx.csv:8");
    assert_string_equal(l.items[4].endpoints[0], "https://e.example/");
    vt_targets_free(&l);
}

static void crlf_bom_blank_lines_and_no_final_newline(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_s(&l, "\xEF\xBB\xBF" HEADER "\r\n"
                                "https://a.example/,NEWS,News,2020-01-01,cl,\"x\r\ny\"\r\n"
                                "\r\n"
                                "https://b.example/,NEWS,News,2020-01-01,cl,last"),
                     0);
    assert_int_equal(l.n, 2);
    assert_string_equal(notes(&l.items[0]), "x\r\ny");
    assert_string_equal(notes(&l.items[1]), "last");
    assert_string_equal(l.items[1].source, "xx.csv:5");
    assert_string_equal(l.items[1].category, "NEWS");
    vt_targets_free(&l);
}

static void same_host_twice_gets_unique_ids(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_s(&l,
                            HEADER "\n"
                                   "https://www.youtube.com/,MMED,Media,2014-04-15,cl,\n"
                                   "https://www.youtube.com/watch?v=1,MMED,Media,2014-04-15,cl,\n"
                                   "http://WWW.YOUTUBE.COM/x,MMED,Media,2014-04-15,cl,\n"),
                     0);
    assert_string_equal(l.items[0].id, "citizenlab-xx-www.youtube.com");
    assert_string_equal(l.items[1].id, "citizenlab-xx-www.youtube.com-2");
    assert_string_equal(l.items[2].id, "citizenlab-xx-www.youtube.com-3");
    vt_targets_free(&l);
}

/* Ids of rows of one host: each row used to probe "-2", "-3", ... from 2 again, so 32000 rows
 * took minutes. Ids already taken (another file, a host that looks suffixed) are skipped. */
static void many_rows_of_one_host_get_ids_in_linear_time(void **state)
{
    const size_t rows = 20000;
    size_t cap = strlen(HEADER) + 2 + rows * 64, n = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, HEADER "\n");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)snprintf(doc + n, cap - n, "http://%s/%zu,NEWS,,,,\n",
                              i % 4 == 3 ? "b.example" : "A.example", i);
    n += (size_t)snprintf(doc + n, cap - n, "http://a.example-2/,NEWS,,,,\n");
    vt_target_list l;
    vt_targets_init(&l);
    /* Taken before the list loads: the suffixes 3 and 5 of a.example. */
    static const char prior[] =
        "{\"version\":1,\"targets\":[{\"id\":\"citizenlab-xx-a.example-3\",\"name\":\"N\","
        "\"platform\":\"p\",\"category\":\"c\",\"kind\":\"web\",\"endpoints\":[\"http://x/\"]},"
        "{\"id\":\"citizenlab-xx-a.example-5\",\"name\":\"N\",\"platform\":\"p\",\"category\":"
        "\"c\",\"kind\":\"web\",\"endpoints\":[\"http://x/\"]}]}";
    assert_int_equal(vt_targets_load_json(&l, prior, strlen(prior), "p.json", err, sizeof err), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(load_csv(&l, doc, n), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* timed, not asserted: bench/target-lists compares it with distinct hosts */
    print_message("%zu rows of two hosts: %.3f s\n", rows, sec);
    assert_int_equal(l.n, 2 + rows + 1);
    assert_string_equal(l.items[2].id, "citizenlab-xx-a.example");
    assert_string_equal(l.items[3].id, "citizenlab-xx-a.example-2");
    assert_string_equal(l.items[4].id, "citizenlab-xx-a.example-4"); /* -3 is taken */
    assert_string_equal(l.items[5].id, "citizenlab-xx-b.example");
    assert_string_equal(l.items[6].id, "citizenlab-xx-a.example-6"); /* -5 is taken */
    assert_string_equal(l.items[9].id, "citizenlab-xx-b.example-2");
    assert_string_equal(l.items[2 + rows - 1].id, "citizenlab-xx-b.example-5000");
    /* 15000 rows of a.example: suffixes 2..15002 without 3 and 5; then the host "a.example-2",
     * whose own id is taken by the second row. */
    assert_string_equal(l.items[2 + rows - 2].id, "citizenlab-xx-a.example-15002");
    assert_string_equal(l.items[2 + rows].id, "citizenlab-xx-a.example-2-2");
    for (size_t i = 0; i < l.n; i++)
        assert_ptr_equal(vt_targets_find(&l, l.items[i].id), &l.items[i]);
    vt_targets_free(&l);
    free(doc);
}

/* A row's strings are kept once: options held a copy of the whole target object besides the
 * struct's strings (about 2.4 KB a row, 615 MB for an 8 MiB list); now its columns only, which
 * must all be there and survive a copy. The memory is printed, and compared with the list's
 * size by bench/target-lists. */
static void a_row_keeps_its_columns(void **state)
{
    const size_t rows = 20000;
    size_t cap = strlen(HEADER) + 2 + rows * 100, n = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, HEADER "\n");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "https://www.site%zu.example.org/a/path,NEWS,News Media,2014-04-15,"
                              "citizenlab,\n",
                              i);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(doc, 1, n, f), n);
    fclose(f);
    free(doc);
    vt_target_list l;
    vt_targets_init(&l);
    struct mallinfo2 m0 = mallinfo2();
    assert_int_equal(vt_targets_load_citizenlab(&l, path, err, sizeof err), 0);
    struct mallinfo2 m1 = mallinfo2();
    size_t used = (m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd);
    print_message("%zu rows: %zu bytes held, %zu a row\n", rows, used, used / rows);
    /* The columns are all there. */
    const cJSON *cl = cJSON_GetObjectItem(l.items[7].options, "citizenlab");
    assert_string_equal(cJSON_GetObjectItem(cl, "url")->valuestring,
                        "https://www.site7.example.org/a/path");
    assert_string_equal(cJSON_GetObjectItem(cl, "category_code")->valuestring, "NEWS");
    assert_string_equal(cJSON_GetObjectItem(cl, "category_description")->valuestring, "News Media");
    assert_string_equal(cJSON_GetObjectItem(cl, "source")->valuestring, "citizenlab");
    assert_string_equal(notes(&l.items[7]), "");
    /* A copy owns its strings. */
    cJSON *dup = cJSON_Duplicate(l.items[7].options, 1);
    vt_targets_free(&l);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(dup, "citizenlab"), "url")->valuestring,
        "https://www.site7.example.org/a/path");
    cJSON_Delete(dup);
}

/* docs/targets.md: the id is lowercased, the file stem too ("PK.csv" and "IR.csv" must not both
 * become "__"). */
static void the_file_stem_is_lowercased_in_ids(void **state)
{
    char p[300];
    snprintf(p, sizeof p, "%s/PK Upper.csv", tmpdir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(HEADER "\nhttp://A.test/,NEWS,,,,\n", f);
    fclose(f);
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(vt_targets_load_citizenlab(&l, p, err, sizeof err), 0);
    unlink(p);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].id, "citizenlab-pk_upper-a.test");
    vt_targets_free(&l);
}

static void a_wrong_header_is_an_error(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_s(&l, "url,category,date\nhttps://a.example/,NEWS,2020\n"), -1);
    assert_non_null(strstr(err, "xx.csv:1: not a Citizen Lab test list: expected the header "
                                "url,category_code,"));
    assert_int_equal(load_s(&l, ""), -1);
    assert_non_null(strstr(err, "xx.csv:1: empty file"));
    assert_int_equal(load_s(&l, "name,scope,other_names,location_found,pattern_type,pattern\n"),
                     -1);
    assert_non_null(strstr(err, "not a Citizen Lab test list"));
    assert_int_equal(l.n, 0);
    vt_targets_free(&l);
}

static void bad_rows_name_file_line_and_problem(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_s(&l, HEADER "\n"
                                       "https://a.example/,NEWS,News,2020-01-01,cl,\n"
                                       "https://b.example/,NEWS,News,2020-01-01,cl\n"),
                     -1);
    assert_non_null(strstr(err, "xx.csv:3: expected 6 fields, got 5"));
    assert_int_equal(l.n, 0); /* the good first row is not kept either */
    assert_int_equal(load_s(&l, HEADER "\nftp://a.example/,NEWS,News,2020-01-01,cl,\n"), -1);
    assert_non_null(strstr(err, "xx.csv:2: url \"ftp://a.example/\": expected an http:// or "
                                "https:// URL"));
    assert_int_equal(load_s(&l, HEADER "\nhttps://a.example/,NEWS,,,,\nhttp://%00/,NEWS,,,,\n"),
                     -1);
    assert_non_null(strstr(err, "xx.csv:3: url \"http://%00/\": not a URL the probe can use"));
    assert_int_equal(load_s(&l, HEADER "\nhttps://a.example/,,News,2020-01-01,cl,\n"), -1);
    assert_non_null(strstr(err, "xx.csv:2: category_code is empty"));
    assert_int_equal(load_s(&l, HEADER "\nhttps://a.example/,NEWS,News,2020-01-01,cl,\"open\n"
                                       "https://b.example/,NEWS,News,2020-01-01,cl,\n"),
                     -1);
    assert_non_null(strstr(err, "xx.csv:2: quoted field opened here is never closed"));
    assert_int_equal(load_s(&l, HEADER "\nhttps://a.example/,NEWS,News,2020-01-01,cl,\"a\"b\n"),
                     -1);
    assert_non_null(strstr(err, "xx.csv:2: unexpected character after a closing quote"));
    static const char bad_utf8[] = HEADER "\nhttps://a.example/,NEWS,\xff,2020,cl,\n";
    assert_int_equal(load_csv(&l, bad_utf8, sizeof bad_utf8 - 1), -1);
    assert_non_null(strstr(err, "xx.csv:2:"));
    assert_non_null(strstr(err, "invalid UTF-8"));
    static const char nul[] = HEADER "\nhttps://a.example/,NEWS,\0,2020,cl,\n";
    assert_int_equal(load_csv(&l, nul, sizeof nul - 1), -1);
    assert_non_null(strstr(err, "NUL byte"));
    assert_int_equal(l.n, 0);
    vt_targets_free(&l);
}

static void mutated_lists_never_crash(void **state)
{
    const char *seed = HEADER "\nhttps://a.example/,NEWS,News,2020-01-01,cl,\"x, \"\"y\"\"\"\r\n"
                              "http://[::1]:8080/p,HUMR,Human Rights,2020-01-01,cl,\n";
    size_t n = strlen(seed);
    char *buf = malloc(n);
    unsigned s = 99;
    int ok = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(buf, seed, n);
        for (int m = 0; m < 1 + iter % 3; m++) {
            s = s * 1103515245u + 12345u;
            size_t pos = strlen(HEADER) + (s >> 8) % (n - strlen(HEADER));
            s = s * 1103515245u + 12345u;
            buf[pos] = "\",\r\n\x80"
                       "ab:/[]\0"[(s >> 16) % 13];
        }
        vt_target_list l;
        vt_targets_init(&l);
        int rc = load_csv(&l, buf, n);
        if (rc == 0)
            ok++;
        else
            assert_int_equal(l.n, 0);
        vt_targets_free(&l);
    }
    free(buf);
    assert_true(ok > 0);
}

/* ---- the real lists in ../shared/data (skipped where absent) ---- */

static const char *shared(void)
{
    static char dir[1024];
    const char *env = getenv("VT_SHARED_DATA");
    struct stat st;
    snprintf(dir, sizeof dir, "%s/test-lists", env ? env : VT_SOURCE_DIR "/../shared/data");
    if (stat(dir, &st) != 0) {
        print_message("skipped: %s is absent (set VT_SHARED_DATA to ../shared/data)\n", dir);
        return NULL;
    }
    return dir;
}

static void every_row_of_the_shared_lists_loads(void **state)
{
    const char *dir = shared();
    if (!dir) skip();
    struct {
        const char *file;
        size_t rows; /* counted with Python's csv module */
    } lists[] = {{"pk.csv", 670}, {"global.csv", 1722}};
    vt_target_list all;
    vt_targets_init(&all);
    for (size_t i = 0; i < 2; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, lists[i].file);
        vt_target_list l;
        vt_targets_init(&l);
        if (vt_targets_load_citizenlab(&l, p, err, sizeof err) != 0) fail_msg("%s", err);
        assert_int_equal(l.n, lists[i].rows);
        for (size_t k = 0; k < l.n; k++) {
            assert_string_equal(l.items[k].kind, "web");
            assert_true(strlen(l.items[k].category) > 0);
            for (size_t j = k + 1; j < l.n && j < k + 50; j++)
                assert_string_not_equal(l.items[k].id, l.items[j].id);
        }
        vt_targets_free(&l);
        /* Into one list: ids stay unique (the file stem is part of them). */
        if (vt_targets_load_citizenlab(&all, p, err, sizeof err) != 0) fail_msg("%s", err);
    }
    assert_int_equal(all.n, 670 + 1722);
    for (size_t k = 0; k < all.n; k++)
        assert_ptr_equal(vt_targets_find(&all, all.items[k].id), &all.items[k]);
    const vt_target *t = vt_targets_find(&all, "citizenlab-pk-www.pmln.org.pk");
    assert_non_null(t);
    assert_string_equal(t->source, "pk.csv:5");
    assert_string_equal(t->category, "CULTR");
    vt_targets_free(&all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rows_become_web_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(quoted_notes_keep_commas_quotes_and_newlines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(crlf_bom_blank_lines_and_no_final_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(same_host_twice_gets_unique_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(many_rows_of_one_host_get_ids_in_linear_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_file_stem_is_lowercased_in_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(a_row_keeps_its_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(a_wrong_header_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_rows_name_file_line_and_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(mutated_lists_never_crash, setup, teardown),
        cmocka_unit_test(every_row_of_the_shared_lists_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
