/*
 * The C quick start: one session, one event, a flush, the stats.
 *
 *   TEL_IKEY=<tenant>-<rest> [TEL_ENDPOINT=http://127.0.0.1:PORT/OneCollector/1.0/] ./tel_quickstart_c
 */
#include <tel.h>

#include <stdio.h>
#include <stdlib.h>

static void print_last_error(const char *what, tel_status status) {
    char message[512];
    tel_last_error(message, sizeof message);
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)status, message);
}

int main(void) {
    const char *ikey = getenv("TEL_IKEY");
    const char *endpoint = getenv("TEL_ENDPOINT");
    char config[1024];
    char stats[1024];
    tel_status status;

    if (ikey == NULL) {
        fprintf(stderr, "set TEL_IKEY to your instrumentation key\n");
        return 2;
    }
    /* The JSON object of docs/abi.md; keys left out keep their defaults. */
    if (endpoint != NULL)
        snprintf(config, sizeof config,
                 "{\"ikey\":\"%s\",\"endpoint\":\"%s\",\"ext\":{\"app\":{\"ver\":\"1.0.0\"}}}", ikey,
                 endpoint);
    else
        snprintf(config, sizeof config, "{\"ikey\":\"%s\",\"ext\":{\"app\":{\"ver\":\"1.0.0\"}}}",
                 ikey);

    status = tel_init(config);
    if (status != TEL_OK) {
        print_last_error("tel_init", status);
        return 1;
    }
    status = tel_log("Quickstart.Started", "{\"language\":\"C\",\"answer\":42,\"ok\":true}");
    if (status != TEL_OK) print_last_error("tel_log", status);

    status = tel_flush(5000);
    if (status != TEL_OK) print_last_error("tel_flush", status);

    tel_stats_json(stats, sizeof stats);
    printf("onecollector-tel %s: %s\n", tel_version(), stats);

    /* Delivers what is pending within 2 s, persists the rest, stops the worker. */
    status = tel_shutdown(2000);
    return status == TEL_OK ? 0 : 1;
}
