#!/usr/bin/env bash
# The small CI instance of the benchmark (issue 6). It asserts only what is deterministic:
#   - the plan makes exactly R_min requests (requests / R_min = 1.00), counted by the emulator;
#   - applying the plan under a per-route rate limit has 0 failed or skipped changes;
#   - a plan after the apply is empty.
# Timings are printed for information and never asserted: CI machines are shared and noisy.
# The debug build is used on purpose: CI has already compiled the workspace for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ldexp-bench smoke (200 experiments, 1 ms latency, 20 requests / 10 s per route)"
cargo run --locked -q -p ldexp-bench -- \
  --experiments 200 --environments 2 --flags 40 --metrics 60 \
  --latency-ms 1 --concurrency 8 --rate-limit 20 \
  --skip-baseline --skip-scale --no-write --check
