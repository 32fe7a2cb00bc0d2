# libcompress - one non-recursive Makefile.
#   make            build every tool into bin/
#   make check      install missing dependencies, build, run unit + CLI tests + fuzz smoke
#   make demo       install missing dependencies, build, run the demo grid
#   make deps       install the Debian packages (as root), or print the command
#   make install PREFIX=/usr/local   tools, manual pages, data files, library, headers,
#                   libcompress.pc, bash completion (make uninstall removes them)
#   make lib        the static and the shared library (build/)
#   make deb        the Debian package (dpkg-buildpackage; build/deb/)
#   make asan       build and test with AddressSanitizer/UBSan
#   make tsan       the pool and kernel tests under ThreadSanitizer
#   make bench      benchmarks (not tests)
#   make bench-scale  cost at real sizes on synthetic shapes (pipelines/bench-scale.sh)

PREFIX   ?= /usr/local
LC_SHARED ?= $(abspath ../shared)
export LC_SHARED

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Werror=implicit-function-declaration -Wno-format-truncation -fno-strict-aliasing -pthread -MMD -MP
# Sanitizers (make asan / make tsan) add to the flags above, never replace them.
SAN      ?=
CFLAGS   += $(SAN)
LDFLAGS  += $(SAN)
# pkg-config is asked when a recipe runs (deferred `=`), not when the Makefile
# is parsed: on a fresh machine the packages arrive with $(DEPS_STAMP), after
# parsing.
PKGS     := hdf5 jansson libxxhash
CPPFLAGS += -Ilibcompress
CPPFLAGS_PKG = $(shell pkg-config --cflags $(PKGS))
HDF5_LIBS = $(shell pkg-config --libs hdf5)
# hdf5_hl lives beside hdf5 (Debian: libhdf5_serial_hl).
HDF5_HL  = $(patsubst -lhdf5%,-lhdf5%_hl,$(filter -lhdf5%,$(HDF5_LIBS)))
# Not `pkg-config --libs gsl`: it adds -lgslcblas, which shadows OpenBLAS's cblas.
LIB_DEPS  = $(HDF5_HL) $(HDF5_LIBS) $(shell pkg-config --libs jansson libxxhash 2>/dev/null) -lsqlite3 -lgsl -llapacke -lopenblas -lm -lpthread
LDLIBS   += -Wl,--as-needed $(LIB_DEPS)

BUILD    := build
LIB      := $(BUILD)/libcompress.a
LIB_SRC  := $(wildcard libcompress/*/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOLS    := $(patsubst cmd/%.c,bin/%,$(wildcard cmd/lc-*.c))
CMD_COMMON := $(BUILD)/cmd/common.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
CLI_TESTS := $(sort $(wildcard tests/cli/t[0-9]*.sh))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

# Which Debian packages to make sure of: the sets (pipelines/deps.sh) of the
# goals on the command line.  A plain build needs no clang; the tests and
# the fuzz targets do.  One stamp per set of sets, so `make` then `make
# check` asks again, with the larger set.
DEPS_all := build
DEPS_install := build
DEPS_uninstall := build
DEPS_lib := build
DEPS_deb := deb
DEPS_check-deb := deb fresh
DEPS_unit := build
DEPS_check := check
DEPS_cli := check
DEPS_demo := demo
DEPS_bench := bench
DEPS_bench-scale := grid
DEPS_fuzz-smoke := fuzz
DEPS_fuzz-long := fuzz
DEPS_asan := asan
DEPS_tsan := tsan
DEPS_check-fresh := fresh
DEPS_SETS := $(sort $(foreach g,$(or $(MAKECMDGOALS),all),$(or $(DEPS_$(g)),build)))
empty :=
space := $(empty) $(empty)
DEPS_STAMP := $(BUILD)/.deps-$(subst $(space),-,$(DEPS_SETS))

.SECONDARY:
.PHONY: all check check-fresh check-deb layers unit cli fuzz-smoke fuzz-long demo deps install uninstall lib deb asan tsan bench bench-scale clean
all: $(TOOLS)

# Dependencies are checked once per build tree; `make deps` forces it.
$(DEPS_STAMP):
	@./pipelines/deps.sh $(DEPS_SETS)
	@mkdir -p $(BUILD) && touch $@

deps:
	@./pipelines/deps.sh check

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "cc $<"
	@$(CC) $(CPPFLAGS) $(CPPFLAGS_PKG) -Icmd $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library is built from a second, position-independent object
# tree, so that the tools (linked with the static one) keep their code.
VERSION  := $(shell sed -n 's/^\#define LC_VERSION "\(.*\)"/\1/p' libcompress/core/lc.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
SONAME   := libcompress.so.$(SOMAJOR)
SOLIB    := $(BUILD)/libcompress.so.$(VERSION)
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
$(BUILD)/pic/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "cc -fPIC $<"
	@$(CC) $(CPPFLAGS) $(CPPFLAGS_PKG) $(CFLAGS) -fPIC -c $< -o $@

$(SOLIB): $(PIC_OBJ)
	@echo "ld $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs $^ $(LDLIBS) -o $@

lib: $(LIB) $(SOLIB)

bin/%: $(BUILD)/cmd/%.o $(CMD_COMMON) $(LIB)
	@mkdir -p bin
	@echo "ld $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) $< $(CMD_COMMON) $(LIB) $(LDLIBS) -o $@

# Unit tests link cmd/common.o for lc_blas_ensure (the tools' re-exec).
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(CMD_COMMON) $(LIB)
	@mkdir -p $(dir $@)
	@echo "ld $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) $< $(CMD_COMMON) $(LIB) $(LDLIBS) -o $@

# test_faults makes fstat and malloc fail on demand (tests/unit/test_faults.c).
$(BUILD)/tests/test_faults: LDFLAGS += -Wl,--wrap=fstat,--wrap=malloc

# The include graph follows the layers of libcompress/ (tests/layers.sh).
layers:
	@./tests/layers.sh

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	  echo "== $$t"; $$t || { echo "FAIL: $$t"; fail=1; }; done; exit $$fail

cli: $(DEPS_STAMP) $(TOOLS)
	@./tests/cli/run.sh $(CLI_TESTS)

fuzz-smoke: | $(DEPS_STAMP)
	@./tests/fuzz/smoke.sh $(FUZZ_SRC)

# The same targets for longer: make fuzz-long FUZZ_SECONDS=600
fuzz-long: | $(DEPS_STAMP)
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} ./tests/fuzz/smoke.sh $(FUZZ_SRC)

# The README's two commands, the first time, on a fresh Debian 12 root
# (debootstrap; the base root is cached in LC_FRESH_CACHE, the project is
# cloned afresh from this checkout's HEAD every time).
check-fresh: | $(DEPS_STAMP)
	@./tests/fresh.sh

# Every suite runs even when one fails; tests/summary.sh closes with one line
# "N passed, N failed, N skipped" and lists every skip with its reason.
TEST_LOG := $(abspath $(BUILD))/test-log
check: $(DEPS_STAMP) all $(UNIT_BIN)
	@rm -f $(TEST_LOG); st=0; \
	./tests/layers.sh && echo "pass 1" >>$(TEST_LOG) || { echo "fail 1" >>$(TEST_LOG); st=1; }; \
	LC_TEST_LOG=$(TEST_LOG) $(MAKE) --no-print-directory unit || st=1; \
	LC_TEST_LOG=$(TEST_LOG) $(MAKE) --no-print-directory cli || st=1; \
	LC_TEST_LOG=$(TEST_LOG) $(MAKE) --no-print-directory fuzz-smoke || st=1; \
	./tests/summary.sh $(TEST_LOG) $$st

demo: $(DEPS_STAMP) all
	@./pipelines/demo.sh

# make install: everything the tools need, under PREFIX.  The tools find
# their data as PREFIX/bin/../share/libcompress, so SHAREDIR follows PREFIX.
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
SHAREDIR   := $(PREFIX)/share/libcompress
COMPDIR    ?= $(PREFIX)/share/bash-completion/completions
HEADERS    := $(wildcard libcompress/*/*.h)
HEADER_DIRS = $(sort $(dir $(HEADERS:libcompress/%=$(INCLUDEDIR)/libcompress/%)))
DOCS       := README.md $(wildcard docs/*.md)
MANPAGES   := $(wildcard docs/man/*.1)
# Every file install puts there, relative to DESTDIR; uninstall removes
# exactly these, then the directories that are libcompress's own.
INSTALLED   = $(TOOLS:bin/%=$(PREFIX)/bin/%) $(MANPAGES:docs/man/%=$(MANDIR)/man1/%) \
              $(SHAREDIR)/datasets/manifest.txt $(SHAREDIR)/datasets/profiles.txt $(DOCS:%=$(SHAREDIR)/doc/%) \
              $(INCLUDEDIR)/libcompress/libcompress.h $(HEADERS:libcompress/%=$(INCLUDEDIR)/libcompress/%) \
              $(LIBDIR)/libcompress.a $(LIBDIR)/libcompress.so.$(VERSION) $(LIBDIR)/$(SONAME) $(LIBDIR)/libcompress.so \
              $(LIBDIR)/pkgconfig/libcompress.pc $(TOOLS:bin/%=$(COMPDIR)/%)
OWN_DIRS    = $(SHAREDIR)/doc/docs $(SHAREDIR)/doc $(SHAREDIR)/datasets $(SHAREDIR) \
              $(HEADER_DIRS) $(INCLUDEDIR)/libcompress


install: all lib
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SHAREDIR)/datasets \
	  $(DESTDIR)$(SHAREDIR)/doc/docs $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(COMPDIR) \
	  $(addprefix $(DESTDIR),$(HEADER_DIRS))
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 datasets/manifest.txt datasets/profiles.txt $(DESTDIR)$(SHAREDIR)/datasets/
	install -m 644 README.md $(DESTDIR)$(SHAREDIR)/doc/
	install -m 644 docs/*.md $(DESTDIR)$(SHAREDIR)/doc/docs/
	install -m 644 libcompress/libcompress.h $(DESTDIR)$(INCLUDEDIR)/libcompress/
	@for h in $(HEADERS); do install -m 644 $$h $(DESTDIR)$(INCLUDEDIR)/libcompress/$${h#libcompress/}; done
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libcompress.a
	install -m 644 $(SOLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libcompress.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcompress.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS@|$(strip $(LIB_DEPS))|' libcompress/libcompress.pc.in \
	  >$(DESTDIR)$(LIBDIR)/pkgconfig/libcompress.pc
	install -m 644 cmd/lc-completion.bash $(DESTDIR)$(COMPDIR)/$(firstword $(TOOLS:bin/%=%))
	@for t in $(wordlist 2,99,$(TOOLS:bin/%=%)); do ln -sf $(firstword $(TOOLS:bin/%=%)) $(DESTDIR)$(COMPDIR)/$$t; done
	@echo "installed under $(DESTDIR)$(PREFIX) ($(words $(INSTALLED)) files)"

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@for d in $(addprefix $(DESTDIR),$(OWN_DIRS)); do [ ! -d "$$d" ] || rmdir "$$d" 2>/dev/null || \
	  echo "uninstall: kept $$d (it holds files libcompress did not install)"; done

# The Debian package, built in a copy of the tracked tree (dpkg-buildpackage
# cleans, and must not clean this checkout): build/deb/libcompress_*.deb.
DEB_DIR := $(BUILD)/deb
deb: | $(DEPS_STAMP)
	@./pipelines/deb.sh $(DEB_DIR)

# The package installed, run and removed on a fresh Debian 12 root.
check-deb: | $(DEPS_STAMP)
	@./tests/deb.sh $(DEB_DIR)

ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
asan: | $(DEPS_STAMP)
	$(MAKE) BUILD=$(ASAN_BUILD) CC=clang OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" unit

# The pool and the kernels that run on it, under ThreadSanitizer (OpenBLAS
# is not instrumented, so tests that call it are left out).
TSAN_TESTS := test_pool test_sample test_kernels test_kernels_q8 test_sparse
tsan: | $(DEPS_STAMP)
	$(MAKE) BUILD=$(TSAN_BUILD) CC=clang OPT=-O1 SAN="-fsanitize=thread" $(TSAN_TESTS:%=$(TSAN_BUILD)/tests/%)
	@fail=0; for t in $(TSAN_TESTS); do echo "== tsan $$t"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(TSAN_BUILD)/tests/$$t || { echo "FAIL: tsan $$t"; fail=1; }; \
	done; exit $$fail

bench: $(DEPS_STAMP) all
	@./pipelines/bench.sh

bench-scale: $(DEPS_STAMP) all
	@./pipelines/bench-scale.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan bin fuzz-out

-include $(LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d) $(UNIT_BIN:$(BUILD)/tests/%=$(BUILD)/tests/unit/%.d) $(TOOLS:bin/%=$(BUILD)/cmd/%.d)
