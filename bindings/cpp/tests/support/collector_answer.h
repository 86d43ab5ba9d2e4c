/*
 * The half of collector.h that does not depend on the platform: reading the collector's HTTP
 * answer, and the control calls made with tel_test_http. Included once by each platform's
 * implementation: collector.c (POSIX) and packaging/windows/tests/support/collector_win.c.
 */
#ifndef TEL_TEST_COLLECTOR_ANSWER_H
#define TEL_TEST_COLLECTOR_ANSWER_H

#include "collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Makes room in `*reply` (`*capacity` bytes, `used` of them read) for at least 4 KiB more and
 * the NUL; -1 when memory ran out (the buffer is kept).
 */
static int tel_test_answer_room(char **reply, size_t *capacity, size_t used) {
    char *grown;
    if (*capacity - used >= 4096) return 0;
    grown = realloc(*reply, *capacity * 2 + 8192);
    if (grown == NULL) return -1;
    *reply = grown;
    *capacity = *capacity * 2 + 8192;
    return 0;
}

/*
 * The answer read into `reply` (`used` bytes; NULL when nothing could be read): the status of
 * its status line, 0 when there is none (said on stderr), and, when `response` is not NULL,
 * its body. Frees `reply`.
 */
static int tel_test_answer(char *reply, size_t used, char **response, const char *method,
                           const char *path) {
    int status = 0;
    const char *text;
    if (reply == NULL) return 0;
    reply[used] = '\0';
    if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1) status = 0;
    text = strstr(reply, "\r\n\r\n");
    if (response && text) {
        size_t length = used - (size_t)(text + 4 - reply);
        *response = malloc(length + 1);
        if (*response) {
            memcpy(*response, text + 4, length);
            (*response)[length] = '\0';
        }
    }
    free(reply);
    if (status == 0) fprintf(stderr, "collector: no HTTP answer to %s %s\n", method, path);
    return status;
}

int tel_test_post(const tel_test_collector *collector, const char *path, const char *body) {
    return tel_test_http(collector, "POST", path, body, NULL) == 200 ? 0 : -1;
}

int tel_test_wait(const tel_test_collector *collector, unsigned accepted, unsigned requests,
                  unsigned timeout_ms) {
    char path[160];
    char *reply = NULL;
    int ok;
    snprintf(path, sizeof path, "/_emulator/wait?accepted=%u&requests=%u&timeout_ms=%u", accepted,
             requests, timeout_ms);
    ok = tel_test_http(collector, "GET", path, NULL, &reply) == 200 && reply &&
         strstr(reply, "\"ok\":true") != NULL;
    free(reply);
    return ok ? 0 : -1;
}

#endif /* TEL_TEST_COLLECTOR_ANSWER_H */
