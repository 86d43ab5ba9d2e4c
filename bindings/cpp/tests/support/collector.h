/*
 * A `telctl serve` process for one test: started on a free port, driven through its control
 * API (/_emulator/...), stopped by closing its standard input (it runs with
 * --exit-on-stdin-eof, so it also ends when the test dies). C11 + POSIX, usable from C++.
 */
#ifndef TEL_TEST_COLLECTOR_H
#define TEL_TEST_COLLECTOR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tel_test_collector {
    int pid;
    int stdin_fd;
    int port;
    /* The collector URL from the `listening on` line, for the `endpoint` key. */
    char endpoint[256];
} tel_test_collector;

/*
 * Starts `telctl serve --quiet --exit-on-stdin-eof`. `telctl` is the program's path; NULL
 * means the TELCTL environment variable. Returns 0, or -1 with a reason on stderr.
 */
int tel_test_collector_start(tel_test_collector *collector, const char *telctl);

/* Closes its standard input and waits for it to exit (killing it after 5 s). */
void tel_test_collector_stop(tel_test_collector *collector);

/*
 * One HTTP request to the collector's port: `method` and `path` (e.g. "/_emulator/accepted"),
 * `body` as JSON or NULL. Returns the HTTP status (0 on a transport failure, with a reason on
 * stderr) and, when `response` is not NULL, the body as a NUL-terminated string the caller
 * frees with free().
 */
int tel_test_http(const tel_test_collector *collector, const char *method, const char *path,
                  const char *body, char **response);

/* POST `body` to `path`; returns 0 when the collector answered 200. */
int tel_test_post(const tel_test_collector *collector, const char *path, const char *body);

/*
 * Waits until the collector has accepted at least `accepted` envelopes and recorded at least
 * `requests` requests, or `timeout_ms` passed. Returns 0 when both counts were reached.
 */
int tel_test_wait(const tel_test_collector *collector, unsigned accepted, unsigned requests,
                  unsigned timeout_ms);

/* Milliseconds of a monotonic clock. */
double tel_test_now_ms(void);

/* Sleeps `ms` milliseconds. */
void tel_test_sleep_ms(unsigned ms);

#ifdef __cplusplus
}
#endif

#endif /* TEL_TEST_COLLECTOR_H */
