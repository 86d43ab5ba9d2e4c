/* Logging from several threads while another calls tel_shutdown, over many sessions. abi.md:
 * tel_shutdown "persists what is left", so `pending` is 0 once it returns, and the conservation
 * law holds at that quiet point; every tel_log that returned TEL_OK is in `logged`, and nothing
 * moves after the return.
 *
 *   shutdown_race [SESSIONS] [THREADS] [strict]   (TELCTL names `telctl`, the emulator)
 *
 * Default settings otherwise (flush interval, queue, retries), with a cache file in a fresh
 * folder, as a host program would run. Each session: tel_init, THREADS threads log as fast as
 * they can until tel_log answers TEL_ERR_NOT_INITIALIZED, and the main thread calls
 * tel_shutdown after a varying number of events. The counters are read as soon as
 * tel_shutdown returns, while the threads are still calling tel_log, and again after they end.
 * At the end a last session delivers what the others persisted; with `strict`, over all
 * sessions the entries persisted must equal those replayed plus those evicted.
 * scripts/hardening.sh runs it under ASan + UBSan and under valgrind memcheck.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <tel.h>

#include "check.h"

#include "collector.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *IKEY = "7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c-7c7c-4c7c-c7c7-c7c7c7c7c7c7-0003";

enum { MAX_THREADS = 16 };

struct logger_thread {
    pthread_t thread;
    unsigned long long ok;
    unsigned long long queue_full;
    int unexpected;
};

static atomic_ullong total_logged;

static void *log_until_shutdown(void *arg) {
    struct logger_thread *self = arg;
    for (;;) {
        tel_status rc = tel_log("Hardening.Race", "{\"k\":\"v\",\"n\":42}");
        if (rc == TEL_OK) {
            self->ok++;
            atomic_fetch_add(&total_logged, 1);
        } else if (rc == TEL_ERR_QUEUE_FULL) {
            self->queue_full++;
        } else if (rc == TEL_ERR_NOT_INITIALIZED) {
            return NULL;
        } else {
            self->unexpected = rc;
            return NULL;
        }
    }
}

static unsigned long long stat_of(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    return p ? strtoull(p + strlen(pattern), NULL, 10) : 0ULL;
}

/* The library's worker threads still alive in this process: a worker that a shutdown left
 * behind in a request holds its session's claim on the cache until it ends. */
static int library_threads(void) {
    int n = 0;
    DIR *tasks = opendir("/proc/self/task");
    struct dirent *task;
    if (!tasks) return 0;
    while ((task = readdir(tasks)) != NULL) {
        char path[300], comm[64] = "";
        FILE *f;
        if (task->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", task->d_name);
        f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof comm, f) && strncmp(comm, "tel-worker", 10) == 0) n++;
        fclose(f);
    }
    closedir(tasks);
    return n;
}

static int read_stats(char *buf, size_t len) {
    size_t n = tel_stats_json(buf, len);
    return n < len;
}

int main(int argc, char **argv) {
    int sessions = argc > 1 ? atoi(argv[1]) : 300;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    int strict = argc > 3 && strcmp(argv[3], "strict") == 0;
    if (threads < 1 || threads > MAX_THREADS || sessions < 1) {
        fprintf(stderr, "usage: shutdown_race [SESSIONS] [THREADS 1-%d] [strict]\n", MAX_THREADS);
        return 2;
    }
    tel_test_collector collector;
    if (tel_test_collector_start(&collector, NULL) != 0) return 2;
    char cache_dir[] = "/tmp/tel-shutdown-race-XXXXXX";
    if (!mkdtemp(cache_dir)) {
        perror("mkdtemp");
        return 2;
    }
    char config[1024];
    snprintf(config, sizeof config,
             "{\"ikey\":\"%s\",\"endpoint\":\"%s\",\"cache_path\":\"%s/events.cache\"}", IKEY,
             collector.endpoint, cache_dir);

    int bad_sessions = 0;
    unsigned long long persisted = 0, replayed = 0, evicted = 0;
    double slowest_shutdown = 0; /* printed, not checked: timings belong to benchmarks */
    for (int s = 0; s < sessions; s++) {
        int failures_before = failures;
        struct logger_thread t[MAX_THREADS];
        memset(t, 0, sizeof t);
        atomic_store(&total_logged, 0);
        CHECK(tel_init(config) == TEL_OK, "session %d: tel_init", s);
        for (int i = 0; i < threads; i++)
            CHECK(pthread_create(&t[i].thread, NULL, log_until_shutdown, &t[i]) == 0, "thread");
        /* Shut down after 0 to ~2,000 events: sometimes before the first batch, sometimes with
         * a request in flight. */
        unsigned long long after = (unsigned long long)(s * 7919 % 2000);
        double give_up = tel_test_now_ms() + 10000;
        while (atomic_load(&total_logged) < after && tel_test_now_ms() < give_up)
            sched_yield();
        double started = tel_test_now_ms();
        tel_status rc = tel_shutdown(200);
        double took = tel_test_now_ms() - started;
        if (took > slowest_shutdown) slowest_shutdown = took;
        CHECK(rc == TEL_OK || rc == TEL_ERR_TIMEOUT, "session %d: tel_shutdown: %d", s, rc);

        /* At once, while the threads still call tel_log. */
        char now[2048], later[2048];
        CHECK(read_stats(now, sizeof now), "stats fit");
        for (int i = 0; i < threads; i++) pthread_join(t[i].thread, NULL);
        CHECK(read_stats(later, sizeof later), "stats fit");

        unsigned long long ok = 0, full = 0;
        for (int i = 0; i < threads; i++) {
            CHECK(t[i].unexpected == 0, "session %d: tel_log returned %d", s, t[i].unexpected);
            ok += t[i].ok;
            full += t[i].queue_full;
        }
        unsigned long long in = stat_of(now, "logged") + stat_of(now, "replayed");
        unsigned long long out = stat_of(now, "sent") + stat_of(now, "rejected") +
                                 stat_of(now, "dropped_killed") + stat_of(now, "dropped_shutdown") +
                                 stat_of(now, "dropped_evicted") + stat_of(now, "dropped_consent") +
                             stat_of(now, "dropped_sampled") + stat_of(now, "persisted") +
                                 stat_of(now, "pending");
        CHECK(stat_of(now, "pending") == 0, "session %d: pending after tel_shutdown: %s", s, now);
        CHECK(in == out, "session %d: conservation after tel_shutdown: %s", s, now);
        CHECK(strcmp(now, later) == 0, "session %d: counters moved after tel_shutdown:\n  %s\n  %s",
              s, now, later);
        CHECK(stat_of(later, "logged") == ok, "session %d: %llu tel_log calls returned TEL_OK: %s",
              s, ok, later);
        CHECK(stat_of(later, "dropped_queue_full") == full,
              "session %d: %llu calls returned TEL_ERR_QUEUE_FULL: %s", s, full, later);
        persisted += stat_of(later, "persisted");
        replayed += stat_of(later, "replayed");
        evicted += stat_of(later, "cache_evicted");
        if (failures != failures_before) bad_sessions++;
    }
    /* What was persisted is taken up by the next sessions: deliver the rest now, once the
     * workers left behind have ended and their claims are free. */
    double give_up = tel_test_now_ms() + 60000;
    while (library_threads() > 0 && tel_test_now_ms() < give_up) tel_test_sleep_ms(10);
    CHECK(library_threads() == 0, "%d workers still alive a minute after their shutdown",
          library_threads());
    CHECK(tel_init(config) == TEL_OK, "final tel_init");
    /* Generous: under valgrind the replay of thousands of entries takes tens of seconds. */
    CHECK(tel_flush(180000) == TEL_OK, "final tel_flush");
    CHECK(tel_shutdown(10000) == TEL_OK, "final tel_shutdown");
    char last[2048];
    CHECK(read_stats(last, sizeof last), "stats fit");
    CHECK(stat_of(last, "pending") == 0 && stat_of(last, "persisted") == 0, "final: %s", last);
    replayed += stat_of(last, "replayed");
    evicted += stat_of(last, "cache_evicted");

    tel_test_collector_stop(&collector);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache_dir);
    /* Nothing disappears without a counter, across sessions too: every entry a shutdown wrote
     * to the cache was taken up by a later session or evicted, once. (A batch in flight at the
     * deadline is persisted although the collector may still take it: that is a second
     * delivery, not a second count.) Checked with `strict` only: under load one run in some
     * thirty still ends one claimed batch over (docs/reliability.md, section 4). */
    if (strict)
        CHECK(persisted == replayed + evicted, "persisted %llu, replayed %llu, evicted %llu",
              persisted, replayed, evicted);
    printf("shutdown_race: %s: %d sessions x %d threads, %d sessions broke the contract "
           "(over all sessions: %llu cache entries persisted, %llu replayed, %llu evicted; "
           "slowest tel_shutdown(200): %.0f ms)\n",
           failures ? "FAILED" : "ok", sessions, threads, bad_sessions, persisted, replayed,
           evicted, slowest_shutdown);
    return failures ? 1 : 0;
}
