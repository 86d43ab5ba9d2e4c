/*
 * The C ABI from plain C11 (built with -std=c11 -Wall -Wextra -Werror -pedantic): the
 * argument checks, the status codes, the snprintf-style buffers, the logger, and events that
 * reach a `telctl serve` collector with their escaping intact.
 */
#include <tel.h>

#include "support/collector.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEL_TEST_EXPECTED_VERSION
#error "TEL_TEST_EXPECTED_VERSION (the crate version, from Cargo.toml) must be defined"
#endif

#define IKEY "c11tenant-0123456789abcdef"

static int checks, failures;

static void check(int ok, const char *what, int line) {
    ++checks;
    if (!ok) {
        ++failures;
        fprintf(stderr, "FAIL line %d: %s\n", line, what);
    }
}

static void check_status(tel_status got, tel_status want, const char *what, int line) {
    ++checks;
    if (got != want) {
        char message[512];
        tel_last_error(message, sizeof message);
        ++failures;
        fprintf(stderr, "FAIL line %d: %s returned %d, expected %d (last error: %s)\n", line, what,
                (int)got, (int)want, message);
    }
}

#define CHECK(cond) check((cond) ? 1 : 0, #cond, __LINE__)
#define CHECK_STATUS(expr, want) check_status((expr), (want), #expr, __LINE__)

/* What the logger callback saw; written on the library's worker thread. */
static atomic_int lines_seen, lines_with_503, lines_with_full_key;
static int user_data_tag;
static atomic_int wrong_user_data;

static void on_log(int32_t level, const char *message, void *user_data) {
    (void)level;
    if (user_data != &user_data_tag) atomic_fetch_add(&wrong_user_data, 1);
    atomic_fetch_add(&lines_seen, 1);
    if (strstr(message, "503") != NULL) atomic_fetch_add(&lines_with_503, 1);
    if (strstr(message, IKEY) != NULL) atomic_fetch_add(&lines_with_full_key, 1);
}

static int last_error_contains(const char *word) {
    char message[1024];
    tel_last_error(message, sizeof message);
    return strstr(message, word) != NULL;
}

static void test_version(void) {
    char composed[64];
    CHECK(strcmp(tel_version(), TEL_VERSION) == 0);
    CHECK(strcmp(TEL_VERSION, TEL_TEST_EXPECTED_VERSION) == 0);
    snprintf(composed, sizeof composed, "%d.%d.%d", TEL_VERSION_MAJOR, TEL_VERSION_MINOR,
             TEL_VERSION_PATCH);
    CHECK(strncmp(TEL_VERSION, composed, strlen(composed)) == 0);
}

static void test_without_session(void) {
    char small[4];
    size_t length;
    /* Arguments are checked before state. */
    CHECK_STATUS(tel_log(NULL, NULL), TEL_ERR_INVALID_ARGUMENT);
    CHECK(last_error_contains("name"));
    CHECK_STATUS(tel_log("C11.NoSession", NULL), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_flush(0), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_shutdown(0), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_init(NULL), TEL_ERR_INVALID_ARGUMENT);
    /* Levels outside 0-5 are clamped, not refused. */
    CHECK_STATUS(tel_set_logger(NULL, 9, NULL), TEL_OK);
    CHECK_STATUS(tel_set_logger(NULL, -1, NULL), TEL_OK);

    /* snprintf semantics of tel_last_error. */
    length = tel_last_error(NULL, 0);
    CHECK(length > 3);
    memset(small, 'x', sizeof small);
    CHECK(tel_last_error(small, sizeof small) == length);
    CHECK(small[3] == '\0' && strlen(small) == 3);
    small[0] = 'x';
    CHECK(tel_last_error(small, 0) == length && small[0] == 'x');

    CHECK_STATUS(tel_init("{\"ikey\":\"abc-def\",\"bogus\":1}"), TEL_ERR_INVALID_CONFIG);
    CHECK(last_error_contains("bogus"));
    CHECK_STATUS(tel_init("{\"ikey\":\"-nothing\"}"), TEL_ERR_INVALID_CONFIG);
    CHECK_STATUS(tel_init("not json"), TEL_ERR_INVALID_CONFIG);
    /* A later success does not clear the message. */
    CHECK(tel_version() != NULL && tel_last_error(NULL, 0) > 0);
}

static void test_session(const tel_test_collector *collector) {
    char config[1024];
    char *accepted = NULL;
    char *stats;
    char tiny[8];
    size_t length;

    snprintf(config, sizeof config,
             "{\"ikey\":\"" IKEY "\",\"endpoint\":\"%s\",\"cache_path\":null,"
             "\"flush_interval_ms\":20,\"retry_initial_ms\":20,\"retry_max_ms\":200,"
             "\"http_timeout_ms\":5000,\"compression\":\"gzip\","
             "\"ext\":{\"app\":{\"ver\":\"9.9.9\"}}}",
             collector->endpoint);
    CHECK_STATUS(tel_set_logger(on_log, TEL_LOG_DEBUG, &user_data_tag), TEL_OK);
    CHECK_STATUS(tel_init(config), TEL_OK);
    CHECK_STATUS(tel_init(config), TEL_ERR_ALREADY_INITIALIZED);
    CHECK(last_error_contains("already"));

    /* The first upload meets an outage and is retried. */
    CHECK(tel_test_post(collector, "/_emulator/script",
                        "{\"status\":503,\"headers\":{\"Collector-Error\":\"test outage\"},"
                        "\"times\":1}") == 0);

    CHECK_STATUS(tel_log("C11.Started", NULL), TEL_OK);
    CHECK_STATUS(tel_log("C11.Escaped",
                         "{\"quote\":\"a\\\"b\",\"backslash\":\"c\\\\d\",\"newline\":\"e\\nf\","
                         "\"unicode\":\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\","
                         "\"nested\":{\"list\":[1,2.5,true,null]}}"),
                 TEL_OK);
    CHECK_STATUS(tel_log("C11.Third", "{\"n\":3}"), TEL_OK);

    CHECK_STATUS(tel_log("ab", NULL), TEL_ERR_INVALID_EVENT);
    CHECK_STATUS(tel_log("C11.NotAnObject", "[1]"), TEL_ERR_INVALID_EVENT);
    CHECK_STATUS(tel_log("C11.Bad\xff", NULL), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_log("C11.BadProps", "{\"s\":\"\xff\"}"), TEL_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(tel_flush(20000), TEL_OK);
    CHECK(tel_test_wait(collector, 3, 2, 10000) == 0);

    CHECK(tel_test_http(collector, "GET", "/_emulator/accepted", NULL, &accepted) == 200);
    if (accepted != NULL) {
        CHECK(strstr(accepted, "\"C11.Started\"") != NULL);
        CHECK(strstr(accepted, "\"C11.Escaped\"") != NULL);
        CHECK(strstr(accepted, "\"C11.Third\"") != NULL);
        CHECK(strstr(accepted, "\"a\\\"b\"") != NULL);
        CHECK(strstr(accepted, "\"c\\\\d\"") != NULL);
        CHECK(strstr(accepted, "\"e\\nf\"") != NULL);
        CHECK(strstr(accepted, "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"") != NULL);
        CHECK(strstr(accepted, "[1,2.5,true,null]") != NULL);
        CHECK(strstr(accepted, "\"9.9.9\"") != NULL);
        CHECK(strstr(accepted, "\"o:c11tenant\"") != NULL);
        CHECK(strstr(accepted, IKEY) == NULL);
        free(accepted);
    }

    /* snprintf semantics of tel_stats_json. */
    length = tel_stats_json(NULL, 0);
    stats = malloc(length + 1);
    CHECK(stats != NULL);
    if (stats != NULL) {
        CHECK(tel_stats_json(stats, length + 1) == length && strlen(stats) == length);
        CHECK(strstr(stats, "\"enabled\":true") != NULL);
        CHECK(strstr(stats, "\"logged\":3,") != NULL);
        CHECK(strstr(stats, "\"sent\":3,") != NULL);
        CHECK(strstr(stats, "\"pending\":0,") != NULL);
        CHECK(strstr(stats, "\"retries\":1,") != NULL);
        CHECK(strstr(stats, "\"http_failures\":1,") != NULL);
        free(stats);
    }
    CHECK(tel_stats_json(tiny, sizeof tiny) == length && strlen(tiny) == sizeof tiny - 1);

    CHECK(atomic_load(&lines_with_503) >= 1);
    CHECK(atomic_load(&lines_with_full_key) == 0);
    CHECK(atomic_load(&wrong_user_data) == 0);

    CHECK_STATUS(tel_shutdown(2000), TEL_OK);
    CHECK_STATUS(tel_shutdown(0), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_log("C11.AfterShutdown", NULL), TEL_ERR_NOT_INITIALIZED);

    /* The last session's figures stay readable until the next tel_init. */
    length = tel_stats_json(NULL, 0);
    stats = malloc(length + 1);
    if (stats != NULL) {
        tel_stats_json(stats, length + 1);
        CHECK(strstr(stats, "\"sent\":3,") != NULL);
        free(stats);
    }

    /* A new session may follow the last one. */
    CHECK_STATUS(tel_init(config), TEL_OK);
    CHECK_STATUS(tel_log("C11.SecondSession", "{}"), TEL_OK);
    CHECK_STATUS(tel_shutdown(5000), TEL_OK);
    CHECK(tel_test_wait(collector, 4, 0, 10000) == 0);

    CHECK_STATUS(tel_set_logger(NULL, TEL_LOG_OFF, NULL), TEL_OK);
    CHECK(atomic_load(&lines_seen) > 0);
}

#if defined(TEL_HAS_ABI_1_2)
static int stats_has(const char *needle) {
    char stats[2048];
    tel_stats_json(stats, sizeof stats);
    return strstr(stats, needle) != NULL;
}

/* ABI 1.2: consent, common properties, pause and resume, from C. */
static void test_abi_1_2(const tel_test_collector *collector) {
    char config[1024];
    char *accepted = NULL;
    tel_client *client = NULL;

    /* Arguments before state; -1 without a session or client. */
    CHECK(tel_consent() == -1);
    CHECK(tel_client_consent(NULL) == -1);
    CHECK_STATUS(tel_set_consent(TEL_CONSENT_GRANTED), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_set_property("build", "1"), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_set_property(NULL, "1"), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_pause(), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_resume(), TEL_ERR_NOT_INITIALIZED);
    CHECK_STATUS(tel_client_set_consent(NULL, TEL_CONSENT_GRANTED), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_client_set_property(NULL, "build", "1"), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_client_pause(NULL), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_client_resume(NULL), TEL_ERR_INVALID_ARGUMENT);

    snprintf(config, sizeof config,
             "{\"ikey\":\"" IKEY "\",\"endpoint\":\"%s\",\"cache_path\":null,"
             "\"flush_interval_ms\":20,\"retry_initial_ms\":20,\"consent\":\"required\","
             "\"properties\":{\"channel\":\"beta\"},\"scrub\":[\"email\"]}",
             collector->endpoint);
    CHECK_STATUS(tel_init(config), TEL_OK);
    CHECK(tel_consent() == TEL_CONSENT_UNKNOWN);
    CHECK_STATUS(tel_set_consent(TEL_CONSENT_UNKNOWN), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_set_consent(3), TEL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tel_set_property("build", "{\"id\":42}"), TEL_OK);
    CHECK_STATUS(tel_set_property("build", "not json"), TEL_ERR_INVALID_EVENT);
    CHECK_STATUS(tel_log("C11.Privacy.Waits", "{\"contact\":\"jane.doe@example.com\"}"), TEL_OK);
    CHECK_STATUS(tel_set_property("build", NULL), TEL_OK);
    CHECK_STATUS(tel_log("C11.Privacy.NoBuild", NULL), TEL_OK);
    CHECK_STATUS(tel_flush(20000), TEL_OK);
    CHECK(stats_has("\"consent\":\"unknown\""));
    CHECK(stats_has("\"pending\":2,") || stats_has("\"pending\":2}"));

    CHECK_STATUS(tel_pause(), TEL_OK);
    CHECK_STATUS(tel_pause(), TEL_OK);
    CHECK(stats_has("\"paused\":true"));
    CHECK_STATUS(tel_set_consent(TEL_CONSENT_GRANTED), TEL_OK);
    CHECK(tel_consent() == TEL_CONSENT_GRANTED);
    CHECK_STATUS(tel_resume(), TEL_OK);
    CHECK(stats_has("\"paused\":false"));
    CHECK_STATUS(tel_flush(20000), TEL_OK);
    /* test_session's four events, and these two. */
    CHECK(tel_test_wait(collector, 6, 0, 10000) == 0);
    CHECK(tel_test_http(collector, "GET", "/_emulator/accepted", NULL, &accepted) == 200);
    if (accepted != NULL) {
        CHECK(strstr(accepted, "\"C11.Privacy.Waits\"") != NULL);
        CHECK(strstr(accepted, "\"<email>\"") != NULL);
        CHECK(strstr(accepted, "jane.doe") == NULL);
        CHECK(strstr(accepted, "{\"id\":42}") != NULL);
        CHECK(strstr(accepted, "\"beta\"") != NULL);
        free(accepted);
    }
    CHECK_STATUS(tel_set_consent(TEL_CONSENT_DENIED), TEL_OK);
    CHECK_STATUS(tel_log("C11.Privacy.Denied", NULL), TEL_OK);
    CHECK(stats_has("\"dropped_consent\":1"));
    CHECK_STATUS(tel_shutdown(2000), TEL_OK);

    /* A client has the same calls. */
    CHECK_STATUS(tel_client_new(config, &client), TEL_OK);
    if (client != NULL) {
        CHECK(tel_client_consent(client) == TEL_CONSENT_UNKNOWN);
        CHECK_STATUS(tel_client_set_property(client, "build", "\"c\""), TEL_OK);
        CHECK_STATUS(tel_client_pause(client), TEL_OK);
        CHECK_STATUS(tel_client_resume(client), TEL_OK);
        CHECK_STATUS(tel_client_set_consent(client, TEL_CONSENT_DENIED), TEL_OK);
        CHECK(tel_client_consent(client) == TEL_CONSENT_DENIED);
        CHECK_STATUS(tel_client_close(client, 2000), TEL_OK);
    }
}
#endif

int main(void) {
    tel_test_collector collector;

    test_version();
    test_without_session();
    if (tel_test_collector_start(&collector, NULL) != 0) {
        fprintf(stderr, "FAIL: cannot start the collector\n");
        return 1;
    }
    test_session(&collector);
#if defined(TEL_HAS_ABI_1_2)
    test_abi_1_2(&collector);
#endif
    tel_test_collector_stop(&collector);

    printf("c11: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
