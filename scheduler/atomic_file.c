/* scheduler/atomic_file.c - files written atomically: into "<path>.tmp", flushed and
 * fsync'ed, then renamed over <path>. A reader sees the old file or the whole new one,
 * never half of it; a failure leaves no temporary file behind. Used by tracing, DOT
 * export and (later) checkpoints. */
#include <stdio.h>
#include <unistd.h>

#include "scheduler/internal.h"

weft_status wf_atomic_file_open(const char *path, wf_atomic_file *af, const char *who) {
    af->f = NULL;
    af->path = path;
    if (!path || !*path) return wf_error(WEFT_ERR_INVALID_ARG, "%s: empty path", who);
    if (snprintf(af->tmp, sizeof af->tmp, "%s.tmp", path) >= (int)sizeof af->tmp)
        return wf_error(WEFT_ERR_IO, "%s: path too long: %s", who, path);
    af->f = fopen(af->tmp, "w");
    if (!af->f) return wf_error(WEFT_ERR_IO, "%s: cannot write %s", who, af->tmp);
    return WEFT_OK;
}

weft_status wf_atomic_file_commit(wf_atomic_file *af, const char *who) {
    int bad = ferror(af->f) != 0;
    bad |= fflush(af->f) != 0;
    bad |= fsync(fileno(af->f)) != 0;
    bad |= fclose(af->f) != 0;
    af->f = NULL;
    if (bad || rename(af->tmp, af->path) != 0) {
        unlink(af->tmp);
        return wf_error(WEFT_ERR_IO, "%s: cannot write %s", who, af->path);
    }
    return WEFT_OK;
}
