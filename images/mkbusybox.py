#!/usr/bin/python3
"""Build the built-in default image (hvrun/busybox) as an OCI image layout,
offline, from Debian's busybox-static.

Deterministic: fixed mtimes/owners, sorted entries, gzip without a name or
timestamp, compact sorted JSON; the same busybox binary (and helpers) give
the same manifest digest every time.

usage: mkbusybox.py OUTDIR [--busybox PATH] [--helper FILE]... [--name REF]
Helpers (static test binaries, e.g. from tests/helpers) go to /usr/local/bin.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

MTIME = 0  # fixed so the digest is stable
DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555,
        "root": 0o700, "run": 0o755, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777,
        "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "usr/local": 0o755,
        "usr/local/bin": 0o755, "var": 0o755, "var/tmp": 0o1777}
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def info(name, kind=tarfile.REGTYPE, mode=0o644, size=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = MTIME, 0, 0, "root", "root"
    return ti


def applets(busybox):
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True)
    return sorted(p for p in out.stdout.split() if p and p != "bin/busybox")


def layer_tar(busybox, helpers):
    entries = []  # (name, TarInfo, data)
    for d, mode in DIRS.items():
        entries.append((d, info(d, tarfile.DIRTYPE, mode), None))
    with open(busybox, "rb") as f:
        data = f.read()
    entries.append(("bin/busybox", info("bin/busybox", mode=0o755, size=len(data)), data))
    for p in applets(busybox):
        if os.path.dirname(p) in DIRS:
            entries.append((p, info(p, tarfile.SYMTYPE, 0o777, link="/bin/busybox"), None))
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP),
                       ("etc/hostname", "hvrun\n")):
        b = text.encode()
        entries.append((name, info(name, size=len(b)), b))
    for h in helpers:
        with open(h, "rb") as f:
            b = f.read()
        n = "usr/local/bin/" + os.path.basename(h)
        entries.append((n, info(n, mode=0o755, size=len(b)), b))
    seen, buf = set(), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, ti, data in sorted(entries, key=lambda e: e[0]):
            if name in seen:
                continue
            seen.add(name)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def put_blob(out, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--busybox", default="/usr/bin/busybox")
    ap.add_argument("--helper", action="append", default=[])
    ap.add_argument("--name", default="hvrun/busybox:latest")
    a = ap.parse_args()
    if not os.access(a.busybox, os.X_OK):
        sys.exit(f"mkbusybox: {a.busybox} is missing (apt-get install busybox-static)")
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(os.path.join(a.out, "blobs", "sha256"))
    tar = layer_tar(a.busybox, sorted(a.helper))
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=6) as g:
        g.write(tar)
    layer, lsize = put_blob(a.out, gz.getvalue())
    config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
              "config": {"Env": [PATH], "Cmd": ["/bin/sh"], "WorkingDir": "/",
                         "Labels": {"org.opencontainers.image.title": "hvrun/busybox"}},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "mkbusybox.py"}]}
    cdig, csize = put_blob(a.out, dumps(config))
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdig, "size": csize},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer, "size": lsize}]}
    mdig, msize = put_blob(a.out, dumps(manifest))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": mdig, "size": msize,
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"org.opencontainers.image.ref.name": a.name}}]}
    with open(os.path.join(a.out, "index.json"), "wb") as f:
        f.write(dumps(index))
    with open(os.path.join(a.out, "oci-layout"), "wb") as f:
        f.write(dumps({"imageLayoutVersion": "1.0.0"}))
    print(mdig)


if __name__ == "__main__":
    main()
