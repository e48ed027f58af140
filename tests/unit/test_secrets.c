/* Secrets file: read only when no one else may read it; values never in messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vantage/secrets.h"

static char path[64];

static int setup(void **state)
{
    snprintf(path, sizeof(path), "/tmp/vt-secrets-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"wg_key\": \"TOPSECRETVALUE\", \"num\": 5}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    chmod(path, 0600);
    vt_secrets_set_path(path);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    vt_secrets_set_path(NULL);
    return 0;
}

static void resolves_a_named_secret(void **state)
{
    cJSON *ref = cJSON_Parse("{\"secret\": \"wg_key\"}");
    char out[64], err[256];
    assert_true(vt_secrets_is_ref(ref));
    assert_int_equal(vt_secrets_resolve(ref, out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "TOPSECRETVALUE");
    /* Too small a buffer: refused, not cut. */
    assert_int_equal(vt_secrets_resolve(ref, out, 5, err, sizeof(err)), -1);
    assert_null(strstr(err, "TOPSECRET"));
    cJSON_Delete(ref);
}

static void group_or_world_readable_file_is_refused(void **state)
{
    cJSON *ref = cJSON_Parse("{\"secret\": \"wg_key\"}");
    char out[64], err[256];
    chmod(path, 0640);
    assert_int_equal(vt_secrets_resolve(ref, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "0640"));
    assert_non_null(strstr(err, "chmod 600"));
    assert_null(strstr(err, "TOPSECRET"));
    chmod(path, 0604);
    assert_int_equal(vt_secrets_resolve(ref, out, sizeof(out), err, sizeof(err)), -1);
    chmod(path, 0400);
    assert_int_equal(vt_secrets_resolve(ref, out, sizeof(out), err, sizeof(err)), 0);
    cJSON_Delete(ref);
}

static void unknown_or_malformed_references_are_errors(void **state)
{
    char out[64], err[256];
    cJSON *missing = cJSON_Parse("{\"secret\": \"nope\"}");
    cJSON *num = cJSON_Parse("{\"secret\": \"num\"}");
    cJSON *inline_value = cJSON_CreateString("TOPSECRETVALUE");
    assert_int_equal(vt_secrets_resolve(missing, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope"));
    assert_int_equal(vt_secrets_resolve(num, out, sizeof(out), err, sizeof(err)), -1);
    assert_false(vt_secrets_is_ref(inline_value));
    assert_int_equal(vt_secrets_resolve(inline_value, out, sizeof(out), err, sizeof(err)), -1);
    assert_null(strstr(err, "TOPSECRET"));
    cJSON_Delete(missing);
    cJSON_Delete(num);
    cJSON_Delete(inline_value);
}

static void no_file_configured_says_how(void **state)
{
    vt_secrets_set_path(NULL);
    unsetenv("VANTAGE_SECRETS");
    cJSON *ref = cJSON_Parse("{\"secret\": \"wg_key\"}");
    char out[64], err[256];
    assert_int_equal(vt_secrets_resolve(ref, out, sizeof(out), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "VANTAGE_SECRETS"));
    setenv("VANTAGE_SECRETS", path, 1);
    assert_int_equal(vt_secrets_resolve(ref, out, sizeof(out), err, sizeof(err)), 0);
    unsetenv("VANTAGE_SECRETS");
    cJSON_Delete(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(resolves_a_named_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(group_or_world_readable_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_or_malformed_references_are_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(no_file_configured_says_how, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
