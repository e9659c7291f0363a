#!/bin/sh
# tools/demo.sh - the main job of `make demo`: one epoch of MLP 784-256-128-10 training
# on Fashion-MNIST (SGD momentum 0.9, lr 0.05, batch 128) on 1 thread, the same epoch
# with all threads, then test accuracy, samples per second and the speedup.
set -e
B=${BUILD:-build}
N=$(nproc)
field() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"*\([^,}\"]*\).*/\1/p"; }
echo "== weft-train: one epoch of MLP 784-256-128-10 on Fashion-MNIST (SGD momentum 0.9, lr 0.05, batch 128)"
one=$($B/weft-train --epochs 1 --threads 1 --json | tail -n 1)
echo "   1 thread:  loss $(field "$one" loss), test accuracy $(field "$one" test_accuracy), epoch $(field "$one" epoch_s) s, $(field "$one" samples_per_s) samples/s"
all=$($B/weft-train --epochs 1 --threads "$N" --json | tail -n 1)
echo "   $N threads: loss $(field "$all" loss), test accuracy $(field "$all" test_accuracy), epoch $(field "$all" epoch_s) s, $(field "$all" samples_per_s) samples/s"
awk -v acc="$(field "$all" test_accuracy)" -v sps="$(field "$all" samples_per_s)" \
    -v tn="$(field "$all" epoch_s)" -v t1="$(field "$one" epoch_s)" -v n="$N" 'BEGIN {
  printf "== test accuracy %.2f%% after one epoch; %.0f samples/s on %d threads; speedup over 1 thread %.2fx\n",
         100 * acc, sps, n, t1 / tn }'
echo "   (same numbers on any thread count: the results are bit-identical; more in README.md)"
