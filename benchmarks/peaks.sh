#!/bin/sh
# Build benchmarks/peaks.c and run it on one core and on both, pinned, under the shared
# benchmark lock (docs/performance.md, "The machine's peaks"). Arguments go to the program:
# rounds (default 50000000) and runs per test (default 5).
set -e
here=$(dirname "$0")
out=${TMPDIR:-/tmp}/lstm_native_peaks
gcc -O2 -fopenmp -o "$out" "$here/peaks.c"
flock /tmp/bench.lock env OMP_NUM_THREADS=1 taskset -c 1 "$out" "$@"
flock /tmp/bench.lock env OMP_NUM_THREADS=2 OMP_PROC_BIND=true taskset -c 0,1 "$out" "$@"
