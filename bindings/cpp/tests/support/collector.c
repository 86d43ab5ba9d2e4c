/* See collector.h. */
#define _POSIX_C_SOURCE 200809L

#include "collector.h"
#include "collector_answer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double tel_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void tel_test_sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* Reads one line (without its newline) from `fd` within `timeout_ms`. */
static int read_line(int fd, char *line, size_t size, unsigned timeout_ms) {
    size_t n = 0;
    double deadline = tel_test_now_ms() + timeout_ms;
    while (n + 1 < size) {
        struct pollfd p;
        int left = (int)(deadline - tel_test_now_ms());
        char c;
        ssize_t got;
        if (left <= 0) return -1;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, left) <= 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        if (c == '\n') break;
        line[n++] = c;
    }
    line[n] = '\0';
    return 0;
}

int tel_test_collector_start(tel_test_collector *collector, const char *telctl) {
    int in_pipe[2], out_pipe[2];
    char line[512];
    const char *prefix = "listening on ";
    const char *host;
    pid_t pid;

    memset(collector, 0, sizeof *collector);
    collector->pid = -1;
    collector->stdin_fd = -1;
    if (telctl == NULL) telctl = getenv("TELCTL");
    if (telctl == NULL || telctl[0] == '\0') {
        fprintf(stderr, "collector: set TELCTL to the path of telctl\n");
        return -1;
    }
    /* A collector that died must fail a request, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    if (pipe(in_pipe) != 0) return -1;
    if (pipe(out_pipe) != 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        return -1;
    }
    set_cloexec(in_pipe[1]);
    set_cloexec(out_pipe[0]);
    /* fork + exec rather than posix_spawn: valgrind follows it best. */
    pid = fork();
    if (pid < 0) {
        perror("collector: fork");
        return -1;
    }
    if (pid == 0) {
        char *argv[5];
        argv[0] = (char *)telctl;
        argv[1] = (char *)"serve";
        argv[2] = (char *)"--quiet";
        argv[3] = (char *)"--exit-on-stdin-eof";
        argv[4] = NULL;
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        close(in_pipe[0]);
        close(out_pipe[1]);
        execv(telctl, argv);
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    collector->pid = (int)pid;
    collector->stdin_fd = in_pipe[1];
    if (read_line(out_pipe[0], line, sizeof line, 30000) != 0 ||
        strncmp(line, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "collector: %s did not say where it listens\n", telctl);
        close(out_pipe[0]);
        tel_test_collector_stop(collector);
        return -1;
    }
    /* With --quiet nothing else is printed; the collector ignores a closed stdout. */
    close(out_pipe[0]);
    if (strlen(line + strlen(prefix)) >= sizeof collector->endpoint) {
        fprintf(stderr, "collector: endpoint too long: %s\n", line);
        tel_test_collector_stop(collector);
        return -1;
    }
    memcpy(collector->endpoint, line + strlen(prefix), strlen(line + strlen(prefix)) + 1);
    host = strstr(collector->endpoint, "127.0.0.1:");
    if (host == NULL || sscanf(host + strlen("127.0.0.1:"), "%d", &collector->port) != 1) {
        fprintf(stderr, "collector: unexpected endpoint %s\n", collector->endpoint);
        tel_test_collector_stop(collector);
        return -1;
    }
    return 0;
}

void tel_test_collector_stop(tel_test_collector *collector) {
    double deadline = tel_test_now_ms() + 5000;
    if (collector->stdin_fd >= 0) {
        close(collector->stdin_fd);
        collector->stdin_fd = -1;
    }
    if (collector->pid <= 0) return;
    for (;;) {
        int status;
        pid_t done = waitpid((pid_t)collector->pid, &status, WNOHANG);
        if (done == (pid_t)collector->pid || (done < 0 && errno != EINTR)) break;
        if (tel_test_now_ms() > deadline) {
            kill((pid_t)collector->pid, SIGKILL);
            waitpid((pid_t)collector->pid, &status, 0);
            break;
        }
        tel_test_sleep_ms(10);
    }
    collector->pid = -1;
}

static int send_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t sent = send(fd, data, length, 0);
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) return -1;
        data += sent;
        length -= (size_t)sent;
    }
    return 0;
}

int tel_test_http(const tel_test_collector *collector, const char *method, const char *path,
                  const char *body, char **response) {
    struct sockaddr_in addr;
    struct timeval timeout;
    char head[512];
    char *reply = NULL;
    size_t used = 0, capacity = 0;
    size_t body_length = body ? strlen(body) : 0;
    int fd;

    if (response) *response = NULL;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    set_cloexec(fd);
    /* Long enough for /_emulator/wait, whose own timeout ends first. */
    timeout.tv_sec = 120;
    timeout.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)collector->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("collector: connect");
        close(fd);
        return 0;
    }
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             method, path, collector->port, body_length);
    if (send_all(fd, head, strlen(head)) != 0 || send_all(fd, body ? body : "", body_length) != 0) {
        close(fd);
        return 0;
    }
    for (;;) {
        ssize_t got;
        if (tel_test_answer_room(&reply, &capacity, used) != 0) break;
        got = recv(fd, reply + used, capacity - used - 1, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        used += (size_t)got;
    }
    close(fd);
    return tel_test_answer(reply, used, response, method, path);
}
