# weft - build, test, demo.
#   make            libraries, examples, build/weft-bench, build/weft-train
#   make test       every cmocka suite (non-zero exit on any failure)
#   make test SAN=thread | SAN=address,undefined   the same under a sanitizer
#   make demo       one epoch of MLP training on Fashion-MNIST on 1 and all threads
# Missing Debian packages are installed with apt-get when run as root; otherwise make
# stops and prints the exact command.

PKGS     := libhwloc-dev libopenblas-dev liblapacke-dev libcmocka-dev pkg-config zlib1g-dev
DATA_PKGS:= dataset-fashion-mnist
PCMODS   := hwloc openblas cmocka lapacke zlib

CC       ?= gcc
SAN      ?=
comma    := ,
ifeq ($(SAN),)
BUILD    := build
SANFLAGS :=
else
BUILD    := build/san-$(subst $(comma),-,$(SAN))
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -g -DWEFT_SANITIZED=1
ifneq (,$(findstring undefined,$(SAN)))
SANFLAGS += -fno-sanitize-recover=undefined
endif
endif

# pkg-config is evaluated lazily (after the dependency check has run).
PC_CFLAGS = $(shell pkg-config --cflags $(PCMODS) 2>/dev/null)
PC_LIBS   = $(shell pkg-config --libs $(PCMODS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_B := -std=c11 -O2 -g $(WARN) -fno-math-errno -fno-trapping-math -fopenmp -fPIC -fvisibility=hidden \
            -D_GNU_SOURCE -Iinclude -I. $(SANFLAGS)
LDLIBS_B  = $(PC_LIBS) -fopenmp -lpthread -lm $(SANFLAGS)

LIB_SRC  := $(wildcard scheduler/*.c) $(wildcard graph/*.c) $(wildcard ops/*.c) $(wildcard engine/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
EX_SHARED:= $(filter-out examples/cholesky.c,$(wildcard examples/*_lib.c))
EX_MAINS := $(filter-out $(EX_SHARED),$(wildcard examples/*.c))
EX_BIN   := $(EX_MAINS:examples/%.c=$(BUILD)/%)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_LIB:= $(filter-out bench/main.c,$(BENCH_SRC))
TOOL_SRC := $(wildcard tools/*.c)
TEST_SRC := $(wildcard tests/*/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_UTIL:= $(wildcard tests/util/*.c)

DEPS_OK  := build/.deps-ok
# Sanitizer runtime options: fail the run on any report; suppress libgomp's own state.
SAN_ENV  := LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp \
            TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/sanitizers/tsan.supp" \
            ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all test demo clean deps data-deps check-symbols
.SECONDARY:
all: $(BUILD)/libweft.a $(BUILD)/libweft.so $(EX_BIN) $(BUILD)/weft-bench $(BUILD)/weft-train

# ensure_pkgs: installs the missing ones of the listed Debian packages as root, or stops
# with the exact apt-get command.
define ensure_pkgs
	@missing=""; \
	for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) || exit 1; \
	  else \
	    echo "weft needs these Debian packages:$$missing"; \
	    echo "run:  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
endef

deps: $(DEPS_OK)
$(DEPS_OK):
	$(call ensure_pkgs,$(PKGS))
	@mkdir -p build && touch $@

# The demo's dataset (Fashion-MNIST, ~30 MB): only `make demo` needs it.
data-deps:
	$(call ensure_pkgs,$(DATA_PKGS))

$(BUILD)/obj/%.o: %.c $(DEPS_OK) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_B) $(PC_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/libweft.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/libweft.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS_B)

EX_SHARED_OBJ := $(EX_SHARED:%.c=$(BUILD)/obj/%.o)
$(BUILD)/%: $(BUILD)/obj/examples/%.o $(EX_SHARED_OBJ) $(BUILD)/libweft.a
	$(CC) -o $@ $^ $(LDLIBS_B)

BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)
$(BUILD)/weft-bench: $(BENCH_OBJ) $(EX_SHARED_OBJ) $(BUILD)/libweft.a
	$(CC) -o $@ $^ $(LDLIBS_B)

# TOOLS: command-line programs built on the library (tools/*.c, one program for now).
# tests/tools/ runs the built binary ($(BUILD)/weft-train, found through WEFT_TEST_BUILD).
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
$(BUILD)/weft-train: $(TOOL_OBJ) $(EX_SHARED_OBJ) $(BUILD)/libweft.a
	$(CC) -o $@ $^ $(LDLIBS_B)

TEST_UTIL_OBJ := $(TEST_UTIL:%.c=$(BUILD)/obj/%.o)
BENCH_LIB_OBJ := $(BENCH_LIB:%.c=$(BUILD)/obj/%.o)
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_UTIL_OBJ) $(BENCH_LIB_OBJ) $(EX_SHARED_OBJ) $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_B)

# Runs every suite; the exit status is non-zero if any failed.
test: all $(TEST_BIN) check-symbols
	@fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  if ! WEFT_TEST_BUILD=$(BUILD) $(SAN_ENV) $$t; then echo "FAILED: $$t"; fail=1; fi; \
	done; \
	if [ $$fail = 0 ]; then echo "all test suites passed"; else echo "some test suites FAILED"; fi; \
	exit $$fail

# The shared library exports weft_* symbols only.
check-symbols: $(BUILD)/libweft.so
	@bad=$$(nm -D --defined-only $(BUILD)/libweft.so | awk '$$2 ~ /[TDBRW]/ {print $$3}' | grep -v '^weft_' | grep -v '^_' ); \
	if [ -n "$$bad" ]; then echo "libweft.so exports non-weft symbols:"; echo "$$bad"; exit 1; fi; \
	echo "libweft.so exports only weft_* symbols"

# Debian 12's OpenBLAS (0.3.21) does not recognise recent Intel models and falls back to
# its generic Prescott kernels (4-5x slower dgemm). Unless the user chose a core type,
# the demo names one from the CPU flags; every engine of a comparison runs the same
# kernels either way. Tests and CI keep OpenBLAS's own choice.
DEMO_CORETYPE = $${OPENBLAS_CORETYPE:-$$(grep -qw avx512f /proc/cpuinfo && echo SkylakeX || { grep -qw avx2 /proc/cpuinfo && echo Haswell; })}

demo: all data-deps
	@export OPENBLAS_CORETYPE="$(DEMO_CORETYPE)"; [ -n "$$OPENBLAS_CORETYPE" ] || unset OPENBLAS_CORETYPE; \
	BUILD=$(BUILD) sh tools/demo.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
