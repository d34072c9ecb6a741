"""One policy, both models: the same limits, given the same way, hold for
`hvrun container` and `hvrun vm`.

- memory: a 64 MiB limit kills a process that touches 200 MiB (137), and
  the OOM kill shows in `events --stats`;
- pids: a limit of 16 stops a fork loop, the host unaffected;
- cpu: --cpus 0.5 holds a busy loop to about half a core;
- devices: a deny rule stops opening a device node.

In VM mode the guest enforces them with the workload's own cgroup (pure
cgroup v2 inside the guest, through the same cgroups/ code as on a v2 host:
this is where that code runs on a real v2 hierarchy, eBPF device program
included), while guest RAM, vCPUs and the VMM's host cgroup bound the VM.
The VM cases use QEMU's engine (a boot is about a second under TCG here);
the last test runs them all in one boot on hvrun's own VMM.
"""
import json
import os
import re
import shutil

import pytest

from conftest import one_line_error, wait_for
from test_vm_backend import env, guest, vm_bundle  # noqa: F401  (guest is a fixture)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="qemu-system-x86_64 is not installed"),
]

MODES = ["container", "vm"]


def oneshot(hv, guest, mode, flags, *cmd, engine="qemu", timeout=300):
    name = hv.id(mode)
    return hv.run(mode, "--name", name, *flags, hv.rootfs, *cmd, timeout=timeout,
                  env=env(guest, engine))


def bundle(hv, guest, mode, args, edit):
    if mode == "vm":
        return vm_bundle(hv, guest, args, edit=edit)
    return hv.bundle(args, edit=edit)


def busy_seconds(stderr):
    m = re.search(r"user\s+(\d+)m\s*([\d.]+)s", stderr)
    s = re.search(r"sys\s+(\d+)m\s*([\d.]+)s", stderr)
    assert m and s, stderr
    return int(m.group(1)) * 60 + float(m.group(2)) + int(s.group(1)) * 60 + float(s.group(2))


@pytest.mark.parametrize("mode", MODES)
def test_memory_limit_oom_kills(hv, guest, mode):
    r = oneshot(hv, guest, mode, ["--memory", "64m"],
                "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1")
    assert r.returncode == 137, (r.returncode, r.stderr[-2000:])
    r = oneshot(hv, guest, mode, ["--memory", "64m"],
                "dd", "if=/dev/zero", "of=/dev/null", "bs=16M", "count=1")
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("mode", MODES)
def test_oom_kill_count_in_stats(hv, guest, mode):
    cid = hv.id("oom" + mode)

    def edit(cfg):
        cfg["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20}

    b = bundle(hv, guest, mode, ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=200M count=1; "
                                 "echo dd-done; sleep 600"], edit)
    hv.run("run", "-d", "-b", b, cid, check=True, env=env(guest))

    def stats():
        r = hv.run("events", "--stats", cid, check=True)
        data = json.loads(r.stdout)["data"]
        # the VM's workload cgroup is the guest's; the top level is the VMM's
        d = data.get("guest") if mode == "vm" else data
        return d and d.get("oom_kill", 0) >= 1 and d

    d = wait_for(stats, timeout=120, what="oom_kill in events --stats")
    assert d["memory"]["usage"]["limit"] == 64 << 20
    assert d["memory"]["usage"]["max"] <= 64 << 20
    if mode == "vm":
        data = json.loads(hv.run("events", "--stats", cid, check=True).stdout)["data"]
        # the VM around it: guest RAM (limit + 32 MiB for the guest kernel) + VMM overhead
        assert data["memory"]["usage"]["limit"] > (96 << 20)
    hv.run("delete", "--force", cid, check=True)


@pytest.mark.parametrize("mode", MODES)
def test_pids_limit(hv, guest, mode):
    r = oneshot(hv, guest, mode, ["--pids-limit", "16"], "sh", "-c",
                "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo all-forked")
    assert "all-forked" not in r.stdout
    assert "can't fork" in r.stderr or r.returncode != 0, (r.returncode, r.stderr[-2000:])
    assert os.system("true") == 0  # the host is unaffected


@pytest.mark.parametrize("mode", MODES)
def test_cpu_quota_caps_busy_loop(hv, guest, mode):
    # --cpus 0.5 is quota 50000/100000: a 2 s busy loop gets at most ~1 s
    r = oneshot(hv, guest, mode, ["--cpus", "0.5"], "sh", "-c",
                'time timeout 2 sh -c "while :; do :; done"')
    used = busy_seconds(r.stderr + r.stdout)  # a VM console carries both
    # upper bound = the quota holds; the lower bound only says it ran
    assert 0.05 < used < 1.3, (r.stdout, r.stderr[-2000:])


def deny_zero(cfg):
    """runc's defaults plus one deny rule: /dev/zero (c 1:5)."""
    res = cfg["linux"].setdefault("resources", {})
    res["devices"] = res.get("devices", [{"allow": False, "access": "rwm"}]) + [
        {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]


@pytest.mark.parametrize("mode", MODES)
def test_device_rule_denies_open(hv, guest, mode):
    b = bundle(hv, guest, mode, ["sh", "-c", "head -c 1 /dev/null && echo null-ok; "
                                 "head -c 1 /dev/zero && echo zero-open"], deny_zero)
    r = hv.run("run", "-b", b, hv.id("dev" + mode), env=env(guest), timeout=300)
    assert "null-ok" in r.stdout, r.stderr[-2000:]
    assert "zero-open" not in r.stdout
    # a VM's console carries stdout and stderr together
    assert "/dev/zero: Operation not permitted" in r.stderr + r.stdout, r.stderr[-2000:]


def test_vm_workload_cannot_reach_guest_devices(hv, guest):
    """Inside the VM the device rules also keep the workload off the
    guest's own devices: root disk and control channel."""
    def devtmpfs(cfg):
        # /dev as the guest's devtmpfs, so every guest device has a node
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev" and
                         not m["destination"].startswith("/dev/")]
    b = vm_bundle(hv, guest, ["sh", "-c", "ls /dev/vda /dev/hvc1 && cat /dev/vda; "
                              "echo x > /dev/hvc1; echo end"], edit=devtmpfs)
    r = hv.run("run", "-b", b, hv.id("gdev"), env=env(guest), timeout=300)
    assert "/dev/vda" in r.stdout and "end" in r.stdout, r.stderr[-2000:]
    assert r.stdout.count("Operation not permitted") == 2, r.stdout


def test_vm_bad_limits_are_one_line(hv, guest):
    line = one_line_error(oneshot(hv, guest, "vm", ["--memory", "16m"], "true"))
    assert "memory" in line and "minimum" in line
    cid = hv.id("upd")
    b = vm_bundle(hv, guest, ["sleep", "600"], edit=None)
    hv.run("run", "-d", "-b", b, cid, check=True, env=env(guest))
    assert "pids" in one_line_error(hv.run("update", "--pids-limit", "10", cid))
    hv.run("delete", "--force", cid, check=True)


@pytest.mark.skipif(os.environ.get("HVRUN_SKIP_SLOW") == "1" or
                    os.environ.get("HVRUN_SKIP_LONG_VMM") == "1",
                    reason="HVRUN_SKIP_SLOW=1 or HVRUN_SKIP_LONG_VMM=1 (the ASan pass)")
def test_limits_on_own_vmm(hv, guest):
    """The same guest-side enforcement in one boot of hvrun's own VMM (PVM
    here): the OOM kill and the device deny for real, the pids limit as
    written in the guest's cgroup.  (Under PVM a guest fork takes long
    enough that a fork loop never has 16 processes alive at once, and a
    cpu quota on the VMM throttles the emulated boot too; both are
    enforced by the same guest kernel and init as under QEMU above.)"""
    script = ("dd if=/dev/zero of=/dev/null bs=200M count=1; echo dd=$?; "
              "echo pids.max=$(cat /sys/fs/cgroup/hvrun/workload/pids.max); "
              "echo memory.max=$(cat /sys/fs/cgroup/hvrun/workload/memory.max); "
              "head -c 1 /dev/full && echo full-open; echo end")

    def edit(cfg):
        res = cfg["linux"].setdefault("resources", {})
        res["devices"] = res.get("devices", [{"allow": False, "access": "rwm"}]) + [
            {"allow": False, "type": "c", "major": 1, "minor": 7, "access": "rwm"}]
        res["memory"] = {"limit": 64 << 20}
        res["pids"] = {"limit": 16}

    b = vm_bundle(hv, guest, ["sh", "-c", script], engine="hvrun", edit=edit)
    r = hv.run("run", "-b", b, hv.id("own"), env=env(guest, "hvrun"), timeout=600)
    assert "dd=137" in r.stdout, (r.stdout, r.stderr[-2000:])
    assert "pids.max=16" in r.stdout and "memory.max=%d" % (64 << 20) in r.stdout, r.stdout
    assert "/dev/full: Operation not permitted" in r.stdout
    assert "full-open" not in r.stdout and "end" in r.stdout
