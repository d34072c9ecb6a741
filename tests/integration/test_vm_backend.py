"""The VM backend's lifecycle: `hvrun vm ROOTFS [CMD...]` and the OCI
commands with `--backend vm` / annotation org.hvrun.backend=vm, the VMM
jailed (namespaces, cgroup, pivot_root, no capabilities, seccomp).

Most tests use `--engine qemu` (HVRUN_ENGINE=qemu / annotation
org.hvrun.engine=qemu): on this host's KVM (PVM) QEMU picks TCG and a boot
takes about a second.  One test boots on hvrun's own VMM; under PVM that
takes about a minute (HVRUN_SKIP_SLOW=1 skips it).

The guest kernel and init come from `make kernel guest-init` (cached by
content hash, so a no-op when built).  HVRUN_KERNEL / HVRUN_INIT override.
"""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import REPO, cgroup_dirs_named, one_line_error, wait_for

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed")


@pytest.fixture(scope="module")
def guest():
    kernel = os.environ.get("HVRUN_KERNEL")
    init = os.environ.get("HVRUN_INIT")
    if not (kernel and init):
        subprocess.run(["make", "-s", "kernel", "guest-init"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
        kernel = kernel or os.path.join(REPO, "build", "kernel", "vmlinux")
        init = init or os.path.join(REPO, "build", "hvrun-init")
    for f in (kernel, init):
        assert os.path.isfile(f), "%s is missing" % f
    return {"kernel": os.path.realpath(kernel), "init": os.path.realpath(init)}


def env(guest, engine="qemu", **extra):
    e = dict(os.environ, HVRUN_KERNEL=guest["kernel"], HVRUN_INIT=guest["init"])
    if engine:
        e["HVRUN_ENGINE"] = engine
    else:
        e.pop("HVRUN_ENGINE", None)
    e.update(extra)
    return e


def vm(hv, guest, *args, engine="qemu", timeout=120, **kw):
    """`hvrun vm --name ID ...`; the id is registered for the leftover checks."""
    return hv.run("vm", "--name", hv.id("vm"), *args, env=env(guest, engine), timeout=timeout,
                  **kw)


def vm_bundle(hv, guest, args, engine="qemu", edit=None):
    def annotate(cfg):
        cfg["root"]["readonly"] = False
        cfg.setdefault("annotations", {}).update({"org.hvrun.backend": "vm",
                                                  "org.hvrun.engine": engine,
                                                  "org.hvrun.kernel": guest["kernel"]})
        if edit:
            edit(cfg)
    return hv.bundle(args, edit=annotate)


def processes_naming(needle):
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if needle.encode() in f.read():
                    found.append(int(p))
        except OSError:
            pass
    return found


# ---------------------------------------------------------------- one-shot

def test_echo_hello(hv, guest):
    r = vm(hv, guest, hv.rootfs, "echo", "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"


def test_exit_code(hv, guest):
    r = vm(hv, guest, hv.rootfs, "sh", "-c", "exit 7")
    assert r.returncode == 7, r.stderr


def test_cpus_and_memory_shape_the_vm(hv, guest):
    r = vm(hv, guest, "--cpus", "1.5", "--memory", "192m", hv.rootfs, "sh", "-c",
           "grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "2"  # ceil(1.5)
    total_kib = int(lines[1].split()[1])
    # guest RAM = the limit + 32 MiB for the guest kernel (the limit itself
    # is the workload cgroup's memory.max in the guest)
    assert 100 * 1024 < total_kib <= (192 + 32) * 1024


def test_stdin_with_i(hv, guest):
    r = vm(hv, guest, "-i", hv.rootfs, "sh", "-c", "read x; echo got-$x", input="abc\n")
    assert r.returncode == 0 and r.stdout == "got-abc\n", r.stderr


def test_image_by_name(hv, guest):
    import tarfile
    store = os.path.join(hv.tmp, "store")
    tar = os.path.join(hv.tmp, "rootfs.tar")
    with tarfile.open(tar, "w") as t:
        t.add(hv.rootfs, arcname=".")
    e = env(guest, HVRUN_STORE=store)
    r = hv.run("image", "import", "--rootfs", tar, "vmbox:1", env=e)
    assert r.returncode == 0, r.stderr
    r = hv.run("vm", "--name", hv.id("img"), "vmbox:1", "sh", "-c", "echo from-image", env=e,
               timeout=120)
    assert r.returncode == 0 and r.stdout == "from-image\n", r.stderr
    # The one-shot hands the VM backend the image (org.hvrun.image): it
    # boots from the store's cached erofs disk, built once and reused,
    # instead of an overlay mount and a mkfs.erofs per run.
    disks = os.listdir(os.path.join(store, "erofs"))
    assert len(disks) == 1 and disks[0].endswith(".erofs"), disks
    disk = os.path.join(store, "erofs", disks[0])
    before = os.stat(disk)
    # --store (global flag) instead of $HVRUN_STORE reaches the backend too
    e.pop("HVRUN_STORE")
    r = hv.run("--store", store, "vm", "--name", hv.id("img"), "vmbox:1", "cat", "/etc/group",
               env=e, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("root:x:0:"), r.stderr
    after = os.stat(disk)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_engine_kernel_init_flags(hv, guest):
    """--engine/--kernel/--init become the annotations the VM backend
    reads, which win over the environment (here: unusable values)."""
    e = env(guest, engine="no-such-engine", HVRUN_KERNEL="/nonexistent/vmlinux",
            HVRUN_INIT="/nonexistent/init")
    r = hv.run("vm", "--name", hv.id("vm"), "--engine", "qemu", "--kernel", guest["kernel"],
               "--init", guest["init"], hv.rootfs, "echo", "flags-ok", env=e, timeout=120)
    assert r.returncode == 0 and r.stdout == "flags-ok\n", r.stderr


def test_engine_kernel_init_flag_errors(hv, guest, tmp_path):
    line = one_line_error(vm(hv, guest, "--engine", "firecracker", hv.rootfs, "true"))
    assert "--engine" in line and "firecracker" in line
    line = one_line_error(vm(hv, guest, "--kernel", "/nonexistent/bzImage", hv.rootfs, "true"))
    assert "--kernel" in line and "/nonexistent/bzImage" in line
    line = one_line_error(vm(hv, guest, "--init", str(tmp_path), hv.rootfs, "true"))
    assert "--init" in line and "not a regular file" in line
    for flag, value in (("--engine", "qemu"), ("--kernel", guest["kernel"]),
                        ("--init", guest["init"])):
        line = one_line_error(hv.run("container", flag, value, hv.rootfs, "true"))
        assert flag in line and "hvrun vm" in line
    assert not os.path.isdir(hv.root) or os.listdir(hv.root) == []


def test_network_host_is_an_error(hv, guest):
    line = one_line_error(vm(hv, guest, "--network", "host", hv.rootfs, "true"))
    assert "network host is not supported by the vm backend" in line


def test_missing_kvm_is_a_clear_error(hv, guest):
    r = hv.run("vm", "--name", hv.id("vm"), hv.rootfs, "true",
               env=env(guest, engine=None, HVRUN_KVM_DEV="/nonexistent"))
    line = one_line_error(r)
    assert "/nonexistent" in line and "KVM" in line


def test_missing_kernel_is_a_clear_error(hv, guest):
    r = hv.run("vm", "--name", hv.id("vm"), hv.rootfs, "true",
               env=env(guest, HVRUN_KERNEL="/nonexistent/vmlinux"))
    line = one_line_error(r)
    assert "HVRUN_KERNEL" in line and "/nonexistent/vmlinux" in line


@pytest.mark.parametrize("engine", [
    "qemu",
    pytest.param("hvrun", marks=pytest.mark.skipif(
        os.environ.get("HVRUN_SKIP_SLOW") == "1" or os.environ.get("HVRUN_SKIP_LONG_VMM") == "1",
        reason="HVRUN_SKIP_SLOW=1 or HVRUN_SKIP_LONG_VMM=1"))])
def test_ten_vms_at_once(hv, guest, engine):
    """Ten VMs started together all boot, report their own status and leave
    nothing behind; on hvrun's own VMM too (each boot is a few seconds of
    emulated ring-0 code under PVM, so ten take a couple of minutes on
    two cores)."""
    results = [None] * 10
    import glob
    shared_parent_before = glob.glob("/sys/fs/cgroup/*/hvrun")

    def one(i):
        results[i] = vm(hv, guest, hv.rootfs, "sh", "-c", "echo vm-%d; exit %d" % (i, i),
                        engine=engine, timeout=900)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    for i, r in enumerate(results):
        assert r is not None, "vm %d did not finish" % i
        assert r.returncode == i, r.stderr
        assert r.stdout == "vm-%d\n" % i, r.stderr
    # nothing left: no VMM or QEMU process of this root, no cgroup, no state
    assert processes_naming(hv.root) == []
    for i in hv.ids:
        assert cgroup_dirs_named(i) == []
    # the shared parent /hvrun goes with the last of them, whichever made it
    if not shared_parent_before:
        assert glob.glob("/sys/fs/cgroup/*/hvrun") == []
    assert os.listdir(hv.root) == []


# ---------------------------------------------------------------- OCI lifecycle

def test_oci_lifecycle_kill_reaches_workload(hv, guest):
    script = 'trap "echo got-TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
    b = vm_bundle(hv, guest, ["sh", "-c", script])
    cid = hv.id("oci")
    out = os.path.join(hv.tmp, "out")
    with open(out, "w") as f:
        p = subprocess.run(hv.cmd("create", "--bundle", b, cid), stdout=f,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, open(out).read()
    st = hv.state(cid)
    assert st["status"] == "created" and st["pid"] > 0
    vmm = st["pid"]
    hv.run("start", cid, check=True)
    assert hv.state(cid)["status"] == "running"
    wait_for(lambda: "ready" in open(out).read(), timeout=60, what="workload ready")
    ps = json.loads(hv.run("ps", "--format", "json", cid, check=True).stdout)
    assert vmm in ps
    hv.run("pause", cid, check=True)
    assert hv.state(cid)["status"] == "paused"
    hv.run("resume", cid, check=True)
    assert hv.state(cid)["status"] == "running"
    r = hv.run("exec", cid, "sh", "-c", "echo in-guest; exit 3")
    assert r.returncode == 3 and r.stdout == "in-guest\n", r.stderr
    assert "cannot resize" in one_line_error(hv.run("update", "--memory", "512m", cid))
    hv.run("update", "--cpu-quota", "50000", "--cpu-period", "100000", cid, check=True)
    stats = json.loads(hv.run("events", "--stats", cid, check=True).stdout)["data"]
    assert stats["vm"]["guest_pid"] > 0 and stats["vm"]["engine"] == "qemu"
    hv.run("kill", cid, "TERM", check=True)
    wait_for(lambda: hv.state(cid)["status"] == "stopped", timeout=30, what="vm stopped")
    assert "got-TERM" in open(out).read()
    hv.run("delete", cid, check=True)
    assert not os.path.exists(os.path.join(hv.root, cid))
    assert cgroup_dirs_named(cid) == []


def test_oci_exec_through_agent(hv, guest):
    """`hvrun exec` runs a process in the guest through the init's agent:
    stdout, stderr, stdin with EOF, exit status, a missing binary, large
    output, signals to the exec relay, a killed relay (the process gets
    SIGHUP), --detach with --pid-file, and -t with a pty."""
    b = vm_bundle(hv, guest, ["sh", "-c", "echo ready; exec sleep 1000"])
    cid = hv.id("exec")
    out = os.path.join(hv.tmp, "exec.out")
    with open(out, "w") as f:
        p = subprocess.run(hv.cmd("create", "--bundle", b, cid), stdout=f,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0, open(out).read()
    # exec before start: the VM does not run yet
    assert "not running" in one_line_error(hv.run("exec", cid, "true"))
    hv.run("start", cid, check=True)
    wait_for(lambda: "ready" in open(out).read(), timeout=60, what="workload ready")

    r = hv.run("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 3",
               stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    data = os.urandom(300000).hex()  # bigger than the stdin window, many chunks
    r = hv.run("exec", cid, "sh", "-c", "wc -c; echo end", input=data)
    assert r.returncode == 0 and r.stdout.split() == [str(len(data)), "end"], r.stderr
    r = hv.run("exec", cid, "sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x",
               stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == "x" * 1000000, r.stderr[-300:]
    # A reader that lags behind: nothing is dropped on the way (QEMU drops
    # console output it cannot pass on at once, hence a port for control).
    p = hv.popen("exec", cid, "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' y",
                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    time.sleep(3)
    got = p.stdout.read()
    assert p.wait(timeout=60) == 0 and got == b"y" * 3000000, len(got)
    r = hv.run("exec", "--env", "FOO=bar", "--cwd", "/tmp", cid, "sh", "-c", "echo $FOO $PWD",
               stdin=subprocess.DEVNULL)
    assert r.stdout == "bar /tmp\n", r.stderr
    line = one_line_error(hv.run("exec", cid, "/no/such", stdin=subprocess.DEVNULL))
    assert "/no/such" in line and "No such file" in line

    # a signal to the relay reaches the guest process
    p = hv.popen("exec", cid, "sleep", "100", stdin=subprocess.DEVNULL)
    wait_for(lambda: "sleep 100" in hv.run("exec", cid, "ps", stdin=subprocess.DEVNULL).stdout,
             timeout=30, what="exec'd sleep")
    p.send_signal(15)
    assert p.wait(timeout=30) == 128 + 15
    # a killed relay hangs up its process
    p = hv.popen("exec", cid, "sh", "-c", "trap 'echo hup > /tmp/hup; exit 0' HUP; "
                 "while :; do sleep 0.1; done", stdin=subprocess.DEVNULL)
    time.sleep(2)
    p.kill()
    p.wait()
    wait_for(lambda: hv.run("exec", cid, "cat", "/tmp/hup",
                            stdin=subprocess.DEVNULL).stdout == "hup\n",
             timeout=30, what="SIGHUP reached the exec'd process")

    # --detach --pid-file: the pid is the relay, which exits with the process
    pidf = os.path.join(hv.tmp, "exec.pid")
    hv.run("exec", "--detach", "--pid-file", pidf, cid, "sh", "-c", "sleep 1; exit 9",
           check=True, stdin=subprocess.DEVNULL)
    relay = int(open(pidf).read())
    wait_for(lambda: not os.path.exists("/proc/%d/cmdline" % relay) or
             open("/proc/%d/stat" % relay).read().split()[2] == "Z",
             timeout=30, what="detached relay exits")

    # -t: hvrun's own console socket, a pty in the guest
    import pty
    m, s = pty.openpty()
    p = subprocess.Popen(hv.cmd("exec", "-t", cid, "sh", "-c", "tty; read x; echo got-$x"),
                         stdin=s, stdout=s, stderr=s, start_new_session=True)
    os.close(s)
    time.sleep(1)
    os.write(m, b"hello\r")
    got = b""
    deadline = time.time() + 30
    while b"got-hello" not in got and time.time() < deadline:
        try:
            d = os.read(m, 1000)
        except OSError:
            break
        if not d:
            break
        got += d
    os.close(m)
    assert p.wait(timeout=30) == 0
    assert b"/dev/pts/" in got and b"got-hello" in got, got

    hv.run("kill", cid, "KILL", check=True)
    wait_for(lambda: hv.state(cid)["status"] == "stopped", timeout=30, what="vm stopped")
    assert "it is stopped" in one_line_error(hv.run("exec", cid, "true"))
    hv.run("delete", cid, check=True)
    assert cgroup_dirs_named(cid) == []


def test_signal_sent_while_booting_reaches_workload(hv, guest):
    """A signal sent right after start, while the guest still boots, is
    kept by the VMM and delivered once the init reports the workload
    started (the guest's console drops bytes for a port nobody has open):
    the workload dies of it instead of running to its end."""
    b = vm_bundle(hv, guest, ["sleep", "60"])
    cid = hv.id("early")
    out = os.path.join(hv.tmp, "early.out")
    with open(out, "w") as f:  # the VMM keeps create's stdio: a file, not a pipe
        p = subprocess.run(hv.cmd("create", "--bundle", b, cid), stdin=subprocess.DEVNULL,
                           stdout=f, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, open(out).read()
    hv.run("start", cid, check=True)
    hv.run("kill", cid, "TERM", check=True)
    wait_for(lambda: hv.state(cid)["status"] == "stopped", timeout=50, what="vm stopped")
    hv.run("delete", cid, check=True)
    assert cgroup_dirs_named(cid) == []


def test_oci_run_status_and_sigkill(hv, guest):
    b = vm_bundle(hv, guest, ["sh", "-c", "exit 5"])
    r = hv.run("run", "--bundle", b, hv.id("run"), stdin=subprocess.DEVNULL)
    assert r.returncode == 5, r.stderr
    b = vm_bundle(hv, guest, ["sleep", "1000"])
    cid = hv.id("run")
    p = hv.popen("run", "--bundle", b, cid, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
    def running():
        r = hv.run("state", cid)
        return r.returncode == 0 and json.loads(r.stdout)["status"] == "running"
    wait_for(running, timeout=60, what="running")
    hv.run("kill", cid, "KILL", check=True)
    assert p.wait(timeout=60) == 137


def test_bind_mount_is_an_error(hv, guest):
    def bind(cfg):
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": hv.tmp,
                              "options": ["rbind"]})
    b = vm_bundle(hv, guest, ["true"], edit=bind)
    line = one_line_error(hv.run("run", "--bundle", b, hv.id("bind"), stdin=subprocess.DEVNULL))
    assert "bind mounts" in line and "/data" in line


def test_host_device_rule_is_an_error(hv, guest):
    """A VM cannot give the workload a host device: allowing one is an
    error naming the rule, while runc's usual deny-all + defaults passes."""
    def allow_sda(cfg):
        cfg["linux"].setdefault("resources", {})["devices"] = [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}]
    b = vm_bundle(hv, guest, ["true"], edit=allow_sda)
    line = one_line_error(hv.run("run", "--bundle", b, hv.id("dev"), stdin=subprocess.DEVNULL))
    assert "linux.resources.devices[2]" in line and "host device" in line


def test_features_describe_vm_policy(hv):
    j = json.loads(hv.run("features", check=True).stdout)
    text = json.dumps(j)
    assert "guest RAM" in text and "VMM cgroup" in text


# ---------------------------------------------------------------- own VMM

@pytest.mark.skipif(os.environ.get("HVRUN_SKIP_SLOW") == "1", reason="HVRUN_SKIP_SLOW=1")
def test_own_vmm_boots_linux(hv, guest):
    """hvrun's own VMM, jailed with its seccomp allow-list: boot, run the
    workload, report its status through port 0xf4 (25-50 s under PVM)."""
    r = vm(hv, guest, hv.rootfs, "sh", "-c", "echo own-vmm; exit 4", engine="hvrun", timeout=600)
    assert r.returncode == 4, r.stderr
    assert r.stdout == "own-vmm\n", r.stderr


@pytest.mark.skipif(os.environ.get("HVRUN_SKIP_SLOW") == "1", reason="HVRUN_SKIP_SLOW=1")
def test_own_vmm_exec(hv, guest):
    """exec through the agent on hvrun's own VMM (jailed, under its seccomp
    allow-list): stdout, stdin with EOF and the exit status."""
    b = vm_bundle(hv, guest, ["sh", "-c", "echo ready; exec sleep 1000"], engine="hvrun")
    cid = hv.id("ownexec")
    out = os.path.join(hv.tmp, "ownexec.out")
    with open(out, "w") as f:
        p = subprocess.run(hv.cmd("create", "--bundle", b, cid), stdout=f,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60,
                           env=env(guest, "hvrun"))
    assert p.returncode == 0, open(out).read()
    hv.run("start", cid, check=True)
    wait_for(lambda: "ready" in open(out).read(), timeout=300, what="own VMM workload ready")
    r = hv.run("exec", cid, "sh", "-c", "cat; echo in-own-vmm; exit 3", input="piped\n",
               timeout=120)
    assert (r.returncode, r.stdout) == (3, "piped\nin-own-vmm\n"), r.stderr
    hv.run("kill", cid, "KILL", check=True)
    wait_for(lambda: hv.state(cid)["status"] == "stopped", timeout=30, what="vm stopped")
    hv.run("delete", cid, check=True)
    assert cgroup_dirs_named(cid) == []


# ---------------------------------------------------------------- podman

def test_podman_runs_a_vm(guest):
    """podman (conmon) drives the VM backend through the OCI commands,
    selected by annotation; its housekeeping bind mounts are skipped."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    from test_podman import IMAGE, ULIMITS, Podman, make_busybox_rootfs, unique_id
    import tarfile
    import tempfile
    base = tempfile.mkdtemp(prefix="hvrun-pmvm-")  # podman wants a short runroot
    p = Podman(base)
    rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
    with tarfile.open(os.path.join(base, "rootfs.tar"), "w") as t:
        t.add(rootfs, arcname=".")
    p("import", os.path.join(base, "rootfs.tar"), IMAGE)
    ann = ["--annotation", "org.hvrun.backend=vm", "--annotation", "org.hvrun.engine=qemu",
           "--annotation", "org.hvrun.kernel=" + guest["kernel"],
           "--annotation", "org.hvrun.init=" + guest["init"]]
    name = unique_id("pmvm")
    try:
        r = p("run", "--rm", "--name", name, "--network", "none", *ULIMITS, *ann, IMAGE,
              "sh", "-c", "echo hi-from-vm; exit 6", check=False)
        assert r.returncode == 6, r.stderr
        assert r.stdout == "hi-from-vm\n"
        # detached, then stopped by podman (runtime kill TERM, then KILL)
        p("run", "-d", "--name", name, "--network", "none", *ULIMITS, *ann, IMAGE,
          "sleep", "1000")
        wait_for(lambda: p("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
                 == "running", timeout=60, what="podman vm running")
        # podman exec (conmon: runtime exec --detach --pid-file), in the guest
        r = p("exec", name, "sh", "-c", "echo exec-in-vm $(cat /proc/1/comm); exit 2",
              check=False)
        assert r.returncode == 2 and r.stdout == "exec-in-vm init\n", r.stderr
        p("stop", "--time", "2", name)
        assert p("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "exited"
        p("rm", name)
    finally:
        p("rm", "--all", "--force", "--time", "0", check=False)
        p("rmi", "--all", "--force", check=False)
        shutil.rmtree(base, ignore_errors=True)
    wait_for(lambda: not cgroup_dirs_named(name), timeout=30, what="vm cgroups removed")
    assert processes_naming(name) == []
