/* engine/arena.c - the bump allocator of dynamic iterations (see engine/internal.h). */
#include "engine/internal.h"

#define WF_ARENA_BLOCK ((size_t)1 << 20)

struct wf_arena_block {
    wf_arena_block *next;
    size_t cap, used; /* bytes of data, bytes handed out */
    /* data follows, 64-byte aligned */
};

#define BLOCK_HEADER ((sizeof(wf_arena_block) + 63) & ~(size_t)63)

static wf_arena_block *block_new(size_t cap) {
    wf_arena_block *b = wf_alloc(BLOCK_HEADER + cap, 64);
    if (!b) return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

void *wf_arena_alloc(wf_arena *a, size_t bytes) {
    size_t need = bytes < 64 ? 64 : (bytes + 63) & ~(size_t)63;
    wf_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > WF_ARENA_BLOCK ? need : WF_ARENA_BLOCK;
        if (b && cap < 2 * b->cap) cap = 2 * b->cap; /* geometric: few blocks per iteration */
        wf_arena_block *nb = block_new(cap);
        if (!nb) return NULL;
        nb->next = b;
        a->head = b = nb;
        a->held += cap;
    }
    void *p = (char *)b + BLOCK_HEADER + b->used;
    b->used += need;
    a->used_total += need;
    return p;
}

static void free_blocks(wf_arena_block *b) {
    while (b) {
        wf_arena_block *next = b->next;
        wf_free(b, BLOCK_HEADER + b->cap);
        b = next;
    }
}

void wf_arena_reset(wf_arena *a) {
    wf_arena_block *b = a->head;
    if (b && b->next) {
        /* several blocks: replace them by one that holds the whole last iteration */
        size_t want = a->used_total;
        free_blocks(b);
        a->head = NULL;
        a->held = 0;
        if ((b = block_new(want > WF_ARENA_BLOCK ? want : WF_ARENA_BLOCK))) {
            a->head = b;
            a->held = b->cap;
        }
    }
    if (b) b->used = 0;
    a->used_total = 0;
}

void wf_arena_free(wf_arena *a) {
    free_blocks(a->head);
    a->head = NULL;
    a->held = a->used_total = 0;
}
