/* A program with one known defect, so that scripts/sanitizers.sh can show its sanitizer set-up
 * reports findings (in a child process too) before it trusts a clean run.
 *
 *   canary race     a data race on a global (ThreadSanitizer)
 *   canary uaf      a heap use after free (AddressSanitizer)
 *   canary child MODE   the same, in a child process started with fork + exec
 */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int shared;

static void *bump(void *arg) {
    (void)arg;
    shared++;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], argv[2], (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return 0; /* the parent ignores the child's status on purpose */
    }
    if (argc == 2 && strcmp(argv[1], "race") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, bump, NULL);
        shared++;
        pthread_join(t, NULL);
        printf("%d\n", shared);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "uaf") == 0) {
        char *p = malloc(16);
        char *volatile again = p; /* out of the compiler's sight, for the sanitizer to find */
        strcpy(p, "freed");
        free(p);
        printf("%c\n", again[0]);
        return 0;
    }
    fprintf(stderr, "usage: canary race|uaf|child MODE\n");
    return 2;
}
