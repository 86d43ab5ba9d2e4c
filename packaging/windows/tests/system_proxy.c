/*
 * The Windows proxy settings: run-tests.sh writes the current user's Internet Settings into
 * Wine's registry (ProxyEnable, ProxyServer naming a loopback CONNECT proxy, ProxyOverride),
 * then runs this program, which sends one event to a non-loopback https:// endpoint with no
 * proxy variable set. The harness checks from outside whether the proxy saw the CONNECT.
 *
 *   system_proxy ENDPOINT
 *
 * Exits 0 when the session started and stopped; delivery itself is not expected (the proxy's
 * far end is not a collector this program trusts), only the route.
 */
#include <tel.h>

#include <stdio.h>

int main(int argc, char **argv) {
    char config[1024];
    char why[512];
    if (argc != 2) {
        fprintf(stderr, "usage: system_proxy ENDPOINT\n");
        return 2;
    }
    snprintf(config, sizeof config,
             "{\"ikey\":\"winproxy-0123456789abcdef\",\"endpoint\":\"%s\",\"cache_path\":null,"
             "\"http_timeout_ms\":3000,\"retry_initial_ms\":50,\"retry_max_ms\":100,"
             "\"retry_max_attempts\":1}",
             argv[1]);
    if (tel_init(config) != TEL_OK) {
        tel_last_error(why, sizeof why);
        fprintf(stderr, "tel_init: %s\n", why);
        return 1;
    }
    if (tel_log("Win.SystemProxy", NULL) != TEL_OK) return 1;
    (void)tel_flush(3000);
    (void)tel_shutdown(1000);
    return 0;
}
