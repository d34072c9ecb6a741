"""Shared fixtures for hvrun's integration tests.

Every test gets its own --root (a temp dir) and unique container ids, and
the `hv` fixture checks at teardown that nothing is left behind: no state
dir, no mount naming the id or the root, no cgroup directory naming the id,
no process still in such a cgroup.

The binary under test is $HVRUN (default build/hvrun); `make integration`
runs the suite against build/hvrun and build/asan/hvrun.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUSYBOX = "/usr/bin/busybox"


def hvrun_path():
    p = os.environ.get("HVRUN", os.path.join(REPO, "build", "hvrun"))
    return os.path.abspath(p)


def unique_id(prefix="t"):
    return "%s-%d-%s" % (prefix, os.getpid(), uuid.uuid4().hex[:8])


def make_busybox_rootfs(path):
    """A minimal root filesystem: busybox (static) and its applets."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)  # after pivot_root this is "/", for every uid
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin", "sbin"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        link = os.path.join(path, "bin", a)
        if a != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\n")
    return path


@pytest.fixture(scope="session")
def hvrun():
    p = hvrun_path()
    if not os.access(p, os.X_OK):
        pytest.fail("hvrun binary %s is missing: run `make` first" % p)
    return p


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("rootfs")))


def default_spec(hvrun, args, terminal=False):
    d = tempfile.mkdtemp(prefix="hvrun-spec-")
    try:
        subprocess.run([hvrun, "spec", "--bundle", d], check=True)
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
    finally:
        shutil.rmtree(d)
    cfg["process"]["terminal"] = terminal
    cfg["process"]["args"] = list(args)
    return cfg


def cgroup_dirs_named(needle):
    """Every cgroup directory (any hierarchy, up to 5 levels) whose name
    contains `needle`."""
    found = []
    for hier in glob.glob("/sys/fs/cgroup/*"):
        base_depth = hier.count("/")
        for dirpath, dirnames, _ in os.walk(hier):
            if dirpath.count("/") - base_depth >= 5:
                dirnames[:] = []
                continue
            for d in dirnames:
                if needle in d:
                    found.append(os.path.join(dirpath, d))
    return found


def mounts_naming(needle):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if needle in l]


class Hv:
    """One test's hvrun: its own --root, its ids, its bundles, and a
    teardown that force-deletes and then asserts nothing is left."""

    def __init__(self, binary, tmp, rootfs):
        self.bin = binary
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.rootfs = rootfs
        self.ids = []
        self.procs = []

    def id(self, prefix="t"):
        i = unique_id(prefix)
        self.ids.append(i)
        return i

    def cmd(self, *args):
        return [self.bin, "--root", self.root] + [str(a) for a in args]

    def run(self, *args, check=False, timeout=60, **kw):
        # Files, not pipes: a created/detached container inherits hvrun's
        # stdio and keeps it open long after hvrun has returned.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            stdin = kw.pop("input", None)
            if stdin is not None:
                kw["stdin"] = tempfile.TemporaryFile()
                kw["stdin"].write(stdin.encode())
                kw["stdin"].seek(0)
            p = subprocess.run(self.cmd(*args), timeout=timeout, stdout=out, stderr=err, **kw)
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(p.args, p.returncode,
                                            out.read().decode(errors="replace"),
                                            err.read().decode(errors="replace"))
        if check and r.returncode != 0:
            raise AssertionError("hvrun %s failed (%d): %s" % (" ".join(map(str, args)),
                                                               r.returncode, r.stderr))
        return r

    def popen(self, *args, **kw):
        p = subprocess.Popen(self.cmd(*args), **kw)
        self.procs.append(p)
        return p

    def bundle(self, args, terminal=False, edit=None, name=None):
        """A bundle dir whose rootfs is a bind of the shared busybox rootfs
        (config root.path is absolute, so nothing is copied)."""
        b = os.path.join(self.tmp, name or ("bundle-" + uuid.uuid4().hex[:6]))
        os.makedirs(b)
        cfg = default_spec(self.bin, args, terminal)
        cfg["root"] = {"path": self.rootfs, "readonly": True}
        if edit:
            edit(cfg)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        return b

    def state(self, cid):
        r = self.run("state", cid, check=True)
        return json.loads(r.stdout)

    def leftovers(self):
        problems = []
        for i in self.ids:
            if cgroup_dirs_named(i):
                problems.append("cgroup dirs: %s" % cgroup_dirs_named(i))
            if mounts_naming(i):
                problems.append("mounts: %s" % mounts_naming(i))
        if mounts_naming(self.root):
            problems.append("mounts under root: %s" % mounts_naming(self.root))
        if os.path.isdir(self.root):
            left = [e for e in os.listdir(self.root)]
            if left:
                problems.append("state left in %s: %s" % (self.root, left))
        return problems

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for i in self.ids:
            subprocess.run(self.cmd("delete", "--force", i), capture_output=True, timeout=60)


@pytest.fixture
def hv(hvrun, rootfs, tmp_path):
    h = Hv(hvrun, str(tmp_path), rootfs)
    yield h
    problems = h.leftovers()
    h.cleanup()
    assert not problems, "left behind: %s" % problems
    assert not h.leftovers(), "left behind even after delete --force: %s" % h.leftovers()


def wait_for(pred, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def one_line_error(r):
    """Bad input: non-zero exit and exactly one line on stderr."""
    assert r.returncode != 0, "expected failure, got success: %s" % r.stdout
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one error line, got: %r" % r.stderr
    assert lines[0].startswith("hvrun: "), lines[0]
    return lines[0]
