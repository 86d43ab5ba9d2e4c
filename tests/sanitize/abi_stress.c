/* Hostile input and lifecycle races through the C ABI, from C, for AddressSanitizer + UBSan and
 * valgrind memcheck (scripts/hardening.sh builds and runs it both ways).
 *
 *   abi_stress ENDPOINT [ROUNDS]
 *
 * ENDPOINT is a collector (`telctl serve`). Exits 0 when every call returned a documented
 * status, the conservation law held at each quiet point, and the events reached the collector.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <tel.h>

#include "../hardening/check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *IKEY = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a-5a5a-4a5a-a5a5-a5a5a5a5a5a5-0001";
static char endpoint[512];
static char cache_dir[256];
static int rounds = 200;

static unsigned long long stat_of(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0ULL;
}

/* The conservation law of abi.md, at a quiet point. */
static void check_conserved(const char *where) {
    size_t n = tel_stats_json(NULL, 0);
    char *s = malloc(n + 1);
    CHECK(tel_stats_json(s, n + 1) == n, "%s", where);
    unsigned long long in = stat_of(s, "logged") + stat_of(s, "replayed");
    unsigned long long out = stat_of(s, "sent") + stat_of(s, "rejected") +
                             stat_of(s, "dropped_killed") + stat_of(s, "dropped_shutdown") +
                             stat_of(s, "persisted") + stat_of(s, "pending");
    CHECK(in == out, "%s: %s", where, s);
    free(s);
}

static void config(char *buf, size_t len, const char *ep, const char *cache) {
    if (cache)
        snprintf(buf, len,
                 "{\"ikey\":\"%s\",\"endpoint\":\"%s\",\"cache_path\":\"%s/events.cache\","
                 "\"flush_interval_ms\":5,\"retry_initial_ms\":5,\"retry_max_ms\":20,"
                 "\"retry_max_attempts\":2,\"http_timeout_ms\":2000}",
                 IKEY, ep, cache);
    else
        snprintf(buf, len,
                 "{\"ikey\":\"%s\",\"endpoint\":\"%s\",\"cache_path\":null,"
                 "\"flush_interval_ms\":5,\"http_timeout_ms\":2000}",
                 IKEY, ep);
}

static atomic_int reentries;

/* A logger that calls back into the library. */
static void reentrant_logger(int32_t level, const char *message, void *user) {
    (void)level;
    (void)user;
    CHECK(message != NULL && strlen(message) < 100000, "message");
    if (atomic_fetch_add(&reentries, 1) < 200) {
        tel_status rc = tel_log("Logger.Reentry", NULL);
        CHECK(rc == TEL_OK || rc == TEL_ERR_NOT_INITIALIZED || rc == TEL_ERR_QUEUE_FULL, "%d", rc);
        rc = tel_flush(0);
        CHECK(rc == TEL_OK || rc == TEL_ERR_NOT_INITIALIZED || rc == TEL_ERR_TIMEOUT, "%d", rc);
    }
}

static void hostile_input(void) {
    char cfg[1024];
    CHECK(tel_init(NULL) == TEL_ERR_INVALID_ARGUMENT, "init NULL");
    CHECK(tel_init("\xff\xfe") == TEL_ERR_INVALID_ARGUMENT, "init bad UTF-8");
    CHECK(tel_init("{") == TEL_ERR_INVALID_CONFIG, "init bad JSON");
    CHECK(tel_log(NULL, NULL) == TEL_ERR_INVALID_ARGUMENT, "log NULL");
    CHECK(tel_log("Before.Init", NULL) == TEL_ERR_NOT_INITIALIZED, "log before init");
    CHECK(tel_flush(0) == TEL_ERR_NOT_INITIALIZED, "flush before init");
    CHECK(tel_shutdown(0) == TEL_ERR_NOT_INITIALIZED, "shutdown before init");
    char small[4] = {1, 1, 1, 1};
    size_t n = tel_last_error(small, sizeof small);
    CHECK(n > 3 && small[3] == 0, "truncated last error");
    CHECK(tel_last_error(NULL, 0) == n, "last error length");
    CHECK(tel_stats_json(small, 1) > 0 && small[0] == 0, "1-byte stats buffer");

    config(cfg, sizeof cfg, endpoint, NULL);
    CHECK(tel_init(cfg) == TEL_OK, "init");
    CHECK(tel_init(cfg) == TEL_ERR_ALREADY_INITIALIZED, "init twice");
    CHECK(tel_log("\xc0\xaf\x41\x42\x43", NULL) == TEL_ERR_INVALID_ARGUMENT, "overlong");
    CHECK(tel_log("Good.Name", "{\"a\":\"\xed\xa0\x80\"}") == TEL_ERR_INVALID_ARGUMENT, "surrogate");
    CHECK(tel_log("abc", NULL) == TEL_ERR_INVALID_EVENT, "short name");
    CHECK(tel_log("Good.Name", "[1]") == TEL_ERR_INVALID_EVENT, "array");

    size_t big = 10u << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = 0;
    CHECK(tel_log(huge, NULL) == TEL_ERR_INVALID_EVENT, "10 MB name");
    memcpy(huge, "{\"a\":\"", 6);
    memcpy(huge + big - 2, "\"}", 2);
    CHECK(tel_log("Huge.Props", huge) == TEL_ERR_INVALID_EVENT, "10 MB properties");
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    strcpy(deep, "{\"a\":");
    memset(deep + 5, '[', depth);
    memset(deep + 5 + depth, ']', depth);
    strcpy(deep + 5 + 2 * depth, "}");
    CHECK(tel_log("Deep.Props", deep) == TEL_ERR_INVALID_EVENT, "100,000 deep");
    free(deep);
    free(huge);

    CHECK(tel_log("Good.Event", "{\"n\":18446744073709551615,\"s\":\"\\u0000\"}") == TEL_OK, "good");
    CHECK(tel_flush(10000) == TEL_OK, "flush");
    check_conserved("after hostile input");
    CHECK(tel_shutdown(2000) == TEL_OK, "shutdown");
    check_conserved("after shutdown");
}

static atomic_int stop;

static void *racer(void *arg) {
    int t = (int)(long)arg;
    char cfg[1024];
    config(cfg, sizeof cfg, endpoint, NULL);
    for (int i = 0; i < rounds && !atomic_load(&stop); i++) {
        tel_status rc;
        switch (t % 5) {
        case 0:
            rc = tel_init(cfg);
            CHECK(rc == TEL_OK || rc == TEL_ERR_ALREADY_INITIALIZED, "init %d", rc);
            break;
        case 1:
            rc = tel_shutdown((uint32_t)(i % 20));
            CHECK(rc == TEL_OK || rc == TEL_ERR_NOT_INITIALIZED || rc == TEL_ERR_TIMEOUT,
                  "shutdown %d", rc);
            break;
        case 2:
        case 3:
            rc = tel_log("Race.Event", "{\"x\":1}");
            CHECK(rc == TEL_OK || rc == TEL_ERR_NOT_INITIALIZED || rc == TEL_ERR_QUEUE_FULL,
                  "log %d", rc);
            break;
        default: {
            rc = tel_flush((uint32_t)(i % 5));
            CHECK(rc == TEL_OK || rc == TEL_ERR_NOT_INITIALIZED || rc == TEL_ERR_TIMEOUT,
                  "flush %d", rc);
            char buf[64];
            tel_stats_json(buf, sizeof buf);
            tel_last_error(buf, sizeof buf);
        }
        }
    }
    return NULL;
}

static void races(void) {
    pthread_t th[10];
    for (long t = 0; t < 10; t++)
        CHECK(pthread_create(&th[t], NULL, racer, (void *)t) == 0, "thread");
    for (int t = 0; t < 10; t++)
        pthread_join(th[t], NULL);
    tel_shutdown(2000);
    check_conserved("after the races");
}

/* A dead collector: what is pending at shutdown goes to the cache; a later session against a
 * live collector delivers it. */
static void outage_then_replay(void) {
    char cfg[1024];
    config(cfg, sizeof cfg, "http://127.0.0.1:1/OneCollector/1.0/", cache_dir);
    CHECK(tel_init(cfg) == TEL_OK, "init dead");
    for (int i = 0; i < 50; i++)
        CHECK(tel_log("Outage.Event", "{\"during\":\"outage\"}") == TEL_OK, "log");
    tel_status rc = tel_shutdown(300);
    CHECK(rc == TEL_OK || rc == TEL_ERR_TIMEOUT, "shutdown dead %d", rc);
    check_conserved("after the outage");
    config(cfg, sizeof cfg, endpoint, cache_dir);
    CHECK(tel_init(cfg) == TEL_OK, "init live");
    CHECK(tel_flush(20000) == TEL_OK, "replay");
    char s[1024];
    tel_stats_json(s, sizeof s);
    /* The 50 were delivered. The logger may have logged an event of its own meanwhile (it calls
     * tel_log for each line the library logs), sent or still pending: nothing else. */
    unsigned long long sent = stat_of(s, "sent"), logged = stat_of(s, "logged");
    CHECK(stat_of(s, "replayed") == 50 && sent >= 50 &&
              sent + stat_of(s, "pending") == 50 + logged,
          "%s", s);
    CHECK(tel_shutdown(2000) == TEL_OK, "shutdown live");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: abi_stress ENDPOINT [ROUNDS]\n");
        return 2;
    }
    snprintf(endpoint, sizeof endpoint, "%s", argv[1]);
    if (argc > 2)
        rounds = atoi(argv[2]);
    snprintf(cache_dir, sizeof cache_dir, "/tmp/tel-abi-stress-XXXXXX");
    if (!mkdtemp(cache_dir)) {
        perror("mkdtemp");
        return 2;
    }
    CHECK(tel_set_logger(reentrant_logger, 5, NULL) == TEL_OK, "logger");
    hostile_input();
    races();
    outage_then_replay();
    CHECK(tel_set_logger(NULL, 0, NULL) == TEL_OK, "logger off");
    CHECK(atomic_load(&reentries) > 0, "the logger ran");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", cache_dir);
    printf("abi_stress: %s (%d failures, %d logger calls)\n", failures ? "FAILED" : "ok", failures,
           atomic_load(&reentries));
    return failures ? 1 : 0;
}
