/* The expectations of the C test programs (the programs of tests/hardening, and
 * tests/sanitize/abi_stress.c): CHECK(cond, format, ...) reports a failed one on stderr, with its
 * file and line, and counts it in `failures`, which the program's exit status reflects. Included
 * once by each program. */
#ifndef TEL_TEST_CHECK_H
#define TEL_TEST_CHECK_H

#include <stdio.h>

static int failures = 0;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                               \
            fprintf(stderr, "\n");                                      \
            failures++;                                                 \
        }                                                               \
    } while (0)

#endif /* TEL_TEST_CHECK_H */
