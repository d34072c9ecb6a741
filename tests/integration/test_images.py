"""Integration tests for the image store (`hvrun image ...`).

Every test uses its own temporary --store.  Images are built locally:
with images/mkbusybox.py, with podman (isolated --root/--runroot) and skopeo
from a busybox rootfs tarball, or crafted tar by tar with Python's tarfile
(adversarial layers).  No network.

HVRUN_BIN (or HVRUN, as the other files) selects the binary (default
build/hvrun).
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HVRUN = os.path.abspath(os.environ.get("HVRUN_BIN") or os.environ.get("HVRUN") or
                        os.path.join(ROOT, "build", "hvrun"))
MKBUSYBOX = os.path.join(ROOT, "images", "mkbusybox.py")
BUSYBOX = "/usr/bin/busybox"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"

pytestmark = pytest.mark.skipif(not os.path.exists(HVRUN), reason=f"{HVRUN} not built")


# ------------------------------------------------------------------ helpers

def hv(store, *args, check=True, env=None):
    p = subprocess.run([HVRUN, "image", "--store", store, *args], capture_output=True,
                       text=True, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"hvrun image {' '.join(args)} failed: {p.stderr}")
    return p


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="hvimg-")
    yield d
    # Unmount anything a failing test left mounted below d, then remove.
    with open("/proc/self/mounts") as f:
        mnts = [l.split()[1] for l in f if l.split()[1].startswith(d)]
    for m in sorted(mnts, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store(work):
    """A store that already holds the default image (so lock files exist)."""
    s = os.path.join(work, "store")
    layout = os.path.join(work, "bb-oci")
    subprocess.run(["python3", MKBUSYBOX, layout], check=True, capture_output=True)
    hv(s, "import", layout, "hvrun/busybox:latest")
    return s


def snapshot(d):
    """Listing + content hashes of a directory tree (mtimes ignored)."""
    out = []
    for root, dirs, files in os.walk(d):
        for n in sorted(dirs + files):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, d)
            st = os.lstat(p)
            if os.path.islink(p):
                out.append((rel, "l", os.readlink(p)))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out.append((rel, "f", hashlib.sha256(f.read()).hexdigest()))
            else:
                out.append((rel, oct(st.st_mode)))
    return sorted(out)


def tinfo(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.size = kind, link, mode, len(data)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def make_tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        z = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True)
        return z.stdout, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def put(layout, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}


def make_manifest(layout, layers, how="gzip", config=None, arch="amd64"):
    """Write layers + config + manifest blobs; returns the manifest descriptor."""
    ldescs, diff_ids = [], []
    for tar in layers:
        blob, mt = compress(tar, how)
        ldescs.append(dict(put(layout, blob), mediaType=mt))
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    cfg = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "config": config or {"Cmd": ["/bin/sh"]}}
    cdesc = dict(put(layout, json.dumps(cfg).encode()), mediaType=MT_CONFIG)
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cdesc, "layers": ldescs}
    return dict(put(layout, json.dumps(man).encode()), mediaType=MT_MANIFEST), man


def make_layout(layout, layers, how="gzip", config=None, name=None):
    desc, man = make_manifest(layout, layers, how, config)
    if name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": name}
    write_index(layout, [desc])
    return desc, man


def write_index(layout, descs):
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": descs}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def busybox_rootfs_tar(path):
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    ents = [tinfo("bin", tarfile.DIRTYPE, mode=0o755), tinfo("bin/busybox", data=bb, mode=0o755),
            tinfo("bin/sh", tarfile.SYMTYPE, link="busybox", mode=0o777),
            tinfo("etc", tarfile.DIRTYPE, mode=0o755),
            tinfo("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n"),
            tinfo("etc/group", data=b"root:x:0:\nwww:x:44:\nextra:x:77:\n"),
            tinfo("tmp", tarfile.DIRTYPE, mode=0o1777)]
    with open(path, "wb") as f:
        f.write(make_tar(ents))


def layer_dir(store, image):
    info = json.loads(hv(store, "inspect", image).stdout)
    return [os.path.join(store, "layers", l["diffId"][7:]) for l in info["layers"]]


def mount_check(store, work, image, path="bin/busybox"):
    scratch, mnt = os.path.join(work, "scratch"), os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    hv(store, "mount", image, scratch, mnt)
    try:
        assert os.path.exists(os.path.join(mnt, path))
    finally:
        hv(store, "unmount", scratch, mnt)
    assert not os.path.exists(scratch)


# ------------------------------------------------------------------ basics

def test_default_image_is_deterministic(work):
    a, b = os.path.join(work, "a"), os.path.join(work, "b")
    da = subprocess.run(["python3", MKBUSYBOX, a], check=True, capture_output=True, text=True)
    db = subprocess.run(["python3", MKBUSYBOX, b], check=True, capture_output=True, text=True)
    assert da.stdout == db.stdout and da.stdout.startswith("sha256:")


def test_import_ls_inspect_verify(store, work):
    ls = json.loads(hv(store, "ls", "--format", "json").stdout)
    assert [(r["name"], r["tag"]) for r in ls] == [("hvrun/busybox", "latest")]
    info = json.loads(hv(store, "inspect", "hvrun/busybox").stdout)
    assert info["digest"] == ls[0]["digest"]
    assert info["config"]["config"]["Cmd"] == ["/bin/sh"]
    assert info["chainId"] == info["layers"][0]["diffId"]  # one layer
    table = hv(store, "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "TAG", "ID"] and "hvrun/busybox" in table[1]
    assert "0 problems" in hv(store, "verify").stdout
    # short id and digest resolve too
    assert json.loads(hv(store, "inspect", info["digest"][7:19]).stdout)["digest"] == info["digest"]
    mount_check(store, work, "hvrun/busybox")


def test_env_store(work):
    layout = os.path.join(work, "bb")
    subprocess.run(["python3", MKBUSYBOX, layout], check=True, capture_output=True)
    s = os.path.join(work, "envstore")
    env = dict(os.environ, HVRUN_STORE=s)
    p = subprocess.run([HVRUN, "image", "import", layout], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("hvrun/busybox:latest sha256:")
    assert os.path.exists(os.path.join(s, "refs.json"))


def test_global_store_flag(work):
    """`hvrun --store DIR` (before the command) sets the store for image
    and one-shot commands alike, wins over $HVRUN_STORE, and a relative
    DIR is taken from the current directory."""
    layout = os.path.join(work, "bb")
    subprocess.run(["python3", MKBUSYBOX, layout], check=True, capture_output=True)
    other = os.path.join(work, "other-store")
    env = dict(os.environ, HVRUN_STORE=other)
    run = lambda *a, **kw: subprocess.run([HVRUN, *a], capture_output=True, text=True, env=env,
                                          cwd=work, timeout=120, **kw)
    p = run("--store", "flagstore", "image", "import", layout)
    assert p.returncode == 0, p.stderr
    s = os.path.join(work, "flagstore")
    assert os.path.exists(os.path.join(s, "refs.json"))
    assert not os.path.exists(other)
    p = run("--store", s, "image", "ls", "--format", "json")
    assert [r["name"] for r in json.loads(p.stdout)] == ["hvrun/busybox"], p.stderr
    # the same store through the one-shot
    root = os.path.join(work, "state")
    p = run("--root", root, "--store", s, "container", "hvrun/busybox", "echo", "from-flag")
    assert (p.returncode, p.stdout) == (0, "from-flag\n"), p.stderr
    # without the flag $HVRUN_STORE (empty) is used: unknown image
    p = run("--root", root, "container", "hvrun/busybox", "true")
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "hvrun/busybox" in p.stderr
    assert os.listdir(root) == []
    p = run("--store", "", "image", "ls")
    assert p.returncode != 0 and p.stderr.startswith("hvrun: --store"), p.stderr


@pytest.mark.parametrize("how", ["gzip", "zstd", "none"])
def test_layer_compressions_and_metadata(work, how):
    if how == "zstd" and not shutil.which("zstd"):
        pytest.skip("zstd CLI not installed (Debian package zstd)")
    s = os.path.join(work, "s")
    l1 = make_tar([
        tinfo("d", tarfile.DIRTYPE, mode=0o750, uid=12, gid=34, mtime=1000000),
        tinfo("d/f", data=b"hello", mode=0o4755, uid=5, gid=6, mtime=1234567),
        tinfo("d/hard", tarfile.LNKTYPE, link="d/f"),
        tinfo("d/sym", tarfile.SYMTYPE, link="../nowhere", mode=0o777),
        tinfo("d/fifo", tarfile.FIFOTYPE, mode=0o600),
        tinfo("d/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        tinfo("d/caps", data=b"x", mode=0o755,
              pax_headers={"SCHILY.xattr.security.capability":
                           "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                           "SCHILY.xattr.user.note": "hi"}),
    ])
    layout = os.path.join(work, "l")
    make_layout(layout, [l1], how)
    hv(s, "import", layout, "meta:1")
    (ld,) = layer_dir(s, "meta:1")
    st = os.lstat(os.path.join(ld, "d/f"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, int(st.st_mtime)) == (0o4755, 5, 6, 1234567)
    assert os.stat(os.path.join(ld, "d")).st_mtime == 1000000
    assert os.stat(os.path.join(ld, "d")).st_uid == 12
    assert os.lstat(os.path.join(ld, "d/hard")).st_ino == st.st_ino
    assert os.readlink(os.path.join(ld, "d/sym")) == "../nowhere"
    import stat as S
    assert S.S_ISFIFO(os.lstat(os.path.join(ld, "d/fifo")).st_mode)
    assert os.lstat(os.path.join(ld, "d/null")).st_rdev == os.makedev(1, 3)
    assert os.getxattr(os.path.join(ld, "d/caps"), "user.note") == b"hi"
    assert len(os.getxattr(os.path.join(ld, "d/caps"), "security.capability")) == 20


def test_whiteouts_and_shared_layers(work):
    s = os.path.join(work, "s")
    base = make_tar([tinfo("a", tarfile.DIRTYPE, mode=0o755), tinfo("a/keep", data=b"1"),
                     tinfo("a/gone", data=b"2"), tinfo("o", tarfile.DIRTYPE, mode=0o755),
                     tinfo("o/old", data=b"3"), tinfo("etc", tarfile.DIRTYPE, mode=0o755),
                     tinfo("etc/passwd", data=b"root:x:0:0::/:/bin/sh\n")])
    top = make_tar([tinfo("a/.wh.gone"), tinfo("o", tarfile.DIRTYPE, mode=0o755),
                    tinfo("o/.wh..wh..opq"), tinfo("o/new", data=b"4")])
    l1, l2 = os.path.join(work, "one"), os.path.join(work, "two")
    make_layout(l1, [base])
    make_layout(l2, [base, top])
    hv(s, "import", l1, "base:1")
    hv(s, "import", l2, "two:1")
    d_base, d_top = layer_dir(s, "two:1")
    assert d_base == layer_dir(s, "base:1")[0]  # unpacked once, shared
    wh = os.lstat(os.path.join(d_top, "a/gone"))
    assert os.major(wh.st_rdev) == 0 and os.minor(wh.st_rdev) == 0
    assert os.getxattr(os.path.join(d_top, "o"), "trusted.overlay.opaque") == b"y"
    scratch, mnt = os.path.join(work, "scr"), os.path.join(work, "mnt")
    os.makedirs(mnt)
    hv(s, "mount", "two:1", scratch, mnt)
    try:
        assert sorted(os.listdir(os.path.join(mnt, "a"))) == ["keep"]
        assert sorted(os.listdir(os.path.join(mnt, "o"))) == ["new"]
        with open(os.path.join(mnt, "scribble"), "w") as f:
            f.write("upper")
    finally:
        hv(s, "unmount", scratch, mnt)
    assert not os.path.exists(scratch)
    # erofs disk of the flattened image, cached by chain id
    disk = hv(s, "erofs", "two:1").stdout.strip()
    assert disk.endswith(json.loads(hv(s, "inspect", "two:1").stdout)["chainId"][7:] + ".erofs")
    assert hv(s, "erofs", "two:1").stdout.strip() == disk
    dump = subprocess.run(["dump.erofs", "--ls", "--path=/a", disk], capture_output=True, text=True)
    if dump.returncode == 0:
        assert "keep" in dump.stdout and "gone" not in dump.stdout
    # refcount: removing one image keeps the shared base layer
    hv(s, "rm", "two:1")
    assert os.path.isdir(d_base) and not os.path.exists(d_top) and not os.path.exists(disk)
    hv(s, "rm", "base:1")
    assert not os.path.exists(d_base)
    assert os.listdir(os.path.join(s, "blobs", "sha256")) == []


def test_platform_selection(work):
    s = os.path.join(work, "s")
    layout = os.path.join(work, "multi")
    amd, _ = make_manifest(layout, [make_tar([tinfo("which", data=b"amd64")])])
    arm, _ = make_manifest(layout, [make_tar([tinfo("which", data=b"arm64")])], arch="arm64")
    amd["platform"] = {"os": "linux", "architecture": "amd64"}
    arm["platform"] = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    write_index(layout, [arm, amd])
    out = hv(s, "import", layout, "multi:amd").stdout
    assert amd["digest"] in out
    out = hv(s, "import", "--platform", "linux/arm64", layout, "multi:arm").stdout
    assert arm["digest"] in out
    p = hv(s, "import", "--platform", "linux/s390x", layout, "multi:x", check=False)
    assert p.returncode != 0 and "no manifest for platform linux/s390x" in p.stderr


def test_config_user_resolution(work):
    s = os.path.join(work, "s")
    tar = os.path.join(work, "rootfs.tar")
    busybox_rootfs_tar(tar)
    hv(s, "import", "--rootfs", tar, "rf:1")

    def proc(*a):
        return json.loads(hv(s, "config", "rf:1", *a).stdout)["process"]
    assert proc("--user", "web")["user"] == {"uid": 33, "gid": 44}
    assert proc("--user", "web:extra")["user"] == {"uid": 33, "gid": 77}
    assert proc("--user", "33")["user"] == {"uid": 33, "gid": 44}
    assert proc("--user", "1000:www")["user"] == {"uid": 1000, "gid": 44}
    p = hv(s, "config", "rf:1", "--user", "nosuch", check=False)
    assert p.returncode != 0 and "no such user" in p.stderr
    assert proc("echo", "hi")["args"] == ["echo", "hi"]


def test_concurrent_imports_same_image(work):
    s = os.path.join(work, "s")
    layout = os.path.join(work, "bb")
    subprocess.run(["python3", MKBUSYBOX, layout], check=True, capture_output=True)
    procs = [subprocess.Popen([HVRUN, "image", "--store", s, "import", layout, f"c:{i % 2}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(6)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert "0 problems" in hv(s, "verify").stdout
    assert len(os.listdir(os.path.join(s, "layers"))) == 1
    assert [x for x in os.listdir(os.path.join(s, "tmp"))] == []


def test_kill9_midway_leaves_store_usable(store, work):
    import time
    big = make_tar([tinfo(f"f{i}", data=os.urandom(1 << 20)) for i in range(200)])
    layout = os.path.join(work, "big")
    make_layout(layout, [big], how="gzip")
    before = snapshot(os.path.join(store, "blobs")), open(os.path.join(store, "refs.json")).read()
    tmp = os.path.join(store, "tmp")
    p = subprocess.Popen([HVRUN, "image", "--store", store, "import", layout, "big:1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait until it is unpacking (a partial layer dir exists), then kill -9.
    deadline = time.time() + 60
    killed = False
    while time.time() < deadline and p.poll() is None:
        parts = [os.path.join(r, d) for r, ds, _ in os.walk(tmp) for d in ds
                 if d.startswith("partial-")]
        if parts:
            p.kill()
            killed = True
            break
        time.sleep(0.01)
    p.wait()
    if not killed:
        pytest.skip("import finished before it could be killed")
    assert os.listdir(tmp), "expected leftovers of the killed import"
    assert (snapshot(os.path.join(store, "blobs")),
            open(os.path.join(store, "refs.json")).read()) == before
    assert "0 problems" in hv(store, "verify").stdout
    out = hv(store, "prune").stdout
    assert "0 temp leftovers" not in out, out
    assert os.listdir(tmp) == []
    hv(store, "import", layout, "big:1")
    assert "0 problems" in hv(store, "verify").stdout


def test_prune_waits_for_running_import(store, work):
    layout = os.path.join(work, "mid")
    make_layout(layout, [make_tar([tinfo(f"f{i}", data=os.urandom(1 << 16)) for i in range(400)])])
    imp = subprocess.Popen([HVRUN, "image", "--store", store, "import", layout, "mid:1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    prunes = [subprocess.run([HVRUN, "image", "--store", store, "prune"], capture_output=True)
              for _ in range(3)]
    _, err = imp.communicate(timeout=120)
    assert imp.returncode == 0, err
    assert all(pr.returncode == 0 for pr in prunes)
    assert "0 problems" in hv(store, "verify").stdout
    mount_check(store, work, "mid:1", path="f399")


def test_rm_while_mounted_keeps_layers(store, work):
    scratch, mnt = os.path.join(work, "scr"), os.path.join(work, "mnt")
    os.makedirs(mnt)
    (ld,) = layer_dir(store, "hvrun/busybox")
    hv(store, "mount", "hvrun/busybox", scratch, mnt)
    try:
        hv(store, "rm", "hvrun/busybox")
        hv(store, "prune")
        assert os.path.isdir(ld), "layer of a mounted rootfs was collected"
        assert os.path.exists(os.path.join(mnt, "bin/busybox"))
    finally:
        hv(store, "unmount", scratch, mnt)
    hv(store, "prune")
    assert not os.path.exists(ld)


def test_verify_detects_corruption(store):
    blobs = os.path.join(store, "blobs", "sha256")
    victim = max(os.listdir(blobs), key=lambda n: os.path.getsize(os.path.join(blobs, n)))
    with open(os.path.join(blobs, victim), "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    p = hv(store, "verify", check=False)
    assert p.returncode != 0
    assert f"corrupt blob sha256:{victim}" in p.stdout


def test_verify_detects_tampered_layer_dir(store):
    (ld,) = layer_dir(store, "hvrun/busybox")
    assert "0 problems" in hv(store, "verify").stdout
    with open(os.path.join(ld, "etc/passwd"), "a") as f:
        f.write("evil::0:0::/:/bin/sh\n")
    os.unlink(os.path.join(ld, "bin/ls"))
    p = hv(store, "verify", check=False)
    assert p.returncode != 0
    assert "`etc/passwd`: size differs" in p.stdout and "`bin/ls`: missing" in p.stdout


# ------------------------------------------------------------------ podman / skopeo

@pytest.fixture
def podman_archives(work):
    if not shutil.which("podman") or not shutil.which("skopeo"):
        pytest.skip("podman/skopeo not installed")
    tar = os.path.join(work, "rootfs.tar")
    busybox_rootfs_tar(tar)
    pr = ["podman", "--root", os.path.join(work, "proot"), "--runroot", os.path.join(work, "prun"),
          "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    subprocess.run(pr + ["import", "--change", 'CMD ["/bin/sh"]', tar, "localhost/pod:1"],
                   check=True, capture_output=True)
    oci = os.path.join(work, "oci.tar")
    dock = os.path.join(work, "docker.tar")
    subprocess.run(pr + ["save", "--format", "oci-archive", "-o", oci, "localhost/pod:1"],
                   check=True, capture_output=True)
    subprocess.run(pr + ["save", "--format", "docker-archive", "-o", dock, "localhost/pod:1"],
                   check=True, capture_output=True)
    sko = os.path.join(work, "skodir")
    subprocess.run(["skopeo", "copy", f"oci-archive:{oci}", f"oci:{sko}:sko"], check=True,
                   capture_output=True)
    yield {"oci-archive": oci, "docker-archive": dock, "skopeo-oci-dir": sko}
    subprocess.run(pr + ["rmi", "-a", "-f"], capture_output=True)
    subprocess.run(["umount", "-R", os.path.join(work, "proot")], capture_output=True)


@pytest.mark.parametrize("kind", ["oci-archive", "docker-archive", "skopeo-oci-dir"])
def test_podman_skopeo_images(work, podman_archives, kind):
    s = os.path.join(work, "s")
    out = hv(s, "import", podman_archives[kind], "pod:" + kind).stdout
    assert out.startswith(f"pod:{kind} sha256:")
    assert "0 problems" in hv(s, "verify").stdout
    mount_check(s, work, "pod:" + kind)
    p = subprocess.run([HVRUN, "container", "pod:" + kind, "/bin/busybox", "echo", "ran-" + kind],
                       env=dict(os.environ, HVRUN_STORE=s), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ran-" + kind in p.stdout


def test_podman_archive_default_name(work, podman_archives):
    s = os.path.join(work, "s")
    assert hv(s, "import", podman_archives["docker-archive"]).stdout.startswith("localhost/pod:1 ")
    assert hv(s, "import", podman_archives["oci-archive"]).stdout.startswith("localhost/pod:1 ")


# ------------------------------------------------------------------ adversarial layers

@pytest.fixture
def evil(work):
    """A host directory that a malicious layer tries to reach."""
    d = os.path.join("/tmp", "hvrun-evil-" + uuid.uuid4().hex[:8])
    os.makedirs(d)
    with open(os.path.join(d, "victim"), "w") as f:
        f.write("precious")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def assert_rejected(store, work, layer_tar, evil, expect, how="gzip", opts=()):
    layout = os.path.join(work, "evil-" + uuid.uuid4().hex[:6])
    make_layout(layout, [layer_tar], how)
    before = snapshot(store)
    outside_before = snapshot(evil)
    passwd = os.stat("/etc/passwd")
    p = hv(store, "import", *opts, layout, "evil:1", check=False)
    assert p.returncode != 0, "malicious layer was accepted"
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert expect in p.stderr, p.stderr
    assert snapshot(evil) == outside_before
    assert os.stat("/etc/passwd").st_nlink == passwd.st_nlink
    assert snapshot(store) == before


def test_reject_dotdot_path(store, work, evil):
    up = "../" * 30
    tar = make_tar([tinfo(up + evil.lstrip("/") + "/dotdot", data=b"pwned")])
    assert_rejected(store, work, tar, evil, "path escapes the layer directory")


def test_reject_absolute_path(store, work, evil):
    tar = make_tar([tinfo(evil + "/abs", data=b"pwned")], fmt=tarfile.GNU_FORMAT)
    assert_rejected(store, work, tar, evil, "absolute path")


def test_reject_symlink_to_root_then_file(store, work, evil):
    tar = make_tar([tinfo("escape", tarfile.SYMTYPE, link="/"),
                    tinfo("escape" + evil + "/viasymlink", data=b"pwned")])
    assert_rejected(store, work, tar, evil, "resolves outside the layer directory")


def test_reject_relative_symlink_escape(store, work, evil):
    tar = make_tar([tinfo("up", tarfile.SYMTYPE, link="../../../../../../../../../.." + evil),
                    tinfo("up/viarelsymlink", data=b"pwned")])
    assert_rejected(store, work, tar, evil, "resolves outside the layer directory")


def test_reject_hardlink_to_host_file(store, work, evil):
    tar = make_tar([tinfo("pw", tarfile.LNKTYPE, link="/etc/passwd")])
    assert_rejected(store, work, tar, evil, "hardlink target")
    tar = make_tar([tinfo("pw", tarfile.LNKTYPE, link="../" * 20 + "etc/passwd")])
    assert_rejected(store, work, tar, evil, "hardlink target")
    tar = make_tar([tinfo("root", tarfile.SYMTYPE, link="/"),
                    tinfo("pw", tarfile.LNKTYPE, link="root/etc/passwd")])
    assert_rejected(store, work, tar, evil, "resolves outside the layer directory")
    tar = make_tar([tinfo("pw", tarfile.LNKTYPE, link="etc/passwd")])  # not in this layer
    assert_rejected(store, work, tar, evil, "is not in this layer")


def test_reject_whiteout_outside(store, work, evil):
    tar = make_tar([tinfo("../" * 30 + evil.lstrip("/") + "/.wh.victim")])
    assert_rejected(store, work, tar, evil, "path escapes the layer directory")
    tar = make_tar([tinfo("l", tarfile.SYMTYPE, link=evil), tinfo("l/.wh.victim")])
    assert_rejected(store, work, tar, evil, "resolves outside the layer directory")
    tar = make_tar([tinfo("d", tarfile.DIRTYPE), tinfo("d/.wh..")])
    assert_rejected(store, work, tar, evil, "invalid whiteout name")


def test_reject_in_one_of_several_layers(store, work, evil):
    """Layers unpack in parallel workers; one bad layer fails the import."""
    layout = os.path.join(work, "multi-evil")
    good = [make_tar([tinfo(f"g{k}/f{i}", data=b"x" * 100) for i in range(50)]) for k in range(3)]
    bad = make_tar([tinfo("../" * 30 + evil.lstrip("/") + "/pwned", data=b"x")])
    make_layout(layout, good[:2] + [bad] + good[2:])
    before = snapshot(store)
    p = hv(store, "import", layout, "evil:2", check=False)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1 and "escapes" in p.stderr, p.stderr
    assert snapshot(store) == before
    assert os.listdir(evil) == ["victim"]


def test_reject_gzip_bomb(store, work, evil):
    # 256 MiB of zeros compresses to ~250 KiB; the limit stops it at 16 MiB.
    zeros = io.BytesIO()
    with tarfile.open(fileobj=zeros, mode="w") as t:
        ti = tarfile.TarInfo("bomb")
        ti.size = 256 << 20

        class Zero(io.RawIOBase):
            left = ti.size

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n
        t.addfile(ti, Zero())
    assert_rejected(store, work, zeros.getvalue(), evil, "limit", opts=("--max-size", "16M"))


def test_reject_entry_count_bomb(store, work, evil):
    tar = make_tar([tinfo(f"f{i}") for i in range(300)])
    assert_rejected(store, work, tar, evil, "more than 100 entries",
                    opts=("--max-entries", "100"))


# ------------------------------------------------------------------ bad input

def assert_bad(store, args, expect):
    before = snapshot(store)
    p = hv(store, *args, check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert expect in lines[0], p.stderr
    assert snapshot(store) == before


def good_layout(work, name="good"):
    layout = os.path.join(work, name)
    _, man = make_layout(layout, [make_tar([tinfo("hello", data=b"world" * 1000)])])
    return layout, man


def test_bad_truncated_archive(store, work):
    layout, _ = good_layout(work)
    arc = os.path.join(work, "oci.tar")
    subprocess.run(["tar", "-C", layout, "-cf", arc, "."], check=True)
    with open(arc, "r+b") as f:
        f.truncate(os.path.getsize(arc) // 2 + 100)
    assert_bad(store, ["import", arc, "t:1"], "archive")


def test_bad_truncated_layer_blob(store, work):
    layout, man = good_layout(work)
    blob = os.path.join(layout, "blobs", "sha256", man["layers"][0]["digest"][7:])
    with open(blob, "r+b") as f:
        f.truncate(os.path.getsize(blob) - 10)
    assert_bad(store, ["import", layout, "t:1"], "truncated")


def test_bad_wrong_digest(store, work):
    layout, man = good_layout(work)
    blob = os.path.join(layout, "blobs", "sha256", man["layers"][0]["digest"][7:])
    with open(blob, "r+b") as f:
        f.seek(20)
        c = f.read(1)
        f.seek(20)
        f.write(bytes([c[0] ^ 1]))
    assert_bad(store, ["import", layout, "t:1"], "layer " + man["layers"][0]["digest"])


def test_bad_missing_blob(store, work):
    layout, man = good_layout(work)
    os.unlink(os.path.join(layout, "blobs", "sha256", man["layers"][0]["digest"][7:]))
    assert_bad(store, ["import", layout, "t:1"], "is missing")


def test_bad_unknown_media_type(store, work):
    layout = os.path.join(work, "mt")
    os.makedirs(layout)
    ldesc = dict(put(layout, gzip.compress(make_tar([tinfo("x", data=b"1")]))),
                 mediaType="application/x-mystery")
    cfg = {"architecture": "amd64", "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    cdesc = dict(put(layout, json.dumps(cfg).encode()), mediaType=MT_CONFIG)
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cdesc, "layers": [ldesc]}
    write_index(layout, [dict(put(layout, json.dumps(man).encode()), mediaType=MT_MANIFEST)])
    assert_bad(store, ["import", layout, "t:1"], "unknown media type `application/x-mystery`")


@pytest.mark.parametrize("ref", ["Upper/Case", "a:b:c", "x:bad!tag", "-lead", "a//b", ""])
def test_bad_reference(store, work, ref):
    layout, _ = good_layout(work)
    assert_bad(store, ["import", layout, ref], "invalid reference")


def test_bad_not_an_image(store, work):
    d = os.path.join(work, "empty")
    os.makedirs(d)
    assert_bad(store, ["import", d, "t:1"], "not an OCI image layout")
    assert_bad(store, ["inspect", "nosuch:tag"], "not found")
    assert_bad(store, ["rm", "nosuch:tag"], "not found")
