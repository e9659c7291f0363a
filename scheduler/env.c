/* scheduler/env.c - the one place where weft reads environment variables.
 *
 *   WEFT_TOPOLOGY   hwloc synthetic topology for pools created without options.topology,
 *                   e.g. "pack:2 numa:2 core:4 pu:1" (binding is then skipped).
 *   WEFT_TRACE      path of a Chrome trace-event JSON file, for pools created without
 *                   options.trace_path; written when the pool is destroyed.
 *   WEFT_CHECK_NUMERICS  "1": plans created with default options stop at the first NaN
 *                   or infinity (weft/plan.h); any other value leaves check mode off.
 * Empty values count as unset. The strings belong to the environment: copy them. */
#include <stdlib.h>

#include "scheduler/internal.h"

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

void wf_env_read(wf_env *env) {
    env->topology = nonempty(getenv("WEFT_TOPOLOGY"));
    env->trace = nonempty(getenv("WEFT_TRACE"));
    const char *check = nonempty(getenv("WEFT_CHECK_NUMERICS"));
    env->check_numerics = check && check[0] == '1' && check[1] == '\0';
}
