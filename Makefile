# SPDX-License-Identifier: Apache-2.0
# Shoal: one non-recursive Makefile. Every non-main C file goes into build/libshoal.a so tests
# link the same objects as the binaries.

BUILD     ?= build
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
PYTHON    ?= /usr/bin/python3
PKGS      := libbpf libevent libevent_openssl libevent_pthreads libfyaml libcjson libnftnl libmnl \
             libnl-route-3.0 sqlite3 libsodium libcurl libarchive openssl libcap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu17 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
             -fno-strict-aliasing -D_GNU_SOURCE -I. -I$(BUILD) $(PKG_CFLAGS)
LDLIBS    += $(PKG_LIBS) -lelf -lz -lm -lpthread

# entry points: daemon/shoald.c, netplugin/shoal-cni.c, tools/shoalctl/*.c; BPF: bpf/*.bpf.c
LIB_SRCS  := $(filter-out %.bpf.c daemon/shoald.c netplugin/shoal-cni.c, \
               $(wildcard lib/*.c api/*.c sched/*.c daemon/*.c netplugin/*.c bpf/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_SRCS  := $(wildcard tools/shoalctl/*.c)
CTL_OBJS  := $(CTL_SRCS:%.c=$(BUILD)/obj/%.o)
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
BPF_SKELS := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/%.skel.h)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
SIM_SRCS  := $(wildcard tests/sim/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)

BINS := $(BUILD)/shoald $(BUILD)/shoalctl $(BUILD)/shoal-cni

.PHONY: all deps run test unit integration sim fuzz bench bench-api bench-pods bench-svc clean format
all: $(BINS) $(BPF_OBJS)

deps:
	@./tools/install-deps

$(BUILD)/libshoal.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/obj/%.o: %.c | $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/shoald: $(BUILD)/obj/daemon/shoald.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/shoal-cni: $(BUILD)/obj/netplugin/shoal-cni.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/shoalctl: $(CTL_OBJS) $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- BPF: clang -> bpftool gen object -> bpftool gen skeleton ---
$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.tmp.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/*.h bpf/lib/*.h)
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -I. -Wall -Werror -c $< -o $@

$(BUILD)/bpf/%.bpf.o: $(BUILD)/bpf/%.tmp.o
	$(BPFTOOL) gen object $@ $<

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

# --- tests ---
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libshoal.a $(LDLIBS) -lcmocka

$(BUILD)/sim/shoal-sim: $(SIM_SRCS) $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	$(if $(SIM_SRCS),$(CC) $(CFLAGS) -o $@ $(SIM_SRCS) $(BUILD)/libshoal.a $(LDLIBS),touch $@)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

sim: $(BUILD)/sim/shoal-sim
	@if [ -n "$(SIM_SRCS)" ]; then $(BUILD)/sim/shoal-sim --seed 1; fi

integration: all
	$(PYTHON) -m pytest -q -x tests/integration $(PYTEST_ARGS)

test: deps
	$(MAKE) all unit
	$(MAKE) sim
	$(MAKE) integration

run: deps
	$(MAKE) all
	$(BUILD)/shoald $(SHOALD_ARGS)

# libFuzzer targets: build with clang, lib sources compiled again with sanitizers
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu17 -D_GNU_SOURCE -I. -I$(BUILD) $(PKG_CFLAGS)
# the pure-logic sources only: the HTTP server and its store would pull in libevent/sched/
FUZZ_LIB_SRCS := $(wildcard lib/*.c) \
                 $(wildcard $(addprefix api/,selector.c patch.c validate.c table.c quantity.c))
FUZZ_SECONDS ?= 120
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS) | $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRCS) $(LDLIBS)

fuzz: deps $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
	@set -e; for f in $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$(basename $$f); \
	  echo "== $$f ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $(BUILD)/fuzz/corpus-$$(basename $$f) tests/fuzz/corpus; \
	done

bench: bench-api
bench-api: all
	$(PYTHON) tools/bench/bench_api.py

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
