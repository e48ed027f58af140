/* libFuzzer: the probe's INI config file (probe/config.c, compiled in, with inih), written to a
 * temporary file as the loader reads paths; then applied to a vt_config. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../probe/config.c"

static char conf_path[256];

static void cleanup(void)
{
    unlink(conf_path);
    char *slash = strrchr(conf_path, '/');
    if (slash) {
        *slash = 0;
        rmdir(conf_path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!conf_path[0]) {
        char dir[] = "/tmp/vt-fuzz-conf-XXXXXX";
        if (!mkdtemp(dir)) abort();
        snprintf(conf_path, sizeof(conf_path), "%s/probe.conf", dir);
        atexit(cleanup);
    }
    FILE *f = fopen(conf_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    vt_probe_conf c;
    char err[512];
    vt_probe_conf_init(&c);
    if (vt_probe_conf_load_file(&c, conf_path, 1, err, sizeof(err)) == 0) {
        vt_config cfg;
        vt_upload_opts up;
        vt_config_defaults(&cfg);
        memset(&up, 0, sizeof(up));
        vt_probe_conf_apply(&c, &cfg, &up);
    }
    vt_probe_conf_free(&c);
    return 0;
}
