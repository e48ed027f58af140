/* collector/json_arena.c: cJSON trees in an arena, everything else on the heap as before. Run
 * under AddressSanitizer in CI: a free() of arena memory, a leak or a double free fails it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "json_arena.h"

static const char doc[] = "{\"a\":[1,2,{\"b\":\"text\"}],\"ip\":\"10.0.0.1\",\"n\":null}";

static void nothing_before_install(void **state)
{
    (void)state;
    assert_null(vt_json_arena_new());
    vt_json_arena_free(NULL);
    assert_int_equal(vt_json_arena_size(NULL), 0);
}

static void trees_live_in_the_arena(void **state)
{
    (void)state;
    vt_json_arena_install();
    vt_json_arena *a = vt_json_arena_new();
    assert_non_null(a);
    assert_int_equal(vt_json_arena_size(a), 0);
    assert_null(vt_json_arena_use(a));
    cJSON *m = cJSON_Parse(doc);
    assert_non_null(m);
    size_t used = vt_json_arena_size(a);
    assert_true(used > 0);
    /* What cJSON frees inside the arena is a no-op (the item stays valid memory), a replaced
     * item and a failed parse included. */
    cJSON_ReplaceItemInObjectCaseSensitive(m, "ip", cJSON_CreateString("127.0.0.1"));
    assert_null(cJSON_Parse("{\"x\":[1,2,"));
    cJSON_DeleteItemFromObjectCaseSensitive(m, "n");
    /* A string larger than a chunk's share gets a chunk of its own. */
    char *big = malloc(200000);
    memset(big, 'x', 199999);
    big[199999] = 0;
    cJSON *s = cJSON_CreateString(big);
    free(big);
    assert_non_null(s);
    cJSON_AddItemToObject(m, "big", s);
    assert_true(vt_json_arena_size(a) >= used + 200000);
    /* Printing outside the arena gives plain malloc'd text. */
    assert_ptr_equal(vt_json_arena_use(NULL), a);
    char *txt = cJSON_PrintUnformatted(m);
    assert_non_null(txt);
    assert_non_null(strstr(txt, "\"ip\":\"127.0.0.1\""));
    assert_null(strstr(txt, "\"n\""));
    assert_int_equal(strlen(txt), strlen("{\"a\":[1,2,{\"b\":\"text\"}],\"ip\":\"127.0.0.1\",\"big\":\"\"}") + 199999);
    free(txt);
    /* Outside the arena, trees are the heap's again. */
    cJSON *h = cJSON_Parse(doc);
    assert_non_null(h);
    cJSON_Delete(h);
    vt_json_arena_free(a); /* m goes with it, never cJSON_Delete'd */
}

static void *read_tree(void *arg)
{
    const cJSON *m = arg;
    const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "a"), 2);
    return (void *)cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "b"));
}

static void another_thread_reads_and_frees(void **state)
{
    (void)state;
    vt_json_arena_install();
    vt_json_arena *a = vt_json_arena_new();
    vt_json_arena_use(a);
    cJSON *m = cJSON_Parse(doc);
    vt_json_arena_use(NULL);
    pthread_t t;
    void *got = NULL;
    assert_int_equal(pthread_create(&t, NULL, read_tree, m), 0);
    assert_int_equal(pthread_join(t, &got), 0);
    assert_string_equal(got, "text");
    /* The other thread has no arena in use: its trees are on the heap. */
    cJSON *h = cJSON_Parse(doc);
    cJSON_Delete(h);
    vt_json_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_before_install),
        cmocka_unit_test(trees_live_in_the_arena),
        cmocka_unit_test(another_thread_reads_and_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
