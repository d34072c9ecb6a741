"""containerd drives hvrun through its runc shim (containerd-shim-runc-v2
passes --root, --log, --log-format json, and calls `ps --format json`,
`exec --process`, `pause`, `resume`, `kill`, `delete`).

A private containerd (temp root/state/socket, no CRI plugin) is started for
the module; the image is the busybox rootfs built offline, saved by podman
as an OCI archive and imported with ctr."""
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import cgroup_dirs_named, hvrun_path, make_busybox_rootfs, unique_id, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("containerd") is None or shutil.which("ctr") is None
    or shutil.which("podman") is None, reason="containerd/ctr/podman not installed")

IMAGE = "localhost/hvrun-busybox:ctd"
SHIM_ROOT = "/run/containerd/runc/default"  # where the shim points --root


class Ctr:
    def __init__(self, base):
        self.base = base
        self.sock = os.path.join(base, "containerd.sock")

    def __call__(self, *args, timeout=120, check=True, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        r = subprocess.run(["ctr", "-a", self.sock] + list(args), timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError("ctr %s: %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                       r.stderr))
        return r


@pytest.fixture(scope="module")
def ctr():
    base = tempfile.mkdtemp(prefix="hvrun-ctd-")
    c = Ctr(base)
    cfg = os.path.join(base, "config.toml")
    with open(cfg, "w") as f:
        f.write('version = 2\nroot = "%s/root"\nstate = "%s/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n'
                '[debug]\n  address = "%s/debug.sock"\n' % (base, base, c.sock, c.sock, base))
    log = open(os.path.join(base, "containerd.log"), "w")
    daemon = subprocess.Popen(["containerd", "--config", cfg], stdout=log, stderr=log)
    try:
        wait_for(lambda: os.path.exists(c.sock) and c("version", check=False).returncode == 0,
                 timeout=30, what="containerd up")
        # the image: busybox rootfs -> podman import -> oci-archive -> ctr import
        pbase = os.path.join(base, "podman")
        podman = ["podman", "--root", pbase + "/root", "--runroot", pbase + "/runroot",
                  "--tmpdir", pbase + "/tmp", "--storage-driver", "vfs",
                  "--events-backend", "file", "--cgroup-manager", "cgroupfs"]
        rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
        tar = os.path.join(base, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        subprocess.run(podman + ["import", tar, IMAGE], check=True, capture_output=True)
        archive = os.path.join(base, "image.tar")
        subprocess.run(podman + ["save", "--format", "oci-archive", "-o", archive, IMAGE],
                       check=True, capture_output=True)
        subprocess.run(podman + ["rmi", "-af"], capture_output=True)
        c("images", "import", archive)
        yield c
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        leftover = [l for l in open("/proc/self/mountinfo") if base in l]
        for l in leftover:
            subprocess.run(["umount", "-l", l.split()[4]], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        assert not leftover, "containerd mounts left: %s" % leftover


@pytest.fixture
def cid(ctr):
    i = unique_id("ctd")
    yield i
    ctr("task", "kill", "-s", "KILL", i, check=False)
    ctr("task", "rm", "-f", i, check=False)
    ctr("containers", "rm", i, check=False)
    assert not os.path.exists(os.path.join(SHIM_ROOT, i)), "hvrun state left for %s" % i
    assert not cgroup_dirs_named(i), "cgroups left: %s" % cgroup_dirs_named(i)


def test_run_echo_hi(ctr, cid):
    r = ctr("run", "--rm", "--runc-binary", hvrun_path(), IMAGE, cid, "echo", "hi")
    assert r.stdout == "hi\n"


def test_exit_code(ctr, cid):
    r = ctr("run", "--rm", "--runc-binary", hvrun_path(), IMAGE, cid, "sh", "-c", "exit 6",
            check=False)
    assert r.returncode == 6


def test_task_ps_exec_pause_kill(ctr, cid):
    ctr("run", "-d", "--runc-binary", hvrun_path(), IMAGE, cid, "sleep", "1000")
    r = ctr("task", "ps", cid)
    assert len(r.stdout.strip().splitlines()) == 2  # header + the sleep
    r = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo exec-ok")
    assert r.stdout == "exec-ok\n"
    ctr("task", "pause", cid)
    assert "PAUSED" in ctr("task", "ls").stdout
    ctr("task", "resume", cid)
    assert "RUNNING" in ctr("task", "ls").stdout
    r = ctr("task", "metrics", cid)
    assert "memory" in r.stdout
    ctr("task", "kill", "-s", "KILL", cid)
    wait_for(lambda: "STOPPED" in ctr("task", "ls").stdout, what="stopped")
    ctr("task", "rm", cid)
    ctr("containers", "rm", cid)
