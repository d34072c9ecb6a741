#!/bin/sh
# build.sh: build hvrun's guest kernel from Debian's linux-source 6.1.
#
#   vm/kernel/build.sh CACHE_DIR WORK_DIR
#
# The result lands in CACHE_DIR/<hash>/{vmlinux,bzImage,config}, where hash is
# the sha256 of (linux-source package version + config fragment + patches +
# this script): a cache hit costs nothing, and any input change rebuilds.
# WORK_DIR holds one unpacked tree; it is re-unpacked when the hash changes,
# so patches are always applied to a pristine tree.
# Prints the output directory on its last line.
set -eu

cache=${1:?usage: build.sh CACHE_DIR WORK_DIR}
work=${2:?usage: build.sh CACHE_DIR WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
tarball=/usr/src/linux-source-6.1.tar.xz
fragment=$here/config-fragment
jobs=${HVRUN_KERNEL_JOBS:-2}

[ -r "$tarball" ] || { echo "build.sh: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }
version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$tarball")

hash=$( { echo "$version"; cat "$fragment"; cat "$here"/patches/*.patch 2>/dev/null; cat "$0"; } |
        sha256sum | cut -c1-16)
out=$cache/$hash
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$work"
work=$(cd "$work" && pwd)
tree=$work/linux-source-6.1
if [ "$(cat "$work/tree.hash" 2>/dev/null)" != "$hash" ]; then
  echo "build.sh: unpacking $tarball" >&2
  rm -rf "$tree" "$work/tree.hash"
  tar -C "$work" -xJf "$tarball"
  for p in "$here"/patches/*.patch; do
    [ -e "$p" ] || continue
    echo "build.sh: applying $(basename "$p")" >&2
    patch -d "$tree" -p1 --quiet --forward < "$p"
  done
  echo "$hash" > "$work/tree.hash"
fi

cd "$tree"
make -s tinyconfig >/dev/null
# The fragment is "--enable X" / "--disable X" / "--set-val X V" per line.
grep -v '^[[:space:]]*\(#\|$\)' "$fragment" | xargs scripts/config
make -s olddefconfig >/dev/null

# Every option we asked for must have survived olddefconfig (a missing
# dependency silently drops it otherwise).
bad=0
grep -v '^[[:space:]]*\(#\|$\)' "$fragment" | while read -r op name val; do
  case $op in
    --enable) want="CONFIG_$name=y" ;;
    --set-val) want="CONFIG_$name=$val" ;;
    *) continue ;;
  esac
  grep -qx "$want" .config || { echo "build.sh: config-fragment: $want did not survive olddefconfig" >&2; echo x; }
done | grep -q x && bad=1
[ $bad = 0 ] || exit 1

make -s -j"$jobs" vmlinux bzImage >&2
mkdir -p "$out.tmp"
cp vmlinux "$out.tmp/vmlinux"
cp arch/x86/boot/bzImage "$out.tmp/bzImage"
cp .config "$out.tmp/config"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
