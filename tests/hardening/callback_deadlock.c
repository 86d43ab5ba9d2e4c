/* A logger callback that takes a host mutex, while another thread holding that mutex calls
 * tel_shutdown: abi.md promises that "the library holds none of its locks while calling it", so
 * the shutdown must return (within its deadline and the margin) instead of deadlocking.
 *
 *   callback_deadlock [WATCHDOG_S]     (TELCTL names `telctl`, the collector emulator)
 *
 * One round per decision the worker writes an info line about, each in a forked child so that
 * a deadlocked round can be killed and reported: the collector answers 503 ("backing off"),
 * 400 ("rejected") or 413 ("sending them as two requests"). In each round the callback blocks on
 * the host mutex, the main thread takes that mutex, waits until the worker is inside the
 * callback, and calls tel_shutdown while holding it. The parent kills a round that has not ended
 * after WATCHDOG_S seconds (default 60, generous for valgrind): a deadlock, not a slow run.
 * After the shutdown, `pending` must be 0 and the conservation law of abi.md must hold.
 * scripts/hardening.sh runs it under ASan + UBSan and under valgrind memcheck.
 */
#define _POSIX_C_SOURCE 200809L
#include <tel.h>

#include "check.h"

#include "collector.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *IKEY = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b-6b6b-4b6b-b6b6-b6b6b6b6b6b6-0002";

/* The host's own lock, which its logger takes. */
static pthread_mutex_t host_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Set by the callback when it is about to wait for the host mutex. */
static atomic_int callback_waiting;
static atomic_int callback_lines;

static void host_logger(int32_t level, const char *message, void *user_data) {
    (void)level;
    (void)message;
    (void)user_data;
    atomic_fetch_add(&callback_lines, 1);
    atomic_store(&callback_waiting, 1);
    pthread_mutex_lock(&host_mutex);
    pthread_mutex_unlock(&host_mutex);
}

static unsigned long long stat_of(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    return p ? strtoull(p + strlen(pattern), NULL, 10) : 0ULL;
}

/* pending == 0 and the conservation law (with dropped_evicted, 0 when the library predates
 * it), after tel_shutdown. */
static void check_quiet(const char *round) {
    char s[2048];
    size_t n = tel_stats_json(s, sizeof s);
    CHECK(n < sizeof s, "%s: stats do not fit", round);
    unsigned long long in = stat_of(s, "logged") + stat_of(s, "replayed");
    unsigned long long out = stat_of(s, "sent") + stat_of(s, "rejected") +
                             stat_of(s, "dropped_killed") + stat_of(s, "dropped_shutdown") +
                             stat_of(s, "dropped_evicted") + stat_of(s, "dropped_consent") +
                             stat_of(s, "dropped_sampled") + stat_of(s, "persisted") +
                             stat_of(s, "pending");
    CHECK(stat_of(s, "pending") == 0, "%s: pending after tel_shutdown: %s", round, s);
    CHECK(in == out, "%s: conservation: %s", round, s);
    CHECK(stat_of(s, "logged") == 10, "%s: %s", round, s);
}

/* One round, in the child: the collector answers `status` to every request. */
static int round_child(tel_test_collector *collector, int status, const char *line) {
    char answer[64], config[1024];
    snprintf(answer, sizeof answer, "{\"status\":%d}", status);
    CHECK(tel_test_post(collector, "/_emulator/default", answer) == 0, "script the collector");
    CHECK(tel_set_logger(host_logger, TEL_LOG_INFO, NULL) == TEL_OK, "tel_set_logger");
    /* No cache: the library's decision lines alone, and nothing left on disk. A long flush
     * interval: the events go out together, at the flush below, in one batch (413 splits it). */
    snprintf(config, sizeof config,
             "{\"ikey\":\"%s\",\"endpoint\":\"%s\",\"cache_path\":null,"
             "\"flush_interval_ms\":60000,\"retry_initial_ms\":10,\"retry_max_ms\":20,"
             "\"http_timeout_ms\":5000}",
             IKEY, collector->endpoint);
    CHECK(tel_init(config) == TEL_OK, "tel_init");
    for (int i = 0; i < 10; i++)
        CHECK(tel_log("Hardening.Deadlock", "{\"i\":1}") == TEL_OK, "tel_log");

    pthread_mutex_lock(&host_mutex);
    atomic_store(&callback_waiting, 0);
    /* Sends the batch now; its answer makes the worker write a line, and wait for the mutex. */
    tel_status rc = tel_flush(0);
    CHECK(rc == TEL_OK || rc == TEL_ERR_TIMEOUT, "tel_flush: %d", rc);
    double give_up = tel_test_now_ms() + 30000;
    while (!atomic_load(&callback_waiting) && tel_test_now_ms() < give_up)
        tel_test_sleep_ms(1);
    CHECK(atomic_load(&callback_waiting), "%s: the worker wrote no line within 30 s", line);

    /* The host's thread holds its mutex and shuts the library down: a deadlock if the worker
     * holds a lock that tel_shutdown needs while it waits in the callback. */
    rc = tel_shutdown(300);
    CHECK(rc == TEL_OK || rc == TEL_ERR_TIMEOUT, "tel_shutdown: %d", rc);
    pthread_mutex_unlock(&host_mutex);
    check_quiet(line);

    /* The worker, released, must not call the callback after it has been replaced. */
    CHECK(tel_set_logger(NULL, TEL_LOG_OFF, NULL) == TEL_OK, "tel_set_logger(NULL)");
    printf("callback_deadlock: %-38s %s (%d callback lines)\n", line, failures ? "FAILED" : "ok",
           atomic_load(&callback_lines));
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    static const struct {
        int status;
        const char *line;
    } rounds[] = {
        {503, "HTTP 503: backing off"},
        {400, "HTTP 400: rejected"},
        {413, "HTTP 413: split in two requests"},
    };
    unsigned watchdog_s = argc > 1 ? (unsigned)atoi(argv[1]) : 60;
    tel_test_collector collector;
    if (tel_test_collector_start(&collector, NULL) != 0) return 2;

    int failed = 0;
    for (size_t r = 0; r < sizeof rounds / sizeof rounds[0]; r++) {
        fflush(NULL);
        pid_t child = fork();
        if (child < 0) {
            perror("fork");
            failed++;
            break;
        }
        if (child == 0) {
            int code = round_child(&collector, rounds[r].status, rounds[r].line);
            fflush(NULL);
            exit(code);
        }
        double deadline = tel_test_now_ms() + watchdog_s * 1000.0;
        int status = 0;
        pid_t done = 0;
        while ((done = waitpid(child, &status, WNOHANG)) == 0 && tel_test_now_ms() < deadline)
            tel_test_sleep_ms(20);
        if (done == 0) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            fprintf(stderr,
                    "callback_deadlock: %s: DEADLOCK: tel_shutdown(300) had not returned after "
                    "%u s while the host held the mutex its logger waits for\n",
                    rounds[r].line, watchdog_s);
            failed++;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "callback_deadlock: %s: the round failed (status 0x%x)\n",
                    rounds[r].line, (unsigned)status);
            failed++;
        }
        tel_test_post(&collector, "/_emulator/reset", "{}");
    }
    tel_test_collector_stop(&collector);
    printf("callback_deadlock: %s\n", failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
