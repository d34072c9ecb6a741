#!/usr/bin/env bash
# vm/kernel/stock.sh OUT: Debian's stock cloud kernel (the package
# linux-image-cloud-amd64 points at), unpacked under OUT/<package>/ as the
# package lays it out (boot/vmlinuz-<release>, lib/modules/<release>/), for
# the tests that boot a distribution kernel through --kernel.  Cached: a
# package already unpacked is not fetched again.  OUT/current links to it.
# Nothing is installed on the host (no initramfs or bootloader hooks run).
set -euo pipefail
out=$1
mkdir -p "$out"
resolve() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
  echo "stock-kernel: apt knows no linux-image-cloud-amd64 package" >&2
  exit 1
fi
if [ ! -f "$out/$pkg/.complete" ]; then
  tmp=$(mktemp -d "$out/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # apt's download sandbox user cannot write to a root-only directory.
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  touch "$tmp/root/.complete"
  rm -rf "${out:?}/$pkg"
  mv "$tmp/root" "$out/$pkg"
fi
ln -sfn "$pkg" "$out/current"
echo "$out/$pkg"
