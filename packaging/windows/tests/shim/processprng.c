/*
 * FOR THE TESTS ONLY, NEVER SHIPPED. Wine 8.0 has no `bcryptprimitives.dll`, whose
 * `ProcessPrng` the Rust standard library imports on Windows (every Windows 10+ has it). This
 * stand-in, placed next to a test program, lets that program load `tel.dll` under Wine; it
 * fills the buffer from `RtlGenRandom` (advapi32's SystemFunction036), the generator
 * `ProcessPrng` itself draws from.
 */
#include <windows.h>

#define RtlGenRandom SystemFunction036
BOOLEAN NTAPI RtlGenRandom(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000u ? 0x10000000u : (ULONG)length;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
