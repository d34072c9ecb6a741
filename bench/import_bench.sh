#!/bin/bash
# import_bench.sh: time import+unpack of the same OCI image with hvrun and
# with `umoci unpack`, in one run, alternating; prints each run, the medians
# and the ratio hvrun/umoci (goal: <= 0.7).
#
#   bench/import_bench.sh [RUNS]        (default 5)
# Env: HVRUN (default build/hvrun), BENCH_DIRS (host dirs packed into the
# test image; default: two Python trees, ~110 MB, ~8000 files),
# BENCH_LAYERS (split into this many layers, default 2).
# Each run uses a fresh store / bundle, so nothing is deduplicated.
set -euo pipefail
RUNS=${1:-5}
HVRUN=${HVRUN:-build/hvrun}
BENCH_DIRS=${BENCH_DIRS:-"usr/lib/python3 usr/lib/python3.11"}
command -v umoci >/dev/null || { echo "import_bench: umoci is not installed" >&2; exit 1; }
[ -x "$HVRUN" ] || { echo "import_bench: $HVRUN is not built" >&2; exit 1; }
HVRUN=$(readlink -f "$HVRUN")
W=$(mktemp -d /tmp/hvrun-import-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT

# Build the image: one gzip layer per BENCH_DIRS entry.
python3 - "$W/layout" $BENCH_DIRS <<'EOF'
import gzip, hashlib, json, os, subprocess, sys
out, dirs = sys.argv[1], sys.argv[2:]
os.makedirs(f"{out}/blobs/sha256")
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
layers, diff_ids = [], []
for d in dirs:
    tar = subprocess.run(["tar", "-C", "/", "--sort=name", "-cf", "-", d], check=True,
                         stdout=subprocess.PIPE).stdout
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    layers.append(dict(put(gzip.compress(tar, 6, mtime=0)),
                       mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
       "rootfs": {"type": "layers", "diff_ids": diff_ids}}
c = dict(put(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": c, "layers": layers}
md = dict(put(json.dumps(m).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
          annotations={"org.opencontainers.image.ref.name": "bench"})
json.dump({"schemaVersion": 2, "manifests": [md]}, open(f"{out}/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{out}/oci-layout", "w"))
EOF
size=$(du -sb "$W/layout" | cut -f1)
files=$(tar -C / -cf - $BENCH_DIRS 2>/dev/null | tar -tf - | wc -l)
echo "image: $BENCH_DIRS ($((size / 1000000)) MB compressed, $files entries)"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$W/hv.times"
: >"$W/umoci.times"
# Deleting the previous run's ~10k files leaves the filesystem busy (journal,
# discard) for whoever runs next, so each timed command starts after its
# own cleanup + sync + pause, and the order alternates.
settle() { rm -rf "$1"; sync; sleep 1; }
run_hv() {
  settle "$W/store"
  local t0 t1
  t0=$(now)
  "$HVRUN" image --store "$W/store" import "$W/layout" bench:1 >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc -l | tee -a "$W/hv.times"
}
run_umoci() {
  settle "$W/bundle"
  local t0 t1
  t0=$(now)
  umoci unpack --image "$W/layout:bench" "$W/bundle" >/dev/null 2>&1
  t1=$(now)
  echo "$t1 - $t0" | bc -l | tee -a "$W/umoci.times"
}
for i in $(seq 1 "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then hv=$(run_hv); um=$(run_umoci); else um=$(run_umoci); hv=$(run_hv); fi
  printf 'run %d: hvrun %.3fs  umoci %.3fs\n' "$i" "$hv" "$um"
done
# Sanity: both trees hold the same files.
a=$(cd "$W/store/layers" && find . -mindepth 2 -type f | sed 's|^\./[^/]*/||' | sort | md5sum)
b=$(cd "$W/bundle/rootfs" && find . -type f | sed 's|^\./||' | sort | md5sum)
[ "$a" = "$b" ] || echo "WARNING: hvrun and umoci unpacked different file sets" >&2
hvm=$(median <"$W/hv.times")
umm=$(median <"$W/umoci.times")
printf 'median: hvrun %.3fs  umoci %.3fs  ratio hvrun/umoci %.2f (goal <= 0.70)\n' "$hvm" "$umm" \
  "$(echo "$hvm / $umm" | bc -l)"
