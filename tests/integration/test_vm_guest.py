"""Guest side of hvrun's VM mode: the guest kernel (vm/kernel), the static
guest init (vm/guest), the initrd and root-disk writers and the QEMU engine,
booted under QEMU with a busybox erofs root.

Most tests use QEMU's TCG (about a second per boot).  One test boots under
KVM when /dev/kvm is PVM (about a minute): it is the check that our kernel
patch (hvrun.pvm=1: SYSCALL emulated from #UD) makes user space work there.
Set HVRUN_SKIP_SLOW=1 to skip it.  HVRUN_TEST_KERNEL and HVRUN_TEST_INIT
point at prebuilt artifacts instead of `make kernel guest-init`.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
BUSYBOX = "/bin/busybox"


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=REPO, check=True, **kw)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    kernel = os.environ.get("HVRUN_TEST_KERNEL")
    init = os.environ.get("HVRUN_TEST_INIT")
    if not (kernel and init):
        # No-ops when up to date (the kernel is cached by content hash).
        run(["make", "-s", "BUILD=" + BUILD, "kernel", "guest-init"])
        kernel = os.path.join(REPO, BUILD, "kernel", "vmlinux")
        init = os.path.join(REPO, BUILD, "hvrun-init")
    work = tmp_path_factory.mktemp("vmguest")
    driver = str(work / "vm_guest_driver")
    run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-D_GNU_SOURCE",
         "-I.", "-o", driver, "tests/integration/vm_guest_driver.c", "vm/initrd.c",
         "vm/qemu.c", "vm/hostinfo.c", "vm/rootdisk.c", "runtime/error.c",
         "runtime/util.c", "-ljansson", "-lpthread"])
    rootfs = work / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", rootfs / "bin" / a)
    return {"kernel": kernel, "init": init, "driver": driver, "rootfs": str(rootfs)}


def spec(args, **process):
    p = {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
         "env": ["PATH=/bin", "HOME=/root"], "cwd": "/"}
    p.update(process)
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "vmguest",
            "process": p,
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "strictatime", "mode=755"]},
                       {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                        "options": ["nosuid", "noexec", "nodev", "ro"]},
                       {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]}


def boot(artifacts, config, signal=None, accel="tcg", timeout=120, stdin=b"", signal_delay_ms=0,
         extra_env=None):
    """Boot one VM; returns (workload status, stdout bytes, stderr text, kernel log)."""
    work = tempfile.mkdtemp(prefix="vmguest-")
    try:
        cfg = os.path.join(work, "config.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        cmd = [artifacts["driver"], artifacts["kernel"], artifacts["init"], cfg,
               artifacts["rootfs"], work]
        if signal:
            cmd.append(str(signal))
        env = dict(os.environ, HVRUN_QEMU_ACCEL=accel,
                   HVRUN_TEST_SIGNAL_DELAY_MS=str(signal_delay_ms), **(extra_env or {}))
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=env)
        with open(os.path.join(work, "kernel.log"), errors="replace") as f:
            klog = f.read()
        err = p.stderr.decode(errors="replace")
        status = None
        for line in err.splitlines():
            if line.startswith("status "):
                status = int(line.split()[1])
        assert p.returncode == 0, "driver failed: %s\nkernel log:\n%s" % (err, klog[-3000:])
        return status, p.stdout, err, klog
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_echo_hello(artifacts):
    status, out, _, klog = boot(artifacts, spec(["echo", "hello"]))
    assert status == 0, klog[-2000:]
    assert out == b"hello\n"


def test_exit_code(artifacts):
    status, _, _, _ = boot(artifacts, spec(["sh", "-c", "exit 7"]))
    assert status == 7


def test_guest_environment(artifacts):
    script = ("hostname; pwd; echo $FOO; id -u; id -g; umask; "
              "grep -c ' / overlay ' /proc/mounts; grep -c ' /sys/fs/cgroup cgroup2 ' /proc/mounts; "
              "cat /sys/fs/cgroup/cgroup.controllers; "
              "touch /newfile && echo writable")
    status, out, _, klog = boot(artifacts, spec(
        ["sh", "-c", script], cwd="/tmp", env=["PATH=/bin", "FOO=bar"],
        user={"uid": 1000, "gid": 1000, "umask": 0o27}))
    lines = out.decode().splitlines()
    assert status == 1, out  # touch / fails as uid 1000: the overlay is root's
    assert lines[:7] == ["vmguest", "/tmp", "bar", "1000", "1000", "0027", "1"], (out, klog)
    assert lines[7] == "1", out  # cgroup2 on /sys/fs/cgroup
    assert set(lines[8].split()) >= {"cpu", "memory", "pids", "io"}, out


def test_signal_over_control_channel(artifacts):
    # The workload waits; the driver sends "signal 15" when the guest reports
    # "started".  sh's default SIGTERM disposition kills it: 128 + 15.
    status, _, err, _ = boot(artifacts, spec(["sh", "-c", "sleep 60"]), signal=15)
    assert "started" in err
    assert status == 128 + 15


def test_trapped_signal_reaches_workload(artifacts):
    status, out, _, _ = boot(artifacts, spec(
        ["sh", "-c", "trap 'echo got-usr1; exit 3' USR1; echo ready; "
                     "while :; do sleep 0.1; done"]), signal=10, signal_delay_ms=3000)
    assert b"got-usr1" in out
    assert status == 3


def test_policy_caps_nnp_seccomp(artifacts):
    caps = ["CAP_CHOWN", "CAP_KILL"]
    config = spec(["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
                                "mkdir /tmp/d && echo mkdir-ok || echo mkdir-denied"],
                  capabilities={k: caps for k in ("bounding", "effective", "permitted")},
                  noNewPrivileges=True)
    config["linux"] = {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                                   "architectures": ["SCMP_ARCH_X86_64"],
                                   "syscalls": [{"names": ["mkdir", "mkdirat"],
                                                 "action": "SCMP_ACT_ERRNO",
                                                 "errnoRet": 1}]}}
    status, out, _, klog = boot(artifacts, config)
    text = out.decode()
    mask = "%016x" % ((1 << 0) | (1 << 5))  # CAP_CHOWN=0, CAP_KILL=5
    assert "CapEff:\t" + mask in text, (text, klog[-2000:])
    assert "CapBnd:\t" + mask in text, text
    assert "NoNewPrivs:\t1" in text, text
    assert "mkdir-denied" in text, text
    assert status == 0


def test_bad_executable_reports_init_failure(artifacts):
    with pytest.raises(AssertionError) as e:
        boot(artifacts, spec(["/bin/does-not-exist"]))
    assert "does-not-exist" in str(e.value)


def pvm_host():
    return os.path.exists("/sys/module/kvm_pvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


@pytest.mark.skipif(os.environ.get("HVRUN_SKIP_SLOW") == "1", reason="HVRUN_SKIP_SLOW=1")
@pytest.mark.skipif(not pvm_host(), reason="/dev/kvm is not PVM")
def test_pvm_boot_runs_syscall_workload(artifacts):
    # One boot under KVM on PVM: without the hvrun.pvm=1 patch, init dies at
    # its first SYSCALL.  The workload forks, execs and reads files, all
    # through emulated SYSCALLs.
    # One vCPU and 128 MiB: under PVM every ring-0 instruction is emulated,
    # boot time grows with RAM (struct page init), and QEMU's AP bring-up
    # never completes.
    status, out, _, klog = boot(artifacts, spec(["sh", "-c", "cat /proc/version; exit 5"]),
                                accel="kvm", timeout=900,
                                extra_env={"HVRUN_TEST_VCPUS": "1", "HVRUN_TEST_MEM_MB": "128"})
    # (The kernel log is quiet: loglevel=4 hides the hvrun.pvm banner.)
    assert b"Linux version" in out, klog[-3000:]
    assert status == 5
