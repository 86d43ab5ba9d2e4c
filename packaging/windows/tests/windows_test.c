/*
 * The library on Windows, through tel.dll's C ABI, across real Windows processes: events
 * arrive; a cache written during an outage is replayed by the next process, also when several
 * processes write it at once or replay it at once; a kill window persisted by one process stops
 * the next; a process killed while its replay hangs loses nothing; the cache and the device id
 * live in %LOCALAPPDATA%\tel, and folders with non-ASCII names work (LOCALAPPDATA,
 * TEL_CACHE_DIR, cache_path); a process ends promptly with or without tel_shutdown.
 *
 *   windows_test                          runs every scenario (the driver)
 *   windows_test child ROLE N TENANT EP   one step in its own process, started by the driver
 *
 * The collector: support/collector.h (TEL_TEST_ENDPOINT, or TELCTL to start telctl.exe).
 * Tenants start with "win" and are distinct per scenario, so the scenarios share one
 * %LOCALAPPDATA%\tel without touching each other's files. One tenant, winleft, keeps an entry
 * in its cache at the end, for the harness to find from outside.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <tel.h>

#include "collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define KEY_REST "-0123456789abcdef"
#define MAX_CHILDREN 4

static int checks, failures;

static void check(int ok, const char *what, const char *scope, int line) {
    ++checks;
    if (!ok) {
        ++failures;
        fprintf(stderr, "FAIL %s line %d: %s\n", scope, line, what);
        fflush(stderr);
    }
}

#define CHECK(cond) check((cond) ? 1 : 0, #cond, scope, __LINE__)

/* ---------------------------------------------------------------- paths (UTF-16) */

/* %LOCALAPPDATA% as the process sees it. */
static void local_app_data(wchar_t *out, size_t size) {
    DWORD n = GetEnvironmentVariableW(L"LOCALAPPDATA", out, (DWORD)size);
    if (n == 0 || n >= size) out[0] = L'\0';
}

/* The three non-ASCII folders of the unicode scenario, under the real %LOCALAPPDATA%. */
static void unicode_dir(int which, wchar_t *out, size_t size) {
    static const wchar_t *const names[] = {
        L"\u00dcn\u00efc\u00f8d\u00e9 \u7528\u6237",       /* as LOCALAPPDATA */
        L"\u00c7ache d\u00efr \u76ee\u5f55",                /* as TEL_CACHE_DIR */
        L"\u00cbxplicit \u8def\u5f84 \U0001F600",           /* in cache_path */
    };
    wchar_t base[MAX_PATH];
    local_app_data(base, MAX_PATH);
    _snwprintf(out, size, L"%ls\\%ls", base, names[which]);
    out[size - 1] = L'\0';
}

/* A file in %LOCALAPPDATA%\tel. */
static void tel_file(const char *name, wchar_t *out, size_t size) {
    wchar_t base[MAX_PATH];
    local_app_data(base, MAX_PATH);
    _snwprintf(out, size, L"%ls\\tel\\%hs", base, name);
    out[size - 1] = L'\0';
}

/* The whole file, NUL-terminated, or NULL when it cannot be read. */
static char *read_file(const wchar_t *path) {
    HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, 0, NULL);
    char *text;
    DWORD size, got = 0;
    if (f == INVALID_HANDLE_VALUE) return NULL;
    size = GetFileSize(f, NULL);
    text = malloc(size + 1);
    if (text == NULL || !ReadFile(f, text, size, &got, NULL)) {
        free(text);
        CloseHandle(f);
        return NULL;
    }
    CloseHandle(f);
    text[got] = '\0';
    return text;
}

static int count_of(const char *text, const char *word) {
    int n = 0;
    const char *at = text;
    while (text != NULL && (at = strstr(at, word)) != NULL) {
        ++n;
        at += strlen(word);
    }
    return n;
}

static int file_exists(const wchar_t *path) {
    DWORD attributes = GetFileAttributesW(path);
    return attributes != INVALID_FILE_ATTRIBUTES && !(attributes & FILE_ATTRIBUTE_DIRECTORY);
}

/* `text` as UTF-8 with JSON string escaping (the backslashes of Windows paths), into `out`. */
static void json_escape_utf8(const wchar_t *text, char *out, size_t size) {
    char utf8[2048];
    size_t n = 0;
    const char *c;
    WideCharToMultiByte(CP_UTF8, 0, text, -1, utf8, sizeof utf8, NULL, NULL);
    for (c = utf8; *c && n + 3 < size; ++c) {
        if (*c == '\\' || *c == '"') out[n++] = '\\';
        out[n++] = *c;
    }
    out[n] = '\0';
}

/* ---------------------------------------------------------------- the child roles */

static unsigned long long stat_of(const char *name) {
    char stats[2048], key[64];
    const char *at;
    tel_stats_json(stats, sizeof stats);
    snprintf(key, sizeof key, "\"%s\":", name);
    at = strstr(stats, key);
    return at ? strtoull(at + strlen(key), NULL, 10) : (unsigned long long)-1;
}

static void print_stats(const char *role) {
    char stats[2048];
    tel_stats_json(stats, sizeof stats);
    fprintf(stderr, "  %s: %s\n", role, stats);
}

static int init_session(const char *tenant, const char *endpoint, const char *extra,
                        const char *scope) {
    char config[4096];
    tel_status rc;
    snprintf(config, sizeof config,
             "{\"ikey\":\"%s" KEY_REST "\",\"endpoint\":\"%s\",\"flush_interval_ms\":20,"
             "\"retry_initial_ms\":20,\"retry_max_ms\":100,\"retry_max_attempts\":2,"
             "\"http_timeout_ms\":5000%s}",
             tenant, endpoint, extra ? extra : "");
    rc = tel_init(config);
    if (rc != TEL_OK) {
        char why[512];
        tel_last_error(why, sizeof why);
        fprintf(stderr, "FAIL %s: tel_init returned %d: %s\n", scope, (int)rc, why);
        ++failures;
    }
    return rc == TEL_OK;
}

static void log_events(const char *name, int n, const char *scope) {
    int i;
    for (i = 0; i < n; ++i) {
        char props[128];
        snprintf(props, sizeof props, "{\"i\":%d,\"pid\":%lu,\"text\":\"caf\xc3\xa9 \xe4\xb8\xad\"}",
                 i, GetCurrentProcessId());
        CHECK(tel_log(name, props) == TEL_OK);
    }
}

/* Events during an outage (the collector answers 503): persisted at the latest by shutdown. */
static void persist_during_outage(const char *tenant, const char *endpoint, const char *extra,
                                  const char *name, int n, const char *scope) {
    tel_status rc;
    if (!init_session(tenant, endpoint, extra, scope)) return;
    log_events(name, n, scope);
    rc = tel_shutdown(3000);
    CHECK(rc == TEL_OK || rc == TEL_ERR_TIMEOUT);
    /* What a concurrent process persisted first was taken up at start and goes back too. */
    CHECK(stat_of("persisted") == (unsigned long long)n + stat_of("replayed"));
    CHECK(stat_of("dropped_shutdown") == 0);
    CHECK(stat_of("sent") == 0);
    if (failures) print_stats(scope);
}

static void set_unicode_env(int which, const wchar_t *variable) {
    wchar_t dir[MAX_PATH];
    unicode_dir(which, dir, MAX_PATH);
    SetEnvironmentVariableW(variable, dir);
}

static void shutdown_at_exit(void) {
    if (tel_shutdown(5000) != TEL_OK || stat_of("sent") != 1) {
        fprintf(stderr, "FAIL atexit: tel_shutdown from an atexit handler did not deliver\n");
        print_stats("atexit");
        fflush(stderr);
        _exit(1);
    }
}

static int child(const char *role, int n, const char *tenant, const char *endpoint) {
    const char *scope = role;
    if (strcmp(role, "send") == 0) {
        if (init_session(tenant, endpoint, NULL, scope)) {
            log_events("Win.Send", n, scope);
            CHECK(tel_flush(20000) == TEL_OK);
            CHECK(stat_of("sent") == (unsigned long long)n);
            CHECK(tel_shutdown(2000) == TEL_OK);
        }
    } else if (strcmp(role, "persist") == 0) {
        persist_during_outage(tenant, endpoint, NULL, "Win.Outage", n, scope);
    } else if (strcmp(role, "replay") == 0) {
        if (init_session(tenant, endpoint, NULL, scope)) {
            CHECK(tel_flush(30000) == TEL_OK);
            CHECK(stat_of("replayed") == (unsigned long long)n);
            CHECK(stat_of("sent") == (unsigned long long)n);
            CHECK(tel_shutdown(2000) == TEL_OK);
        }
    } else if (strcmp(role, "replay-some") == 0) {
        /* One of several concurrent replayers, claiming small batches so that they take
         * turns: whatever it took, it delivered. */
        if (init_session(tenant, endpoint, ",\"batch_max_events\":10", scope)) {
            CHECK(tel_flush(30000) == TEL_OK);
            CHECK(stat_of("replayed") == stat_of("sent"));
            CHECK(tel_shutdown(2000) == TEL_OK);
            printf("replayed %llu\n", stat_of("replayed"));
        }
    } else if (strcmp(role, "replay-hang") == 0) {
        /* The driver ends this process while the replay request hangs. */
        if (init_session(tenant, endpoint, NULL, scope)) Sleep(60000);
        fprintf(stderr, "FAIL replay-hang: was not terminated\n");
        return 3;
    } else if (strcmp(role, "kill-first") == 0) {
        if (init_session(tenant, endpoint, NULL, scope)) {
            log_events("Win.BeforeKill", n, scope);
            CHECK(tel_flush(20000) == TEL_OK);
            CHECK(stat_of("killed_until_ms") > 0);
            CHECK(tel_shutdown(2000) == TEL_OK);
        }
    } else if (strcmp(role, "kill-next") == 0) {
        if (init_session(tenant, endpoint, NULL, scope)) {
            CHECK(stat_of("killed_until_ms") > 0);
            log_events("Win.DuringKill", n, scope);
            CHECK(tel_flush(5000) == TEL_OK);
            CHECK(stat_of("dropped_killed") == (unsigned long long)n);
            CHECK(stat_of("http_requests") == 0);
            CHECK(tel_shutdown(2000) == TEL_OK);
        }
    } else if (strcmp(role, "unicode") == 0) {
        /* The same outage three times, the cache in a non-ASCII folder reached three ways. */
        wchar_t dir[MAX_PATH];
        char extra[2048], escaped[1024];
        wchar_t saved[MAX_PATH];
        local_app_data(saved, MAX_PATH);

        set_unicode_env(0, L"LOCALAPPDATA");
        persist_during_outage(tenant, endpoint, NULL, "Win.Unicode", 1, "unicode/LOCALAPPDATA");
        SetEnvironmentVariableW(L"LOCALAPPDATA", saved);

        set_unicode_env(1, L"TEL_CACHE_DIR");
        persist_during_outage(tenant, endpoint, NULL, "Win.Unicode", 1, "unicode/TEL_CACHE_DIR");
        SetEnvironmentVariableW(L"TEL_CACHE_DIR", NULL);

        unicode_dir(2, dir, MAX_PATH);
        wcscat(dir, L"\\\u00fcn\u00efcache.cache");
        json_escape_utf8(dir, escaped, sizeof escaped);
        snprintf(extra, sizeof extra, ",\"cache_path\":\"%s\"", escaped);
        persist_during_outage(tenant, endpoint, extra, "Win.Unicode", 1, "unicode/cache_path");
    } else if (strcmp(role, "unicode-replay") == 0) {
        set_unicode_env(0, L"LOCALAPPDATA");
        if (init_session(tenant, endpoint, NULL, scope)) {
            CHECK(tel_flush(30000) == TEL_OK);
            CHECK(stat_of("replayed") == (unsigned long long)n);
            CHECK(stat_of("sent") == (unsigned long long)n);
            CHECK(tel_shutdown(2000) == TEL_OK);
        }
    } else if (strcmp(role, "no-shutdown") == 0) {
        /* Returning from main with the worker alive must end the process at once. */
        if (init_session(tenant, endpoint, NULL, scope)) {
            log_events("Win.NoShutdown", n, scope);
            CHECK(tel_flush(20000) == TEL_OK);
        }
    } else if (strcmp(role, "atexit") == 0) {
        if (init_session(tenant, endpoint, NULL, scope)) {
            atexit(shutdown_at_exit);
            log_events("Win.AtExit", n, scope);
        }
    } else {
        fprintf(stderr, "unknown role %s\n", role);
        return 2;
    }
    if (failures) print_stats(role);
    return failures == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- the driver */

static tel_test_collector collector;

typedef struct {
    PROCESS_INFORMATION info;
    char role[32];
} running_child;

static int start_child(running_child *c, const char *role, int n, const char *tenant) {
    wchar_t self[MAX_PATH], command[2048];
    STARTUPINFOW startup;
    memset(&startup, 0, sizeof startup);
    startup.cb = sizeof startup;
    GetModuleFileNameW(NULL, self, MAX_PATH);
    _snwprintf(command, 2048, L"\"%ls\" child %hs %d %hs %hs", self, role, n, tenant,
               collector.endpoint);
    command[2047] = L'\0';
    snprintf(c->role, sizeof c->role, "%s", role);
    if (!CreateProcessW(NULL, command, NULL, NULL, FALSE, 0, NULL, NULL, &startup, &c->info)) {
        fprintf(stderr, "FAIL: cannot start child %s (error %lu)\n", role, GetLastError());
        return -1;
    }
    CloseHandle(c->info.hThread);
    return 0;
}

/* Waits for the child; its exit code (0 = its own checks passed), or -1 after `timeout_ms`. */
static int wait_child(running_child *c, DWORD timeout_ms) {
    DWORD code = 1;
    if (WaitForSingleObject(c->info.hProcess, timeout_ms) != WAIT_OBJECT_0) {
        fprintf(stderr, "FAIL: child %s still running after %lu ms\n", c->role, timeout_ms);
        TerminateProcess(c->info.hProcess, 9);
        WaitForSingleObject(c->info.hProcess, 5000);
        CloseHandle(c->info.hProcess);
        return -1;
    }
    GetExitCodeProcess(c->info.hProcess, &code);
    CloseHandle(c->info.hProcess);
    return (int)code;
}

static int run_child(const char *role, int n, const char *tenant) {
    running_child c;
    if (start_child(&c, role, n, tenant) != 0) return -1;
    return wait_child(&c, 120000);
}

static unsigned long collector_stat(const char *name) {
    char *reply = NULL, key[64];
    const char *at;
    unsigned long value = (unsigned long)-1;
    snprintf(key, sizeof key, "\"%s\":", name);
    if (tel_test_http(&collector, "GET", "/_emulator/stats", NULL, &reply) == 200 && reply &&
        (at = strstr(reply, key)) != NULL)
        value = strtoul(at + strlen(key), NULL, 10);
    free(reply);
    return value;
}

static char *accepted_envelopes(void) {
    char *reply = NULL;
    tel_test_http(&collector, "GET", "/_emulator/accepted", NULL, &reply);
    return reply;
}

static int outage(int on) {
    return tel_test_post(&collector, "/_emulator/default", on ? "{\"status\":503}" : "null");
}

static void scenario_events_arrive(void) {
    const char *scope = "events_arrive";
    wchar_t path[MAX_PATH];
    char *envelopes, *device, *os;
    char local_id[80];
    unsigned long before = collector_stat("accepted");

    CHECK(run_child("send", 3, "winsend") == 0);
    CHECK(collector_stat("accepted") == before + 3);
    envelopes = accepted_envelopes();
    CHECK(count_of(envelopes, "\"name\":\"Win.Send\"") == 3);
    CHECK(count_of(envelopes, "\"iKey\":\"o:winsend\"") == 3);
    CHECK(count_of(envelopes, "winsend" KEY_REST) == 0);
    CHECK(count_of(envelopes, "caf\xc3\xa9 \xe4\xb8\xad") >= 3);
    /* os.name and the real version from RtlGetVersion: major.minor.build. */
    os = envelopes ? strstr(envelopes, "\"os\":{") : NULL;
    CHECK(os != NULL && strstr(os, "\"name\":\"Windows\"") != NULL);
    if (os != NULL) {
        const char *ver = strstr(os, "\"ver\":\"");
        unsigned major = 0, minor = 0, build = 0;
        CHECK(ver != NULL && sscanf(ver + 7, "%u.%u.%u", &major, &minor, &build) == 3 &&
              major >= 6);
        if (ver) printf("  os.ver %.*s\n", (int)(strchr(ver + 7, '"') - ver - 7), ver + 7);
    }
    /* The device id persisted in %LOCALAPPDATA%\tel is the one sent. */
    tel_file("device-id", path, MAX_PATH);
    device = read_file(path);
    CHECK(device != NULL && strncmp(device, "r:", 2) == 0);
    if (device != NULL) {
        snprintf(local_id, sizeof local_id, "\"localId\":\"%s\"", device);
        CHECK(count_of(envelopes, local_id) == 3);
    }
    free(device);
    free(envelopes);
}

static void scenario_outage_then_replay(void) {
    const char *scope = "outage_then_replay";
    wchar_t path[MAX_PATH];
    char *cache, *envelopes;
    unsigned long before;

    CHECK(outage(1) == 0);
    CHECK(run_child("persist", 4, "winoutage") == 0);
    CHECK(outage(0) == 0);
    tel_file("winoutage.cache", path, MAX_PATH);
    cache = read_file(path);
    CHECK(cache != NULL && count_of(cache, "\n") == 4 && count_of(cache, "Win.Outage") == 4);
    CHECK(cache == NULL || count_of(cache, "winoutage" KEY_REST) == 0);
    free(cache);

    before = collector_stat("accepted");
    CHECK(run_child("replay", 4, "winoutage") == 0);
    CHECK(collector_stat("accepted") == before + 4);
    envelopes = accepted_envelopes();
    CHECK(count_of(envelopes, "\"name\":\"Win.Outage\"") == 4);
    free(envelopes);
    CHECK(!file_exists(path));
}

static void scenario_concurrent_processes(void) {
    const char *scope = "concurrent_processes";
    running_child children[MAX_CHILDREN];
    wchar_t path[MAX_PATH];
    char *cache;
    unsigned long before;
    int i;

    /* Three processes persist into one cache file at the same time: none loses another's. */
    CHECK(outage(1) == 0);
    for (i = 0; i < 3; ++i) CHECK(start_child(&children[i], "persist", 20, "winmany") == 0);
    for (i = 0; i < 3; ++i) CHECK(wait_child(&children[i], 120000) == 0);
    CHECK(outage(0) == 0);
    tel_file("winmany.cache", path, MAX_PATH);
    cache = read_file(path);
    CHECK(cache != NULL && count_of(cache, "\n") == 60);
    free(cache);

    /* Two processes replay it at the same time: every entry arrives exactly once. */
    before = collector_stat("accepted");
    for (i = 0; i < 2; ++i) CHECK(start_child(&children[i], "replay-some", 0, "winmany") == 0);
    for (i = 0; i < 2; ++i) CHECK(wait_child(&children[i], 120000) == 0);
    Sleep(300);
    CHECK(collector_stat("accepted") == before + 60);
    CHECK(!file_exists(path));
}

static void scenario_killed_during_replay(void) {
    const char *scope = "killed_during_replay";
    running_child hung;
    unsigned long before;
    double deadline;

    CHECK(outage(1) == 0);
    CHECK(run_child("persist", 5, "windead") == 0);
    CHECK(outage(0) == 0);

    CHECK(tel_test_post(&collector, "/_emulator/script", "{\"fault\":\"hang\",\"times\":1}") == 0);
    before = collector_stat("accepted");
    CHECK(start_child(&hung, "replay-hang", 5, "windead") == 0);
    deadline = tel_test_now_ms() + 30000;
    while (collector_stat("hanging") < 1 && tel_test_now_ms() < deadline) Sleep(20);
    CHECK(collector_stat("hanging") >= 1);
    /* Ended mid-request, as by Task Manager: its claim file is left behind, unlocked. */
    TerminateProcess(hung.info.hProcess, 9);
    CHECK(wait_child(&hung, 10000) == 9);
    CHECK(tel_test_post(&collector, "/_emulator/release", "{}") == 0);

    CHECK(run_child("replay", 5, "windead") == 0);
    CHECK(collector_stat("accepted") == before + 5);
}

static void scenario_kill_window(void) {
    const char *scope = "kill_window";
    wchar_t path[MAX_PATH];
    char *state;
    unsigned long requests;

    CHECK(tel_test_post(&collector, "/_emulator/script",
                        "{\"accept\":true,\"headers\":{\"kill-tokens\":\"o:winkill\","
                        "\"kill-duration\":\"600\"}}") == 0);
    CHECK(run_child("kill-first", 1, "winkill") == 0);
    tel_file("winkill.cache.kill", path, MAX_PATH);
    state = read_file(path);
    CHECK(state != NULL && strstr(state, "\"tenant\":\"winkill\"") != NULL &&
          strstr(state, "\"until_ms\":") != NULL);
    free(state);

    requests = collector_stat("requests");
    CHECK(run_child("kill-next", 3, "winkill") == 0);
    CHECK(collector_stat("requests") == requests);
}

static void scenario_unicode_folders(void) {
    const char *scope = "unicode_folders";
    wchar_t dir[MAX_PATH], path[MAX_PATH];
    unsigned long before;

    CHECK(outage(1) == 0);
    CHECK(run_child("unicode", 0, "winuni") == 0);
    CHECK(outage(0) == 0);

    unicode_dir(0, dir, MAX_PATH);
    _snwprintf(path, MAX_PATH, L"%ls\\tel\\winuni.cache", dir);
    CHECK(file_exists(path));
    _snwprintf(path, MAX_PATH, L"%ls\\tel\\device-id", dir);
    CHECK(file_exists(path));
    unicode_dir(1, dir, MAX_PATH);
    _snwprintf(path, MAX_PATH, L"%ls\\winuni.cache", dir);
    CHECK(file_exists(path));
    unicode_dir(2, dir, MAX_PATH);
    _snwprintf(path, MAX_PATH, L"%ls\\\u00fcn\u00efcache.cache", dir);
    CHECK(file_exists(path));

    before = collector_stat("accepted");
    CHECK(run_child("unicode-replay", 1, "winuni") == 0);
    CHECK(collector_stat("accepted") == before + 1);
    unicode_dir(0, dir, MAX_PATH);
    _snwprintf(path, MAX_PATH, L"%ls\\tel\\winuni.cache", dir);
    CHECK(!file_exists(path));
}

static void scenario_process_exit(void) {
    const char *scope = "process_exit";
    running_child c;
    unsigned long before = collector_stat("accepted");
    double started = tel_test_now_ms();

    CHECK(start_child(&c, "no-shutdown", 1, "winexit") == 0);
    CHECK(wait_child(&c, 20000) == 0);
    CHECK(collector_stat("accepted") == before + 1);
    printf("  exit without tel_shutdown: %.0f ms\n", tel_test_now_ms() - started);

    CHECK(run_child("atexit", 1, "winexit") == 0);
    CHECK(collector_stat("accepted") == before + 2);
}

static void scenario_leftover(void) {
    /* Left in %LOCALAPPDATA%\tel for the harness to find from outside the Wine prefix. */
    const char *scope = "leftover";
    CHECK(outage(1) == 0);
    CHECK(run_child("persist", 1, "winleft") == 0);
    CHECK(outage(0) == 0);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } scenarios[] = {
        {"events_arrive", scenario_events_arrive},
        {"outage_then_replay", scenario_outage_then_replay},
        {"concurrent_processes", scenario_concurrent_processes},
        {"killed_during_replay", scenario_killed_during_replay},
        {"kill_window", scenario_kill_window},
        {"unicode_folders", scenario_unicode_folders},
        {"process_exit", scenario_process_exit},
        {"leftover", scenario_leftover},
    };
    size_t i;
    int passed = 0, failed = 0;

    if (argc == 6 && strcmp(argv[1], "child") == 0)
        return child(argv[2], atoi(argv[3]), argv[4], argv[5]);
    if (argc != 1) {
        fprintf(stderr, "usage: windows_test [child ROLE N TENANT ENDPOINT]\n");
        return 2;
    }
    if (tel_test_collector_start(&collector, NULL) != 0) {
        fprintf(stderr, "FAIL: no collector\n");
        return 1;
    }
    for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; ++i) {
        int before = failures;
        double started = tel_test_now_ms();
        scenarios[i].run();
        printf("%s windows.%s (%.1f s)\n", failures == before ? "ok  " : "FAIL", scenarios[i].name,
               (tel_test_now_ms() - started) / 1000.0);
        fflush(stdout);
        if (failures == before)
            ++passed;
        else
            ++failed;
    }
    tel_test_collector_stop(&collector);
    printf("windows_test: %d scenarios passed, %d failed (%d checks, %d failed)\n", passed, failed,
           checks, failures);
    return failures == 0 ? 0 : 1;
}
