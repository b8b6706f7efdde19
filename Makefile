# Amarscity — the two commands a newcomer needs are `make devnet` and `make test`.
SWIFT ?= swift
FUZZ_SECONDS ?= 300
EMBEDDED_TARGETS := AmarsCodec AmarsCrypto Ledger DeviceProtocol LightClient DeviceCore
# Debian's headers are architecture-neutral for libsecp256k1; the cross build needs to see them.
EMBEDDED_FLAGS := -c release -Xcc -isystem -Xcc /usr/include

.PHONY: deps boards-deps build test unit-test integration-test embedded-check firmware-check fuzz fuzz-smoke soak devnet devnet-single bench format clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

## Everything: unit tests, then integration and end-to-end tests, the Embedded compile of every portable module
## (host and Cortex-M4), a short fixed-seed fuzz pass over the decoders, and the firmware self-test in QEMU.
test: deps boards-deps unit-test integration-test embedded-check fuzz-smoke firmware-check

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

bench: deps
	$(SWIFT) run -c release amars-bench ledger

format:
	$(SWIFT) format --in-place --recursive --parallel Sources Tests Package.swift

clean:
	rm -rf .build .build-*
