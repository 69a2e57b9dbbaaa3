# dsr — build, test and run.  GNU make.
#
#   make deps        install the Debian packages the build needs (idempotent)
#   make             build libdsr.a and every program into $(BUILD)/
#   make test        build and run the whole test suite
#   make test-asan   the same tests built with -fsanitize=address,undefined,float-cast-overflow
#   make run         deps + build dsrd, dsr, dsr-train + start dsrd on its embedded default model
#   make bench       benchmarks (not a test; prints measured ratios)
#   make test-image  proves the Dockerfile recipe in debootstrap chroots (root, network)

BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
# Extra code-generation flags, e.g. ARCH=-march=native for a local benchmark build.
ARCH     ?=
SANFLAGS ?=

DEB_PACKAGES = build-essential pkg-config libopenblas-openmp-dev libjansson-dev \
               libmicrohttpd-dev libpng-dev libjpeg62-turbo-dev uuid-dev libpcre2-dev \
               libcurl4-openssl-dev libicu-dev python3 python3-yaml curl ca-certificates

PKGS      = openblas jansson libpng libjpeg libpcre2-8 icu-uc
# OpenBLAS's OpenMP build, whichever variant Debian's alternatives select:
# its GEMMs then run on the same libgomp team as dsr's own loops (one pool
# of threads on the cores, not two spinning against each other; measured in
# bench/README.md "Threading"), found at run time through the rpath.
COMMA := ,
MULTIARCH  := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_OMP_PC := /usr/lib/$(MULTIARCH)/openblas-openmp/pkgconfig
PKG_CONFIG_BLAS := $(if $(wildcard $(OPENBLAS_OMP_PC)/openblas.pc),PKG_CONFIG_PATH=$(OPENBLAS_OMP_PC))
OPENBLAS_LIBDIR := $(shell $(PKG_CONFIG_BLAS) pkg-config --variable=libdir openblas 2>/dev/null)
PKG_CFLAGS := $(shell $(PKG_CONFIG_BLAS) pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG_BLAS) pkg-config --libs $(PKGS) 2>/dev/null) \
              $(OPENBLAS_LIBDIR:%=-Wl$(COMMA)-rpath$(COMMA)%)
# The daemon (HTTP, request ids) and the HTTP API tests (client).
SERVER_PKGS = libmicrohttpd uuid
SERVER_CFLAGS := $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null)
SERVER_LIBS   := $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null)
CURL_CFLAGS   := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS     := $(shell pkg-config --libs libcurl 2>/dev/null)

CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
          -Wall -Wextra -Werror -g $(OPT) $(ARCH) -fopenmp $(SANFLAGS) \
          $(INCLUDES) $(PKG_CFLAGS) $(SERVER_CFLAGS) $(CURL_CFLAGS)
# Include paths enforce the layering: core/ sees only core/ (headers named
# by folder, "nn/ops.h"), proto/ also proto/, the rest everything.
INCLUDES = -Icore -Iproto -Iserver
# libmvec: glibc's vector math (core/nn/vec_math.c), part of libc6 on x86-64.
MVEC    = $(if $(filter x86_64,$(shell uname -m)),-lmvec)
LDLIBS  = $(PKG_LIBS) $(MVEC) -lm -lpthread -fopenmp $(SANFLAGS)

CORE_SRC  := $(wildcard core/*/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
$(CORE_OBJ): INCLUDES = -Icore
LIB       := $(BUILD)/libdsr.a

# proto/: request decoding/validation and response encoding (jansson).
PROTO_SRC := $(wildcard proto/*.c)
PROTO_OBJ := $(PROTO_SRC:%.c=$(BUILD)/%.o)
$(PROTO_OBJ): INCLUDES = -Icore -Iproto
PROTO_LIB := $(BUILD)/libdsrproto.a

# server/: the dsrd daemon.
SERVER_SRC := $(wildcard server/*.c)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
DSRD       := $(BUILD)/dsrd

# tests/ mirrors the layout (tests/core/nn/, tests/server/, ...); the
# shared test support is tests/support/.
TEST_SRC  := $(wildcard tests/*/test_*.c tests/core/*/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
$(BUILD)/tests/%.o: INCLUDES = -Icore -Iproto -Iserver -Itests/support
HARNESS_OBJ := $(BUILD)/tests/support/harness.o $(BUILD)/tests/support/tiny_fixture.o
# HTTP API tests (tests/server/test_api*.c) also link the dsrd process/client helpers.
API_SUPPORT_OBJ := $(BUILD)/tests/support/api_support.o

TOOL_SRC  := $(wildcard tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)

# bench/bench_*.c are programs; any other bench/*.c is a helper linked into each.
BENCH_MAIN := $(wildcard bench/bench_*.c)
BENCH_BIN  := $(BENCH_MAIN:bench/%.c=$(BUILD)/bench/%)
BENCH_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(BENCH_MAIN),$(wildcard bench/*.c)))

.PHONY: all deps test test-asan test-slow run clean bench bench-deps
all: $(LIB) $(PROTO_LIB) $(DSRD) $(TEST_BIN) $(TOOL_BIN) $(BENCH_BIN)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

# V=1 shows full command lines.
Q = $(if $(V),,@)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,printf '  CC    %s\n' $<)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The shipped default model (models/shapes/dsr-shapes, `make default-model`)
# compiled into libdsr.a: `ld -r -b binary` makes an object whose symbols
# _binary_<file>_start/_end core/model/default_model.c reads; the weights come first
# so the section's 64-byte alignment is theirs.
DEFAULT_MODEL_DIR   := models/shapes/dsr-shapes
DEFAULT_MODEL_FILES := model.safetensors config.json tokenizer.json generation_config.json \
                       preprocessor_config.json eval.json
DEFAULT_MODEL_OBJ   := $(BUILD)/default_model_blob.o
$(DEFAULT_MODEL_OBJ): $(addprefix $(DEFAULT_MODEL_DIR)/,$(DEFAULT_MODEL_FILES))
	@mkdir -p $(dir $@)
	@$(if $(V),,printf '  BLOB  %s\n' $@)
	$(Q)cd $(DEFAULT_MODEL_DIR) && ld -r -b binary -z noexecstack -o $(abspath $@) $(DEFAULT_MODEL_FILES)
	$(Q)objcopy --rename-section .data=.rodata,alloc,load,readonly,data,contents \
	        --set-section-alignment .rodata=64 $@

$(LIB): $(CORE_OBJ) $(DEFAULT_MODEL_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,printf '  AR    %s\n' $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(PROTO_LIB): $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,printf '  AR    %s\n' $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# proto/openapi.yaml as a C string, served by dsrd at GET /openapi.yaml.
OPENAPI_OBJ := $(BUILD)/gen/openapi_doc.o
$(BUILD)/gen/openapi_doc.c: proto/openapi.yaml
	@mkdir -p $(dir $@)
	$(Q){ echo 'const char dsr_openapi_yaml[] = {'; od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0x00};'; } > $@.tmp && mv $@.tmp $@
$(OPENAPI_OBJ): $(BUILD)/gen/openapi_doc.c
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# server/ui/: the web page dsrd serves at / and /ui/NAME, compiled in.  The
# stamp changes when a file is added or removed, so the table is rewritten.
UI_FILES := $(sort $(wildcard server/ui/*.html server/ui/*.css server/ui/*.js server/ui/*.svg))
UI_OBJ   := $(BUILD)/gen/ui_assets.o
$(BUILD)/gen/ui_files.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(UI_FILES)' | cmp -s - $@ || echo '$(UI_FILES)' > $@
$(BUILD)/gen/ui_assets.c: $(UI_FILES) tools/embed_ui.sh $(BUILD)/gen/ui_files.stamp
	@mkdir -p $(dir $@)
	$(Q)tools/embed_ui.sh $(UI_FILES) > $@.tmp && mv $@.tmp $@
$(UI_OBJ): $(BUILD)/gen/ui_assets.c
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The release (VERSION) and commit go into core/base/version.c only; the stamp
# changes when the commit does, so a new commit recompiles that one file.
DSR_VERSION := $(shell cat VERSION 2>/dev/null || echo unknown)
DSR_COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
$(BUILD)/core/base/version.o: CFLAGS += -DDSR_VERSION='"$(DSR_VERSION)"' -DDSR_COMMIT='"$(DSR_COMMIT)"'
$(BUILD)/core/base/version.o: $(BUILD)/commit.stamp VERSION
$(BUILD)/commit.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(DSR_VERSION) $(DSR_COMMIT)' | cmp -s - $@ || echo '$(DSR_VERSION) $(DSR_COMMIT)' > $@
.PHONY: FORCE
FORCE:

$(DSRD): $(SERVER_OBJ) $(OPENAPI_OBJ) $(UI_OBJ) $(PROTO_LIB) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS) $(SERVER_LIBS)

# tests/server/test_api*: a static pattern rule, which takes precedence over the rule below.
API_TEST_BIN := $(filter $(BUILD)/tests/server/test_api%,$(TEST_BIN))
$(API_TEST_BIN): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(API_SUPPORT_OBJ) $(HARNESS_OBJ) $(PROTO_LIB) $(LIB) | $(DSRD)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $(filter %.o %.a,$^) $(LDLIBS) $(CURL_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(HARNESS_OBJ) $(PROTO_LIB) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/tools/%.o $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BENCH_OBJ) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS)

# clients/: the C client library (libcurl + jansson; base64 from proto/) in
# libdsrclient.a; the
# `dsr` CLI and `dsr-train` trainer, whose modules (all but main.c) also go
# into libdsrapps.a so the tests can link them.  Tests named test_client*
# link both and run against real dsrd processes.
CURL_PKG_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_PKG_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null)
CLIENT_SRC  := $(wildcard clients/c/*.c)
CLIENT_OBJ  := $(CLIENT_SRC:%.c=$(BUILD)/%.o)
CLIENT_LIB  := $(BUILD)/libdsrclient.a
APPS_SRC    := $(filter-out %/main.c,$(wildcard clients/cli/*.c clients/trainer/*.c))
APPS_OBJ    := $(APPS_SRC:%.c=$(BUILD)/%.o)
APPS_LIB    := $(BUILD)/libdsrapps.a
DSR_CLI     := $(BUILD)/dsr
DSR_TRAIN   := $(BUILD)/dsr-train
CLIENT_INC  := -Iclients/c -Iclients/cli -Iclients/trainer $(CURL_PKG_CFLAGS)
CLIENT_SUPPORT_OBJ := $(BUILD)/tests/support/client_support.o

all: $(CLIENT_LIB) $(DSR_CLI) $(DSR_TRAIN)

$(BUILD)/clients/%.o: CFLAGS += $(CLIENT_INC)
$(BUILD)/tests/clients/%.o $(CLIENT_SUPPORT_OBJ): CFLAGS += $(CLIENT_INC)

$(CLIENT_LIB): $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(APPS_LIB): $(APPS_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(DSR_CLI): $(BUILD)/clients/cli/main.o $(APPS_LIB) $(CLIENT_LIB) $(PROTO_LIB) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(CURL_PKG_LIBS) $(LDLIBS)

$(DSR_TRAIN): $(BUILD)/clients/trainer/main.o $(APPS_LIB) $(CLIENT_LIB) $(PROTO_LIB) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(CURL_PKG_LIBS) $(LDLIBS)

# More specific than $(BUILD)/tests/%, so make prefers it for tests/clients/.
$(BUILD)/tests/clients/test_%: $(BUILD)/tests/clients/test_%.o $(CLIENT_SUPPORT_OBJ) $(HARNESS_OBJ) $(APPS_LIB) $(CLIENT_LIB) $(PROTO_LIB) $(LIB) | $(DSR_CLI) $(DSR_TRAIN)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $(filter %.o %.a,$^) $(CURL_PKG_LIBS) $(LDLIBS)

# fuzz/: libFuzzer targets over the decoders.  tests/fuzz/test_fuzz_corpus
# replays their seed corpora and regression inputs with the ordinary
# compiler (so make test and make test-asan cover them); make fuzz builds
# the targets with clang's libFuzzer and runs each for FUZZ_SECONDS.
FUZZ_SRC     := $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRC:fuzz/fuzz_%.c=%)
FUZZ_SUPPORT := $(BUILD)/server/idempotency.o
$(BUILD)/fuzz/%.o $(BUILD)/tests/fuzz/test_fuzz_corpus.o: CFLAGS += -Ifuzz
$(BUILD)/tests/fuzz/test_fuzz_corpus: $(BUILD)/tests/fuzz/test_fuzz_corpus.o $(FUZZ_SRC:%.c=$(BUILD)/%.o) $(FUZZ_SUPPORT) $(HARNESS_OBJ) $(PROTO_LIB) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS)

# tools/soak: the soak test (make soak), a client of dsrd like the API tests.
$(BUILD)/tools/soak.o: CFLAGS += -Itests/support
$(BUILD)/tools/soak: $(BUILD)/tools/soak.o $(API_SUPPORT_OBJ) $(HARNESS_OBJ) $(PROTO_LIB) $(LIB)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS) $(CURL_LIBS)

# Installs what is missing, builds, runs every test (tests/*/test_*.py, the
# default-model recipe's PyTorch code against the fixtures, need
# python3-torch; tests/server/test_ui_browser drives the web page in Debian's
# chromium, headless).
TEST_DEB_PACKAGES = python3-torch python3-numpy chromium

test:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(TEST_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory all
	@tests/run.sh $(BUILD)

# The sanitizer build: ASan, UBSan and (not part of GCC's "undefined")
# float-to-integer overflow, every finding fatal.
ASAN_FLAGS = -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined,float-cast-overflow

test-asan:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(TEST_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SANFLAGS="$(ASAN_FLAGS)" all
	@ASAN_OPTIONS=detect_leaks=1 tests/run.sh build/asan

# Soak test, not a CI gate: dsrd on janus-tiny under SOAK_CLIENTS keep-alive
# clients mixing every route (updates, checkpoints, reloads, deliberate
# errors) plus SOAK_SLOW slow connections for SOAK_SECONDS, twice: the
# release build (fails on any unexpected error, /health p99 >= 100 ms or RSS
# growth >= 10% after warm-up), then the ASan/UBSan build (the same, bar RSS,
# plus any sanitizer report; ASan's allocator keeps freed size classes
# mapped, so its RSS is reported only; tools/soak.c).  A small ASan
# quarantine keeps that build's memory modest.  OMP_WAIT_POLICY=passive:
# with libgomp's default (what the image and the unit now run) a 600 s
# release soak served 1.7x the requests but its RSS swung 39-51 MiB and
# ended 10.9% above the warm mark (passive: flat, +1.7%), 2026-12-02; not
# yet explained (RSS fell back mid-run, so churn rather than a leak).
SOAK_SECONDS ?= 600
SOAK_CLIENTS ?= 64
SOAK_SLOW    ?= 200
SOAK_ARGS     = --seconds $(SOAK_SECONDS) --clients $(SOAK_CLIENTS) --slow $(SOAK_SLOW)
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory build/dsrd build/tools/soak
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SANFLAGS="$(ASAN_FLAGS)" \
	  build/asan/dsrd build/asan/tools/soak
	OMP_WAIT_POLICY=passive build/tools/soak $(SOAK_ARGS)
	ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16:thread_local_quarantine_size_kb=64:allocator_release_to_os_interval_ms=1000 \
	  OMP_WAIT_POLICY=passive \
	  build/asan/tools/soak $(SOAK_ARGS) --rss-limit off

# Starts dsrd on its embedded default model, dsr-shapes (DSR_* env vars and
# ARGS="--port 9000 ..." pass options); builds the CLI and trainer too: the
# quick start's next commands use build/dsr.
run: deps
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	$(DSRD) $(ARGS)

# Long-running checks kept out of the ASan run (e.g. the full Janus-Pro-1B shape).
test-slow: all
	$(BUILD)/tools/janus_pro_shape --weights-dtype f32
	$(BUILD)/tools/janus_pro_shape --weights-dtype bf16 --decode 16 --lora-rank 16

# Janus-Pro-7B's shape (random BF16 weights, LoRA r=16): load, score, decode
# and a LoRA update within this machine's memory; ~30 minutes on 2 cores.
.PHONY: test-slow-7b
test-slow-7b: all
	$(BUILD)/tools/janus_pro_shape --shape 7b --weights-dtype bf16 --decode 8 --lora-rank 16 --und 1 --gen 1

# The container image's two stages built and started in debootstrap chroots
# (no Docker engine needed); needs root and the Debian mirror; ~2-5 minutes.
.PHONY: test-image
test-image:
	@deploy/test-image.sh

# Benchmarks: not a test, not a gate.  Writes bench/results.json and prints a
# table of measured ratios (see bench/README.md).  bench-deps adds wrk and the
# PyTorch CPU peer (python3-torch), which the main deps do not need.
BENCH_DEB_PACKAGES = wrk python3-torch python3-numpy

bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(BENCH_DEB_PACKAGES)"

bench: deps
	@$(MAKE) --no-print-directory all
	python3 bench/run_bench.py --build $(BUILD) --out bench/results.json

# The default model (models/shapes/README.md).  default-model trains it from
# scratch with PyTorch (about 2.3 h on 2 cores; RECIPE_ARGS="--codebook 256 --vq-scale 1 --lm-steps 1800 --snapshot-at 600"
# also exports the DSR experiment's start point); eval-default scores the embedded
# default through dsrd's API (EVAL_ARGS="--model DIR" for another).
.PHONY: default-model eval-default ship-default-model
default-model:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(TEST_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 tests/models/test_janus_torch.py
	/usr/bin/python3 models/shapes/recipe.py --work $(BUILD)/default-model $(RECIPE_ARGS)

eval-default: deps
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI)
	python3 models/shapes/evaluate.py --out $(BUILD)/eval-default.json $(EVAL_ARGS)

# Makes CHECKPOINT the embedded default: CFG scale (and with SHIP_ARGS=
# "--temperature-sweep 1,0.9,..." the sampling temperature) chosen on validation,
# copied into models/shapes/dsr-shapes, measured on the test split.
CHECKPOINT ?= $(BUILD)/default-model/checkpoint
ship-default-model: deps
	python3 models/shapes/ship.py --checkpoint $(CHECKPOINT) $(SHIP_ARGS)

# The third to sixth studies start from the supervised dsr-shapes-vq1024
# (the shipped default is that model after RL): from git history, or from
# make default-model, which reproduces it byte for byte.
SUPERVISED_COMMIT = 58437ff
SUPERVISED = $(BUILD)/dsr-shapes-vq1024
$(SUPERVISED)/model.safetensors:
	rm -rf $(SUPERVISED).tmp && mkdir -p $(SUPERVISED).tmp
	if git cat-file -e $(SUPERVISED_COMMIT) 2>/dev/null; then \
	    for f in $$(git ls-tree --name-only $(SUPERVISED_COMMIT) models/shapes/dsr-shapes/); do \
	        git show $(SUPERVISED_COMMIT):$$f > $(SUPERVISED).tmp/$$(basename $$f) || exit 1; done; \
	elif [ -f $(BUILD)/default-model/checkpoint/model.safetensors ]; then \
	    cp $(BUILD)/default-model/checkpoint/* $(SUPERVISED).tmp/; \
	else echo "no git history with commit $(SUPERVISED_COMMIT): run make default-model first" >&2; exit 1; fi
	rm -rf $(SUPERVISED) && mv $(SUPERVISED).tmp $(SUPERVISED)

# The DSR experiment (experiments/dsr-shapes/README.md): the whole matrix
# from the committed base checkpoint (resumable), or a CI-sized smoke run.
.PHONY: experiment experiment-from-default experiment-batch16 experiment-frozen-judge experiment-longer16 experiment-smoke
EXPERIMENT_DEB_PACKAGES = python3-matplotlib
EXPERIMENT_ARGS ?= --select-lr 1e-5,3e-5,1e-4
experiment:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(EXPERIMENT_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	python3 experiments/dsr-shapes/run.py $(EXPERIMENT_ARGS)
	/usr/bin/python3 experiments/dsr-shapes/report.py

# The same matrix from the supervised default of the time, its rollouts at
# the served CFG (experiments/dsr-shapes/RESULTS.md, third study), then one longer
# GRPO-dual run whose step is chosen on validation (longer.py).
experiment-from-default: $(SUPERVISED)/model.safetensors
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(EXPERIMENT_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	python3 experiments/dsr-shapes/run.py --base $(SUPERVISED) --rollout-cfg served --out $(BUILD)/experiment-default $(EXPERIMENT_ARGS)
	/usr/bin/python3 experiments/dsr-shapes/report.py --out $(BUILD)/experiment-default --dest experiments/dsr-shapes/from-default --no-weights
	/usr/bin/python3 experiments/dsr-shapes/longer.py --base $(SUPERVISED) --matrix $(BUILD)/experiment-default --out $(BUILD)/experiment-longer

# The fourth study (experiments/dsr-shapes/README.md): 16 images and 16
# prompts a step, GRPO-dual against the shuffled control.
experiment-batch16: $(SUPERVISED)/model.safetensors
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(EXPERIMENT_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	python3 experiments/dsr-shapes/run.py --base $(SUPERVISED) --rollout-cfg served --batch 16 --select-lr 3e-5,1e-4 --runs base,grpo_dual,shuffled --out $(BUILD)/experiment-batch16
	/usr/bin/python3 experiments/dsr-shapes/report.py --out $(BUILD)/experiment-batch16 --dest experiments/dsr-shapes/from-default-batch16 --no-weights

# The fifth study (experiments/dsr-shapes/README.md): the fourth's settings
# with the rewards from a frozen copy of the start checkpoint; reuses the
# fourth's base and grpo_dual records when $(BUILD)/experiment-batch16 has them.
experiment-frozen-judge: $(SUPERVISED)/model.safetensors
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(EXPERIMENT_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	python3 experiments/dsr-shapes/run.py --base $(SUPERVISED) --rollout-cfg served --batch 16 --lr 1e-4 --runs base,grpo_dual,frozen_judge --out $(BUILD)/experiment-batch16
	/usr/bin/python3 experiments/dsr-shapes/report.py --out $(BUILD)/experiment-batch16 --dest experiments/dsr-shapes/from-default-frozen-judge --no-weights

# The sixth study (experiments/dsr-shapes/README.md): the fourth's GRPO-dual
# for 400 steps, the step chosen on 500 validation scenes (longer.py).
experiment-longer16: $(SUPERVISED)/model.safetensors
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(EXPERIMENT_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	python3 experiments/dsr-shapes/run.py --base $(SUPERVISED) --rollout-cfg served --batch 16 --lr 1e-4 --runs base --out $(BUILD)/experiment-longer16/matrix
	/usr/bin/python3 experiments/dsr-shapes/longer.py --base $(SUPERVISED) --matrix $(BUILD)/experiment-longer16/matrix \
	    --out $(BUILD)/experiment-longer16 --steps 400 --every 40 --n-select 500 --dest experiments/dsr-shapes/longer-batch16

experiment-smoke:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(EXPERIMENT_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(DSRD) $(DSR_CLI) $(DSR_TRAIN)
	python3 experiments/dsr-shapes/run.py --smoke
	/usr/bin/python3 experiments/dsr-shapes/longer.py --base experiments/dsr-shapes/base \
	    --matrix $(BUILD)/experiment-smoke --out $(BUILD)/experiment-longer-smoke --steps 2 --every 1 --n-select 8

# libFuzzer builds (clang; Debian's clang package) in build/libfuzzer: every
# object of libdsr, libdsrproto and the idempotency records, instrumented.
FUZZ_CC     ?= clang
FUZZ_OUT    := build/libfuzzer
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DDSR_LIBFUZZER -Wall -Wextra -Wno-pass-failed \
               -g -O1 -fopenmp \
               -fsanitize=fuzzer-no-link $(FUZZ_SAN) -Icore -Iproto -Iserver -Ifuzz $(PKG_CFLAGS)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(CORE_SRC) $(PROTO_SRC) server/idempotency.c)
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_OUT)/fuzz_%)
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,printf '  CLANG %s\n' $<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

# kept between runs (they are intermediate to make)
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_NAMES:%=$(FUZZ_OUT)/obj/fuzz/fuzz_%.o)

$(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/obj/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ) | $(DEFAULT_MODEL_OBJ)
	@$(if $(V),,printf '  LD    %s\n' $@)
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -fopenmp -o $@ $^ $(DEFAULT_MODEL_OBJ) $(PKG_LIBS) $(MVEC) -lm -lpthread

.PHONY: fuzz fuzz-smoke fuzz-deps
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) clang"

# Runs every target for FUZZ_SECONDS (default 60), FUZZ_JOBS at once (default
# 1; each takes a core), from fuzz/corpus/<name>;
# new inputs go to build/libfuzzer/corpus/<name>, crashes to
# build/libfuzzer/artifacts/ (copy one into fuzz/regressions/<name>/ once fixed).
fuzz: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@fuzz/run.sh $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_NAMES)

# What CI runs: 20 s per target.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
