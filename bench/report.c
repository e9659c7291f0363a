/* bench/report.c - the human table and the JSON lines of a benchmark (see harness.h).
 *
 * Figures per (engine, T): medians over all accepted samples of all rounds.
 *   ns/task  = median seconds * 1e9 / tasks (one-shot; run-only for weft graph shapes)
 *   speedup  = median one-shot at the smallest T of the same engine / median at T
 *   vs <b>   = weft median one-shot / baseline b median one-shot at the same T (< 1: weft
 *              faster); only on weft rows
 *   bound    = work / span from weft_graph_analyze (the same for every row)
 *   outside  = cholesky, tiled engines: median over samples of T x wall - the summed time
 *              of all tile kernels, i.e. thread time spent idle, scheduling or building
 *   paired   = median over rounds of the per-round ratio weft / baseline b at the same T,
 *              with its 95% CI (bench/paired.h); printed under the table, and in JSON as
 *              paired_vs_<b>, paired_vs_<b>_lo/_hi and weft_faster_rounds_vs_<b>
 *
 * Workloads (--workload): one engine (weft); the one-shot samples are seconds per
 * iteration, `iterations` holds the iterations per repetition, `flops` the matmul flops
 * per iteration, `note` the workload and plan description; each row shows its target
 * (bench_workload_target) and whether the median meets it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench/harness.h"
#include "bench/paired.h"
#include "bench/run_tensor.h"
#include "bench/shapes.h"
#include "bench/workload_common.h"

typedef struct row_figures {
    bench_stats one, run, build, exec, destroy, outside;
    double speedup;
    double vs[BENCH_ENGINE_COUNT]; /* 0 = not applicable */
    bench_paired paired[BENCH_ENGINE_COUNT]; /* pairs == 0: not applicable */
    int contaminated;
    unsigned discarded;
} row_figures;

static const bench_result *find_result(const bench_report *rep, bench_engine e, unsigned t)
{
    for (size_t i = 0; i < rep->nresults; i++) {
        if (rep->results[i].engine == e && rep->results[i].threads == t)
            return &rep->results[i];
    }
    return NULL;
}

static double median_oneshot(const bench_result *r)
{
    bench_stats s;
    bench_samples_stats(&r->oneshot, &s);
    return s.median;
}

static void figures(const bench_report *rep, const bench_result *r, row_figures *f)
{
    memset(f, 0, sizeof *f);
    bench_samples_stats(&r->oneshot, &f->one);
    bench_samples_stats(&r->runonly, &f->run);
    bench_samples_stats(&r->build, &f->build);
    bench_samples_stats(&r->run, &f->exec);
    bench_samples_stats(&r->destroy, &f->destroy);
    bench_samples_stats(&r->outside, &f->outside);
    const bench_result *base = NULL;
    for (size_t i = 0; i < rep->nresults; i++) {
        const bench_result *q = &rep->results[i];
        if (q->engine == r->engine && (base == NULL || q->threads < base->threads))
            base = q;
    }
    f->speedup = f->one.median > 0 ? median_oneshot(base) / f->one.median : 0;
    if (r->engine == BENCH_ENGINE_WEFT) {
        for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++) {
            const bench_result *b = find_result(rep, (bench_engine)e, r->threads);
            double bm = b ? median_oneshot(b) : 0;
            f->vs[e] = bm > 0 ? f->one.median / bm : 0;
            /* On failure (out of memory, message printed) the comparison stays empty. */
            if (b != NULL)
                (void)bench_paired_ratio(&r->oneshot, &b->oneshot, rep->opts->reps,
                                         &f->paired[e]);
        }
    }
    f->contaminated = r->filter_oneshot.contaminated || r->filter_runonly.contaminated;
    f->discarded = r->filter_oneshot.discarded + r->filter_runonly.discarded;
}

static int is_cholesky(const bench_report *rep)
{
    return rep->opts->shape == BENCH_SHAPE_CHOLESKY;
}

static void print_header(const bench_report *rep)
{
    const bench_options *o = rep->opts;
    if (is_cholesky(rep)) {
        printf("weft-bench: cholesky n=%" PRIu64 " tile=%zu: %zu tasks, %zu edges, depth %zu\n",
               o->size, o->tile, rep->tasks, rep->edges, rep->depth);
    } else {
        printf("weft-bench: %s(%" PRIu64 ")%s%s%s grain %s (W=%" PRIu64 "): n=%zu m=%zu "
               "depth=%zu fingerprint=%016" PRIx64 "\n",
               bench_shape_name(o->shape), o->size, o->size_label ? " [" : "",
               o->size_label ? o->size_label : "", o->size_label ? "]" : "",
               bench_grain_name(o->grain), rep->iterations, rep->tasks, rep->edges,
               rep->depth, rep->fingerprint);
    }
    printf("  %s\n", rep->verified);
    printf("  bound work/span (weft_graph_analyze) = %.1f; %zu reps x %zu rounds; ", rep->bound,
           o->reps, o->rounds);
    bench_print_filter_setup(o);
    printf("\n\n");
}

/* The paired comparisons of every weft row (see paired.h), one line each. */
static void print_paired(const bench_report *rep)
{
    int first = 1;
    for (size_t i = 0; i < rep->nresults; i++) {
        const bench_result *r = &rep->results[i];
        if (r->engine != BENCH_ENGINE_WEFT)
            continue;
        row_figures f;
        figures(rep, r, &f);
        for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++) {
            const bench_paired *p = &f.paired[e];
            if (p->pairs == 0)
                continue;
            if (first)
                printf("\npaired by round (weft time / baseline time in the same round, < 1: "
                       "weft faster; median, 95%% CI):\n");
            first = 0;
            printf("  T=%-3u weft/%-8s %6.3f", r->threads, bench_engine_name((bench_engine)e),
                   p->median);
            if (p->lo > 0)
                printf("  [%.3f, %.3f]", p->lo, p->hi);
            else
                printf("  [too few rounds for a CI]");
            printf("  weft faster in %zu of %zu rounds\n", p->a_faster, p->pairs);
        }
    }
}

static void print_table(const bench_report *rep)
{
    int chol = is_cholesky(rep);
    print_header(rep);
    printf("%-8s %4s %14s %14s %11s %11s %11s %8s %9s", "engine", "T", "1shot ns/task",
           "run ns/task", "wall med s", "min s", "max s", "speedup", "bound");
    for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++) {
        if ((rep->opts->baselines >> e) & 1u) {
            char h[24];
            snprintf(h, sizeof h, "vs %s", bench_engine_name((bench_engine)e));
            printf(" %10s", h);
        }
    }
    if (chol)
        printf(" %9s %10s %11s", "GFLOP/s", "residual", "outside ms");
    printf("  notes\n");
    for (size_t i = 0; i < rep->nresults; i++) {
        const bench_result *r = &rep->results[i];
        row_figures f;
        figures(rep, r, &f);
        double tasks = (double)rep->tasks;
        printf("%-8s %4u %14.1f ", bench_engine_name(r->engine), r->threads,
               f.one.median * 1e9 / tasks);
        if (f.run.count)
            printf("%14.1f", f.run.median * 1e9 / tasks);
        else
            printf("%14s", "-");
        printf(" %11.4f %11.4f %11.4f %8.2f %9.1f", f.one.median, f.one.min, f.one.max,
               f.speedup, rep->bound);
        for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++) {
            if (!((rep->opts->baselines >> e) & 1u))
                continue;
            if (f.vs[e] > 0)
                printf(" %10.2f", f.vs[e]);
            else
                printf(" %10s", "-");
        }
        if (chol) {
            printf(" %9.2f %10.2e", f.one.median > 0 ? rep->flops / f.one.median * 1e-9 : 0,
                   r->residual);
            if (f.outside.count)
                printf(" %11.2f", f.outside.median * 1e3);
            else
                printf(" %11s", "-");
        }
        printf(" ");
        bench_print_row_notes(f.contaminated, f.discarded);
    }
    if (rep->note != NULL)
        printf("note: %s\n", rep->note);
    print_paired(rep);
}

static void print_counters(const bench_report *rep)
{
    for (size_t i = 0; i < rep->nresults; i++) {
        const bench_result *r = &rep->results[i];
        if (r->engine != BENCH_ENGINE_WEFT || r->counters == NULL)
            continue;
        printf("\nweft pool counters, T=%u (%s):\n", r->threads,
               is_cholesky(rep)                          ? "last one-shot block"
               : rep->opts->workload != BENCH_WORKLOAD_NONE ? "last block, timed runs"
                                                            : "last run-only block, timed runs");
        printf("%6s %12s %14s %12s %10s %12s\n", "slot", "tasks_run", "steals_tried",
               "steals_ok", "parks", "parked_ms");
        for (unsigned w = 0; w < r->ncounters; w++) {
            const weft_worker_counters *c = &r->counters[w];
            printf("%6u %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %10" PRIu64 " %12.3f\n", w,
                   c->tasks_run, c->steals_tried, c->steals_ok, c->parks,
                   (double)c->parked_ns * 1e-6);
        }
    }
}

/* 1 if the row meets its target, 0 if not, -1 if it has none (or the speedup target has
 * no T = 1 row to compare with). */
static int target_met(const bench_report *rep, const bench_target *t, const row_figures *f)
{
    if (t->max_s <= 0 && t->min_speedup <= 0)
        return -1;
    int met = 1;
    if (t->max_s > 0)
        met &= f->one.median <= t->max_s;
    if (t->min_speedup > 0) {
        const bench_result *one = find_result(rep, BENCH_ENGINE_WEFT, 1);
        double base = one ? median_oneshot(one) : 0;
        if (base <= 0)
            return -1;
        met &= base / f->one.median >= t->min_speedup;
    }
    return met;
}

static void print_workload_table(const bench_report *rep)
{
    const bench_options *o = rep->opts;
    bench_print_workload_title(o, bench_workload_name(o->workload));
    printf("%s\n", rep->note ? rep->note : "");
    printf("  %s\n", rep->verified);
    printf("  bound work/span (weft_plan_stats_get) = %.2f (%zu tasks, %zu edges, %zu levels); "
           "%" PRIu64 " iterations per rep; %zu reps x %zu rounds; ",
           rep->bound, rep->tasks, rep->edges, rep->depth, rep->iterations, o->reps, o->rounds);
    bench_print_filter_setup(o);
    printf("\n\n");
    printf("%4s %13s %13s %13s %8s %7s %8s  %-30s %s\n", "T", "median/iter", "min/iter",
           "max/iter", "speedup", "bound", "GFLOP/s", "target", "notes");
    for (size_t i = 0; i < rep->nresults; i++) {
        const bench_result *r = &rep->results[i];
        row_figures f;
        figures(rep, r, &f);
        char med[32], lo[32], hi[32], target[64] = "-";
        bench_target t = bench_workload_target(o, r->threads);
        int met = target_met(rep, &t, &f);
        if (t.max_s > 0 || t.min_speedup > 0) {
            size_t len = 0;
            if (t.min_speedup > 0)
                len += (size_t)snprintf(target, sizeof target, "speedup >= %.2f, ",
                                        t.min_speedup);
            if (t.max_s > 0)
                len += (size_t)snprintf(target + len, sizeof target - len, "<= %g %s, ",
                                        t.max_s < 1e-3 ? t.max_s * 1e6 : t.max_s * 1e3,
                                        t.max_s < 1e-3 ? "us" : "ms");
            snprintf(target + len, sizeof target - len, "%s",
                     met < 0 ? "n/a" : met ? "met" : "MISSED");
        }
        printf("%4u %13s %13s %13s %8.2f %7.2f ", r->threads,
               bench_fmt_time(f.one.median, med, sizeof med), bench_fmt_time(f.one.min, lo, sizeof lo),
               bench_fmt_time(f.one.max, hi, sizeof hi), f.speedup, rep->bound);
        if (rep->flops > 0 && f.one.median > 0)
            printf("%8.1f", rep->flops / f.one.median * 1e-9);
        else
            printf("%8s", "-");
        printf("  %-30s", target);
        bench_print_row_notes(f.contaminated, f.discarded);
    }
    if (rep->flops > 0)
        printf("GFLOP/s counts the matmul flops of one iteration (forward and backward).\n");
}

static void json_num(const char *key, double v, int valid)
{
    if (valid)
        printf(",\"%s\":%.9g", key, v);
    else
        printf(",\"%s\":null", key);
}

static void print_json(const bench_report *rep)
{
    const bench_options *o = rep->opts;
    int chol = is_cholesky(rep);
    for (size_t i = 0; i < rep->nresults; i++) {
        const bench_result *r = &rep->results[i];
        row_figures f;
        figures(rep, r, &f);
        double tasks = (double)rep->tasks;
        int wl = o->workload != BENCH_WORKLOAD_NONE;
        printf("{\"engine\":\"%s\",\"shape\":\"%s\",\"size\":%" PRIu64,
               bench_engine_name(r->engine),
               wl ? bench_workload_name(o->workload) : bench_shape_name(o->shape), o->size);
        if (wl)
            printf(",\"grain\":null");
        else if (chol)
            printf(",\"tile\":%zu,\"grain\":null", o->tile);
        else
            printf(",\"grain\":\"%s\"", bench_grain_name(o->grain));
        printf(",\"threads\":%u,\"reps\":%zu,\"rounds\":%zu,\"samples\":%zu,\"tasks\":%zu",
               r->threads, o->reps, o->rounds, f.one.count, rep->tasks);
        json_num("ns_per_task", f.one.median * 1e9 / tasks, 1);
        json_num("run_ns_per_task", f.run.median * 1e9 / tasks, f.run.count > 0);
        json_num("wall_s", f.one.median, 1);
        json_num("speedup", f.speedup, f.speedup > 0);
        json_num("bound", rep->bound, 1);
        json_num("min_s", f.one.min, 1);
        json_num("max_s", f.one.max, 1);
        printf(",\"contaminated\":%s,\"discarded\":%u", f.contaminated ? "true" : "false",
               f.discarded);
        if (chol) {
            json_num("gflops", f.one.median > 0 ? rep->flops / f.one.median * 1e-9 : 0, 1);
            json_num("residual", r->residual, 1);
            json_num("outside_s", f.outside.median, f.outside.count > 0);
        }
        if (wl) {
            bench_target t = bench_workload_target(o, r->threads);
            int met = target_met(rep, &t, &f);
            printf(",\"iterations\":%" PRIu64, rep->iterations);
            json_num("gflops", f.one.median > 0 ? rep->flops / f.one.median * 1e-9 : 0,
                     rep->flops > 0);
            json_num("target_s", t.max_s, t.max_s > 0);
            json_num("target_speedup", t.min_speedup, t.min_speedup > 0);
            printf(",\"target_met\":%s", met < 0 ? "null" : met ? "true" : "false");
        }
        if (r->engine == BENCH_ENGINE_WEFT) {
            for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++) {
                if ((o->baselines >> e) & 1u) {
                    char key[24];
                    snprintf(key, sizeof key, "vs_%s", bench_engine_name((bench_engine)e));
                    json_num(key, f.vs[e], f.vs[e] > 0);
                    const bench_paired *p = &f.paired[e];
                    snprintf(key, sizeof key, "paired_vs_%s", bench_engine_name((bench_engine)e));
                    json_num(key, p->median, p->pairs > 0);
                    char sub[40];
                    snprintf(sub, sizeof sub, "%s_lo", key);
                    json_num(sub, p->lo, p->lo > 0);
                    snprintf(sub, sizeof sub, "%s_hi", key);
                    json_num(sub, p->hi, p->lo > 0);
                    snprintf(sub, sizeof sub, "weft_faster_rounds_vs_%s",
                             bench_engine_name((bench_engine)e));
                    json_num(sub, (double)p->a_faster, p->pairs > 0);
                }
            }
            if (f.build.count) {
                json_num("build_s", f.build.median, 1);
                json_num("run_s", f.exec.median, 1);
                json_num("destroy_s", f.destroy.median, 1);
            }
            printf(",\"workers\":[");
            for (unsigned w = 0; w < r->ncounters; w++) {
                const weft_worker_counters *c = &r->counters[w];
                printf("%s{\"tasks_run\":%" PRIu64 ",\"steals_tried\":%" PRIu64
                       ",\"steals_ok\":%" PRIu64 ",\"parks\":%" PRIu64 ",\"parked_ns\":%" PRIu64
                       "}",
                       w ? "," : "", c->tasks_run, c->steals_tried, c->steals_ok, c->parks,
                       c->parked_ns);
            }
            printf("]");
        }
        if (rep->note != NULL && !wl)
            printf(",\"note\":\"%s\"", rep->note);
        printf("}\n");
    }
}

void bench_report_print(const bench_report *rep)
{
    if (rep->opts->json) {
        print_json(rep);
    } else if (rep->opts->workload != BENCH_WORKLOAD_NONE) {
        print_workload_table(rep);
        print_counters(rep);
    } else {
        print_table(rep);
        print_counters(rep);
    }
    fflush(stdout);
}
