/* scheduler/topology.c - hwloc topology and the placement plan of a pool's slots.
 *
 * Plan: slot i sits on core (i mod cores) in hwloc's logical order, on the first PU of
 * that core (compact placement: consecutive slots share caches and NUMA nodes, which
 * keeps a small pool on one node of a large machine). Slots are grouped by the NUMA
 * node of their core; groups are numbered in order of first appearance. A machine
 * without NUMA information forms one group. */
#include <string.h>

#include "scheduler/internal.h"

/* The NUMA node (logical index) whose cpuset contains the core's cpuset; 0 if none. */
static unsigned numa_of(hwloc_topology_t topo, hwloc_obj_t obj) {
    hwloc_obj_t node = NULL;
    while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)) != NULL) {
        if (node->cpuset && hwloc_bitmap_isincluded(obj->cpuset, node->cpuset))
            return node->logical_index;
    }
    return 0;
}

static weft_status plan(wf_topology *t, unsigned nslots) {
    hwloc_obj_type_t unit = t->ncores ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    unsigned nunits = t->ncores ? t->ncores
                                : (unsigned)hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
    if (nunits == 0) return wf_error(WEFT_ERR_TOPOLOGY, "topology has no cores or PUs");
    unsigned nnuma = (unsigned)hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
    if (nnuma == 0) nnuma = 1;

    t->nslots = nslots;
    t->place = wf_calloc(nslots * sizeof(*t->place), 16);
    unsigned *numa_group = wf_alloc(nnuma * sizeof(unsigned), 16);
    t->group_numa = wf_alloc(nnuma * sizeof(unsigned), 16);
    t->group_first = wf_calloc((nnuma + 1) * sizeof(unsigned), 16);
    t->group_slots = wf_alloc(nslots * sizeof(unsigned), 16);
    if (!t->place || !numa_group || !t->group_numa || !t->group_first || !t->group_slots) {
        wf_free(numa_group, nnuma * sizeof(unsigned));
        return wf_error(WEFT_ERR_NOMEM, "pool: out of memory for the placement plan");
    }
    for (unsigned i = 0; i < nnuma; i++) numa_group[i] = UINT32_MAX;
    t->ngroups = 0;
    for (unsigned s = 0; s < nslots; s++) {
        hwloc_obj_t u = hwloc_get_obj_by_type(t->topo, unit, s % nunits);
        hwloc_obj_t pu = u;
        while (pu && pu->type != HWLOC_OBJ_PU && pu->arity > 0) pu = pu->children[0];
        if (!pu || pu->type != HWLOC_OBJ_PU)
            pu = hwloc_get_next_obj_inside_cpuset_by_type(t->topo, u->cpuset, HWLOC_OBJ_PU, NULL);
        unsigned numa = numa_of(t->topo, u);
        if (numa >= nnuma) numa = 0;
        if (numa_group[numa] == UINT32_MAX) {
            numa_group[numa] = t->ngroups;
            t->group_numa[t->ngroups++] = numa;
        }
        t->place[s] = (wf_placement){.numa_node = numa, .group = numa_group[numa],
                                     .core = u->logical_index,
                                     .pu = pu ? pu->logical_index : u->logical_index,
                                     .pu_obj = pu};
    }
    wf_free(numa_group, nnuma * sizeof(unsigned));
    /* counting sort of slots by group */
    for (unsigned s = 0; s < nslots; s++) t->group_first[t->place[s].group + 1]++;
    for (unsigned g = 0; g < t->ngroups; g++) t->group_first[g + 1] += t->group_first[g];
    unsigned *fill = wf_calloc(t->ngroups * sizeof(unsigned), 16);
    if (!fill) return wf_error(WEFT_ERR_NOMEM, "pool: out of memory for the placement plan");
    for (unsigned s = 0; s < nslots; s++) {
        unsigned g = t->place[s].group;
        t->group_slots[t->group_first[g] + fill[g]++] = s;
    }
    wf_free(fill, t->ngroups * sizeof(unsigned));
    return WEFT_OK;
}

weft_status wf_topology_load(wf_topology *t, const char *desc, unsigned *nslots) {
    memset(t, 0, sizeof(*t));
    if (hwloc_topology_init(&t->topo) != 0)
        return wf_error(WEFT_ERR_TOPOLOGY, "hwloc_topology_init failed");
    if (desc && hwloc_topology_set_synthetic(t->topo, desc) != 0) {
        hwloc_topology_destroy(t->topo);
        t->topo = NULL;
        return wf_error(WEFT_ERR_TOPOLOGY,
                        "pool: invalid hwloc synthetic topology \"%s\" (example: "
                        "\"pack:2 numa:2 core:4 pu:1\")", desc);
    }
    if (hwloc_topology_load(t->topo) != 0) {
        hwloc_topology_destroy(t->topo);
        t->topo = NULL;
        return wf_error(WEFT_ERR_TOPOLOGY, "pool: hwloc could not load the topology%s%s",
                        desc ? " " : "", desc ? desc : "");
    }
    t->this_system = desc == NULL && hwloc_topology_is_thissystem(t->topo);
    int nc = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
    t->ncores = nc > 0 ? (unsigned)nc : 0;
    if (*nslots == 0) {
        int npu = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
        *nslots = t->ncores ? t->ncores : (npu > 0 ? (unsigned)npu : 1);
        if (*nslots > WEFT_MAX_THREADS) *nslots = WEFT_MAX_THREADS;
    }
    weft_status st = plan(t, *nslots);
    if (st != WEFT_OK) wf_topology_free(t);
    return st;
}

void wf_topology_free(wf_topology *t) {
    unsigned nnuma = 1;
    if (t->topo) {
        int n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
        if (n > 0) nnuma = (unsigned)n;
    }
    wf_free(t->place, t->nslots * sizeof(*t->place));
    wf_free(t->group_numa, nnuma * sizeof(unsigned));
    wf_free(t->group_first, (nnuma + 1) * sizeof(unsigned));
    wf_free(t->group_slots, t->nslots * sizeof(unsigned));
    if (t->topo) hwloc_topology_destroy(t->topo);
    memset(t, 0, sizeof(*t));
}

/* Depth of the deepest hwloc object that contains both groups' first PUs: the larger,
 * the nearer the groups (same package before another package). */
static int group_affinity(const wf_topology *t, unsigned a, unsigned b) {
    hwloc_obj_t x = t->place[t->group_slots[t->group_first[a]]].pu_obj;
    hwloc_obj_t y = t->place[t->group_slots[t->group_first[b]]].pu_obj;
    if (!x || !y) return 0;
    hwloc_obj_t c = hwloc_get_common_ancestor_obj(t->topo, x, y);
    return c ? c->depth : 0;
}

void wf_topology_steal_order(const wf_topology *t, unsigned s, unsigned *out) {
    unsigned g = t->place[s].group, n = 0;
    for (unsigned i = t->group_first[g]; i < t->group_first[g + 1]; i++)
        if (t->group_slots[i] != s) out[n++] = t->group_slots[i];
    /* The other groups, nearest first: by common-ancestor depth in the topology tree,
     * then by distance in group index. A selection sort: there are few groups. */
    unsigned char taken[1024] = {0};
    for (unsigned round = 1; round < t->ngroups && round < 1024; round++) {
        unsigned best = UINT32_MAX;
        int best_aff = -1;
        unsigned best_dist = UINT32_MAX;
        for (unsigned h = 0; h < t->ngroups && h < 1024; h++) {
            if (h == g || taken[h]) continue;
            int aff = group_affinity(t, g, h);
            unsigned dist = h > g ? h - g : g - h;
            if (aff > best_aff || (aff == best_aff && dist < best_dist)) {
                best = h;
                best_aff = aff;
                best_dist = dist;
            }
        }
        if (best == UINT32_MAX) break;
        taken[best] = 1;
        for (unsigned i = t->group_first[best]; i < t->group_first[best + 1]; i++)
            out[n++] = t->group_slots[i];
    }
}
