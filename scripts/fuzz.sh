#!/usr/bin/env bash
# libFuzzer over the chain's decoders (transaction, block, header, certificate, checkpoint, proofs).
#   fuzz.sh build            build the instrumented binary into .build-fuzz
#   fuzz.sh smoke            a short fixed-seed pass (part of `make test`)
#   fuzz.sh run SECONDS      fuzz for SECONDS, keeping the corpus in fuzz-corpus/ (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build-fuzz/release/AmarsFuzz
case "${1:-}" in
build)
    AMARS_FUZZ=1 AMARS_PORTABLE_ONLY=1 swift build -c release --product AmarsFuzz \
        -Xswiftc -sanitize=fuzzer --scratch-path .build-fuzz -q
    ;;
smoke)
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    AMARS_FUZZ_SEEDS="$dir" "$bin" -seed=20261125 -runs=1000000 -max_len=4096 -print_final_stats=0 "$dir" 2>"$dir.log" \
        || { tail -40 "$dir.log"; rm -f "$dir.log"; exit 1; }
    grep -E "^Done|DONE" "$dir.log" | tail -1 || true
    rm -f "$dir.log"
    echo "fuzz-smoke: 1000000 runs over the decoders, no finding"
    ;;
run)
    mkdir -p fuzz-corpus
    AMARS_FUZZ_SEEDS=fuzz-corpus "$bin" -max_total_time="${2:-300}" -max_len=8192 fuzz-corpus
    ;;
*)
    echo "usage: $0 build|smoke|run SECONDS" >&2
    exit 2
    ;;
esac
