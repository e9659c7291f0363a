/* graph/access.c - inferring edges from declared data accesses.
 *
 * The rule (see include/weft/graph.h) is per byte, in task-id order, with a task's modes
 * on a byte merged first. It is applied to segments: maximal byte ranges over which the
 * state is uniform. The segment map is an array of disjoint segments sorted by
 * (space, lo); each segment holds its last writer and the readers since that write.
 *
 * Per task: (1) split segments at the bounds of all of the task's accesses, creating
 * empty segments for bytes never seen; (2) OR the task's modes into every covered
 * segment; (3) apply the rule with the merged mode to each touched segment:
 *     with read:  edge last_writer -> t (RAW)
 *     read only:  readers += t
 *     with write: edges readers -> t (WAR), or last_writer -> t if there is no reader
 *                 (WAW); then last_writer = t, readers = {}
 * Per access: one binary search to split and cover, one to merge modes; the rule is then
 * applied to the segments noted while merging. Splitting is O(segments) per new boundary
 * (array insertion): fine for tiled algorithms
 * (one segment per tile); an interval tree would be the next step for millions of
 * distinct regions. */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

typedef struct seg {
    uint8_t space;
    uint8_t mode; /* merged mode of the task being processed; 0 if untouched */
    uintptr_t lo, hi; /* inclusive */
    uint32_t writer;  /* WEFT_TASK_NONE if never written */
    uint32_t *readers;
    uint32_t nreaders, readers_cap;
} seg;

typedef struct segmap {
    seg *s;
    size_t n, cap;
} segmap;

static int key_less(uint8_t sa, uintptr_t a, uint8_t sb, uintptr_t b) {
    return sa < sb || (sa == sb && a < b);
}

/* First segment whose end is >= (space, x). */
static size_t seg_lower(const segmap *m, uint8_t space, uintptr_t x) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_less(m->s[mid].space, m->s[mid].hi, space, x))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int seg_insert(segmap *m, size_t at, const seg *v) {
    if (wf_array_reserve((void **)&m->s, &m->cap, m->n + 1, sizeof(seg))) return -1;
    memmove(&m->s[at + 1], &m->s[at], (m->n - at) * sizeof(seg));
    m->s[at] = *v;
    m->n++;
    return 0;
}

static int readers_copy(seg *dst, const seg *src) {
    dst->readers = NULL;
    dst->readers_cap = 0;
    dst->nreaders = src->nreaders;
    if (!src->nreaders) return 0;
    dst->readers = wf_alloc(src->nreaders * sizeof(uint32_t), 4);
    if (!dst->readers) return -1;
    dst->readers_cap = src->nreaders;
    memcpy(dst->readers, src->readers, src->nreaders * sizeof(uint32_t));
    return 0;
}

/* Splits segment i at byte x (lo < x <= hi): segment i becomes [lo, x-1] and a copy of
 * its state [x, hi] is inserted at i + 1. */
static int split_at(segmap *m, size_t i, uintptr_t x) {
    seg right = m->s[i];
    if (readers_copy(&right, &m->s[i])) return -1;
    right.lo = x;
    if (seg_insert(m, i + 1, &right)) {
        wf_free(right.readers, right.readers_cap * sizeof(uint32_t));
        return -1;
    }
    m->s[i].hi = x - 1;
    return 0;
}

/* Makes [lo, hi] exactly covered by segments (splitting the segments that straddle lo or
 * hi + 1, filling gaps with fresh ones). One binary search for lo, then a walk over the
 * segments the range covers. */
static int cover(segmap *m, uint8_t space, uintptr_t lo, uintptr_t hi) {
    size_t i = seg_lower(m, space, lo);
    if (i < m->n && m->s[i].space == space && m->s[i].lo < lo) {
        if (split_at(m, i, lo)) return -1; /* m->s[i] straddles lo */
        i++;
    }
    uintptr_t x = lo; /* first byte of [lo, hi] not yet covered; segments from i on */
    for (;;) {
        if (i < m->n && m->s[i].space == space && m->s[i].lo <= hi) {
            if (m->s[i].lo > x) { /* gap [x, lo-1] */
                seg fresh = {.space = space, .lo = x, .hi = m->s[i].lo - 1,
                             .writer = WEFT_TASK_NONE};
                if (seg_insert(m, i, &fresh)) return -1;
                i++;
            }
            if (m->s[i].hi > hi) return split_at(m, i, hi + 1); /* straddles hi + 1 */
            if (m->s[i].hi == hi) return 0;
            x = m->s[i].hi + 1;
            i++;
        } else { /* tail gap [x, hi] */
            seg fresh = {.space = space, .lo = x, .hi = hi, .writer = WEFT_TASK_NONE};
            return seg_insert(m, i, &fresh);
        }
    }
}

static int add_reader(seg *s, uint32_t t) {
    if (s->nreaders && s->readers[s->nreaders - 1] == t) return 0;
    if (s->nreaders == s->readers_cap) {
        size_t cap = s->readers_cap;
        if (wf_array_reserve((void **)&s->readers, &cap, cap + 1, sizeof(uint32_t))) return -1;
        s->readers_cap = (uint32_t)cap;
    }
    s->readers[s->nreaders++] = t;
    return 0;
}

static weft_status apply(weft_graph *g, seg *s, uint32_t t) {
    weft_status st = WEFT_OK;
    int raw = (s->mode & WEFT_READ) && s->writer != WEFT_TASK_NONE && s->writer != t;
    if (raw) st = wf_graph_push_edge(g, s->writer, t);
    if (s->mode & WEFT_WRITE) {
        uint32_t nr = 0;
        for (uint32_t k = 0; k < s->nreaders && !st; k++)
            if (s->readers[k] != t) {
                nr++;
                st = wf_graph_push_edge(g, s->readers[k], t);
            }
        if (!st && nr == 0 && !raw && s->writer != WEFT_TASK_NONE && s->writer != t)
            st = wf_graph_push_edge(g, s->writer, t);
        s->writer = t;
        s->nreaders = 0;
    } else if (!st && add_reader(s, t)) {
        st = wf_error(WEFT_ERR_NOMEM, "task graph: out of memory inferring dependencies");
    }
    s->mode = 0;
    return st;
}

static int access_cmp(const void *a, const void *b) {
    const wf_access *x = a, *y = b;
    if (x->task != y->task) return x->task < y->task ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq); /* declaration order: a stable sort */
}

weft_status wf_infer_access_edges(weft_graph *g) {
    if (g->nacc == 0) return WEFT_OK;
    /* accesses in task order (stable: a task's declarations keep their order) */
    int sorted = 1;
    for (size_t i = 1; i < g->nacc && sorted; i++) sorted = g->acc[i - 1].task <= g->acc[i].task;
    if (!sorted) qsort(g->acc, g->nacc, sizeof(*g->acc), access_cmp);
    segmap m = {0};
    size_t *touched = NULL, ntouched = 0, touched_cap = 0; /* segment indexes, per task */
    weft_status st = WEFT_OK;
    for (size_t i = 0; i < g->nacc && !st;) {
        size_t j = i;
        uint32_t t = g->acc[i].task;
        while (j < g->nacc && g->acc[j].task == t) j++;
        for (size_t k = i; k < j && !st; k++)
            if (cover(&m, g->acc[k].space, g->acc[k].lo, g->acc[k].hi))
                st = wf_error(WEFT_ERR_NOMEM, "task graph: out of memory inferring dependencies");
        /* No segment is inserted from here to the end of the task, so the indexes noted
         * while merging modes stay valid for applying the rule, in the same order (access
         * by access, each segment once: apply clears its mode). */
        ntouched = 0;
        for (size_t k = i; k < j && !st; k++) {
            const wf_access *a = &g->acc[k];
            for (size_t q = seg_lower(&m, a->space, a->lo);
                 q < m.n && m.s[q].space == a->space && m.s[q].lo <= a->hi && !st; q++) {
                if (!m.s[q].mode) {
                    if (wf_array_reserve((void **)&touched, &touched_cap, ntouched + 1,
                                         sizeof *touched))
                        st = wf_error(WEFT_ERR_NOMEM,
                                      "task graph: out of memory inferring dependencies");
                    else
                        touched[ntouched++] = q;
                }
                m.s[q].mode |= a->mode;
            }
        }
        for (size_t k = 0; k < ntouched && !st; k++) st = apply(g, &m.s[touched[k]], t);
        for (size_t k = 0; k < ntouched; k++) m.s[touched[k]].mode = 0; /* after a failure */
        i = j;
    }
    for (size_t q = 0; q < m.n; q++) wf_free(m.s[q].readers, m.s[q].readers_cap * sizeof(uint32_t));
    wf_free(m.s, m.cap * sizeof(seg));
    wf_free(touched, touched_cap * sizeof *touched);
    return st;
}
