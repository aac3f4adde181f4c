# visgen top-level Makefile. `make` builds libvisgen and the visgen tool;
# `make demo` and `make check` are the two commands README.md documents.
-include config.mak

PREFIX   ?= /usr/local
CC       ?= gcc
OPTFLAGS ?= -O2 -g
B        := build
TOP      := $(CURDIR)

DEPS_CFLAGS := $(shell pkg-config --cflags libcjson minizip 2>/dev/null)
DEPS_LIBS   := -lopenblas $(shell pkg-config --libs libcjson minizip 2>/dev/null) -lz -lpthread -lm

CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fPIC \
              -I. -Iinclude -I/usr/include/x86_64-linux-gnu/openblas-pthread \
              -DVG_MODEL_DIR_BUILD='"$(TOP)/build/models"' \
              -DVG_MODEL_DIR_INSTALL='"$(PREFIX)/share/visgen/models"'
CFLAGS  += $(OPTFLAGS) $(CFLAGS_BASE) $(DEPS_CFLAGS)

# Every engine/ and temporal/ source goes into libvisgen; files named *_avx2.c
# are the AVX2+FMA kernel versions, selected at run time by CPU flag.
LIB_SRCS  := $(sort $(wildcard engine/*.c engine/*/*.c temporal/*.c temporal/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIBVISGEN := $(B)/lib/libvisgen.a

TOOL_SRCS := $(sort $(wildcard tools/visgen/*.c))
TEST_SRCS := $(sort $(wildcard tests/check_*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_COMMON := $(sort $(wildcard tests/common/*.c))

all: $(LIBVISGEN) $(B)/pkgconfig/visgen.pc $(if $(TOOL_SRCS),$(B)/bin/visgen)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -mavx2 -mfma -MMD -MP -c $< -o $@

# The install path of the models is compiled in: reconfiguring rebuilds.
$(LIB_OBJS): $(wildcard config.mak)

$(LIBVISGEN): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# pkg-config file for the build tree (FFmpeg's configure finds libvisgen with it).
$(B)/pkgconfig/visgen.pc: Makefile $(wildcard config.mak)
	@mkdir -p $(dir $@)
	printf 'prefix=%s\nincludedir=%s/include\nlibdir=%s/$(B)/lib\n\nName: visgen\nDescription: generative video processing library\nVersion: 0.1.0\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lvisgen $(DEPS_LIBS)\n' \
	  "$(TOP)" "$(TOP)" "$(TOP)" > $@

# FFmpeg's libraries (Debian's -dev packages) decode and encode pictures and
# videos for the tool and the tests; libvisgen itself does not link them.
AV_PKGS   := libavformat libavcodec libswscale libavutil
AV_CFLAGS := $(shell pkg-config --cflags $(AV_PKGS) 2>/dev/null)
AV_LIBS   := $(shell pkg-config --libs $(AV_PKGS) 2>/dev/null)

$(B)/bin/visgen: $(TOOL_SRCS) $(wildcard tools/visgen/*.h) $(LIBVISGEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AV_CFLAGS) $(LDFLAGS) $(TOOL_SRCS) $(LIBVISGEN) $(AV_LIBS) $(DEPS_LIBS) -o $@

# ---------------------------------------------------------------- unit tests
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

# tests/common/vgt_image.c reads pictures with the tool's decoder (media.c).
TEST_MEDIA := tools/visgen/media.c

$(B)/tests/check_%: tests/check_%.c $(TEST_COMMON) $(TEST_MEDIA) $(LIBVISGEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AV_CFLAGS) $(LDFLAGS) $(CHECK_CFLAGS) -DVG_SHARED_DATA='"$(TOP)/../shared/data"' \
	  -DVG_TOP='"$(TOP)"' $< $(TEST_COMMON) $(TEST_MEDIA) $(LIBVISGEN) $(CHECK_LIBS) $(AV_LIBS) \
	  $(DEPS_LIBS) -o $@

# Header test: every public header compiles on its own.
$(B)/tests/header_test.o: $(wildcard include/visgen/*.h)
	@mkdir -p $(dir $@)
	for h in $(notdir $^); do echo "#include \"visgen/$$h\"" | \
	  $(CC) -std=c99 -Wall -Werror -Iinclude -x c -c - -o $@ || exit 1; done

unit-tests: $(TEST_BINS) $(B)/tests/header_test.o

# Runs every Check binary; each prints its own summary line.
check-unit: unit-tests models
	@fail=0; for t in $(TEST_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# The whole unit suite in one process under valgrind (CK_FORK=no).
check-valgrind: unit-tests models
	@fail=0; for t in $(TEST_BINS); do CK_FORK=no valgrind -q --error-exitcode=99 \
	  --leak-check=full $$t || fail=1; done; exit $$fail

# The README's test command: installs what is missing, builds everything
# (library, tests, npm models, FFmpeg with --enable-libvisgen) and runs the
# unit tests, the visgen CLI tests, then the end-to-end tests on real media.
check: deps
	$(MAKE) check-unit
	$(MAKE) check-sd-cli
	$(MAKE) check-e2e

# The same suite built with AddressSanitizer + UBSan in build/asan, run in
# one process per binary (CK_FORK=no) so leaks and overflows are reported.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
check-asan: models
	$(MAKE) B=build/asan OPTFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" unit-tests
	@fail=0; for t in $(TEST_BINS:$(B)/%=build/asan/%); do echo "== $$t"; \
	  CK_FORK=no UBSAN_OPTIONS=halt_on_error=1 $$t || fail=1; done; exit $$fail

deps:
	./tools/install-deps.sh

install: all models
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/visgen \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/visgen
	install -m 644 $(LIBVISGEN) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/visgen/*.h $(DESTDIR)$(PREFIX)/include/visgen/
	$(if $(TOOL_SRCS),install -m 755 $(B)/bin/visgen $(DESTDIR)$(PREFIX)/bin/)
	cp -r $(B)/models $(DESTDIR)$(PREFIX)/share/visgen/
	printf 'prefix=%s\nincludedir=$${prefix}/include\nlibdir=$${prefix}/lib\n\nName: visgen\nDescription: generative video processing library\nVersion: 0.1.0\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lvisgen $(DEPS_LIBS)\n' \
	  "$(PREFIX)" > $(DESTDIR)$(PREFIX)/lib/pkgconfig/visgen.pc

clean:
	rm -rf $(B)/obj $(B)/lib $(B)/tests $(B)/bin/visgen $(B)/pkgconfig

-include $(wildcard mk/*.mk)
-include $(LIB_OBJS:.o=.d)

.PHONY: all unit-tests check check-unit check-valgrind check-asan deps install clean
