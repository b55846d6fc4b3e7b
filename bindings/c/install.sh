#!/usr/bin/env bash
# Builds libsioadapter (shared and static) and installs it, its header and its pkg-config file
# into a prefix, as `make install` would:
#   <libdir>/libsioadapter.so.<version>, libsioadapter.so.<major> -> it (the SONAME),
#   libsioadapter.so -> libsioadapter.so.<major>, libsioadapter.a
#   <includedir>/sioadapter.h
#   <libdir>/pkgconfig/sioadapter.pc
# Then: cc app.c $(pkg-config --cflags --libs sioadapter)   (PKG_CONFIG_PATH=<libdir>/pkgconfig
# for a prefix pkg-config does not search, and LD_LIBRARY_PATH=<libdir> or ldconfig to run it).
#
# Usage: bindings/c/install.sh [--prefix DIR] [--libdir DIR] [--includedir DIR] [--destdir DIR]
#                              [--no-build]
#   --prefix      default /usr/local
#   --libdir      default <prefix>/lib;  --includedir  default <prefix>/include
#   --destdir     stage everything under DIR (packaging), paths in the .pc stay the final ones
#   --no-build    install what `cargo build --release -p sioadapter-c` already built
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
prefix=/usr/local libdir="" includedir="" destdir="" build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --libdir) libdir="$2"; shift 2 ;;
    --includedir) includedir="$2"; shift 2 ;;
    --destdir) destdir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
libdir="${libdir:-$prefix/lib}"
includedir="${includedir:-$prefix/include}"

# The one version number: [workspace.package] in Cargo.toml.
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml")"
major="${version%%.*}"
[ -n "$version" ] || { echo "install.sh: no version in $root/Cargo.toml [workspace.package]" >&2; exit 1; }

if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release -p sioadapter-c)
fi
target="${CARGO_TARGET_DIR:-$root/target}/release"
for f in libsioadapter.so libsioadapter.a; do
  [ -f "$target/$f" ] || { echo "install.sh: $target/$f is missing (build with: cargo build --release -p sioadapter-c)" >&2; exit 1; }
done

lib="$destdir$libdir" inc="$destdir$includedir"
mkdir -p "$lib/pkgconfig" "$inc"
install -m 755 "$target/libsioadapter.so" "$lib/libsioadapter.so.$version"
ln -sf "libsioadapter.so.$version" "$lib/libsioadapter.so.$major"
ln -sf "libsioadapter.so.$major" "$lib/libsioadapter.so"
install -m 644 "$target/libsioadapter.a" "$lib/libsioadapter.a"
install -m 644 "$root/include/sioadapter.h" "$inc/sioadapter.h"
sed -e "s|@PREFIX@|$prefix|; s|@LIBDIR@|$libdir|; s|@INCLUDEDIR@|$includedir|; s|@VERSION@|$version|" \
  "$root/bindings/c/sioadapter.pc.in" > "$lib/pkgconfig/sioadapter.pc"
echo "installed libsioadapter $version into $destdir$prefix (pkg-config: $libdir/pkgconfig/sioadapter.pc)"
