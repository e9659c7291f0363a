/* examples/cli_lib.h - command-line parsing shared by weft's programs (weft-bench,
 * weft-train): strict numbers and comma-separated lists. Every parser prints
 * "<prog>: invalid <opt> '<text>': <why>" on stderr and returns -1 on bad input, 0 on
 * success. */
#ifndef WEFT_CLI_LIB_H
#define WEFT_CLI_LIB_H

#include <stddef.h>
#include <stdint.h>

/* Prints the error line; returns -1. */
int cli_bad(const char *prog, const char *opt, const char *value, const char *why);
/* A decimal unsigned integer in [lo, hi], the whole string. */
int cli_parse_u64(const char *prog, const char *opt, const char *text, uint64_t lo,
                  uint64_t hi, uint64_t *out);
/* A finite number in [lo, hi]; lo_open / hi_open exclude the bound. */
int cli_parse_real(const char *prog, const char *opt, const char *text, double lo,
                   int lo_open, double hi, int hi_open, double *out);
/* "1,2,16": up to cap integers in [lo, hi] into out, *n of them; with dedup, repeated
 * values are kept once. `example` shows the form in the message ("1,2"). */
int cli_parse_u64_list(const char *prog, const char *opt, const char *text, uint64_t lo,
                       uint64_t hi, int dedup, uint64_t *out, size_t cap, size_t *n,
                       const char *example);

#endif
