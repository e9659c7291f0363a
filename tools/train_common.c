/* tools/train_common.c - error printing, clock, hashes (see train_common.h). */
#include "tools/train_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int train_check(weft_status st, const char *what, ...)
{
    if (st == WEFT_OK)
        return 0;
    va_list ap;
    va_start(ap, what);
    fputs("weft-train: ", stderr);
    vfprintf(stderr, what, ap);
    va_end(ap);
    fprintf(stderr, ": %s: %s\n", weft_status_name(st), weft_last_error());
    return -1;
}

int train_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft-train: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

double train_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t train_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t train_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
