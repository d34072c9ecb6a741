"""podman drives hvrun as its OCI runtime (conmon calls create/start/
state/kill/delete/exec/pause/resume/update with runc's flags).

podman runs with its own --root/--runroot/--tmpdir under a temp dir, the
vfs storage driver, file events and cgroupfs, so the tests leave nothing
behind.  The image is built offline from the busybox rootfs."""
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from conftest import cgroup_dirs_named, hvrun_path, make_busybox_rootfs, unique_id, wait_for

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")

# root lacks CAP_SYS_RESOURCE here: podman's default ulimits cannot be set.
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
IMAGE = "localhost/hvrun-busybox:test"


class Podman:
    def __init__(self, base):
        self.base = base
        # conmon's exit-time `delete --force` drops --runtime-flag, so the
        # runtime state must live in hvrun's default root.
        self.runtime_root = "/run/hvrun"
        self.argv = ["podman", "--root", os.path.join(base, "root"),
                     "--runroot", os.path.join(base, "runroot"),
                     "--tmpdir", os.path.join(base, "tmp"),
                     "--storage-driver", "vfs", "--events-backend", "file",
                     "--cgroup-manager", "cgroupfs",
                     "--runtime", hvrun_path()]

    def __call__(self, *args, timeout=120, check=True, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        r = subprocess.run(self.argv + list(args), timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError("podman %s: %d\n%s%s" % (" ".join(args), r.returncode,
                                                          r.stdout, r.stderr))
        return r

    def shell(self, args):
        return " ".join("'%s'" % a.replace("'", "'\\''") for a in self.argv + args)


@pytest.fixture(scope="module")
def podman():
    base = tempfile.mkdtemp(prefix="hvrun-podman-")
    p = Podman(base)
    rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
    tar = os.path.join(base, "rootfs.tar")
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    p("import", tar, IMAGE)
    yield p
    p("rm", "--all", "--force", "--time", "0", check=False)
    p("rmi", "--all", "--force", check=False)
    shutil.rmtree(base, ignore_errors=True)
    # nothing of ours in any cgroup hierarchy
    assert not cgroup_dirs_named("hvrun-podman")


def runtime_entries(podman):
    d = podman.runtime_root
    return set(os.listdir(d)) if os.path.isdir(d) else set()


@pytest.fixture
def name(podman):
    before = runtime_entries(podman)
    cg_before = set(cgroup_dirs_named("libpod-"))
    n = unique_id("pm")
    yield n
    podman("rm", "--force", "--time", "0", n, check=False)
    # conmon deletes the container asynchronously after podman returns
    wait_for(lambda: not (runtime_entries(podman) - before), timeout=30,
             what="hvrun state of %s removed (left: %s)" % (n, runtime_entries(podman) - before))
    wait_for(lambda: not (set(cgroup_dirs_named("libpod-")) - cg_before), timeout=30,
             what="container cgroups removed")


def test_run_echo_hi(podman, name):
    r = podman("run", "--rm", "--name", name, "--network", "none", *ULIMITS, IMAGE, "echo", "hi")
    assert r.stdout == "hi\n"


def test_exit_code(podman, name):
    r = podman("run", "--rm", "--name", name, "--network", "none", *ULIMITS, IMAGE,
               "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3


def test_interactive_tty(podman, name):
    cmd = podman.shell(["run", "-it", "--rm", "--name", name, "--network", "none", *ULIMITS,
                        IMAGE, "sh"])
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], input="tty\necho it-$((6*7))\nexit 0\n",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "/dev/pts/" in r.stdout and "it-42" in r.stdout


def test_detached_exec_pause_stop(podman, name):
    podman("run", "-d", "--name", name, "--network", "none", "--memory", "64m", *ULIMITS,
           IMAGE, "sleep", "1000")
    r = podman("exec", name, "sh", "-c", "echo exec-ok; cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.stdout.split() == ["exec-ok", str(64 << 20)]
    r = podman("exec", name, "sh", "-c", "exit 5", check=False)
    assert r.returncode == 5
    cmd = podman.shell(["exec", "-it", name, "sh", "-c", "tty && echo exec-tty"])
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert "exec-tty" in r.stdout, r.stdout + r.stderr
    podman("pause", name)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
    podman("unpause", name)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
    podman("update", "--memory", "96m", name, check=False)
    podman("stop", "--time", "1", name)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "exited"
    podman("rm", name)


def cgroup_values(podman, name, files):
    """Read cgroup files as the container sees them (its v1 mounts show its
    own cgroup), one value a line, in order."""
    script = "; ".join("cat /sys/fs/cgroup/%s" % f for f in files)
    return podman("exec", name, "sh", "-c", script).stdout.split()


def test_run_cpus(podman, name):
    r = podman("run", "--rm", "--name", name, "--network", "none", "--cpus", "0.5", *ULIMITS,
               IMAGE, "sh", "-c",
               "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
    assert r.stdout.split() == ["50000", "100000"]


def test_run_pids_limit(podman, name):
    r = podman("run", "--rm", "--name", name, "--network", "none", "--pids-limit", "16", *ULIMITS,
               IMAGE, "cat", "/sys/fs/cgroup/pids/pids.max")
    assert r.stdout.split() == ["16"]


def test_update_running_container(podman, name):
    files = ["memory/memory.limit_in_bytes", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"]
    podman("run", "-d", "--name", name, "--network", "none", "--memory", "64m", "--cpus", "0.5",
           *ULIMITS, IMAGE, "sleep", "1000")
    assert cgroup_values(podman, name, files) == [str(64 << 20), "50000", "100000"]
    podman("update", "--memory", "128m", "--cpus", "1", name)
    assert cgroup_values(podman, name, files) == [str(128 << 20), "100000", "100000"]
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
