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
LDLIBS    += $(PKG_LIBS) -lelf -lz -lm -lpthread -lresolv

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

BINS := $(BUILD)/shoald $(BUILD)/shoalctl $(BUILD)/shoal-cni $(BUILD)/shoal-lbctl \
        $(BUILD)/shoal-netctl $(BUILD)/shoal-shim $(BUILD)/shoal-rtctl $(BUILD)/shoal-svc-drive \
        $(BUILD)/shoal-dnsd

.PHONY: all deps run test unit integration sim fuzz bench bench-api bench-store bench-pods bench-svc bench-gossip bench-sched clean format
all: $(BINS) $(BPF_OBJS) $(BUILD)/bench/api-load

deps:
	@./tools/install-deps

$(BUILD)/libshoal.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# V=1 shows full command lines
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c | $(BPF_SKELS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/shoald: $(BUILD)/obj/daemon/shoald.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/shoal-cni: $(BUILD)/obj/netplugin/shoal-cni.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# runtime: per-container supervisor and the runtime's test/debug driver (daemon/crun.h)
# started once per container: linked --as-needed, so it loads libc and little else
$(BUILD)/shoal-shim: $(BUILD)/obj/tools/shoal-shim.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

$(BUILD)/shoal-rtctl: $(BUILD)/obj/tools/shoal-rtctl.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# offline busybox:latest OCI image layout (import: shoal-rtctl ... image import $@)
$(BUILD)/images/busybox: tools/mkimage-busybox
	tools/mkimage-busybox $@

# services end-to-end test: a static TCP/UDP server and client (busybox nc has no UDP), and
# shoal-probe:latest = busybox + it
$(BUILD)/shoal-probe: tests/helpers/shoal-probe.c
	@mkdir -p $(@D)
	$(CC) -static -O2 -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<

$(BUILD)/images/shoal-probe: tools/mkimage-busybox $(BUILD)/shoal-probe
	IMAGE_NAME=shoal-probe EXTRA_BIN=$(BUILD)/shoal-probe tools/mkimage-busybox $@

# test/ops helper driving netplugin/ like the pod runtime does
$(BUILD)/shoal-netctl: $(BUILD)/obj/tests/helpers/shoal-netctl.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test/bench helper: the service proxy on a private store, driven by JSON lines
$(BUILD)/shoal-svc-drive: $(BUILD)/obj/tests/helpers/shoal-svc-drive.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test/debug driver for the cluster DNS server (daemon/dns.h) with the store, API, controllers
$(BUILD)/shoal-dnsd: $(BUILD)/obj/tests/helpers/shoal-dnsd.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/shoalctl: $(CTL_OBJS) $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# datapath driver for tests and debugging (programs services by hand until shoald does)
$(BUILD)/shoal-lbctl: $(BUILD)/obj/tools/shoal-lbctl.o $(BUILD)/libshoal.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- BPF: clang -> bpftool gen object -> bpftool gen skeleton ---
$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# clang writes exact header dependencies (-MD); keep the unlinked object so make does not
# rebuild the chain every time (.SECONDARY)
$(BUILD)/bpf/%.tmp.o: bpf/%.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -I. -Wall -Werror \
		-MD -MP -MF $(@:.tmp.o=.d) -MT $@ -c $< -o $@
.SECONDARY: $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.tmp.o)

$(BUILD)/bpf/%.bpf.o: $(BUILD)/bpf/%.tmp.o
	$(BPFTOOL) gen object $@ $<

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

# --- tests ---
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libshoal.a $(LDLIBS) -lcmocka

# shoalctl's pure parts (kubeconfig, resources, apply patch, tables) live in the tool, not in
# libshoal.a: its unit tests link the tool's objects except the one holding main()
CTL_LIB_OBJS := $(filter-out $(BUILD)/obj/tools/shoalctl/shoalctl.o,$(CTL_OBJS))
CTL_TEST_BINS := $(filter $(BUILD)/tests/test_shoalctl $(BUILD)/tests/test_shoalctl_%,$(UNIT_BINS))
$(CTL_TEST_BINS): $(BUILD)/tests/%: tests/unit/%.c $(CTL_LIB_OBJS) $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(CTL_LIB_OBJS) $(BUILD)/libshoal.a $(LDLIBS) -lcmocka

$(BUILD)/sim/shoal-sim: $(SIM_SRCS) $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	$(if $(SIM_SRCS),$(CC) $(CFLAGS) -o $@ $(SIM_SRCS) $(BUILD)/libshoal.a $(LDLIBS),touch $@)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# fixed seeds (controllers, gossip at 100 nodes; gossip at 1,000 nodes for the first), then a
# short random batch at 100 nodes that prints its seed when it fails
SIM_RANDOM ?= 2
sim: $(BUILD)/sim/shoal-sim
	@set -e; for s in $(or $(SEEDS),1 2 3); do $(BUILD)/sim/shoal-sim --seed $$s; done
	@$(BUILD)/sim/shoal-sim --seed $(firstword $(or $(SEEDS),1)) --only gossip --nodes 1000
	@for i in $$(seq $(SIM_RANDOM)); do s=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	  $(BUILD)/sim/shoal-sim --seed $$s --only gossip --nodes 100 --quick || \
	  { echo "sim: FAILED with random seed $$s: $(BUILD)/sim/shoal-sim --seed $$s --only gossip --nodes 100 --quick"; exit 1; }; done
	@set -e; for s in $(or $(SEEDS),1 2 3); do \
	  $(BUILD)/sim/shoal-sim --seed $$s --only repl --nodes 100 --quick; done
	@for i in $$(seq $(SIM_RANDOM)); do s=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	  $(BUILD)/sim/shoal-sim --seed $$s --only repl --nodes 100 --quick || \
	  { echo "sim: FAILED with random seed $$s: $(BUILD)/sim/shoal-sim --seed $$s --only repl --nodes 100 --quick"; exit 1; }; done

# replication (issue 11): the simulator's figures (write -> visible at 100 and 1,000 nodes,
# anti-entropy bytes), then a real devcluster's (docs/benchmarks.md)
.PHONY: bench-replication
bench-replication: all $(BUILD)/sim/shoal-sim $(BUILD)/images/busybox
	$(BUILD)/sim/shoal-sim --bench-replication $(BENCH_REPL_SIM_ARGS)
	$(PYTHON) tools/bench/bench_replication.py $(BENCH_REPL_ARGS)

# gossip membership: memberlist's LAN defaults vs Shoal's in the simulator (docs/benchmarks.md)
bench-gossip: $(BUILD)/sim/shoal-sim
	$(BUILD)/sim/shoal-sim --bench-gossip $(BENCH_GOSSIP_ARGS)

integration: all
	$(PYTHON) -m pytest -q --durations=30 tests/integration $(PYTEST_ARGS)

test: deps
	$(MAKE) all unit
	$(MAKE) sim
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)
	$(MAKE) clients
	$(MAKE) integration

# real, unmodified API clients for tests/integration (kubectl 1.33 + 1.20, client-node) under
# $(BUILD)/clients; a client that cannot be installed makes its tests skip with the reason.
.PHONY: clients
clients:
	@BUILD=$(BUILD) ./tools/install-clients

# the offline busybox image is imported into the node's image store at start (README example)
run: deps
	$(MAKE) all $(BUILD)/images/busybox
	$(BUILD)/shoald --image-preload $(BUILD)/images/busybox $(SHOALD_ARGS)

# libFuzzer targets: build with clang, lib sources compiled again with sanitizers
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu17 -D_GNU_SOURCE -I. -I$(BUILD) $(PKG_CFLAGS)
# the pure-logic sources only: the HTTP server and its store would pull in libevent/sched/
FUZZ_LIB_SRCS := $(wildcard lib/*.c) \
                 $(wildcard $(addprefix api/,selector.c patch.c validate.c table.c quantity.c))
FUZZ_SECONDS ?= 120
# `make test` runs every target briefly, a smoke test on the seeds and what it finds in that time
FUZZ_TEST_SECONDS ?= 20
# a target may list the sources it links (FUZZ_DEPS_<name>) instead of all of lib/ and api/
FUZZ_DEPS_fuzz_protobuf := $(wildcard lib/*.c) api/protobuf.c api/schema.c
FUZZ_DEPS_fuzz_dns := $(wildcard lib/*.c) daemon/dns_msg.c daemon/dns_zone.c
FUZZ_DEPS_fuzz_gossip := $(wildcard lib/*.c) sched/gossip_crypto.c sched/swim.c sched/swim_wire.c
.SECONDEXPANSION:
$(BUILD)/fuzz/%: tests/fuzz/%.c $$(or $$(FUZZ_DEPS_$$*),$(FUZZ_LIB_SRCS)) | $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(or $(FUZZ_DEPS_$*),$(FUZZ_LIB_SRCS)) $(LDLIBS)

fuzz: deps $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
	@set -e; for f in $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$(basename $$f); \
	  echo "== $$f ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -close_fd_mask=2 -max_len=65536 $(BUILD)/fuzz/corpus-$$(basename $$f) tests/fuzz/corpus; \
	done

bench: bench-api bench-pods bench-svc
# store and SQLite-floor benchmark (tools/bench/bench-store.c)
$(BUILD)/bench-store: tools/bench/bench-store.c $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libshoal.a $(LDLIBS)

bench-store: $(BUILD)/bench-store
	$(BUILD)/bench-store

# a receiver's store work per merged create (tools/bench/bench-merge.c)
$(BUILD)/bench-merge: tools/bench/bench-merge.c $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libshoal.a $(LDLIBS)

# placement on a simulated 1,000-node cluster and the admission over-commit race
# (tools/bench/bench-sched.c)
$(BUILD)/bench-sched: tools/bench/bench-sched.c $(BUILD)/libshoal.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libshoal.a $(LDLIBS)

bench-sched: $(BUILD)/bench-sched
	$(BUILD)/bench-sched

# the devcluster half: 200 pods on 5 nodes, kill -9 rounds (tools/bench/bench_sched_devcluster.py)
.PHONY: bench-sched-devcluster
bench-sched-devcluster: all $(BUILD)/images/busybox
	$(PYTHON) tools/bench/bench_sched_devcluster.py $(BENCH_SCHED_ARGS)

# service datapath: socket LB vs direct vs kube-proxy-style nft/iptables rulesets
$(BUILD)/bench/svc-load: tools/bench/svc_load.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -Werror -std=gnu17 -o $@ $<

# pipelined API requests on a node's unix socket: the creates of bench-api and bench-replication
# (in all: the benchmarks run it by default)
$(BUILD)/bench/api-load: tools/bench/api_load.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra -Werror -std=gnu17 -o $@ $<

# the floor of any socket LB: one hash lookup in cgroup/connect4 (loaded with bpftool)
$(BUILD)/bench/floor.bpf.o: tools/bench/floor.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -Wall -Werror -c $< -o $@

bench-svc: $(BUILD)/shoal-svc-drive $(BUILD)/bench/svc-load $(BUILD)/bench/floor.bpf.o
	$(PYTHON) tools/bench/bench_svc.py $(BENCH_SVC_ARGS)

bench-api: all $(BUILD)/bench-store
	$(PYTHON) tools/bench/bench_api.py

# pods on real crun (issues 3 and 5): create -> Running, 50 at once, idle cost, rolling update
bench-pods: all $(BUILD)/images/busybox
	$(PYTHON) tools/bench/bench_pods.py $(BENCH_ARGS)

# crash detection end to end on a real 5-node devcluster (issue 10; the simulator's figures are
# bench-gossip's)
.PHONY: bench-gossip-devcluster
bench-gossip-devcluster: all $(BUILD)/images/busybox
	$(PYTHON) tools/bench/bench_gossip_devcluster.py $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD)/obj $(BUILD)/bpf -name '*.d' 2>/dev/null)
