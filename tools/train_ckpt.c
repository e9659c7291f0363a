/* tools/train_ckpt.c - saving and resuming (see train_ckpt.h). */
#include "tools/train_ckpt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tools/train_common.h"

uint64_t train_ckpt_fingerprint(const train_options *o, int64_t input_width)
{
    char text[1024];
    int len = snprintf(text, sizeof text, "weft-train 1 in=%lld hidden=", (long long)input_width);
    for (size_t i = 0; i < o->nhidden; i++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s%lld", i ? "," : "",
                        (long long)o->hidden[i]);
    len += snprintf(text + len, sizeof text - (size_t)len,
                    " optim=%s lr=%.17g wd=%.17g batch=%" PRIu64, train_optim_name(o->optim),
                    o->lr, o->weight_decay, o->batch);
    if (o->optim == WEFT_OPTIM_MOMENTUM)
        snprintf(text + len, sizeof text - (size_t)len, " momentum=%.17g", o->momentum);
    return train_fnv(TRAIN_FNV_START, text, strlen(text));
}

int train_ckpt_save(train_net *net, const char *path, uint64_t fingerprint, uint64_t seed,
                    uint64_t epochs_done, uint64_t step)
{
    const char *names[TRAIN_MAX_CKPT_TENSORS];
    weft_tensor *tensors[TRAIN_MAX_CKPT_TENSORS];
    size_t n = 0;
    if (train_net_checkpoint_tensors(net, TRAIN_MAX_CKPT_TENSORS, names, tensors, &n) != 0)
        return -1;
    const weft_checkpoint_meta meta = {.step = step, .epoch = epochs_done, .seed = seed,
                                       .user = fingerprint};
    return train_check(weft_checkpoint_save(path, n, names, (const weft_tensor *const *)tensors,
                                            &meta),
                       "saving checkpoint %s", path);
}

int train_ckpt_load(train_net *net, const char *path, uint64_t fingerprint, uint64_t seed,
                    uint64_t *epochs_done, uint64_t *step)
{
    const char *names[TRAIN_MAX_CKPT_TENSORS];
    weft_tensor *tensors[TRAIN_MAX_CKPT_TENSORS];
    size_t n = 0;
    weft_checkpoint_meta meta;
    if (train_net_prepare_load(net) != 0 ||
        train_net_checkpoint_tensors(net, TRAIN_MAX_CKPT_TENSORS, names, tensors, &n) != 0 ||
        train_check(weft_checkpoint_load(path, n, names, tensors, &meta),
                    "resuming from checkpoint %s", path) != 0)
        return -1;
    if (meta.seed != seed)
        return train_fail("checkpoint %s was written with --seed %" PRIu64 ", not %" PRIu64
                          "; resume with the same seed", path, meta.seed, seed);
    if (meta.user != fingerprint)
        return train_fail("checkpoint %s was written with other settings; resume with the "
                          "same --hidden, --optim, --lr, --momentum, --weight-decay and "
                          "--batch (and the same dataset)", path);
    *epochs_done = meta.epoch;
    *step = meta.step;
    return 0;
}
