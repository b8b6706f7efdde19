#!/usr/bin/env bash
# A four-gateway Amarscity devnet on loopback: four `amarsd node` processes, each a delegate of the genesis
# committee with its own data directory and SQLite file (data/node-N), finalizing one chain together.
#   HTTP   127.0.0.1:8645 ... 8648        P2P   127.0.0.1:7001 ... 7004
# First run creates the genesis (4 validators) and the node configs; later runs continue the same chain.
# Ctrl-C stops all four. Logs: data/node-N/amarsd.log.
# AMARS_DATA overrides the data directory; AMARS_BIN skips the build and uses binaries from that directory.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${AMARS_DATA:-data}
N=4

if [ -z "${AMARS_BIN:-}" ]; then
    echo "building (first time takes a few minutes) ..."
    swift build -q
    BIN=$(swift build --show-bin-path)
else
    BIN=$AMARS_BIN
fi
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)

if [ ! -f "$DATA/genesis.json" ]; then
    "$BIN/amars" genesis new --out "$DATA/genesis.json" --keys "$DATA/keys" --validators $N --chain-name amars-devnet4
fi

# Peers are listed without their keys: the handshake only admits keys of the genesis committee (and later
# committees), and each peer's key is learned from its authenticated handshake.
for i in $(seq 1 $N); do
    dir="$DATA/node-$i"
    mkdir -p "$dir"
    [ -f "$dir/node.yaml" ] && continue
    {
        echo "data: $dir"
        echo "genesis: $DATA/genesis.json"
        echo "key: $DATA/keys/validator-$i.key"
        echo "p2p: { host: 127.0.0.1, port: $((7000 + i)) }"
        echo "http: { host: 127.0.0.1, port: $((8644 + i)) }"
        echo "consensus: { blockInterval: 1000, proposeTimeout: 2000, prepareTimeout: 1000, commitTimeout: 1000 }"
        echo "log: info"
        echo "peers:"
        for j in $(seq 1 $N); do
            [ "$j" = "$i" ] && continue
            echo "  - { host: 127.0.0.1, port: $((7000 + j)) }"
        done
    } > "$dir/node.yaml"
done

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for i in $(seq 1 $N); do
    "$BIN/amarsd" node --config "$DATA/node-$i/node.yaml" >"$DATA/node-$i/stdout.log" 2>"$DATA/node-$i/amarsd.log" &
    PIDS+=($!)
done

for i in $(seq 1 $N); do
    port=$((8644 + i))
    for _ in $(seq 1 100); do
        "$BIN/amars" head --node "http://127.0.0.1:$port" >/dev/null 2>&1 && break
        kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null ||
            { echo "node $i exited; see $DATA/node-$i/amarsd.log" >&2; exit 1; }
        sleep 0.1
    done
done

echo
echo "devnet4 is running (data in $DATA/, Ctrl-C to stop all four; run again to continue the same chain)"
for i in $(seq 1 $N); do
    echo "  node $i   API http://127.0.0.1:$((8644 + i))/v1/head   Explorer http://127.0.0.1:$((8644 + i))/" \
        "  P2P 127.0.0.1:$((7000 + i))   data $DATA/node-$i"
done
echo "  Keys     $DATA/keys/*.key (validator-1..4 and one per genesis category)"
echo "  Send     $BIN/amars transfer --node http://127.0.0.1:8645 \\"
echo "             --key $DATA/keys/app-user-incentive.key --to <amsc1...> --amount 1"
wait
