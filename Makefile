# romboot: the front door. `make qemu` builds everything and boots the payload
# in QEMU against the encrypted test disk; `make test` runs every test.
BOARD   ?= qemu
# DIAG=1 builds the HTTP diagnostics server into the init and the network
# into the kernel. The qemu board always has them (the e2e tests use them).
# CIPHERS=1 (x220) adds twofish and serpent to the kernel; KERNEL_SRC=DIR
# builds the kernel from another tree (both reach scripts/build-kernel).
DIAG    ?= $(if $(filter qemu,$(BOARD)),1,0)
OUT     := build/$(BOARD)$(if $(and $(filter 1,$(DIAG)),$(filter-out qemu,$(BOARD))),-diag,)
# HANDOFF=1 builds the passphrase handoff into the init (README: "Type the
# passphrase once"); it costs about 150 KB of ROM (zstd and gzip readers), so
# the stock-flash X220 build (DIAG=0) leaves it out unless HANDOFF=1.
HANDOFF ?= $(if $(and $(filter x220,$(BOARD)),$(filter 0,$(DIAG))),0,1)
TAGS    := $(strip $(if $(filter 1,$(DIAG)),,nodiag) $(if $(filter 1,$(HANDOFF)),,nohandoff))
TAGS    := $(if $(TAGS),-tags '$(TAGS)',)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO      ?= go
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)'
export SOURCE_DATE_EPOCH ?= 0

.PHONY: all deps kernel bootinit initramfs payload disk qemu test vet size fuzz bench bench-kdf bench-httpd clean

all: payload

deps:
	@scripts/install-deps

kernel: deps
	@DIAG=$(DIAG) scripts/build-kernel $(BOARD) $(OUT) >/dev/null

bootinit:
	@mkdir -p $(OUT)
	$(GOBUILD) $(TAGS) -o $(OUT)/bootinit ./cmd/bootinit

initramfs: bootinit
	$(GO) run ./initramfs -list initramfs/files.txt -D BOOTINIT=$(OUT)/bootinit -o $(OUT)/initramfs.cpio.xz

payload: kernel initramfs
	@echo "payload: $(OUT)/bzImage $(OUT)/initramfs.cpio.xz"

build/disk.img: scripts/mkdisk $(wildcard qemu/targetinit/*) | deps
	scripts/mkdisk -o $@

disk: build/disk.img

# The main job: boot the payload against the test disk (passphrase: romboot).
qemu: payload disk
	qemu/run --board $(BOARD) --disk build/disk.img

vet:
	$(GO) vet ./...

# End-to-end tests boot the payload in QEMU (TCG) against disks they make.
test: deps vet payload
	ROMBOOT_REQUIRE_TOOLS=1 ROMBOOT_E2E=1 ROMBOOT_BUILD=$(CURDIR)/$(OUT) $(GO) test -count=1 -timeout 40m ./...

# Bytes of kernel and initramfs against the board's flash budget; fails
# when over (scripts/size).
size: payload
	@scripts/size $(BOARD) $(DIAG) $(OUT)

# Every fuzz target for FUZZTIME each (default 60s).
fuzz:
	scripts/fuzz

clean:
	rm -rf build
