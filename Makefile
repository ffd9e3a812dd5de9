# qat: build, test, demo, bench. GNU make; `make help` lists the targets.
# Every build first runs tools/install-deps.sh (a fast dpkg check; installs what is missing as root).
#
# Flags: -ffp-contract=off everywhere, because compilers otherwise fuse a*b+c into FMA whenever FMA is
# enabled, which changes results between builds and ISAs; where an FMA is wanted it is written.
# ISA flags go only on kernels/<isa>/ files (never -march=native for the whole build), and those files
# are built a second time against SIMDe (portable intrinsics) so their tests run on any CPU.

CXX      ?= g++
BUILD    := build
OPT      ?= -O2
CXXFLAGS := -std=c++20 $(OPT) -g -fopenmp -ffp-contract=off -Wall -Wextra -I. -MMD -MP $(EXTRA_CXXFLAGS)
LDLIBS   := -lopenblas -ldnnl -fopenmp -lpthread
ASANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Per-ISA compiler flags (kernels/<isa>/ only).
ISA_FLAGS_avx2       := -mavx2 -mfma -mf16c
ISA_FLAGS_avx512     := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -mavx2
ISA_FLAGS_avx512vnni := $(ISA_FLAGS_avx512) -mavx512vnni
ISA_FLAGS_avxvnni    := -mavxvnni -mavx2 -mfma -mf16c
# SIMDe builds of the AVX-512 / VNNI sources: no ISA flags. -Wno-psabi: GCC notes that passing 32/64-byte
# vectors by value without AVX changes the ABI; the kernels' vector helpers are internal and inlined.
SIMDE_FLAGS          := -DQAT_SIMDE -Wno-psabi

# models/train/dist_mpi.cpp (MPI's transport) is not in the library: only bin/train links it (below).
CORE_SRCS  := $(filter-out models/train/dist_mpi.cpp,$(wildcard src/*/*.cpp models/*.cpp models/train/*.cpp data/*.cpp \
              kernels/*.cpp kernels/ref/*.cpp kernels/scalar/*.cpp))
ISAS       := avx2 avx512 avx512vnni avxvnni
ISA_SRCS   := $(foreach i,$(ISAS),$(wildcard kernels/$(i)/*.cpp))
SIMDE_ISAS := avx512 avx512vnni avxvnni
SIMDE_SRCS := $(foreach i,$(SIMDE_ISAS),$(wildcard kernels/$(i)/*.cpp))
TOOL_SRCS  := $(wildcard tools/*.cpp)
TEST_SRCS  := $(wildcard tests/*.cpp)
BINS       := $(patsubst tools/%.cpp,bin/%,$(TOOL_SRCS))

# $(1) = object dir (obj or asan)
lib_objs = $(patsubst %.cpp,$(BUILD)/$(1)/%.o,$(CORE_SRCS) $(ISA_SRCS)) \
           $(patsubst %.cpp,$(BUILD)/$(1)/simde/%.o,$(SIMDE_SRCS))

LIB      := $(BUILD)/libqat.a
LIB_ASAN := $(BUILD)/libqat-asan.a

.PHONY: all test asan demo bench clean deps help check-isa check-layers
.DEFAULT_GOAL := all

all: $(BINS) bin/tests

help:
	@echo "make            build bin/ (train, generate, quantize, eval, bench, qat-study, tests)"
	@echo "make test       build, check-isa, run the Catch2 suite; ends with 'P passed, F failed'"
	@echo "make check-isa  fail if AVX / AVX-512 code appears outside the kernels/<isa> namespaces"
	@echo "make check-layers  fail on an #include that goes up a layer (DESIGN.md invariant 7)"
	@echo "make asan       the same suite under AddressSanitizer + UBSan"
	@echo "make fuzz       libFuzzer targets, FUZZ_SECONDS each (fuzz-smoke: the short CI run)"
	@echo "make demo       train the small model, QAT, export, generate"
	@echo "make bench      all benchmarks (peak, kernels, train, serve, serve-load, tokenizer, torch, shapes): this machine's section of"
	@echo "                docs/BENCHMARKS.md + docs/bench-<machine>.png (~20 min on 2 free cores; QUICK=1: ~6 min)"
	@echo "                LLAMA_CPP=DIR: also bin/bench llama, qat vs llama.cpp's llama-bench over shapes up to 1B"
	@echo "make clean      remove build/ and bin/"

deps:
	@tools/install-deps.sh

# ---- objects ----
$(BUILD)/obj/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ISA_FLAGS_$(word 2,$(subst /, ,$<))) -c $< -o $@

# kernels/<isa>/ sources (native builds) are compiled with clang++ 14: on the int8 tile kernels g++ 12
# adds register copies and reloads around the accumulator arrays, and clang's code runs up to ~25%
# faster (docs/BENCHMARKS.md). KERNEL_CXX=g++ builds them with g++; SIMDe and ASan builds use $(CXX).
KERNEL_CXX ?= clang++
$(patsubst %.cpp,$(BUILD)/obj/%.o,$(ISA_SRCS)): $(BUILD)/obj/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(KERNEL_CXX) $(filter-out -fopenmp,$(CXXFLAGS)) $(ISA_FLAGS_$(word 2,$(subst /, ,$<))) -c $< -o $@

$(BUILD)/obj/simde/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(SIMDE_FLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASANFLAGS) $(ISA_FLAGS_$(word 2,$(subst /, ,$<))) -c $< -o $@

$(BUILD)/asan/simde/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(ASANFLAGS) $(SIMDE_FLAGS) -c $< -o $@

# g++ 12 with -fsanitize=address warns -Wmaybe-uninitialized inside libstdc++'s <regex>, which Catch2's
# main pulls in (a false positive in std::function's move); silenced for that one object only.
$(BUILD)/asan/tests/main.o: CXXFLAGS += -Wno-maybe-uninitialized

$(LIB): $(call lib_objs,obj)
	@rm -f $@
	ar rcs $@ $^

$(LIB_ASAN): $(call lib_objs,asan)
	@rm -f $@
	ar rcs $@ $^

# ---- binaries ----
# MPI (data-parallel training, models/train/dist.h): when mpicxx is installed, its flags go on
# models/train/dist_mpi.cpp and bin/train's link line only; without it bin/train is single-process.
# tools/mpi-flags.sh asks mpicxx when the recipe runs, after `deps` has installed OpenMPI.
$(BUILD)/obj/models/train/dist_mpi.o: models/train/dist_mpi.cpp | deps
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $$(tools/mpi-flags.sh compile) -c $< -o $@
bin/train: $(BUILD)/obj/tools/train.o $(BUILD)/obj/models/train/dist_mpi.o $(LIB)
	@mkdir -p bin
	$(CXX) $(CXXFLAGS) $(filter %.o,$^) $(LIB) $(LDLIBS) $$(tools/mpi-flags.sh link) -o $@

bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p bin
	$(CXX) $(CXXFLAGS) $< $(LIB) $(LDLIBS) -o $@

# bin/serve: Debian builds cpp-httplib as a shared library; its header must see the library's own
# feature macros (they change the classes' layout), as cpp-httplib.pc gives them.
HTTPLIB_CFLAGS := -DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT
$(BUILD)/obj/tools/serve.o: CXXFLAGS += $(HTTPLIB_CFLAGS)
bin/serve: LDLIBS += -lcpp-httplib

# bin/bench also links its subcommands in tools/bench/ (train, serve, torch, all); `bench serve-load`
# drives servers with cpp-httplib's client (the same library flags as bin/serve).
BENCH_SRCS := $(wildcard tools/bench/*.cpp)
$(BUILD)/obj/tools/bench/serve_load.o: CXXFLAGS += $(HTTPLIB_CFLAGS)
bin/bench: LDLIBS += -lcpp-httplib
bin/bench: $(BUILD)/obj/tools/bench.o $(patsubst %.cpp,$(BUILD)/obj/%.o,$(BENCH_SRCS)) $(LIB)
	@mkdir -p bin
	$(CXX) $(CXXFLAGS) $(filter %.o,$^) $(LIB) $(LDLIBS) -o $@

bin/tests: $(patsubst %.cpp,$(BUILD)/obj/%.o,$(TEST_SRCS)) $(LIB)
	@mkdir -p bin
	$(CXX) $(CXXFLAGS) $(filter %.o,$^) $(LIB) $(LDLIBS) -o $@

bin/tests-asan: $(patsubst %.cpp,$(BUILD)/asan/%.o,$(TEST_SRCS)) $(LIB_ASAN)
	@mkdir -p bin
	$(CXX) $(CXXFLAGS) $(ASANFLAGS) $(filter %.o,$^) $(LIB_ASAN) $(LDLIBS) -o $@

# ---- test ----
# TESTS="[tag]" picks a subset; the summary line comes from Catch2's own totals.
TESTS ?=
test: check-layers all check-isa
	@tools/run-tests.sh bin/tests $(TESTS)

# AVX / AVX-512 instructions may appear only in the kernels/<isa> namespaces (tools/check-isa.sh).
check-isa: all
	@tools/check-isa.sh $(BINS) bin/tests

# Layers depend one way: base -> kernels -> src/ engine -> models/, data/ -> training -> tools/
# (tools/check-layers.sh; tools/layering-debt.txt, the upward includes still allowed, is empty).
check-layers:
	@tools/check-layers.sh

# The [cli] and [faults] tests run the binaries in bin/ as child processes: build them too.
asan: bin/tests-asan $(BINS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  tools/run-tests.sh bin/tests-asan $(TESTS)

# The main job: train, QAT, export, generate (tools/demo.sh says what each step does).
demo: all
	@tools/demo.sh

# Benchmarks: every bin/bench subcommand, then this machine's section of docs/BENCHMARKS.md and its
# chart docs/bench-<machine>.png (tools/bench/all.cpp). QUICK=1: few rounds, ~4 minutes on 2 cores.
# LLAMA_CPP=/path/to/llama.cpp/build adds `bin/bench llama` (qat vs llama-bench on the same GGUF files,
# a ladder of shapes up to 1B; its own -llama section of docs/BENCHMARKS.md and plot); skipped otherwise.
bench: bin/bench
	bin/bench all $(if $(QUICK),--quick)
	$(if $(LLAMA_CPP),bin/bench llama --llama-cpp '$(LLAMA_CPP)' --doc docs/BENCHMARKS.md $(if $(QUICK),--quick),\
	  @echo "bench llama: skipped: no llama.cpp build given (make bench LLAMA_CPP=/path/to/llama.cpp/build; README)")

clean:
	rm -rf $(BUILD) bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing (issue 8; figures in docs/RELIABILITY.md) ----
# libFuzzer targets built with clang++ from only the sources each one needs (never linked against the
# g++-built library): those sources are compiled once into $(BUILD)/fuzz-obj with the sanitizers and
# coverage instrumentation, and each target links the objects it lists. `make fuzz` runs each target
# for FUZZ_SECONDS; `make fuzz-smoke` is the short CI run (FUZZ_SMOKE_SECONDS each).
FUZZ_CXX           ?= clang++
FUZZ_FLAGS         := -std=c++20 -O1 -g -I. -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_TARGETS       := safetensors gguf json tokenizer tokenizer_json token_cache config gguf_model model_vocab \
                      hf_config hf_tokenizer
FUZZ_CORE_SRCS     := src/core/tensor.cpp src/core/storage.cpp src/io/file.cpp
FUZZ_TOK_SRCS      := data/tokenizer.cpp data/tokenizer_json.cpp data/bpe_train.cpp data/byte_level.cpp \
                      data/pretokenize.cpp data/unicode.cpp src/io/json.cpp src/io/file.cpp \
                      data/vocab.cpp data/model_vocab.cpp data/pre_split.cpp src/io/gguf.cpp src/io/mapped_file.cpp \
                      $(FUZZ_CORE_SRCS)
FUZZ_SRCS_json           := src/io/json.cpp
FUZZ_SRCS_safetensors    := src/io/safetensors.cpp src/io/json.cpp $(FUZZ_CORE_SRCS)
FUZZ_SRCS_gguf           := src/io/gguf.cpp src/io/mapped_file.cpp $(FUZZ_CORE_SRCS)
FUZZ_SRCS_tokenizer      := $(FUZZ_TOK_SRCS)
FUZZ_SRCS_tokenizer_json := $(FUZZ_TOK_SRCS)
FUZZ_SRCS_token_cache    := data/dataset.cpp data/encode_chunks.cpp data/corpus.cpp data/text_files.cpp \
                            src/io/mapped_file.cpp $(FUZZ_TOK_SRCS)
FUZZ_SRCS_config         := models/config.cpp src/io/json.cpp
FUZZ_SRCS_gguf_model     := models/gguf_model.cpp models/config.cpp kernels/ref/q4_0.cpp kernels/ref/q8_0.cpp kernels/ref/ternary.cpp \
                            kernels/ref/kquants.cpp \
                            kernels/ref/per_channel.cpp src/quant/scheme.cpp src/util/cli.cpp src/util/sysmem.cpp \
                            $(FUZZ_SRCS_gguf) $(FUZZ_TOK_SRCS)
FUZZ_SRCS_model_vocab    := data/model_vocab.cpp data/pre_split.cpp $(FUZZ_SRCS_gguf) $(FUZZ_TOK_SRCS)
FUZZ_SRCS_hf_config      := models/hf_config.cpp models/config.cpp src/io/json.cpp
FUZZ_SRCS_hf_tokenizer   := data/model_vocab_hf.cpp src/io/json.cpp $(FUZZ_SRCS_model_vocab)
FUZZ_SRCS_seeds          := $(FUZZ_SRCS_gguf_model) $(FUZZ_SRCS_token_cache) src/io/safetensors.cpp
fuzz_objs = $(patsubst %.cpp,$(BUILD)/fuzz-obj/%.o,$(sort $(FUZZ_SRCS_$(1))))

$(BUILD)/fuzz-obj/%.o: %.cpp | deps
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define fuzz_rule
bin/fuzz/fuzz_$(1): $(BUILD)/fuzz-obj/tests/fuzz/fuzz_$(1).o $(call fuzz_objs,$(1))
	@mkdir -p bin/fuzz
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $$^ -o $$@
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-seeds
fuzz-build: $(patsubst %,bin/fuzz/fuzz_%,$(FUZZ_TARGETS))
fuzz: fuzz-build
	@tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-smoke: fuzz-build
	@tools/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)
# The seed corpora (committed): rerun after a format change.
fuzz-seeds: $(BUILD)/fuzz-obj/tests/fuzz/make_seeds.o $(call fuzz_objs,seeds)
	@mkdir -p bin/fuzz $(addprefix tests/fuzz/corpus/,$(FUZZ_TARGETS))
	$(FUZZ_CXX) $(FUZZ_FLAGS) $^ -o bin/fuzz/make_seeds
	bin/fuzz/make_seeds
