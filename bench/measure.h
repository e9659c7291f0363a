/* bench/measure.h - clocks, sample sets and the background-load filter of SHAPES.md
 * section 5, step 8.
 *
 * For each timed repetition the filter reads the machine's busy + steal CPU time
 * (/proc/stat, all CPUs) and this process's CPU time (getrusage) before and after; the
 * difference is the foreign CPU used during the repetition. A repetition is clean iff
 * foreign CPU <= max(0.02 s, 0.05 x wall). Dirty repetitions are discarded and repeated;
 * before the first repetition of a block and after a dirty one, the filter waits until a
 * 0.2 s probe shows less than 0.1 foreign CPUs. Once a configuration has used its budget
 * (wall seconds spent in its blocks, across rounds), repetitions are accepted as they
 * come, and any dirty one accepted marks the configuration `contaminated`.
 *
 * Thread safety: call from the controlling thread only.
 */
#ifndef WEFT_BENCH_MEASURE_H
#define WEFT_BENCH_MEASURE_H

#include <stddef.h>

/* CLOCK_MONOTONIC in seconds. */
double bench_now_s(void);
void bench_sleep_s(double seconds);

/* A growable list of seconds. Zero-initialise; free with bench_samples_free. */
typedef struct bench_samples {
    double *v;
    size_t n, cap;
} bench_samples;

/* 0, or -1 with a message on stderr (out of memory). */
int bench_samples_push(bench_samples *s, double x);
void bench_samples_free(bench_samples *s);

typedef struct bench_stats {
    double median, min, max; /* 0 when count == 0 */
    size_t count;
} bench_stats;

/* Median (mean of the two middle values for an even count), min and max. */
void bench_samples_stats(const bench_samples *s, bench_stats *out);

/* Sorts v[0..n) (n > 0) in place and returns its median, as bench_samples_stats. */
double bench_median_sort(double *v, size_t n);

typedef struct bench_filter {
    int enabled;     /* 0 = --no-filter: every repetition is accepted as clean */
    double budget_s; /* per configuration; default 180 */
} bench_filter;

/* Filter state of one configuration, zero-initialised, kept across rounds. */
typedef struct bench_filter_state {
    double spent_s;     /* wall time spent in this configuration's blocks */
    unsigned discarded; /* dirty repetitions thrown away */
    int contaminated;   /* a dirty repetition was accepted after the budget ran out */
} bench_filter_state;

/* One timed repetition: does untimed preparation, times the measured region itself and
 * stores its seconds in *seconds; returns 0, or -1 if the run was invalid (message
 * printed), which aborts the measurement. */
typedef int (*bench_rep_fn)(void *ctx, double *seconds);

/* Appends `reps` accepted repetitions of fn to *out, applying the filter. Returns 0, or
 * -1 if a repetition failed or the load counters cannot be read (message printed). */
int bench_measure(const bench_filter *filter, bench_filter_state *state, size_t reps,
                  bench_rep_fn fn, void *ctx, bench_samples *out);

/* A repetition that also yields a second value per accepted repetition (e.g. the
 * Cholesky's summed kernel time), kept in step with the seconds. */
typedef int (*bench_rep2_fn)(void *ctx, double *seconds, double *aux);

/* bench_measure for a bench_rep2_fn: the aux value of every accepted repetition is
 * appended to *aux_out (NULL: dropped), in the same order as the seconds in *out. */
int bench_measure2(const bench_filter *filter, bench_filter_state *state, size_t reps,
                   bench_rep2_fn fn, void *ctx, bench_samples *out, bench_samples *aux_out);

/* Checks that the load counters can be read; -1 with a message suggesting --no-filter. */
int bench_filter_available(void);

#endif
