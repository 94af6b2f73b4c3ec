#!/usr/bin/env bash
# Runs the poll benchmark (benches/poll.rs) with `cargo bench`, so in the
# release (bench) profile. It needs PostgreSQL at TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres); see docs/benchmarks.md.
#
#   scripts/bench-poll.sh               # 1,000, 10,000 and 50,000 jobs
#   scripts/bench-poll.sh 1000 10000    # the sizes given
#
# Set CARGO_TARGET_DIR to keep the release build apart from the debug one.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench poll -- "$@"
