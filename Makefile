# Thin wrappers around the scripts that do the work (each explains itself):
#   make install PREFIX=/usr/local DESTDIR=    -> scripts/install
#   make uninstall PREFIX=/usr/local DESTDIR=  -> scripts/install --uninstall
#   make deb                                   -> scripts/build-deb (target/debian/*.deb)
# BIN_DIR=DIR installs binaries already built there instead of building them.
PREFIX ?= /usr/local
DESTDIR ?=
BIN_DIR ?=

bin_dir_arg = $(if $(BIN_DIR),--bin-dir $(BIN_DIR))

.PHONY: install uninstall deb

install:
	@scripts/install PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" $(bin_dir_arg)

uninstall:
	@scripts/install --uninstall PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)"

deb:
	@scripts/build-deb $(bin_dir_arg)
