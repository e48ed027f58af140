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

/* doc parsed into a new arena (*a), which is then no longer in use. */
static cJSON *parse_in_new_arena(vt_json_arena **a)
{
    vt_json_arena_install();
    *a = vt_json_arena_new();
    assert_non_null(*a);
    vt_json_arena_use(*a);
    cJSON *m = cJSON_Parse(doc);
    vt_json_arena_use(NULL);
    assert_non_null(m);
    return m;
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
    vt_json_arena *a;
    cJSON *m = parse_in_new_arena(&a);
    pthread_t t;
    void *got = NULL;
    assert_int_equal(pthread_create(&t, NULL, read_tree, m), 0);
    assert_int_equal(pthread_join(t, &got), 0);
    assert_string_equal(got, "text");
    /* No arena in use here any more: trees are on the heap again. */
    cJSON *h = cJSON_Parse(doc);
    cJSON_Delete(h);
    vt_json_arena_free(a);
}

/* Freed arenas' chunks are reused by the next arena (no new memory for a steady stream of
 * batches), and the pool is bounded. */
static void chunks_are_reused(void **state)
{
    (void)state;
    vt_json_arena *a;
    cJSON *m = parse_in_new_arena(&a);
    void *first = cJSON_GetObjectItemCaseSensitive(m, "ip");
    vt_json_arena_free(a);
    m = parse_in_new_arena(&a);
    /* the same chunk again: the same layout gives the same address */
    assert_ptr_equal(cJSON_GetObjectItemCaseSensitive(m, "ip"), first);
    vt_json_arena_free(a);
    /* 140 chunks' worth (16 KB pieces, 16 to a 256 KB chunk) at once: the pool keeps at most
     * 128 of them (ASan checks the rest are freed, LSan that none leaks) */
    a = vt_json_arena_new();
    vt_json_arena_use(a);
    for (int i = 0; i < 140 * 16; i++)
        assert_non_null(cJSON_malloc(16u << 10));
    assert_true(vt_json_arena_size(a) >= 140u * (256u << 10));
    vt_json_arena_use(NULL);
    vt_json_arena_free(a);
    vt_json_arena_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_before_install),
        cmocka_unit_test(trees_live_in_the_arena),
        cmocka_unit_test(another_thread_reads_and_frees),
        cmocka_unit_test(chunks_are_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
