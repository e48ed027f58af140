/* Starting a loopback test server (a python3 script in tests/servers/) from a cmocka test: the
 * server prints one JSON line naming its ports on stdout, which we wait for (bounded). */
#ifndef VT_TEST_SPAWN_SERVER_H
#define VT_TEST_SPAWN_SERVER_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct test_server {
    pid_t pid;
    char line[1024]; /* the first stdout line */
} test_server;

/* argv[0] must be "python3" or a path; returns 0 when the server announced itself within 10 s. */
static int test_server_start(test_server *s, char *const argv[])
{
    memset(s, 0, sizeof(*s));
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    int rc = posix_spawnp(&s->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        return -1;
    }
    size_t n = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int left =
            10000 - (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) break;
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (poll(&p, 1, left) <= 0) break;
        ssize_t k = read(pfd[0], s->line + n, sizeof(s->line) - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
        s->line[n] = 0;
        if (strchr(s->line, '\n') || n == sizeof(s->line) - 1) break;
    }
    close(pfd[0]);
    if (!strchr(s->line, '\n')) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        return -1;
    }
    return 0;
}

static void test_server_stop(test_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

#endif
