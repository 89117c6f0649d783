#!/usr/bin/env bash
# fio as the outside reference for bench_uring's BM_Read4K: 4 KiB random
# reads with io_uring, fixed buffers (--fixedbufs) or not, O_DIRECT or page
# cache, queue depth 1 and 32, on the same 256 MiB file.
# usage: bash bench/uring/fio.sh [SECONDS per job, default 5]
set -euo pipefail
command -v fio >/dev/null || { echo "fio is not installed (bash scripts/deps.sh)"; exit 77; }
secs="${1:-5}"
dir="${LABYRINTH_BENCH_DIR:-/var/tmp}"
file="$dir/labyrinth-bench-uring.dat"
if [ "$(stat -c %s "$file" 2>/dev/null || echo 0)" != $((256 << 20)) ]; then
  head -c $((256 << 20)) /dev/urandom > "$file"
fi
printf "%-8s %-6s %-3s %12s %10s\n" "mode" "fixed" "qd" "IOPS" "MB/s"
for direct in 1 0; do
  for fixed in 1 0; do
    for qd in 1 32; do
      args=(--name=r --filename="$file" --ioengine=io_uring --rw=randread --bs=4k
            --iodepth="$qd" --direct="$direct" --time_based --runtime="$secs" --numjobs=1
            --output-format=json --randseed=7)
      [ "$fixed" = 1 ] && args+=(--fixedbufs)
      # Page cache: keep the file cached (fio drops it by default), as the
      # benchmark's page-cache case reads a cached file.
      if [ "$direct" = 0 ]; then args+=(--invalidate=0); cat "$file" >/dev/null; fi
      out=$(fio "${args[@]}")
      iops=$(echo "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(round(j["jobs"][0]["read"]["iops"]))')
      bw=$(echo "$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(round(j["jobs"][0]["read"]["bw_bytes"]/1e6,1))')
      printf "%-8s %-6s %-3s %12s %10s\n" "$([ $direct = 1 ] && echo O_DIRECT || echo cache)" \
        "$([ $fixed = 1 ] && echo yes || echo no)" "$qd" "$iops" "$bw"
    done
  done
done
