# romboot: the front door. `make qemu` builds everything and boots the payload
# in QEMU against the encrypted test disk; `make test` runs every test.
BOARD   ?= qemu
# DIAG=1 builds the HTTP diagnostics server into the init and the network
# into the kernel. The qemu board always has them (the e2e tests use them).
# CIPHERS=1 (x220) adds twofish and serpent to the kernel and to the init's
# unlocker (without it the init is built with the nociphers tag); KERNEL_SRC=DIR
# builds the kernel from another tree (both reach scripts/build-kernel).
DIAG    ?= $(if $(filter qemu,$(BOARD)),1,0)
OUT     := build/$(BOARD)$(if $(and $(filter 1,$(DIAG)),$(filter-out qemu,$(BOARD))),-diag,)
# HANDOFF=1 builds the passphrase handoff into the init (README: "Type the
# passphrase once"); it costs about 185 KB of ROM (zstd and gzip readers, and
# the fmt they bring back): it fits the stock-flash X220 now but leaves too
# little for what is still to come (README), so the stock-flash X220 build
# (DIAG=0) leaves it out unless HANDOFF=1.
HANDOFF ?= $(if $(and $(filter x220,$(BOARD)),$(filter 0,$(DIAG))),0,1)
# The io_uring diagnostics engine is for the host and the qemu board: a ROM's
# diagnostics build (x220 DIAG=1) has the pool engine only (nouring: 12 KB
# of xz; README, "Diagnostics server").
# gotags(board,diag,handoff,ciphers) are the build tags of that build.
gotags   = $(strip $(if $(filter 1,$(2)),,nodiag) $(if $(or $(filter 1,$(4)),$(filter qemu,$(1))),,nociphers) $(if $(filter 1,$(3)),,nohandoff) $(if $(filter qemu,$(1)),,nouring))
GOTAGS  := $(call gotags,$(BOARD),$(DIAG),$(HANDOFF),$(CIPHERS))
TAGS    := $(if $(GOTAGS),-tags '$(GOTAGS)',)
# The tags of the stock X220 builds, DIAG=0 and DIAG=1 with their default
# HANDOFF: `make test` vets and tests the code they change (bootinit,
# httpd, luks) as each ROM has it.
X220TAGS0 := $(call gotags,x220,0,0,)
X220TAGS1 := $(call gotags,x220,1,1,)
# Reproducible: the same commit gives the same bytes in any directory, for
# any user, on any day (docs/x220.md: "Rebuild and compare"). The version is
# the commit (a fixed-length abbreviation); the Go build has no paths, no
# build id and no VCS stamp; the initramfs has fixed mtimes.
VERSION ?= $(shell git describe --always --abbrev=12 --dirty 2>/dev/null || echo dev)
GO      ?= go
# Size (docs/x220.md, "What each trim bought"): no inlining (-l) except in
# the crypto packages, whose hot loops (argon2, pbkdf2, sha*, aes) keep it
# (-93 KB of xz); Go's previous garbage collector instead of Green Tea
# (-12 KB: one process, one big allocation, GC speed does not matter).
GCFLAGS := -gcflags=all=-l -gcflags=crypto/...= -gcflags=golang.org/x/crypto/...= -gcflags=github.com/romboot/romboot/internal/luks/...=
GOENV   := CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOEXPERIMENT=nogreenteagc
GOBUILD := $(GOENV) $(GO) build -trimpath -buildvcs=false $(GCFLAGS) -ldflags '-s -w -buildid= -X main.version=$(VERSION)'
export SOURCE_DATE_EPOCH ?= 0

.PHONY: all deps kernel bootinit initramfs payload payload-x220 disk qemu test test-install e2e-x220 repro vet size fuzz bench bench-kdf bench-httpd clean

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

# Prints each file's sha256: compare with the published hashes before flashing.
payload: kernel initramfs
	@cd $(OUT) && sha256sum bzImage initramfs.cpio.xz | sed 's|^|payload: |; s|  |  $(OUT)/|'

# The stock-flash X220 payload (build/x220), which the X220-shaped e2e tests
# boot whatever BOARD is.
payload-x220:
	@$(MAKE) -s payload BOARD=x220 DIAG=0

build/disk.img: scripts/mkdisk $(wildcard qemu/targetinit/*) | deps
	scripts/mkdisk -o $@

disk: build/disk.img

# The main job: boot the payload against the test disk (passphrase: romboot).
qemu: payload disk
	qemu/run --board $(BOARD) --disk build/disk.img

vet:
	$(GO) vet ./...
	$(GO) vet -tags '$(X220TAGS0)' ./...
	$(GO) vet -tags '$(X220TAGS1)' ./...

# End-to-end tests boot the payload in QEMU (TCG) against disks they make;
# the X220-shaped ones (qemu/e2e_x220_test.go) boot the x220 payload too.
E2EENV  = ROMBOOT_REQUIRE_TOOLS=1 ROMBOOT_E2E=1 ROMBOOT_BUILD=$(CURDIR)/$(OUT) ROMBOOT_REQUIRE_X220=1 ROMBOOT_X220_BUILD=$(CURDIR)/build/x220
test: deps vet payload payload-x220
	$(E2EENV) $(GO) test -count=1 -timeout 40m ./...
	$(GO) test -count=1 -tags '$(X220TAGS1)' ./cmd/bootinit ./internal/httpd ./internal/luks
	$(GO) test -count=1 -tags '$(X220TAGS0)' ./cmd/bootinit

# Only the X220-shaped end-to-end tests: the x220 payload in q35, handed over
# as coreboot does, read from the screen; and the boot without a hardware RNG.
e2e-x220: deps payload payload-x220
	$(E2EENV) $(GO) test -count=1 -timeout 30m -run 'TestX220|TestNoHardwareRNG|TestScreenMatcher' -v ./qemu/

# Builds the payload a second time from a fresh clone, elsewhere, with empty
# caches, and compares the bytes (scripts/repro).
repro:
	scripts/repro $(BOARD) $(DIAG)

# The passphrase handoff on real Debian 12 installations (scripts/mkinstall
# builds them with mmdebstrap, cached): each boot takes minutes under TCG.
test-install: deps vet payload
	ROMBOOT_REQUIRE_TOOLS=1 ROMBOOT_E2E=1 ROMBOOT_E2E_INSTALL=1 ROMBOOT_BUILD=$(CURDIR)/$(OUT) $(GO) test -count=1 -timeout 80m -run 'Installed|DebianInitrd' -v ./qemu/

# Bytes of kernel and initramfs against the board's flash budget; fails
# when over (scripts/size).
size: payload
	@$(GOENV) $(GO) build -trimpath -buildvcs=false $(GCFLAGS) -ldflags '-buildid= -X main.version=$(VERSION)' $(TAGS) -o $(OUT)/bootinit.syms ./cmd/bootinit
	@scripts/size $(BOARD) $(DIAG) $(OUT)

# The diagnostics server's engines against net/http and nginx (wrk, loopback).
bench: bench-kdf bench-httpd

# Unlock time against cryptsetup on the host and in QEMU (scripts/bench-kdf).
bench-kdf: deps
	scripts/bench-kdf

bench-httpd: deps
	scripts/bench-httpd

# Every fuzz target for FUZZTIME each (default 60s).
fuzz:
	scripts/fuzz

clean:
	rm -rf build
