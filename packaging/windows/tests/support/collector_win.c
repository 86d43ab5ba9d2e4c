/*
 * bindings/cpp/tests/support/collector.h for Windows (Winsock and CreateProcessW), so that the
 * C11 and C++ tests build with mingw unchanged. Two ways to a collector:
 *
 *  - TEL_TEST_ENDPOINT set (how packaging/windows/run-tests.sh runs the tests under Wine): the
 *    collector is one the harness started for this program (`telctl serve` on Linux, reached
 *    on loopback); start() only reads its address and stop() leaves it to the harness.
 *  - otherwise TELCTL names telctl.exe, started here with --exit-on-stdin-eof as collector.c
 *    does on POSIX; stop() closes its standard input, then ends it after 5 s.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "collector.h"
#include "collector_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* The processes started here, by slot; `stdin_fd` of a collector is its slot, or -1. */
#define MAX_SPAWNED 16
static struct {
    HANDLE process;
    HANDLE stdin_pipe;
} spawned[MAX_SPAWNED];

double tel_test_now_ms(void) {
    static LARGE_INTEGER frequency;
    LARGE_INTEGER now;
    if (frequency.QuadPart == 0) QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart * 1000.0 / (double)frequency.QuadPart;
}

void tel_test_sleep_ms(unsigned ms) { Sleep(ms); }

static int winsock_ready(void) {
    static int ready;
    WSADATA data;
    if (!ready && WSAStartup(MAKEWORD(2, 2), &data) == 0) ready = 1;
    return ready;
}

static int parse_endpoint(tel_test_collector *collector, const char *endpoint) {
    const char *host;
    snprintf(collector->endpoint, sizeof collector->endpoint, "%s", endpoint);
    host = strstr(collector->endpoint, "127.0.0.1:");
    if (host == NULL || sscanf(host + strlen("127.0.0.1:"), "%d", &collector->port) != 1) {
        fprintf(stderr, "collector: unexpected endpoint %s\n", collector->endpoint);
        return -1;
    }
    return 0;
}

/* Reads one line (without its newline) from `pipe`; the collector writes it at once. */
static int read_line(HANDLE pipe, char *line, size_t size) {
    size_t n = 0;
    while (n + 1 < size) {
        char c;
        DWORD got = 0;
        if (!ReadFile(pipe, &c, 1, &got, NULL) || got == 0) return -1;
        if (c == '\n') break;
        if (c != '\r') line[n++] = c;
    }
    line[n] = '\0';
    return 0;
}

static int spawn(tel_test_collector *collector, const wchar_t *telctl) {
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE in_read = NULL, in_write = NULL, out_read = NULL, out_write = NULL;
    STARTUPINFOW startup;
    PROCESS_INFORMATION info;
    wchar_t command[1200];
    char line[512];
    const char *prefix = "listening on ";
    int slot;

    for (slot = 0; slot < MAX_SPAWNED && spawned[slot].process != NULL; ++slot) {
    }
    if (slot == MAX_SPAWNED) return -1;
    if (!CreatePipe(&in_read, &in_write, &inherit, 0)) return -1;
    if (!CreatePipe(&out_read, &out_write, &inherit, 0)) {
        CloseHandle(in_read);
        CloseHandle(in_write);
        return -1;
    }
    /* Only the child's ends are inherited. */
    SetHandleInformation(in_write, HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation(out_read, HANDLE_FLAG_INHERIT, 0);
    memset(&startup, 0, sizeof startup);
    startup.cb = sizeof startup;
    startup.dwFlags = STARTF_USESTDHANDLES;
    startup.hStdInput = in_read;
    startup.hStdOutput = out_write;
    startup.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    _snwprintf(command, sizeof command / sizeof command[0],
               L"\"%ls\" serve --quiet --exit-on-stdin-eof", telctl);
    command[sizeof command / sizeof command[0] - 1] = L'\0';
    if (!CreateProcessW(NULL, command, NULL, NULL, TRUE, 0, NULL, NULL, &startup, &info)) {
        fprintf(stderr, "collector: cannot start %ls (error %lu)\n", telctl, GetLastError());
        CloseHandle(in_read);
        CloseHandle(in_write);
        CloseHandle(out_read);
        CloseHandle(out_write);
        return -1;
    }
    CloseHandle(info.hThread);
    CloseHandle(in_read);
    CloseHandle(out_write);
    spawned[slot].process = info.hProcess;
    spawned[slot].stdin_pipe = in_write;
    collector->pid = (int)info.dwProcessId;
    collector->stdin_fd = slot;
    if (read_line(out_read, line, sizeof line) != 0 ||
        strncmp(line, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "collector: %ls did not say where it listens\n", telctl);
        CloseHandle(out_read);
        tel_test_collector_stop(collector);
        return -1;
    }
    CloseHandle(out_read);
    if (parse_endpoint(collector, line + strlen(prefix)) != 0) {
        tel_test_collector_stop(collector);
        return -1;
    }
    return 0;
}

int tel_test_collector_start(tel_test_collector *collector, const char *telctl) {
    const char *given = getenv("TEL_TEST_ENDPOINT");
    wchar_t path[1024];

    memset(collector, 0, sizeof *collector);
    collector->pid = -1;
    collector->stdin_fd = -1;
    if (!winsock_ready()) {
        fprintf(stderr, "collector: WSAStartup failed\n");
        return -1;
    }
    if (given != NULL && given[0] != '\0') return parse_endpoint(collector, given);
    if (telctl != NULL) {
        if (MultiByteToWideChar(CP_UTF8, 0, telctl, -1, path, 1024) == 0) return -1;
    } else {
        DWORD n = GetEnvironmentVariableW(L"TELCTL", path, 1024);
        if (n == 0 || n >= 1024) {
            fprintf(stderr, "collector: set TEL_TEST_ENDPOINT to a running collector, or "
                            "TELCTL to telctl.exe\n");
            return -1;
        }
    }
    return spawn(collector, path);
}

void tel_test_collector_stop(tel_test_collector *collector) {
    int slot = collector->stdin_fd;
    if (slot < 0 || slot >= MAX_SPAWNED || spawned[slot].process == NULL) return;
    CloseHandle(spawned[slot].stdin_pipe);
    if (WaitForSingleObject(spawned[slot].process, 5000) != WAIT_OBJECT_0) {
        TerminateProcess(spawned[slot].process, 1);
        WaitForSingleObject(spawned[slot].process, 5000);
    }
    CloseHandle(spawned[slot].process);
    spawned[slot].process = NULL;
    spawned[slot].stdin_pipe = NULL;
    collector->stdin_fd = -1;
    collector->pid = -1;
}

static int send_all(SOCKET s, const char *data, size_t length) {
    while (length > 0) {
        int sent = send(s, data, length > 65536 ? 65536 : (int)length, 0);
        if (sent <= 0) return -1;
        data += sent;
        length -= (size_t)sent;
    }
    return 0;
}

int tel_test_http(const tel_test_collector *collector, const char *method, const char *path,
                  const char *body, char **response) {
    struct sockaddr_in addr;
    DWORD timeout = 120000; /* longer than any /_emulator/wait */
    char head[512];
    char *reply = NULL;
    size_t used = 0, capacity = 0;
    size_t body_length = body ? strlen(body) : 0;
    SOCKET s;

    if (response) *response = NULL;
    if (!winsock_ready()) return 0;
    s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET) return 0;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&timeout, sizeof timeout);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)collector->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "collector: connect to port %d failed (%d)\n", collector->port,
                WSAGetLastError());
        closesocket(s);
        return 0;
    }
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: %lu\r\n\r\n",
             method, path, collector->port, (unsigned long)body_length);
    if (send_all(s, head, strlen(head)) != 0 || send_all(s, body ? body : "", body_length) != 0) {
        closesocket(s);
        return 0;
    }
    for (;;) {
        int got;
        if (tel_test_answer_room(&reply, &capacity, used) != 0) break;
        got = recv(s, reply + used, (int)(capacity - used - 1), 0);
        if (got <= 0) break;
        used += (size_t)got;
    }
    closesocket(s);
    return tel_test_answer(reply, used, response, method, path);
}
