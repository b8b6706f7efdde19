#!/usr/bin/env bash
# `make devnet`: a single-node Amarscity devnet with its data in ./data (or $AMARS_DATA).
# First run creates the genesis and keys; later runs continue the same chain. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${AMARS_DATA:-data}
PORT=${AMARS_HTTP_PORT:-8645}
COAP_PORT=${AMARS_COAP_PORT:-5683}
MQTT_PORT=${AMARS_MQTT_PORT:-1883}
NODE="http://127.0.0.1:$PORT"

echo "building (first time takes a few minutes) ..."
swift build -q
BIN=$(swift build --show-bin-path)

if [ ! -f "$DATA/genesis.json" ]; then
    "$BIN/amars" genesis new --out "$DATA/genesis.json" --keys "$DATA/keys"
fi
[ -f "$DATA/keys/alice.key" ] || "$BIN/amars" key new --unencrypted --out "$DATA/keys/alice.key" >/dev/null
ALICE=$("$BIN/amars" address --key "$DATA/keys/alice.key")

# The node starts its own mosquitto broker (data in $DATA/broker) and bridges devices' MQTT topics to the chain.
"$BIN/amarsd" run --data "$DATA" --http-port "$PORT" --coap-port "$COAP_PORT" \
    --mqtt "127.0.0.1:$MQTT_PORT" --spawn-broker &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
trap 'exit 0' INT TERM

for _ in $(seq 1 100); do
    "$BIN/amars" head --node "$NODE" >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || { echo "amarsd exited; see its message above" >&2; exit 1; }
    sleep 0.1
done

echo
echo "first transfer: 10 AMSC from the app-user incentive pool to alice ($ALICE)"
"$BIN/amars" transfer --node "$NODE" --key "$DATA/keys/app-user-incentive.key" --to "$ALICE" --amount 10 --wait
"$BIN/amars" balance --node "$NODE" "$ALICE"
cat <<MSG

devnet is running (data in $DATA/, Ctrl-C to stop; run make devnet again to continue the same chain)
  Explorer   $NODE/
  API        $NODE/v1/head   $NODE/v1/supply   $NODE/v1/accounts/$ALICE
  Devices    coap://127.0.0.1:$COAP_PORT/v1/head   mqtt://127.0.0.1:$MQTT_PORT (amars/v1/...)
  Send more  $BIN/amars transfer --key $DATA/keys/alice.key --to <amsc1...> --amount 1
  Keys       $DATA/keys/*.key (one per genesis category, validator.key, alice.key)
MSG
wait $PID
