#!/usr/bin/env bash
# `make devnet`: a four-gateway Amarscity devnet on loopback. Four `amarsd node` processes, each a delegate of
# the genesis committee with its own data directory and SQLite file (data/node-N), finalize one chain together
# over the peer network; each serves devices over CoAP, and node 1 also through a mosquitto broker started here.
#   HTTP 127.0.0.1:8645..8648   P2P 127.0.0.1:7001..7004   CoAP 127.0.0.1:5683,5693,5703,5713   MQTT 127.0.0.1:1883
#   MQTT over TLS 1.2 for devices with certificates 127.0.0.1:8883 (the devnet's root in data/pki)
# First run creates the genesis (4 validators, each a genesis candidate) and the node configs; later runs
# continue the same chain. Ctrl-C stops everything. Logs: data/node-N/amarsd.log, data/broker/mosquitto.log.
# A node or the broker that dies is started again a second later (pid files: data/node-N/amarsd.pid,
# data/broker/mosquitto.pid, which amars-sim's kill faults read).
# A simulated fleet (amars-sim, the smoke scenario run until stopped) of bike-share locks, shop terminals and
# smart-home bulbs works through the four gateways, each device proving what it acts on (log: data/fleet/fleet.log,
# live report: data/fleet/report.html).
# AMARS_DATA, AMARS_COAP_PORT, AMARS_MQTT_PORT, AMARS_MQTTS_PORT, AMARS_FLEET (devices, 0 for none) override the defaults;
# AMARS_BIN skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${AMARS_DATA:-data}
COAP_PORT=${AMARS_COAP_PORT:-5683}
MQTT_PORT=${AMARS_MQTT_PORT:-1883}
MQTTS_PORT=${AMARS_MQTTS_PORT:-8883}
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
    "$BIN/amars" genesis new --out "$DATA/genesis.json" --keys "$DATA/keys" --validators $N
fi
[ -f "$DATA/keys/alice.key" ] || "$BIN/amars" key new --unencrypted --out "$DATA/keys/alice.key" >/dev/null
ALICE=$("$BIN/amars" address --key "$DATA/keys/alice.key")

# Peers are listed without their keys: the handshake only admits keys of the committees, and each peer's key is
# learned from its authenticated handshake.
for i in $(seq 1 $N); do
    dir="$DATA/node-$i"
    mkdir -p "$dir"
    if [ -f "$dir/node.yaml" ]; then
        # A devnet made before the broker followed revocations: node 1 gets the broker's directory too.
        if [ "$i" = 1 ] && ! grep -q '^broker_dir:' "$dir/node.yaml"; then echo "broker_dir: $DATA/broker" >>"$dir/node.yaml"; fi
        continue
    fi
    {
        echo "data: $dir"
        echo "genesis: $DATA/genesis.json"
        echo "key: $DATA/keys/validator-$i.key"
        echo "p2p: { host: 127.0.0.1, port: $((7000 + i)) }"
        echo "http: { host: 127.0.0.1, port: $((8644 + i)) }"
        if [ "$i" = 1 ]; then
            echo "coap: { host: 127.0.0.1, port: $COAP_PORT }"
            echo "mqtt: 127.0.0.1:$MQTT_PORT"
            echo "mqtt_credentials: $DATA/broker/gateway.credentials"
            # The broker's TLS listener denies a device from the block that revokes its certificate.
            echo "broker_dir: $DATA/broker"
        fi
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

# The devnet's PKI: the operator's root (the app-user incentive key; anchored on chain once the nodes run) and the
# broker's TLS server certificate, both made once.
OPS_KEY="$DATA/keys/app-user-incentive.key"
PKI="$DATA/pki"
if [ ! -f "$PKI/broker/server-key.pem" ]; then
    "$BIN/amars" cert ca init --key "$OPS_KEY" --name "Amarscity devnet root" --out "$PKI" --no-publish >/dev/null
    "$BIN/amars" cert server --ca-key "$OPS_KEY" --ca-cert "$PKI/root.pem" --ip 127.0.0.1 --dns localhost \
        --out "$PKI/broker" >/dev/null
fi

# The broker the MQTT bridge of node 1 talks to: persistent, locked down (amarsd broker). On loopback port
# MQTT_PORT devices may only read the chain's topics and submit transactions, and node 1 publishes with the login
# it writes; on MQTTS_PORT (TLS 1.2) a device must show a certificate chaining to the devnet's root and may
# write only its own tx topic.
# Each process's id goes to a pid file (what `amars-sim --kill-gateway`/`--kill-broker-at` read).
start_broker() {
    mkdir -p "$DATA/broker"
    "$BIN/amarsd" broker --dir "$DATA/broker" --port "$MQTT_PORT" --tls-port "$MQTTS_PORT" \
        --ca-file "$PKI/root.pem" --cert-file "$PKI/broker/server.pem" --key-file "$PKI/broker/server-key.pem" &
    BROKER_PID=$!
    PIDS+=($!)
    echo "$BROKER_PID" >"$DATA/broker/mosquitto.pid"
}
start_broker
for _ in $(seq 1 100); do [ -s "$DATA/broker/gateway.credentials" ] && [ -s "$DATA/broker/passwd" ] && break; sleep 0.1; done

# Every node has a CoAP door for devices, 10 ports apart (the simulated devices each send from their own loopback
# address, so each gets the per-device limits a board would).
coap_port() { echo $((COAP_PORT + 10 * ($1 - 1))); }
NODE_PID=()
start_node() {
    "$BIN/amarsd" node --config "$DATA/node-$1/node.yaml" --coap-host 127.0.0.1 --coap-port "$(coap_port "$1")" \
        >>"$DATA/node-$1/stdout.log" 2>>"$DATA/node-$1/amarsd.log" &
    NODE_PID[$1]=$!
    PIDS+=($!)
    echo "$!" >"$DATA/node-$1/amarsd.pid"
}
for i in $(seq 1 $N); do
    : >"$DATA/node-$i/stdout.log"
    : >"$DATA/node-$i/amarsd.log"
    start_node "$i"
done

for i in $(seq 1 $N); do
    for _ in $(seq 1 200); do
        "$BIN/amars" head --node "http://127.0.0.1:$((8644 + i))" >/dev/null 2>&1 && break
        if ! kill -0 "${NODE_PID[$i]}" 2>/dev/null; then
            status=0
            wait "${NODE_PID[$i]}" || status=$?
            echo "node $i exited with status $status: $(tail -n 1 "$DATA/node-$i/amarsd.log")" >&2
            # 65: the data was written for another genesis or by an older, incompatible build.
            [ "$status" -eq 65 ] && echo "start afresh: rm -rf $DATA (or AMARS_DATA=another-dir make devnet)" >&2
            exit 1
        fi
        sleep 0.1
    done
done

echo
echo "first transfer: 10 AMSC from the app-user incentive pool to alice ($ALICE), sent to node 1"
"$BIN/amars" transfer --node http://127.0.0.1:8645 --key "$DATA/keys/app-user-incentive.key" --to "$ALICE" \
    --amount 10 --wait
echo "alice's balance as node 4 sees it:"
"$BIN/amars" balance --node http://127.0.0.1:8648 "$ALICE"

# The root on chain, and one lock enrolled with a short-lived certificate (made once; the lock pays for it).
NODE1=http://127.0.0.1:8645
"$BIN/amars" cert verify --node "$NODE1" "$PKI/root.pem" >/dev/null 2>&1 ||
    "$BIN/amars" cert publish --node "$NODE1" --key "$OPS_KEY" "$PKI/root.pem" --wait >/dev/null
if [ ! -f "$PKI/lock-1/bundle.json" ]; then
    "$BIN/amars" cert enroll --node "$NODE1" --ca-key "$OPS_KEY" --ca-cert "$PKI/root.pem" \
        --device-key "$DATA/keys/lock-1.key" --kind lock --out "$PKI/lock-1" --wait >/dev/null
    "$BIN/amars" transfer --node "$NODE1" --key "$OPS_KEY" --to "$("$BIN/amars" address --key "$DATA/keys/lock-1.key")" \
        --amount 5 --wait >/dev/null
fi
# A fresh short-lived certificate at every start (24 h; 'amars cert renew --daemon' keeps one current).
"$BIN/amars" cert issue --node "$NODE1" --device-key "$DATA/keys/lock-1.key" --device-cert "$PKI/lock-1/device.pem" \
    --lifetime 24h --out "$PKI/lock-1/short" --wait >/dev/null
LOCK=$("$BIN/amars" address --key "$DATA/keys/lock-1.key")
echo "lock-1 ($LOCK) holds a device certificate and a short-lived one ($PKI/lock-1)"

# The simulated fleet: the smoke scenario's locks, terminals and bulbs with their renters, customers, residents
# and guests, every device a light client proving what it acts on through the gateways' CoAP doors (and node 1's
# MQTT door, over TLS: amars-sim enrolls each MQTT lock under the devnet's root, and each lock renews its
# short-lived certificate on chain through its session and connects with it; half the terminals are paid by HTLC, claiming each sale with its order's secret), round after round
# every 5 s until stopped; people are topped up as they spend (amars-sim; AMARS_FLEET=0 turns it off,
# AMARS_FLEET=N runs N devices of the same mix).
FLEET=${AMARS_FLEET:-30}
COAPS=$(for i in $(seq 1 $N); do printf 'coap://127.0.0.1:%s,' "$(coap_port "$i")"; done)
NODES=$(for i in $(seq 1 $N); do printf 'http://127.0.0.1:%s,' $((8644 + i)); done)
if [ "$FLEET" -gt 0 ]; then
    mkdir -p "$DATA/fleet"
    "$BIN/amars-sim" --scenario Simulator/scenarios/smoke.yaml --devices "$FLEET" --rounds 0 --interval 5 --ride 2 \
        --genesis "$DATA/genesis.json" --coap "${COAPS%,}" --mqtt "127.0.0.1:$MQTTS_PORT" \
        --mqtt-ca-key "$OPS_KEY" --mqtt-ca-cert "$PKI/root.pem" --htlc-share 0.5 \
        --node "${NODES%,}" --funder "$DATA/keys/app-user-incentive.key" \
        --report "$DATA/fleet/report.json" --html "$DATA/fleet/report.html" >"$DATA/fleet/fleet.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 300); do grep -q "^progress:" "$DATA/fleet/fleet.log" 2>/dev/null && break; sleep 0.2; done
    echo
    echo "fleet: $FLEET devices (locks, terminals, bulbs) at work through the $N gateways, a round every 5 s each:"
    grep -m 1 "^progress:" "$DATA/fleet/fleet.log" || tail -n 3 "$DATA/fleet/fleet.log"
fi

echo
echo "devnet is running: four gateways finalizing one chain (data in $DATA/, Ctrl-C to stop; run again to continue)"
for i in $(seq 1 $N); do
    echo "  node $i   API http://127.0.0.1:$((8644 + i))/v1/head   Explorer http://127.0.0.1:$((8644 + i))/" \
        "  P2P 127.0.0.1:$((7000 + i))"
done
echo "  Consensus  http://127.0.0.1:8645/v1/consensus   Checkpoints http://127.0.0.1:8645/v1/checkpoints?from=0"
echo "  Devices    coap://127.0.0.1:$COAP_PORT/v1/head (node 1; nodes 2-4 at $(coap_port 2), $(coap_port 3), $(coap_port 4))   mqtt://127.0.0.1:$MQTT_PORT (amars/v1/...)"
echo "  Alice      http://127.0.0.1:8645/account/$ALICE   (live: payments appear as they finalize)"
echo "  Keys       $DATA/keys/*.key (validator-1..4, one per genesis category, alice.key; devnet keys are plain hex,"
echo "             'amars key new' makes encrypted keystores for real ones)"
echo "  Get paid   $BIN/amars request --to $ALICE --amount 2.5   (URI and QR code; the payer runs amars transfer --request URI)"
echo "  Send more  $BIN/amars transfer --node http://127.0.0.1:8645 --key $DATA/keys/alice.key --to <amsc1...> --amount 1"
echo "  A device   $BIN/amars device sync --coap coap://127.0.0.1:$COAP_PORT --genesis $DATA/genesis.json"
echo "  TLS        OPENSSL_CONF=$DATA/broker/openssl.cnf mosquitto_pub -h 127.0.0.1 -p $MQTTS_PORT --cafile $PKI/root.pem \\"
echo "               --cert $PKI/lock-1/short/chain.pem \\"
echo "               --key $PKI/lock-1/short/key.pem -t amars/v1/tx/$LOCK -f <signed tx>   (its own topic only)"
echo "  Certs      $BIN/amars cert verify --node $NODE1 $PKI/lock-1/short/cert.pem   (renew: amars cert renew --daemon)"
if [ "$FLEET" -gt 0 ]; then
    echo "  Fleet      file://$DATA/fleet/report.html   (live report; progress: tail -f $DATA/fleet/fleet.log)"
fi
# Like systemd's Restart=: a node or the broker that dies (a crash, or a fault amars-sim injects) is started again
# a second later, until Ctrl-C.
while true; do
    sleep 1
    for i in $(seq 1 $N); do
        if ! kill -0 "${NODE_PID[$i]}" 2>/dev/null; then
            echo "node $i exited ($(tail -n 1 "$DATA/node-$i/amarsd.log" | cut -c1-160)); starting it again"
            start_node "$i"
        fi
    done
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        echo "the broker exited; starting it again"
        start_broker
    fi
done
