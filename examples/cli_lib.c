/* examples/cli_lib.c - command-line parsing shared by weft's programs (see cli_lib.h). */
#include "examples/cli_lib.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_bad(const char *prog, const char *opt, const char *value, const char *why)
{
    fprintf(stderr, "%s: invalid %s '%s': %s\n", prog, opt, value, why);
    return -1;
}

int cli_parse_u64(const char *prog, const char *opt, const char *text, uint64_t lo,
                  uint64_t hi, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return cli_bad(prog, opt, text, "not a non-negative decimal number");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return cli_bad(prog, opt, text, "not a decimal number");
    if (v < lo || v > hi) {
        fprintf(stderr, "%s: invalid %s '%s': must be between %llu and %llu\n", prog, opt,
                text, (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_real(const char *prog, const char *opt, const char *text, double lo,
                   int lo_open, double hi, int hi_open, double *out)
{
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v))
        return cli_bad(prog, opt, text, "not a finite number");
    if ((lo_open ? !(v > lo) : !(v >= lo)) || (hi_open ? !(v < hi) : !(v <= hi))) {
        fprintf(stderr, "%s: invalid %s '%s': must be in %c%g, %g%c\n", prog, opt, text,
                lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64_list(const char *prog, const char *opt, const char *text, uint64_t lo,
                       uint64_t hi, int dedup, uint64_t *out, size_t cap, size_t *n,
                       const char *example)
{
    char why[96];
    snprintf(why, sizeof why, "expected a comma-separated list like %s", example);
    *n = 0;
    const char *p = text;
    if (*p == '\0')
        return cli_bad(prog, opt, text, "empty list");
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item)
            return cli_bad(prog, opt, text, why);
        memcpy(item, p, len);
        item[len] = '\0';
        uint64_t v;
        if (cli_parse_u64(prog, opt, item, lo, hi, &v) != 0)
            return -1;
        int dup = 0;
        for (size_t i = 0; dedup && i < *n; i++)
            dup |= out[i] == v;
        if (!dup) {
            if (*n == cap) {
                snprintf(why, sizeof why, "too many values (at most %zu)", cap);
                return cli_bad(prog, opt, text, why);
            }
            out[(*n)++] = v;
        }
        p += len + (comma ? 1 : 0);
        if (comma && *p == '\0')
            return cli_bad(prog, opt, text, "trailing comma");
    }
    return 0;
}
