# qdq-server: TensorFlow's QuantizeAndDequantizeV2 over HTTP.
#
#   make            build the server and libraries (build/)
#   make run        build and start the server with default settings
#   make test       install what is missing, build normal and sanitizer (ASan+UBSan) builds,
#                   run every test in both; ends with "N passed, N failed"
#   make bench      build and run the benchmarks (baselines in the same run, ratios printed)
#   make install    install the server and qdq, stripped, and their man pages (PREFIX, DESTDIR);
#                   `make install-debug` adds
#                   its debug symbols under DEBUGDIR (/usr/lib/debug/.build-id/), where gdb looks
#   make fuzz       fuzz every decoder for FUZZ_SECONDS (60) each
#   make soak       wrk at SOAK_CONNECTIONS (256) for SOAK_SECONDS (60) after SOAK_WARMUP (45),
#                   answers compared byte for byte, RSS bounded; then SIGTERM under load
#                   (tests/soak/); ends with "N passed, N failed". CI runs it after make test.
#   make SAN=1 ...  the same with AddressSanitizer and UndefinedBehaviorSanitizer (build-san/)
#   make deps       install build, test and benchmark dependencies (Debian, as root)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DEBUGDIR ?= /usr/lib/debug
SAN ?=
BUILD ?= build$(if $(SAN),-san)
ARCH := $(shell uname -m)

CC ?= cc
CXX ?= c++
OPT ?= -O2
PKGS := libmicrohttpd libuv libcjson zlib libprotobuf-c
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# gRPC's C core: the server alone links it (server/grpc.c).
GRPC_CFLAGS = $(shell pkg-config --cflags grpc 2>/dev/null)
GRPC_LIBS = $(shell pkg-config --libs grpc 2>/dev/null)
CURL_LIBS = $(shell pkg-config --libs libcurl 2>/dev/null)

# The kernel's arithmetic must be one IEEE operation at a time: no FMA contraction, no
# fast-math. These flags apply to every file so that test references compile the same way.
FPFLAGS := -ffp-contract=off -fno-fast-math
SANITIZERS := address,undefined
SANFLAGS := $(if $(SAN),-fsanitize=$(SANITIZERS) -fno-sanitize-recover=all -fno-omit-frame-pointer)
WARN := -Wall -Wextra -Wno-unused-parameter -Wshadow $(if $(WERROR),-Werror)
# C for the .proto files (protoc-c), generated at build time into $(GEN): never committed.
GEN := $(BUILD)/gen
CPPFLAGS += -D_GNU_SOURCE -Icore -Iproto -Iconfig -Iserver -I$(GEN)
CFLAGS += -std=gnu11 $(OPT) -g $(FPFLAGS) $(WARN) -Wmissing-prototypes $(SANFLAGS) -pthread
CXXFLAGS += -std=c++17 $(OPT) -g $(FPFLAGS) $(WARN) $(SANFLAGS) $(if $(SAN),-Wno-maybe-uninitialized) -fno-exceptions -fno-rtti \
	-isystem /usr/include/dragonbox-1.1.3
LDFLAGS += $(SANFLAGS) -pthread
AVX2FLAGS := $(if $(filter x86_64,$(ARCH)),-mavx2 -mf16c)

CORE_SRC := $(wildcard core/*.c)
PROTO_SRC := $(wildcard proto/*.c)
PROTO_CXX := $(wildcard proto/*.cc)
PROTO_DEFS := $(wildcard proto/*.proto)
GEN_SRC := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTO_DEFS))
GEN_HDR := $(GEN_SRC:.c=.h)
SERVER_SRC := $(strip $(wildcard server/*.c) $(wildcard config/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
HTTP_SRC := $(wildcard tests/http/test_*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_CXX := $(wildcard bench/*.cc)

obj = $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.cc,$(BUILD)/%.o,$(1)))
CORE_OBJ := $(call obj,$(CORE_SRC))
PROTO_OBJ := $(strip $(call obj,$(PROTO_SRC) $(PROTO_CXX)) $(GEN_SRC:.c=.o))
SERVER_OBJ := $(call obj,$(SERVER_SRC))
TESTLIB_OBJ := $(call obj,$(TESTLIB_SRC))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
HTTP_BIN := $(patsubst tests/http/%.c,$(BUILD)/tests/%,$(HTTP_SRC))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_CXX_OBJ := $(call obj,$(BENCH_CXX))

LIBQDQ := $(BUILD)/libqdq.a
LIBPROTO := $(BUILD)/libproto.a
SERVER := $(BUILD)/qdq-server
QDQ := $(BUILD)/qdq
CLI_SRC := $(wildcard cli/*.c)
CLI_OBJ := $(call obj,$(CLI_SRC))
# Link with the C++ driver when proto/ has C++ (header-only number libraries).
LINK := $(if $(PROTO_CXX),$(CXX),$(CC))

# Keep objects of pattern-built programs.
.SECONDARY:

.PHONY: all run test tests bench install install-debug clean deps asan fuzz soak man
all: $(LIBQDQ) $(if $(PROTO_OBJ),$(LIBPROTO)) $(if $(SERVER_SRC),$(SERVER)) $(if $(CLI_SRC),$(QDQ))

$(BUILD)/%.o: %.c | $(GEN_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# protoc-c writes both files of a .proto in one run.
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $<

$(GEN)/%.o: $(GEN)/%.c
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/server/grpc.o: CFLAGS += $(GRPC_CFLAGS)

$(BUILD)/%.o: %.cc | $(GEN_HDR)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c -o $@ $<

# Loops start on a 64-byte line: on AMD Zen 3, while the machine is busy, the reductions' two-load
# loops ran up to 1.7x slower when one straddled a line (16 KiB float16 in L1: 0.83 vs 0.47
# kcycles); when it is quiet both placements measure the same.
$(BUILD)/core/kernels_avx2.o: CFLAGS += $(AVX2FLAGS) -O3 -falign-loops=64
$(BUILD)/core/kernels_avx2.o: Makefile

$(LIBQDQ): $(CORE_OBJ)
	$(AR) rcs $@ $^

$(LIBPROTO): $(PROTO_OBJ)
	$(AR) rcs $@ $^

$(SERVER): $(SERVER_OBJ) $(LIBPROTO) $(LIBQDQ)
	$(LINK) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(LIBPROTO) $(LIBQDQ) $(GRPC_LIBS) $(PKG_LIBS) -lm

TEST_LIBS = $(TESTLIB_OBJ) $(if $(PROTO_OBJ),$(LIBPROTO)) $(LIBQDQ) $(PKG_LIBS) $(CURL_LIBS) -lm
$(BUILD)/tests/unit/%.o $(BUILD)/tests/http/%.o $(BUILD)/tests/lib/%.o: CPPFLAGS += -Itests/lib

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TESTLIB_OBJ) $(if $(PROTO_OBJ),$(LIBPROTO)) $(LIBQDQ)
	$(LINK) $(LDFLAGS) -o $@ $< $(TEST_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/http/%.o $(TESTLIB_OBJ) $(if $(PROTO_OBJ),$(LIBPROTO)) $(LIBQDQ)
	$(LINK) $(LDFLAGS) -o $@ $< $(TEST_LIBS)

# Benchmarks may use C++ baselines (bench/*.cc, e.g. TensorFlow's Eigen expression).
$(BUILD)/bench/%.o: CXXFLAGS += -isystem /usr/include/eigen3 -mavx -fexceptions
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BENCH_CXX_OBJ) $(LIBQDQ) $(if $(PROTO_OBJ),$(LIBPROTO))
	$(CXX) $(LDFLAGS) -o $@ $< $(BENCH_CXX_OBJ) $(if $(PROTO_OBJ),$(LIBPROTO)) $(LIBQDQ) $(PKG_LIBS) $(CURL_LIBS) -lm

tests: all $(UNIT_BIN) $(HTTP_BIN)

deps:
	sh scripts/install-deps.sh --dev

run: all
	$(SERVER) $(ARGS)

# Both builds, then every test binary of each; tests/run.sh prints the total.
test: deps
	$(MAKE) tests
	$(MAKE) SAN=1 tests
	sh tests/run.sh build build-san

asan:
	$(MAKE) SAN=1 tests
	sh tests/run.sh build-san

# libFuzzer targets for every decoder (clang, ASan+UBSan), each for FUZZ_SECONDS (default 60).
fuzz:
	sh tests/fuzz/run.sh

# Load: the soak (tests/soak/soak.sh), then a SIGTERM under load (shutdown_under_load.sh);
# tests/soak/run.sh prints the total.
soak: all
	bash tests/soak/run.sh

bench: $(BENCH_BIN) $(if $(SERVER_SRC),$(SERVER))
	sh bench/run.sh $(BUILD)

# qdq, the command line: the same codecs, no server.
$(QDQ): $(CLI_OBJ) $(LIBPROTO) $(LIBQDQ)
	$(LINK) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBPROTO) $(LIBQDQ) -lm

# The installed binary is stripped (about 0.4 MB instead of 3 MB): its debug symbols are split
# into $(SERVER).debug, which it names (.gnu_debuglink), and which `make install-debug` puts
# where gdb finds it; build/qdq-server itself keeps them for the tests.
$(BUILD)/%.debug: $(BUILD)/%
	objcopy --only-keep-debug $< $@
$(BUILD)/%.stripped: $(BUILD)/% $(BUILD)/%.debug
	objcopy --strip-all --add-gnu-debuglink=$<.debug $< $@

# Man pages, made from the programs' own --help and --version by help2man (Debian's help2man,
# in the installer's build list), so that they say what the binaries say. The programs run by
# name from $(BUILD) (their usage line shows the name, not the path).
MANPAGES := $(BUILD)/man/qdq-server.1 $(BUILD)/man/qdq.1
$(BUILD)/man/qdq-server.1: MAN_NAME = TensorFlow's QuantizeAndDequantizeV2 served over HTTP and gRPC
$(BUILD)/man/qdq.1: MAN_NAME = TensorFlow's QuantizeAndDequantizeV2 on checkpoints and tensor files
$(BUILD)/man/%.1: $(BUILD)/%
	@mkdir -p $(dir $@)
	PATH="$(abspath $(BUILD)):$$PATH" help2man --no-info --name="$(MAN_NAME)" --output=$@ $*

man: $(MANPAGES)

install: all $(SERVER).stripped $(QDQ).stripped $(MANPAGES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(SERVER).stripped $(DESTDIR)$(BINDIR)/qdq-server
	install -m 755 $(QDQ).stripped $(DESTDIR)$(BINDIR)/qdq
	install -m 644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man1

# By build id (DEBUGDIR/.build-id/xx/rest.debug), where gdb finds it wherever the binary lies.
install-debug: $(SERVER).debug
	@id=$$(readelf -n $(SERVER).debug | sed -n 's/.*Build ID: *//p'); \
	dir=$(DESTDIR)$(DEBUGDIR)/.build-id/$$(echo $$id | cut -c1-2); \
	echo install -m 644 $(SERVER).debug $$dir/$$(echo $$id | cut -c3-).debug; \
	install -d $$dir && install -m 644 $(SERVER).debug $$dir/$$(echo $$id | cut -c3-).debug

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
