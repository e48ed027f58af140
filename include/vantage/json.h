/* Small cJSON helpers shared by the library and both binaries. */
#ifndef VANTAGE_JSON_H
#define VANTAGE_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Adds key: failure string, or JSON null when failure is NULL or empty (OONI's convention). */
void vt_json_add_failure(cJSON *obj, const char *key, const char *failure);
/* Adds a string, or null when s is NULL. */
void vt_json_add_string_or_null(cJSON *obj, const char *key, const char *s);
/* Adds a number rounded to microseconds (timings). */
void vt_json_add_time(cJSON *obj, const char *key, double seconds);
/* Body strings: OONI stores non-UTF-8 bodies as {"format":"base64","data":"..."}. */
cJSON *vt_json_body(const unsigned char *data, size_t len);
int vt_utf8_valid(const unsigned char *s, size_t len);
const char *vt_json_get_string(const cJSON *obj, const char *key);
/* Prints compact JSON and returns a malloc'd string (cJSON_PrintUnformatted). */
char *vt_json_print(const cJSON *obj);

#endif
