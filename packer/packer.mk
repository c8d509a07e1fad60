# packer/packer.mk: the appliance image's targets, included by the top-level
# GNUmakefile (`include packer/packer.mk`). Paths are relative to the
# repository root, where make runs.
#
#   make packer-check   template, scripts, units and first-boot script checks
#                       (offline, installs nothing; part of `make test`)
#   make image          build the qemu image packer/.build/image/*.qcow2
#                       (PACKER_ONLY=sallyport.amazon-ebs.sallyport etc. for a cloud)
#   make image-test     build the qemu image, boot it under qemu, check it
#                       from the host (slow: not part of `make test`)
#
# The tools come from packer/install-tools.sh (Debian packages).

PACKER ?= packer
SHELLCHECK ?= shellcheck
SYSTEMD_ANALYZE ?= systemd-analyze
GO ?= go

PACKER_DIR := packer
PACKER_BUILD := $(PACKER_DIR)/.build
# Highest `systemd-analyze security` exposure sallyportd.service may have.
UNIT_EXPOSURE_MAX ?= 2.0
# Passed to `packer build -only`: BUILD.SOURCE_TYPE.SOURCE_NAME, e.g.
# PACKER_ONLY=sallyport.amazon-ebs.sallyport (Packer 1.6.6 needs the build
# name in front).
PACKER_ONLY ?= sallyport.qemu.sallyport
# Extra `packer build` flags, e.g. PACKER_FLAGS="-var aws_region=eu-west-1".
PACKER_FLAGS ?=
# The version stamped into the image (the GNUmakefile's VERSION when it is a
# semantic version, else 0.0.0-dev).
IMAGE_VERSION ?= $(or $(shell printf '%s' '$(VERSION)' | grep -E '^v?[0-9]+\.[0-9]+\.[0-9]+' | sed 's/^v//'),0.0.0-dev)
# kvm where /dev/kvm works; these machines have none, so tcg by default.
QEMU_ACCELERATOR ?= tcg
# The binary baked into the image: built from this tree into the build
# directory (not bin/, which `make clean` removes), unless SALLYPORTD_BINARY
# names one built elsewhere.
SALLYPORTD_BINARY ?= $(PACKER_BUILD)/sallyportd

PACKER_SCRIPTS := $(wildcard $(PACKER_DIR)/scripts/*.sh $(PACKER_DIR)/test/*.sh) \
	$(PACKER_DIR)/run-packer.sh $(PACKER_DIR)/install-tools.sh

.PHONY: packer-check packer-fmt-check packer-validate packer-shellcheck packer-unit-check packer-firstboot-test
packer-check: packer-fmt-check packer-validate packer-shellcheck packer-unit-check packer-firstboot-test ## check the appliance image template, scripts and units

packer-fmt-check:
	$(PACKER) fmt -check -diff $(PACKER_DIR)

# Validates every source and provisioner with stand-ins for the inputs a
# build makes (binary, SSH key, seed): see run-packer.sh for why Packer 1.6.6
# validates the template without plugins.pkr.hcl.
packer-validate:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	touch "$$tmp/sallyportd" "$$tmp/user-data" "$$tmp/meta-data" "$$tmp/base.qcow2"; \
	ssh-keygen -q -t ed25519 -N '' -C packer-validate -f "$$tmp/key"; \
	PACKER=$(PACKER) bash $(PACKER_DIR)/run-packer.sh validate \
		-var sallyportd_binary="$$tmp/sallyportd" \
		-var qemu_ssh_private_key_file="$$tmp/key" \
		-var qemu_seed_directory="$$tmp" \
		-var qemu_base_image="$$tmp/base.qcow2" \
		-var qemu_output_directory="$$tmp/image"

packer-shellcheck:
	$(SHELLCHECK) $(PACKER_SCRIPTS)

# --threshold is in tenths: the check fails above UNIT_EXPOSURE_MAX.
packer-unit-check:
	@out=$$($(SYSTEMD_ANALYZE) security --offline=true --no-pager \
		--threshold=$$(awk 'BEGIN { printf "%d", $(UNIT_EXPOSURE_MAX) * 10 }') \
		$(PACKER_DIR)/files/sallyportd.service 2>&1) || { \
		printf '%s\n' "$$out" | grep -E '✗|Overall' >&2; \
		echo "sallyportd.service: exposure above $(UNIT_EXPOSURE_MAX)" >&2; exit 1; }; \
	printf '%s\n' "$$out" | grep 'Overall exposure' | sed 's/^→ //'

packer-firstboot-test:
	$(GO) test -count=1 ./$(PACKER_DIR)/

# ---------------------------------------------------------------------------
# Building and booting the image
# ---------------------------------------------------------------------------

.PHONY: image image-base image-seed image-test image-clean

# The Debian base disk of the qemu source (kept between builds).
image-base:
	bash $(PACKER_DIR)/test/mkbase.sh $(PACKER_BUILD)/base

# The build VM's cloud-init seed: Debian's default user with a build-only
# SSH key; 90-cleanup.sh removes the key from the image.
image-seed:
	@mkdir -p $(PACKER_BUILD)/build-seed
	@[ -f $(PACKER_BUILD)/build-key ] || ssh-keygen -q -t ed25519 -N '' -C sallyport-image-build -f $(PACKER_BUILD)/build-key
	@printf '#cloud-config\nssh_authorized_keys:\n  - %s\n' "$$(cat $(PACKER_BUILD)/build-key.pub)" >$(PACKER_BUILD)/build-seed/user-data
	@printf 'instance-id: sallyport-image-build\nlocal-hostname: sallyport-build\n' >$(PACKER_BUILD)/build-seed/meta-data

image: $(if $(filter %qemu.sallyport,$(PACKER_ONLY)),image-base image-seed) ## build the appliance image (qemu by default; PACKER_ONLY=sallyport.amazon-ebs.sallyport ...)
	$(if $(filter $(PACKER_BUILD)/sallyportd,$(SALLYPORTD_BINARY)),GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(RELEASE_LDFLAGS)' -o $(SALLYPORTD_BINARY) ./appliance/cmd/sallyportd)
	test -x $(SALLYPORTD_BINARY)
	@grep -aq NOTIFY_SOCKET $(SALLYPORTD_BINARY) || echo "WARNING: $(SALLYPORTD_BINARY) does not implement sd_notify; sallyportd.service is Type=notify and will not become active" >&2
	rm -rf $(PACKER_BUILD)/image
	PACKER=$(PACKER) PACKER_LOG=$(PACKER_LOG) bash $(PACKER_DIR)/run-packer.sh build -only=$(PACKER_ONLY) \
		-var version=$(IMAGE_VERSION) \
		-var sallyportd_binary=$(SALLYPORTD_BINARY) \
		-var qemu_accelerator=$(QEMU_ACCELERATOR) \
		$(PACKER_FLAGS)

image-test: image ## build the qemu image, boot it under qemu and check the admin API from the host (slow)
	bash $(PACKER_DIR)/test/image-test.sh $(PACKER_BUILD)

image-clean:
	rm -rf $(PACKER_BUILD)
