/* scheduler/trace.c - Chrome trace-event JSON (opens in Perfetto and chrome://tracing).
 *
 * Each slot appends complete events ("ph":"X") to its own buffer, so recording needs no
 * synchronisation; weft_pool_trace_flush writes every buffer, one timeline row (tid) per
 * slot, named "worker N (numa M)". The file is written to PATH.tmp, flushed, fsync'ed and
 * renamed over PATH, so a reader never sees half a trace. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "scheduler/internal.h"

void wf_trace_add(wf_trace_buf *b, const char *name, uint64_t start_ns, uint64_t end_ns) {
    if (!name) name = "task";
    if (b->n == b->cap &&
        wf_array_reserve((void **)&b->ev, &b->cap, b->n + 1, sizeof(*b->ev)) != 0) {
        b->dropped++; /* tracing never fails a run */
        return;
    }
    /* consecutive events of one name share a copy (compared by content: the pointer
     * may have been freed and reused for another name) */
    if (!b->text || strcmp(name, b->text + b->last_off) != 0) {
        size_t len = strlen(name) + 1;
        if (wf_array_reserve((void **)&b->text, &b->text_cap, b->text_len + len, 1) != 0) {
            b->dropped++;
            return;
        }
        memcpy(b->text + b->text_len, name, len);
        b->last_off = b->text_len;
        b->text_len += len;
    }
    wf_trace_event *e = &b->ev[b->n++];
    e->start_ns = start_ns;
    e->end_ns = end_ns;
    e->name_off = b->last_off;
}

void wf_trace_buf_free(wf_trace_buf *b) {
    wf_free(b->ev, b->cap * sizeof(*b->ev));
    wf_free(b->text, b->text_cap);
    memset(b, 0, sizeof(*b));
}

static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

weft_status weft_pool_trace_flush(weft_pool *pool) {
    if (!pool) return wf_error(WEFT_ERR_INVALID_ARG, "weft_pool_trace_flush: pool is NULL");
    if (!pool->trace_on) return WEFT_OK;
    wf_atomic_file af;
    weft_status st = wf_atomic_file_open(pool->trace_path, &af, "trace");
    if (st) return st;
    FILE *f = af.f;
    fprintf(f, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    int first = 1;
    uint64_t dropped = 0;
    for (unsigned s = 0; s < pool->nslots; s++) {
        const wf_worker *w = pool->slots[s];
        fprintf(f, "%s{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
                   "\"args\":{\"name\":\"%s %u (numa %u)\"}}",
                first ? "" : ",\n", s, s == 0 ? "caller slot" : "worker", s,
                pool->topo.place[s].numa_node);
        first = 0;
        for (size_t i = 0; i < w->trace.n; i++) {
            const wf_trace_event *e = &w->trace.ev[i];
            uint64_t t = e->start_ns > pool->trace_t0 ? e->start_ns - pool->trace_t0 : 0;
            fprintf(f, ",\n{\"name\":");
            put_json_string(f, w->trace.text + e->name_off);
            fprintf(f, ",\"cat\":\"task\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,"
                       "\"ts\":%.3f,\"dur\":%.3f}",
                    s, (double)t / 1e3, (double)(e->end_ns - e->start_ns) / 1e3);
        }
        dropped += w->trace.dropped;
    }
    fprintf(f, "\n],\"otherData\":{\"dropped_events\":%llu}}\n", (unsigned long long)dropped);
    return wf_atomic_file_commit(&af, "trace");
}
