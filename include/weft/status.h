/* weft/status.h - status codes, the thread-local error message, the allocator hook.
 *
 * Every weft call that can fail returns a weft_status (WEFT_OK == 0) and writes its
 * results through out-parameters. On failure, weft_last_error() returns a sentence that
 * says what went wrong (naming the task, file or argument involved). The message is
 * thread-local: it belongs to the thread that made the failing call and stays valid until
 * that thread's next failing weft call.
 *
 * Thread safety: all functions here are thread-safe except weft_allocator_set().
 */
#ifndef WEFT_STATUS_H
#define WEFT_STATUS_H

#include <stddef.h>

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The one list of status codes: X(NAME, value, message). It generates the enum, the
 * names (weft_status_name) and the generic messages (weft_status_str). */
#define WEFT_STATUS_LIST(X)                                                        \
    X(OK, 0, "success")                                                            \
    X(ERR_INVALID_ARG, 1, "invalid argument")                                      \
    X(ERR_NOMEM, 2, "out of memory")                                               \
    X(ERR_CYCLE, 3, "the task graph has a dependency cycle")                       \
    X(ERR_TASK_FAILED, 4, "a task returned a non-zero status")                     \
    X(ERR_BUSY, 5, "the object is in use (a graph already running)")               \
    X(ERR_TOPOLOGY, 6, "the hardware topology could not be loaded")                \
    X(ERR_SYSTEM, 7, "a system call failed")                                       \
    X(ERR_IO, 8, "an input/output operation failed")                               \
    X(ERR_RANGE, 9, "an index or size is out of range")                            \
    X(ERR_NUMERICS, 10, "a value is NaN or infinite (check mode)")

typedef enum weft_status {
#define WEFT_STATUS_ENUM_(name, value, msg) WEFT_##name = value,
    WEFT_STATUS_LIST(WEFT_STATUS_ENUM_)
#undef WEFT_STATUS_ENUM_
} weft_status;

/* "WEFT_ERR_NOMEM" etc.; "WEFT_UNKNOWN" for a value not in the list. Static strings. */
WEFT_API const char *weft_status_name(weft_status status);
/* The generic message of a code ("out of memory"). Static strings. */
WEFT_API const char *weft_status_str(weft_status status);
/* The detailed message of the calling thread's last failing weft call ("" if none).
 * Owned by weft; valid until this thread's next failing call. */
WEFT_API const char *weft_last_error(void);

/* Allocator hook. Every allocation weft makes for its own bookkeeping goes through it
 * (NUMA-bound buffers from weft_pool_alloc go through hwloc instead). alloc returns
 * memory aligned to `align` (a power of two, at most 4096) or NULL; free receives the
 * size that was asked for. Both may be called from any thread at once.
 * weft_allocator_set(NULL) restores the default (aligned_alloc / free).
 * Not thread-safe: call it only while no weft object exists. */
typedef struct weft_allocator {
    void *(*alloc)(void *ctx, size_t size, size_t align);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
} weft_allocator;

WEFT_API void weft_allocator_set(const weft_allocator *allocator);

#ifdef __cplusplus
}
#endif
#endif
