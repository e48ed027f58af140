/* Target files: the shipped lists load, and every kind of broken file is refused with a message
 * naming the file, the target and the key. Nothing here contacts the hosts in the lists. */
#include <dirent.h>
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

static char err[1024];

/* A one-target file around the given target object body. */
static int load1(vt_target_list *l, const char *target_json)
{
    char doc[4096];
    snprintf(doc, sizeof doc, "{\"version\": 1, \"list\": \"t\", \"targets\": [%s]}", target_json);
    err[0] = 0;
    return vt_targets_load_json(l, doc, strlen(doc), "t.json", err, sizeof err);
}

static int load_str(vt_target_list *l, const char *doc)
{
    err[0] = 0;
    return vt_targets_load_json(l, doc, strlen(doc), "t.json", err, sizeof err);
}

#define WEB(id, eps)                                                                               \
    "{\"id\":\"" id "\",\"name\":\"N\",\"platform\":\"p\",\"category\":\"social\",\"kind\":"       \
    "\"web\",\"endpoints\":" eps "}"

static void a_good_file_fills_every_field(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_str(&l, "{\"version\":1,\"list\":\"social\",\"targets\":["
                                  "{\"id\":\"x-web\",\"name\":\"X (Twitter) web\",\"platform\":"
                                  "\"x\",\"category\":\"social\",\"kind\":\"web\",\"endpoints\":["
                                  "\"https://x.com/\",\"https://twitter.com/\"],"
                                  "\"large_resource\":\"https://x.com/big\"},"
                                  "{\"id\":\"wa\",\"name\":\"WA\",\"platform\":\"whatsapp\","
                                  "\"category\":\"messaging\",\"kind\":\"endpoint\",\"endpoints\":"
                                  "[\"e1.whatsapp.net:5222\",\"[2001:db8::1]:443\"],\"tls\":true,"
                                  "\"sni\":\"e1.whatsapp.net\",\"future_key\":[1,2]}]}"),
                     0);
    assert_int_equal(l.n, 2);
    const vt_target *t = vt_targets_find(&l, "x-web");
    assert_non_null(t);
    assert_string_equal(t->name, "X (Twitter) web");
    assert_string_equal(t->platform, "x");
    assert_string_equal(t->category, "social");
    assert_string_equal(t->kind, "web");
    assert_int_equal(t->n_endpoints, 2);
    assert_string_equal(t->endpoints[1], "https://twitter.com/");
    assert_string_equal(t->large_resource, "https://x.com/big");
    assert_string_equal(t->source, "t.json");
    t = vt_targets_find(&l, "wa");
    assert_null(t->large_resource);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(t->options, "tls")));
    assert_string_equal(cJSON_GetObjectItem(t->options, "sni")->valuestring, "e1.whatsapp.net");
    assert_non_null(cJSON_GetObjectItem(t->options, "future_key"));
    assert_null(vt_targets_find(&l, "nope"));
    vt_targets_free(&l);
}

static void syntax_error_names_line_and_column(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_str(&l, "{\n  \"version\": 1,\n  \"targets\": [\n    {\"id\": \"a\",,}\n"
                                  "  ]\n}\n"),
                     -1);
    assert_non_null(strstr(err, "t.json:4:"));
    assert_non_null(strstr(err, "JSON syntax error"));
    assert_non_null(strstr(err, "byte offset"));
    assert_int_equal(l.n, 0);
    assert_int_equal(load_str(&l, "{\"version\":1,\"targets\":[]} trailing"), -1);
    assert_non_null(strstr(err, "t.json:1:28: unexpected data after the JSON document"));
    assert_int_equal(load_str(&l, ""), -1);
    assert_non_null(strstr(err, "t.json: the file is empty"));
    assert_int_equal(load_str(&l, " \n\t\r\n"), -1);
    assert_non_null(strstr(err, "t.json: the file is empty"));
    assert_int_equal(load_str(&l, "\n"), -1);
    vt_targets_free(&l);
}

static void missing_key_is_named(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load1(&l, "{\"id\":\"a\",\"name\":\"N\",\"category\":\"c\",\"kind\":\"web\","
                               "\"endpoints\":[\"https://a.example/\"]}"),
                     -1);
    assert_string_equal(err, "t.json: targets[0] (id \"a\"): key \"platform\": missing (expected a "
                             "non-empty string)");
    assert_int_equal(load1(&l, "{\"name\":\"N\"}"), -1);
    assert_string_equal(err,
                        "t.json: targets[0]: key \"id\": missing (expected a non-empty string)");
    assert_int_equal(load_str(&l, "{\"targets\":[]}"), -1);
    assert_string_equal(err, "t.json: key \"version\": missing (expected 1)");
    assert_int_equal(load_str(&l, "{\"version\":1}"), -1);
    assert_string_equal(err,
                        "t.json: key \"targets\": expected an array of target objects (missing)");
    vt_targets_free(&l);
}

static void wrong_types_are_named(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load1(&l, WEB("a", "\"https://a.example/\"")), -1);
    assert_string_equal(err,
                        "t.json: targets[0] (id \"a\"): key \"endpoints\": expected a non-empty "
                        "array of strings");
    assert_int_equal(load1(&l, WEB("a", "[\"https://a.example/\", 7]")), -1);
    assert_non_null(strstr(err, "key \"endpoints\": expected a non-empty array of strings (item 1 "
                                "is a number)"));
    assert_int_equal(load1(&l, "{\"id\":5}"), -1);
    assert_string_equal(
        err, "t.json: targets[0]: key \"id\": expected a non-empty string, got a number");
    assert_int_equal(load1(&l, "[1]"), -1);
    assert_string_equal(err, "t.json: targets[0]: expected an object, got an array");
    assert_int_equal(load_str(&l, "[]"), -1);
    assert_non_null(strstr(err, "expected a JSON object at the top level"));
    assert_int_equal(load_str(&l, "{\"version\":2,\"targets\":[]}"), -1);
    assert_non_null(strstr(err, "key \"version\": unsupported version"));
    assert_int_equal(load_str(&l, "{\"version\":1,\"target\":[]}"), -1);
    assert_non_null(strstr(err, "key \"target\": unknown top-level key"));
    assert_int_equal(load_str(&l, "{\"version\":1,\"_comment\":\"x\",\"targets\":[]}"), 0);
    assert_int_equal(load1(&l, "{\"id\":\"a\",\"name\":\"N\",\"platform\":\"p\",\"category\":\"c\","
                               "\"kind\":\"endpoint\",\"endpoints\":[\"a.example:443\"],"
                               "\"tls\":\"yes\"}"),
                     -1);
    assert_non_null(strstr(err, "key \"tls\": expected true or false, got a string"));
    assert_int_equal(load1(&l, "{\"id\":\"a\",\"name\":\"N\",\"platform\":\"p\",\"category\":\"c\","
                               "\"kind\":\"endpoint\",\"endpoints\":[\"a.example:443\"],"
                               "\"sni\":\"b.example\"}"),
                     -1);
    assert_non_null(strstr(err, "key \"sni\": only meaningful with \"tls\": true"));
    assert_int_equal(load1(&l, "{\"id\":\"A B\",\"name\":\"N\"}"), -1);
    assert_non_null(strstr(err, "key \"id\": \"A B\" is not a valid id"));
    assert_int_equal(load1(&l, WEB("a", "[\"https://a.example/\"]") ",{\"id\":\"b\",\"id\":\"c\"}"),
                     -1);
    assert_string_equal(err, "t.json: targets[1]: key \"id\": appears twice in the same target");
    assert_int_equal(l.n, 0);
    vt_targets_free(&l);
}

static void duplicate_ids_are_refused_across_files(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(
        load1(&l, WEB("a", "[\"https://a.example/\"]") "," WEB("a", "[\"https://b/\"]")), -1);
    assert_string_equal(err, "t.json: targets[1] (id \"a\"): key \"id\": duplicate id, already "
                             "defined in t.json");
    assert_int_equal(l.n, 0);
    const char *other = "{\"version\":1,\"targets\":[" WEB("a", "[\"https://a.example/\"]") "]}";
    assert_int_equal(vt_targets_load_json(&l, other, strlen(other), "other.json", err, sizeof err),
                     0);
    assert_int_equal(
        load1(&l, WEB("b", "[\"https://b.example/\"]") "," WEB("a", "[\"https://a.example/\"]")),
        -1);
    assert_string_equal(err, "t.json: targets[1] (id \"a\"): key \"id\": duplicate id, already "
                             "defined in other.json");
    assert_int_equal(l.n, 1); /* b was not kept: a failed load appends nothing */
    assert_null(vt_targets_find(&l, "b"));
    vt_targets_free(&l);
}

static void empty_endpoints_are_refused(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load1(&l, WEB("a", "[]")), -1);
    assert_string_equal(err,
                        "t.json: targets[0] (id \"a\"): key \"endpoints\": expected a non-empty "
                        "array of strings");
    assert_int_equal(load1(&l, WEB("a", "[\"\"]")), -1);
    assert_non_null(strstr(err, "(item 0 is empty)"));
    vt_targets_free(&l);
}

static void web_endpoints_must_be_http_urls(void **state)
{
    static const char *const bad[] = {
        "[\"ftp://a.example/\"]",
        "[\"a.example\"]",
        "[\"https://\"]",
        "[\"https:///path\"]",
        "[\"https://exa mple.com/\"]",
        "[\"https://a.example:99999/\"]",
        "[\"https://a.example:0/\"]",
        "[\"https://a.example:x/\"]",
        "[\"https://[::1/\"]",
        "[\"https://a.example/\\u0001\"]",
        "[\"https://a<b.example/\"]",
    };
    vt_target_list l;
    vt_targets_init(&l);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char t[512];
        snprintf(t, sizeof t, WEB("a", "%s"), bad[i]);
        assert_int_equal(load1(&l, t), -1);
        assert_non_null(strstr(err, "t.json: targets[0] (id \"a\"): key \"endpoints[0]\": "));
    }
    assert_int_equal(load1(&l, WEB("a", "[\"ftp://a.example/\"]")), -1);
    assert_string_equal(err, "t.json: targets[0] (id \"a\"): key \"endpoints[0]\": "
                             "\"ftp://a.example/\": expected an http:// or https:// URL");
    /* URLs the runner would skip or could not look up are refused when the file loads. */
    assert_int_equal(load1(&l, WEB("a", "[\"http://user@a.test@b.test/\"]")), -1);
    assert_string_equal(err, "t.json: targets[0] (id \"a\"): key \"endpoints[0]\": "
                             "\"http://user@a.test@b.test/\": not a URL the probe can use "
                             "(libcurl refuses it)");
    assert_int_equal(load1(&l, WEB("a", "[\"https://a.example/\",\"http://%00/\"]")), -1);
    assert_string_equal(err, "t.json: targets[0] (id \"a\"): key \"endpoints[1]\": "
                             "\"http://%00/\": not a URL the probe can use (libcurl refuses it)");
    char label64[200], host300[400];
    snprintf(label64, sizeof label64, WEB("a", "[\"http://%s.example/\"]"),
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(load1(&l, label64), -1);
    assert_non_null(strstr(err, "key \"endpoints[0]\": \"http://aaaa"));
    assert_non_null(strstr(err, "URL host has a label longer than 63 bytes"));
    char host[301];
    for (int i = 0; i < 300; i++)
        host[i] = i % 50 == 49 ? '.' : 'a';
    host[300] = 0;
    snprintf(host300, sizeof host300, WEB("a", "[\"http://%s/\"]"), host);
    assert_int_equal(load1(&l, host300), -1);
    assert_non_null(strstr(err, "URL host is longer than 253 bytes"));
    assert_int_equal(load1(&l, "{\"id\":\"a\",\"name\":\"N\",\"platform\":\"p\",\"category\":"
                               "\"c\",\"kind\":\"web\",\"endpoints\":[\"https://a/\"],"
                               "\"large_resource\":\"http://a..b/\"}"),
                     -1);
    assert_non_null(strstr(err, "key \"large_resource\": \"http://a..b/\": URL host has an "
                                "empty label"));
    assert_int_equal(l.n, 0);
    assert_int_equal(load1(&l, WEB("a", "[\"HTTP://A.example:8080/x?y#z\",\"https://[::1]:443/\","
                                        "\"http://user@10.0.0.1/\"]")),
                     0);
    assert_int_equal(load1(&l, "{\"id\":\"b\",\"name\":\"N\",\"platform\":\"p\",\"category\":\"c\","
                               "\"kind\":\"web\",\"endpoints\":[\"https://b.example/\"],"
                               "\"large_resource\":\"b.example/big\"}"),
                     -1);
    assert_non_null(strstr(err, "key \"large_resource\": \"b.example/big\": expected an http"));
    vt_targets_free(&l);
}

static int load_kind(vt_target_list *l, const char *kind, const char *ep)
{
    char t[512];
    snprintf(t, sizeof t,
             "{\"id\":\"k\",\"name\":\"N\",\"platform\":\"p\",\"category\":\"c\",\"kind\":\"%s\","
             "\"endpoints\":[\"%s\"]}",
             kind, ep);
    int rc = load1(l, t);
    vt_targets_free(l);
    return rc;
}

static void other_kinds_need_host_and_port(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(load_kind(&l, "endpoint", "e1.whatsapp.net:5222"), 0);
    assert_int_equal(load_kind(&l, "endpoint", "1.1.1.1:443"), 0);
    assert_int_equal(load_kind(&l, "endpoint", "[2606:4700::1111]:443"), 0);
    assert_int_equal(load_kind(&l, "openvpn", "vpn.example:1194"), 0); /* unknown kind: fine */
    assert_int_equal(load_kind(&l, "endpoint", "e1.whatsapp.net"), -1);
    assert_non_null(strstr(err, "\"e1.whatsapp.net\": expected \"host:port\" (no port) (kind "
                                "\"endpoint\")"));
    assert_int_equal(load_kind(&l, "endpoint", "a.example:0"), -1);
    assert_non_null(strstr(err, "port must be a number from 1 to 65535"));
    assert_int_equal(load_kind(&l, "endpoint", "a.example:65536"), -1);
    assert_int_equal(load_kind(&l, "endpoint", "2606:4700::1111:443"), -1);
    assert_non_null(strstr(err, "an IPv6 address needs brackets"));
    assert_int_equal(load_kind(&l, "endpoint", "https://a.example/"), -1);
    assert_int_equal(load_kind(&l, "endpoint", "a..example:443"), -1);
    assert_int_equal(load_kind(&l, "endpoint", ":443"), -1);
    assert_int_equal(load_kind(&l, "endpoint", "[a.example]:443"), -1);
    assert_int_equal(load_kind(&l, "telegram", "149.154.175.50:443"), 0);
    assert_int_equal(load_kind(&l, "telegram", "149.154.175.50"), 0);
    assert_int_equal(load_kind(&l, "telegram", "https://web.telegram.org/"), 0);
    assert_int_equal(load_kind(&l, "telegram", "web.telegram.org:443"), -1);
    assert_non_null(strstr(err, "expected \"ip:port\" with an IP address literal"));
    assert_int_equal(load_kind(&l, "Bad Kind", "a.example:1"), -1);
    assert_non_null(strstr(err, "key \"kind\": \"Bad Kind\" is not a valid kind name"));
}

static void non_utf8_and_nul_are_refused(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    const char doc[] = "{\"version\":1,\n\"targets\":[{\"id\":\"a\",\"name\":\"\xff\"}]}";
    assert_int_equal(vt_targets_load_json(&l, doc, sizeof doc - 1, "t.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "t.json:2:30: invalid UTF-8"));
    const char nul[] = "{\"version\":1,\"targets\":[]}\0";
    assert_int_equal(vt_targets_load_json(&l, nul, sizeof nul - 1, "t.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL byte"));
    const char ok[] =
        "{\"version\":1,\"targets\":[{\"id\":\"a\",\"name\":\"Caf\xc3\xa9 \xe6\x97\xa5"
        "\",\"platform\":\"p\",\"category\":\"c\",\"kind\":\"web\",\"endpoints\":["
        "\"https://a.example/\"]}]}";
    assert_int_equal(vt_targets_load_json(&l, ok, sizeof ok - 1, "t.json", err, sizeof err), 0);
    assert_string_equal(l.items[0].name, "Caf\xc3\xa9 \xe6\x97\xa5");
    vt_targets_free(&l);
}

static void a_large_file_loads_in_linear_time(void **state)
{
    /* 40000 targets and one object with 20000 keys: duplicate checks must not be quadratic. */
    const size_t nt = 40000;
    size_t cap = nt * 160 + 20000 * 16 + 256, n = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, "{\"version\":1,\"targets\":[");
    for (size_t i = 0; i < nt; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "%s{\"id\":\"t%zu\",\"name\":\"N\",\"platform\":\"p\",\"category\":"
                              "\"c\",\"kind\":\"web\",\"endpoints\":[\"https://h%zu.example/\"]}",
                              i ? "," : "", i, i);
    n += (size_t)snprintf(doc + n, cap - n, ",{\"id\":\"many\"");
    for (size_t k = 0; k < 20000; k++)
        n += (size_t)snprintf(doc + n, cap - n, ",\"k%zu\":1", k);
    size_t mark = n;
    n += (size_t)snprintf(doc + n, cap - n, ",\"k7\":2}]}");
    vt_target_list l;
    vt_targets_init(&l);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(vt_targets_load_json(&l, doc, n, "big.json", err, sizeof err), -1);
    assert_string_equal(err,
                        "big.json: targets[40000]: key \"k7\": appears twice in the same target");
    n = mark + (size_t)snprintf(doc + mark, cap - mark,
                                ",\"name\":\"N\",\"platform\":\"p\",\"category\":\"c\",\"kind\":"
                                "\"web\",\"endpoints\":[\"https://x/\"]},%s]}",
                                WEB("t39999", "[\"https://a/\"]"));
    assert_int_equal(vt_targets_load_json(&l, doc, n, "big.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "targets[40001] (id \"t39999\"): key \"id\": duplicate id"));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("40001 targets, twice: %.3f s\n", sec);
    assert_int_equal(l.n, 0);
    vt_targets_free(&l);
    free(doc);
}

/* ---- files and directories ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *content, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
}

static void rm_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[512];
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
}

static int setup_tmp(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vt-targets-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    rm_tmpdir();
    return 0;
}

#define FILE1(id) "{\"version\":1,\"targets\":[" WEB(id, "[\"https://a.example/\"]") "]}"

static void a_directory_loads_json_files_in_name_order(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    write_file("b.json", FILE1("from-b"), strlen(FILE1("from-b")));
    write_file("a.json", FILE1("from-a"), strlen(FILE1("from-a")));
    write_file("notes.txt", "not json", 8);
    assert_int_equal(vt_targets_load_dir(&l, tmpdir, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].id, "from-a");
    assert_string_equal(l.items[1].id, "from-b");
    assert_non_null(strstr(l.items[1].source, "/b.json"));
    /* Loading the same directory again: every id is a duplicate, nothing is appended. */
    assert_int_equal(vt_targets_load_path(&l, tmpdir, err, sizeof err), -1);
    assert_non_null(strstr(err, "a.json: targets[0] (id \"from-a\"): key \"id\": duplicate id"));
    assert_int_equal(l.n, 2);
    vt_targets_free(&l);

    /* A broken second file leaves the list as it was. */
    write_file("c.json", "{\"version\":1,\"targets\":[}", 25);
    assert_int_equal(vt_targets_load_dir(&l, tmpdir, err, sizeof err), -1);
    assert_non_null(strstr(err, "/c.json:1:"));
    assert_int_equal(l.n, 0);
    vt_targets_free(&l);
}

static void an_empty_or_missing_directory_is_an_error(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(vt_targets_load_dir(&l, tmpdir, err, sizeof err), -1);
    assert_non_null(strstr(err, "no *.json target files"));
    assert_int_equal(vt_targets_load_path(&l, "/nonexistent/vt-targets", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/vt-targets"));
    assert_int_equal(vt_targets_load_file(&l, "/nonexistent/x.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.json: cannot open"));
    assert_int_equal(vt_targets_load_file(&l, tmpdir, err, sizeof err), -1);
    vt_targets_free(&l);
}

static void an_oversized_file_is_refused(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    size_t n = 8u * 1024 * 1024 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"version\":1,\"targets\":[]}", 26);
    write_file("big.json", big, n);
    free(big);
    char path[256];
    snprintf(path, sizeof path, "%s/big.json", tmpdir);
    assert_int_equal(vt_targets_load_file(&l, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "big.json: file too large"));
    vt_targets_free(&l);
}

static void load_path_reads_csv_as_citizenlab(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    const char *csv = "url,category_code,category_description,date_added,source,notes\n"
                      "https://a.example/,NEWS,News Media,2020-01-01,citizenlab,\n";
    write_file("xx.csv", csv, strlen(csv));
    char path[256];
    snprintf(path, sizeof path, "%s/xx.csv", tmpdir);
    assert_int_equal(vt_targets_load_path(&l, path, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].kind, "web");
    vt_targets_free(&l);
}

/* ---- filter ---- */

static void filter_keeps_the_named_targets_in_list_order(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(
        load1(&l, WEB("a", "[\"https://a.example/\"]") "," WEB(
                      "b", "[\"https://b.example/\"]") "," WEB("c", "[\"https://c/\"]")),
        0);
    assert_int_equal(vt_targets_filter_ids(&l, "c, a,missing", err, sizeof err), -1);
    assert_string_equal(err, "unknown target id \"missing\"");
    assert_int_equal(l.n, 3);
    assert_int_equal(vt_targets_filter_ids(&l, " c , a ,,", err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].id, "a");
    assert_string_equal(l.items[1].id, "c");
    assert_null(vt_targets_find(&l, "b"));
    vt_targets_free(&l);
}

/* --only with many ids on a big list: one hash lookup per id (it was a scan of the list per id:
 * 60000 ids took about 30 s). vt_targets_filter also keeps a category (the canaries). */
static void filter_is_linear_and_can_keep_a_category(void **state)
{
    const size_t nt = 60000;
    size_t cap = nt * 160 + 64, n = 0, icap = nt * 12 + 1, in = 0;
    char *doc = malloc(cap), *ids = malloc(icap);
    assert_non_null(doc);
    assert_non_null(ids);
    n += (size_t)snprintf(doc + n, cap - n, "{\"version\":1,\"targets\":[");
    for (size_t i = 0; i < nt; i++) {
        n += (size_t)snprintf(doc + n, cap - n,
                              "%s{\"id\":\"t%zu\",\"name\":\"N\",\"platform\":\"p\",\"category\":"
                              "\"%s\",\"kind\":\"web\",\"endpoints\":[\"https://h.example/\"]}",
                              i ? "," : "", i, i % 1000 == 7 ? "canary" : "c");
        if (i % 2 == 0) in += (size_t)snprintf(ids + in, icap - in, "%st%zu", in ? "," : "", i);
    }
    n += (size_t)snprintf(doc + n, cap - n, "]}");
    vt_target_list l;
    vt_targets_init(&l);
    assert_int_equal(vt_targets_load_json(&l, doc, n, "big.json", err, sizeof err), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(vt_targets_filter_ids(&l, ids, err, sizeof err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("%zu ids of %zu targets: %.3f s\n", nt / 2, nt, sec);
    assert_int_equal(l.n, nt / 2);
    assert_string_equal(l.items[4].id, "t8");
    vt_targets_free(&l);
    /* The even ids, and the odd canaries (i % 1000 == 7) */
    vt_targets_init(&l);
    assert_int_equal(vt_targets_load_json(&l, doc, n, "big.json", err, sizeof err), 0);
    assert_int_equal(vt_targets_filter(&l, ids, "canary", err, sizeof err), 0);
    assert_int_equal(l.n, nt / 2 + 60);
    assert_string_equal(l.items[4].id, "t7");
    assert_string_equal(l.items[5].id, "t8");
    assert_int_equal(vt_targets_filter(&l, "t0,t1", NULL, err, sizeof err), -1);
    assert_string_equal(err, "unknown target id \"t1\"");
    assert_int_equal(l.n, nt / 2 + 60);
    assert_int_equal(vt_targets_filter_ids(&l, "t7, t0", err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].id, "t0");
    assert_string_equal(l.items[1].id, "t7");
    vt_targets_free(&l);
    free(doc);
    free(ids);
}

/* ---- the shipped lists (parsed only: never measured here) ---- */

static void shipped_lists_load(void **state)
{
    vt_target_list l;
    vt_targets_init(&l);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/targets", VT_SOURCE_DIR);
    if (vt_targets_load_dir(&l, dir, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(l.n >= 30);
    /* canaries.json sorts before social.json */
    assert_string_equal(l.items[0].category, "canary");
    size_t canaries = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.items[i].category, "canary") == 0) {
            canaries++;
            assert_string_equal(l.items[i].platform, "canary");
        }
    }
    assert_int_equal(canaries, 5);
    const vt_target *wa = vt_targets_find(&l, "whatsapp-endpoints");
    assert_non_null(wa);
    assert_string_equal(wa->kind, "endpoint");
    assert_int_equal(wa->n_endpoints, 32);
    assert_string_equal(wa->endpoints[0], "e1.whatsapp.net:443");
    assert_string_equal(wa->endpoints[31], "e16.whatsapp.net:5222");
    const vt_target *tg = vt_targets_find(&l, "telegram-dc");
    assert_non_null(tg);
    assert_string_equal(tg->kind, "telegram");
    assert_int_equal(tg->n_endpoints, 12);
    const vt_target *sig = vt_targets_find(&l, "signal-service");
    assert_non_null(sig);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(sig->options, "tls")));
    const char *platforms[] = {"x",       "facebook", "instagram", "messenger", "whatsapp",
                               "youtube", "tiktok",   "telegram",  "signal",    "snapchat",
                               "reddit",  "linkedin", "discord",   "bluesky",   "threads"};
    for (size_t p = 0; p < sizeof platforms / sizeof *platforms; p++) {
        int found = 0;
        for (size_t i = 0; i < l.n; i++)
            found |= strcmp(l.items[i].platform, platforms[p]) == 0;
        if (!found) fail_msg("no target for platform %s", platforms[p]);
    }
    vt_targets_free(&l);
}

/* ---- hostile input ---- */

static void mutated_files_never_crash(void **state)
{
    const char *seed = "{\"version\":1,\"list\":\"t\",\"targets\":[" WEB(
        "a", "[\"https://a.example:8443/x\",\"http://[::1]/\"]") ",{\"id\":\"b\",\"name\":\"N\","
                                                                 "\"platform\":\"p\",\"category\":"
                                                                 "\"c\",\"kind\":\"endpoint\","
                                                                 "\"endpoints\":[\"h.example:1\"],"
                                                                 "\"tls\":true,\"sni\":\"s.ex\"}]}";
    size_t n = strlen(seed);
    char *buf = malloc(n + 1);
    unsigned seedv = 12345;
    int ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, seed, n + 1);
        int muts = 1 + iter % 4;
        for (int m = 0; m < muts; m++) {
            seedv = seedv * 1103515245u + 12345u;
            size_t pos = (seedv >> 8) % n;
            seedv = seedv * 1103515245u + 12345u;
            buf[pos] = (char)(seedv >> 16);
        }
        vt_target_list l;
        vt_targets_init(&l);
        int rc = vt_targets_load_json(&l, buf, n, "m.json", err, sizeof err);
        if (rc == 0)
            ok++;
        else
            assert_true(strncmp(err, "m.json", 6) == 0 && l.n == 0);
        vt_targets_free(&l);
    }
    free(buf);
    assert_true(ok > 0); /* some mutations (inside names) stay valid */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_good_file_fills_every_field),
        cmocka_unit_test(syntax_error_names_line_and_column),
        cmocka_unit_test(missing_key_is_named),
        cmocka_unit_test(wrong_types_are_named),
        cmocka_unit_test(duplicate_ids_are_refused_across_files),
        cmocka_unit_test(empty_endpoints_are_refused),
        cmocka_unit_test(web_endpoints_must_be_http_urls),
        cmocka_unit_test(other_kinds_need_host_and_port),
        cmocka_unit_test(non_utf8_and_nul_are_refused),
        cmocka_unit_test(a_large_file_loads_in_linear_time),
        cmocka_unit_test_setup_teardown(a_directory_loads_json_files_in_name_order, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(an_empty_or_missing_directory_is_an_error, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(an_oversized_file_is_refused, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(load_path_reads_csv_as_citizenlab, setup_tmp, teardown_tmp),
        cmocka_unit_test(filter_keeps_the_named_targets_in_list_order),
        cmocka_unit_test(filter_is_linear_and_can_keep_a_category),
        cmocka_unit_test(shipped_lists_load),
        cmocka_unit_test(mutated_files_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
