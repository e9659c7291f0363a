/* tools/train_common.h - small helpers shared by the files of weft-train.
 *
 * Error convention of the tool: a function that can fail returns 0 on success or -1
 * after it has printed one line to stderr saying what failed ("weft-train: <what>:
 * <status name>: <weft_last_error()>"). main turns -1 into exit status 1.
 *
 * Thread safety: main thread only (the tool is single-threaded; weft's pool does the
 * parallel work).
 */
#ifndef WEFT_TOOLS_TRAIN_COMMON_H
#define WEFT_TOOLS_TRAIN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* 0 if st is WEFT_OK; otherwise prints "weft-train: <what>: <name>: <last error>" and
 * returns -1. `what` is a printf format. */
int train_check(weft_status st, const char *what, ...) __attribute__((format(printf, 2, 3)));
/* Prints "weft-train: <message>" and returns -1. */
int train_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in seconds. */
double train_now_s(void);

/* 64-bit FNV-1a, continued from `h` (start with TRAIN_FNV_START). */
#define TRAIN_FNV_START 0xcbf29ce484222325ull
uint64_t train_fnv(uint64_t h, const void *data, size_t len);

/* splitmix64 finaliser: the seed of each parameter tensor is derived with it. */
uint64_t train_mix(uint64_t x);

#endif
