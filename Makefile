# Amarscity — the two commands a newcomer needs are `make devnet` and `make test`.
SWIFT ?= swift
FUZZ_SECONDS ?= 300
EMBEDDED_TARGETS := AmarsCodec AmarsCrypto Ledger DeviceProtocol LightClient PaymentCodes DeviceIdentity DeviceCore
# Debian's headers are architecture-neutral for libsecp256k1; the cross build needs to see them.
EMBEDDED_FLAGS := -c release -Xcc -isystem -Xcc /usr/include

.PHONY: deps boards-deps build test unit-test integration-test embedded-check firmware-check fuzz fuzz-smoke soak devnet devnet-single sim bench format clean install package-check

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

## Everything: unit tests, then integration and end-to-end tests, the Embedded compile of every portable module
## (host and Cortex-M4), a short fixed-seed fuzz pass over the decoders, and the firmware self-test in QEMU.
test: deps boards-deps unit-test integration-test embedded-check fuzz-smoke package-check firmware-check

## Cross tools, QEMU and libsecp256k1 for Cortex-M: before the integration tests, which run the firmware in QEMU too.
boards-deps:
	$(MAKE) -C Boards deps

## The Cortex-M4 firmware built (libsecp256k1 from Debian's source) and run in QEMU (fails if its self-test does),
## the same for the Cortex-M0 micro:bit (the Pico's armv6m instruction set, 16 KB RAM), then every board's image
## built (Pico, nRF52840-DK, STM32F4-Discovery, ...) with its size.
firmware-check: boards-deps
	$(MAKE) -C Boards BOARD=qemu-mps2-an386
	$(MAKE) -C Boards run BOARD=qemu-mps2-an386
	$(MAKE) -C Boards BOARD=qemu-microbit
	$(MAKE) -C Boards run BOARD=qemu-microbit
	$(MAKE) -C Boards all-boards

## Every test target but IntegrationTests: in-process tests (sockets on loopback at most), no other programs.
unit-test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip IntegrationTests

## IntegrationTests alone: tests that start real processes (several `amarsd` on loopback, the `amars` and
## `amars-sim` CLIs, mosquitto, coap-client, the firmware in QEMU through `make -C Boards`). They run the binaries
## the build left beside the test bundle, hence the full build first.
integration-test: deps boards-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter IntegrationTests
	$(MAKE) mqtt-second-broker

## The MQTT bridge, interop and device end-to-end suites again, against RabbitMQ's MQTT plugin instead of
## mosquitto: the gateway's MQTT door is plain MQTT 3.1.1 and must work on a broker that clusters.
mqtt-second-broker: deps
	$(SWIFT) build --build-tests
	AMARS_TEST_BROKER=rabbitmq $(SWIFT) test --skip-build --filter 'MqttBridgeTests|MqttInteropTests|DeviceMqttEndToEndTests'

embedded-check: deps
	@for triple in x86_64-unknown-linux-gnu armv7em-none-none-eabi armv6m-none-none-eabi; do \
	  for t in $(EMBEDDED_TARGETS); do \
	    echo "embedded: $$t for $$triple"; \
	    EMBEDDED=1 $(SWIFT) build $(EMBEDDED_FLAGS) --triple $$triple --target $$t \
	      --scratch-path .build-embedded-$$triple -q || exit 1; \
	  done; \
	done
	@echo "embedded: all portable modules compile in Embedded Swift for the host, armv7em and armv6m"

## libFuzzer over the transaction and block decoders, for FUZZ_SECONDS (default 300).
fuzz: deps
	scripts/fuzz.sh build
	scripts/fuzz.sh run $(FUZZ_SECONDS)

## A short, fixed-seed libFuzzer pass (part of `make test`).
fuzz-smoke: deps
	scripts/fuzz.sh build
	scripts/fuzz.sh smoke

## Consensus simulation over many seeds (SOAK_SEEDS, default 5000; SOAK_START picks the first seed).
SOAK_SEEDS ?= 5000
SOAK_START ?= 1000
soak: deps
	$(SWIFT) build --build-tests
	AMARS_SOAK_SEEDS=$(SOAK_SEEDS) AMARS_SOAK_START=$(SOAK_START) $(SWIFT) test --skip-build \
	  --filter SafetyLivenessTests/testSoak

## A local devnet: four gateways finalizing one chain, a broker and device doors; data in ./data.
devnet: deps
	scripts/devnet.sh

## The single-node dev mode: one gateway that is the whole committee (data in ./data-single).
devnet-single: deps
	AMARS_DATA=$${AMARS_DATA:-data-single} scripts/devnet-single.sh

## A scenario (Simulator/scenarios/SCENARIO.yaml: smoke, bike-share, smart-building, shop-street) against the running
## devnet (`make devnet` in another terminal); DEVICES=N keeps its mix of kinds. Reports in data/sim/.
SCENARIO ?= smoke
# The devnet's four gateways (CoAP doors 10 ports apart from AMARS_COAP_PORT, HTTP 8645..8648): the fleet is
# spread over them.
SIM_COAP_BASE = $${AMARS_COAP_PORT:-5683}
SIM_COAP = coap://127.0.0.1:$$(($(SIM_COAP_BASE))),coap://127.0.0.1:$$(($(SIM_COAP_BASE)+10)),coap://127.0.0.1:$$(($(SIM_COAP_BASE)+20)),coap://127.0.0.1:$$(($(SIM_COAP_BASE)+30))
SIM_NODES = http://127.0.0.1:8645,http://127.0.0.1:8646,http://127.0.0.1:8647,http://127.0.0.1:8648
SIM_PIDS = $$(for i in 1 2 3 4; do printf '%s,' $${AMARS_DATA:-data}/node-$$i/amarsd.pid; done | sed 's/,$$//')
sim: deps
	$(SWIFT) build -c release --product amars-sim
	mkdir -p $${AMARS_DATA:-data}/sim
	$$($(SWIFT) build -c release --show-bin-path)/amars-sim --scenario Simulator/scenarios/$(SCENARIO).yaml \
	  $(if $(DEVICES),--devices $(DEVICES)) --seed $${SEED:-2} --genesis $${AMARS_DATA:-data}/genesis.json \
	  --coap $(SIM_COAP) --mqtt 127.0.0.1:$${AMARS_MQTT_PORT:-1883} \
	  --node $(SIM_NODES) --funder $${AMARS_DATA:-data}/keys/app-user-incentive.key \
	  --gateway-pid-files $(SIM_PIDS) --broker-pid-file $${AMARS_DATA:-data}/broker/mosquitto.pid \
	  --report $${AMARS_DATA:-data}/sim/$(SCENARIO).json --html $${AMARS_DATA:-data}/sim/$(SCENARIO).html

bench: deps
	$(SWIFT) run -c release amars-bench ledger

format:
	$(SWIFT) format --in-place --recursive --parallel Sources Tests Simulator Package.swift

## What `make install` lays down, checked from the debug build (scripts/package-check.sh).
package-check: deps
	$(SWIFT) build
	scripts/package-check.sh

## `make install [PREFIX=/usr/local] [DESTDIR=...]`: the release binaries, the systemd unit for amarsd (with
## PREFIX's path), an example production config, man pages generated from the argument parser (one per command
## and subcommand) and bash, zsh and fish completions. FROM=<dir> installs from an existing build directory (say
## .build/debug) instead of building a release; CONFIGURATION is then that build's, for the man pages.
PREFIX ?= /usr/local
DESTDIR ?=
FROM ?=
CONFIGURATION ?= $(if $(FROM),debug,release)
INSTALL_BINARIES := amarsd amars amars-sim amars-bench
install:
	@set -e; \
	if [ -z "$(FROM)" ]; then $(SWIFT) build -c release; bin=$$($(SWIFT) build -c release --show-bin-path); \
	else bin="$(FROM)"; fi; \
	for b in $(INSTALL_BINARIES); do test -x "$$bin/$$b" || { echo "no $$bin/$$b: build first"; exit 1; }; done; \
	root="$(DESTDIR)$(PREFIX)"; \
	install -d "$$root/bin" "$$root/lib/systemd/system" "$$root/share/man/man1" "$$root/share/doc/amarscity" \
	  "$$root/share/bash-completion/completions" "$$root/share/zsh/site-functions" \
	  "$$root/share/fish/vendor_completions.d"; \
	for b in $(INSTALL_BINARIES); do install -m 0755 "$$bin/$$b" "$$root/bin/$$b"; done; \
	sed 's|@BINDIR@|$(PREFIX)/bin|g' packaging/amarsd.service > "$$root/lib/systemd/system/amarsd.service"; \
	chmod 0644 "$$root/lib/systemd/system/amarsd.service"; \
	install -m 0644 packaging/node.example.yaml README.md "$$root/share/doc/amarscity/"; \
	for b in amarsd amars amars-sim; do \
	  "$$bin/$$b" --generate-completion-script bash > "$$root/share/bash-completion/completions/$$b"; \
	  "$$bin/$$b" --generate-completion-script zsh > "$$root/share/zsh/site-functions/_$$b"; \
	  "$$bin/$$b" --generate-completion-script fish > "$$root/share/fish/vendor_completions.d/$$b.fish"; \
	done; \
	rm -rf .build/plugins/GenerateManual/outputs; \
	$(SWIFT) package generate-manual --configuration $(CONFIGURATION) --multi-page >/dev/null; \
	for b in $(INSTALL_BINARIES); do \
	  for page in .build/plugins/GenerateManual/outputs/$$b/*.1; do \
	    case "$$page" in *.help.1) continue;; esac; install -m 0644 "$$page" "$$root/share/man/man1/"; \
	  done; \
	done; \
	echo "installed under $$root: bin/{$$(echo $(INSTALL_BINARIES) | tr ' ' ,)}, lib/systemd/system/amarsd.service, man pages, completions, share/doc/amarscity/node.example.yaml"

clean:
	rm -rf .build .build-*
