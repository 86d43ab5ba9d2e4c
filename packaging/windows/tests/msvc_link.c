/*
 * Linked by an MSVC-style linker (lld-link, as rust-lld's `link` flavour) against tel.lib
 * alone, with no C runtime: shows that the import library made by build.sh resolves every
 * function of the ABI the way MSVC's link.exe resolves it, and that the program runs against
 * tel.dll. Exit code 0 when every call answered as abi.md says.
 */
#include <tel.h>

#define STD_OUTPUT_HANDLE ((unsigned long)-11)
__declspec(dllimport) void *__stdcall GetStdHandle(unsigned long which);
__declspec(dllimport) int __stdcall WriteFile(void *file, const void *data, unsigned long size,
                                              unsigned long *written, void *overlapped);
__declspec(dllimport) __attribute__((noreturn)) void __stdcall ExitProcess(unsigned int code);

static unsigned long length(const char *s) {
    unsigned long n = 0;
    while (s[n]) ++n;
    return n;
}

static void say(const char *s) {
    unsigned long written;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, length(s), &written, 0);
}

void mainCRTStartup(void) {
    char buf[256];
    unsigned int bad = 0;
    const char *version = tel_version();
    bad |= (version == 0 || version[0] == '\0') << 0;
    bad |= (tel_init("{\"ikey\":\"-missing-tenant\"}") != TEL_ERR_INVALID_CONFIG) << 1;
    bad |= (tel_last_error(buf, sizeof buf) == 0) << 2;
    bad |= (tel_log(0, 0) != TEL_ERR_INVALID_ARGUMENT) << 3;
    bad |= (tel_flush(0) != TEL_ERR_NOT_INITIALIZED) << 4;
    bad |= (tel_shutdown(0) != TEL_ERR_NOT_INITIALIZED) << 5;
    bad |= (tel_stats_json(buf, sizeof buf) == 0) << 6;
    bad |= (tel_set_logger(0, TEL_LOG_OFF, 0) != TEL_OK) << 7;
    say(bad ? "msvc_link: FAILED\n" : "msvc_link: tel.lib resolved all 8 functions; tel ");
    if (!bad) {
        say(version);
        say("\n");
    }
    ExitProcess(bad);
}
