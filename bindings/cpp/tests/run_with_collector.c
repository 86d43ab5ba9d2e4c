/*
 * run_with_collector [--expect-accepted N] -- PROGRAM [ARGS...]
 *
 * Starts a `telctl serve` collector (TELCTL names it), runs PROGRAM with TEL_ENDPOINT set to
 * it (and TEL_IKEY, unless already set), and succeeds when PROGRAM exited 0 and the collector
 * accepted at least N events. Used to run the consumer examples against a collector.
 */
#define _POSIX_C_SOURCE 200809L

#include "support/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned expected = 0;
    int first = 1, status = 0, ok;
    tel_test_collector collector;
    pid_t pid;

    while (first < argc && strcmp(argv[first], "--") != 0) {
        if (strcmp(argv[first], "--expect-accepted") == 0 && first + 1 < argc) {
            expected = (unsigned)strtoul(argv[first + 1], NULL, 10);
            first += 2;
        } else {
            fprintf(stderr, "usage: run_with_collector [--expect-accepted N] -- PROGRAM [ARGS...]\n");
            return 2;
        }
    }
    if (first + 1 >= argc) {
        fprintf(stderr, "usage: run_with_collector [--expect-accepted N] -- PROGRAM [ARGS...]\n");
        return 2;
    }
    if (tel_test_collector_start(&collector, NULL) != 0) return 1;
    setenv("TEL_ENDPOINT", collector.endpoint, 1);
    setenv("TEL_IKEY", "quickstart-0123456789abcdef", 0);

    pid = fork();
    if (pid < 0) {
        perror("fork");
        tel_test_collector_stop(&collector);
        return 1;
    }
    if (pid == 0) {
        execv(argv[first + 1], argv + first + 1);
        perror(argv[first + 1]);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            break;
        }
    }
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) fprintf(stderr, "run_with_collector: %s failed (status %d)\n", argv[first + 1], status);
    if (ok && tel_test_wait(&collector, expected, 0, 10000) != 0) {
        fprintf(stderr, "run_with_collector: the collector accepted fewer than %u events\n",
                expected);
        ok = 0;
    }
    tel_test_collector_stop(&collector);
    if (ok) printf("run_with_collector: %s exited 0; %u event(s) or more accepted\n",
                   argv[first + 1], expected);
    return ok ? 0 : 1;
}
