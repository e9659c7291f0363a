/* tests/util/tu_common.c - see tu_common.h. */
#include "tests/util/tu_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

void tu_rng_seed(tu_rng *r, uint64_t seed) { r->state = seed ^ 0x9e3779b97f4a7c15ull; }

uint64_t tu_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t tu_rng_next(tu_rng *r)
{
    r->state += 0x9e3779b97f4a7c15ull;
    return tu_mix(r->state);
}

uint64_t tu_rng_below(tu_rng *r, uint64_t bound) { return tu_rng_next(r) % bound; }

double tu_rng_unit(tu_rng *r) { return (double)(tu_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t tu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tu_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000ull + (uint64_t)ru.ru_utime.tv_usec +
                  (uint64_t)ru.ru_stime.tv_sec * 1000000ull + (uint64_t)ru.ru_stime.tv_usec;
    return us * 1000ull;
}

void tu_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static const char *watchdog_what = "test";

/* Async-signal-safe: write(2) and _exit only. */
static void watchdog_fire(int sig)
{
    (void)sig;
    static const char head[] = "\nWATCHDOG: timed out (hang?) in ";
    ssize_t rc = write(2, head, sizeof head - 1);
    rc = write(2, watchdog_what, strlen(watchdog_what));
    rc = write(2, "\n", 1);
    (void)rc;
    _exit(1);
}

void tu_watchdog(unsigned seconds, const char *what)
{
    watchdog_what = what ? what : "test";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_fire;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(TU_SANITIZED ? seconds * 4 : seconds);
}

void tu_main_init(unsigned seconds)
{
    unsetenv("WEFT_TOPOLOGY");
    unsetenv("WEFT_TRACE");
    tu_watchdog(seconds, "test suite");
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

void tu_temp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/weft-test-%s-XXXXXX", tag);
    int fd = mkstemp(buf);
    if (fd >= 0) {
        close(fd);
        unlink(buf);
    }
}

static const char *skip_blanks(const char *q)
{
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
        q++;
    return q;
}

size_t tu_count_substr(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

size_t tu_json_count_pair(const char *text, const char *key, const char *value)
{
    char k[128], v[128];
    snprintf(k, sizeof k, "\"%s\"", key);
    snprintf(v, sizeof v, "\"%s\"", value);
    size_t n = 0, klen = strlen(k), vlen = strlen(v);
    for (const char *p = strstr(text, k); p; p = strstr(p + 1, k)) {
        const char *q = skip_blanks(p + klen);
        if (*q != ':')
            continue;
        q = skip_blanks(q + 1);
        n += strncmp(q, v, vlen) == 0;
    }
    return n;
}
