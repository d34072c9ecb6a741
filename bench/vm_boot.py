#!/usr/bin/python3
"""Boot-to-exit time and memory overhead of `hvrun vm ROOTFS true` against
plain `qemu-system-x86_64 -M microvm` on the same kernel, initrd contents
and erofs root disk, interleaved round by round in one run.

Modes:
  hvrun        hvrun's own VMM (jailed; under PVM a boot takes about a minute)
  hvrun-qemu   hvrun with --engine qemu (the jailed VMM process runs QEMU)
  qemu         qemu-system-x86_64 -M microvm started directly, no hvrun

Memory: while each VM runs, /proc/PID/smaps of the VMM (and of its QEMU
child) is sampled; the overhead is the peak of (total RSS - RSS of the
guest-RAM mapping), i.e. what the VMM costs beyond the guest memory the
guest itself touched.

  bench/vm_boot.py [--hvrun build/hvrun] [--kernel K] [--init I] [--rounds 5]
                   [--modes hvrun-qemu,qemu,hvrun] [--mem 256] [--json out.json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMDLINE = ("console=ttyS0 reboot=t panic=-1 no_timer_check mitigations=off "
           "cryptomgr.notests quiet loglevel=4 rdinit=/init")


def busybox_rootfs(path):
    os.makedirs(path)
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
        os.makedirs(os.path.join(path, d))
    shutil.copy2("/usr/bin/busybox", os.path.join(path, "bin", "busybox"))
    for a in subprocess.run(["/usr/bin/busybox", "--list"], capture_output=True, text=True,
                            check=True).stdout.split():
        if a != "busybox":
            os.symlink("busybox", os.path.join(path, "bin", a))


def cpio_newc(entries):
    """entries: (name, mode, data bytes or None for dirs/nodes, rdev)."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", 0)], 1):
        data = data or b""
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08x" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev >> 8, rdev & 0xff, len(nb), 0))
        out += hdr.encode() + nb
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def write_initrd(path, init, config):
    with open(init, "rb") as f:
        init_data = f.read()
    entries = [("dev", 0o40755, None, 0), ("dev/console", 0o20600, None, (5 << 8) | 1),
               ("proc", 0o40755, None, 0), ("sys", 0o40755, None, 0),
               ("newroot", 0o40755, None, 0), ("hvrun", 0o40700, None, 0),
               ("hvrun/config.json", 0o100600, json.dumps(config).encode(), 0),
               ("hvrun/seed", 0o100600, os.urandom(64), 0),
               ("init", 0o100755, init_data, 0)]
    with open(path, "wb") as f:
        f.write(cpio_newc(entries))


def tsc_khz():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000 + 0.5)
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- memory

def smaps(pid):
    """[(size_kib, rss_kib, anon_path)] per mapping."""
    maps = []
    try:
        with open("/proc/%d/smaps" % pid) as f:
            cur = None
            for line in f:
                parts = line.split()
                if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                    cur = [0, 0, len(parts) < 6]
                    maps.append(cur)
                elif parts[0] == "Size:" and cur:
                    cur[0] = int(parts[1])
                elif parts[0] == "Rss:" and cur:
                    cur[1] = int(parts[1])
    except (OSError, ValueError):
        return None
    return maps


def overhead_kib(pid, mem_kib):
    """RSS of pid minus the RSS of its guest-RAM mapping (anonymous, the
    size of guest RAM give or take alignment)."""
    m = smaps(pid)
    if not m:
        return None
    total = sum(r for _, r, _ in m)
    ram = [r for s, r, anon in m if anon and mem_kib <= s <= mem_kib * 1.02 + 4096]
    return total - (max(ram) if ram else 0), total


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def sample(proc, pids_fn, mem_kib):
    """Poll until proc exits; returns (peak overhead, peak total RSS, steady
    overhead) in KiB.  Steady = median over the second half of the samples:
    the peak includes transients such as the kernel image read into a heap
    buffer while it is loaded."""
    peak_over, peak_total, overs = 0, 0, []
    while proc.poll() is None:
        over = total = 0
        for pid in pids_fn():
            r = overhead_kib(pid, mem_kib)
            if r:
                over += r[0]
                total += r[1]
        if total:
            overs.append(over)
        peak_over, peak_total = max(peak_over, over), max(peak_total, total)
        time.sleep(0.02)
    steady = statistics.median(overs[len(overs) // 2:]) if overs else 0
    return peak_over, peak_total, steady


# ---------------------------------------------------------------- modes

def run_hvrun(a, work, engine, i):
    root = os.path.join(work, "root")
    name = "bench-%d-%s-%d" % (os.getpid(), engine, i)
    env = dict(os.environ, HVRUN_KERNEL=a.kernel, HVRUN_INIT=a.init, HVRUN_ENGINE=engine)
    # Guest RAM is the memory limit + 32 MiB (VMB_GUEST_HEADROOM): ask for
    # the limit that makes it a.mem, the size QEMU gets and the sampler
    # looks for.
    cmd = [a.hvrun, "--root", root, "vm", "--name", name, "--memory", "%dm" % (a.mem - 32),
           a.rootfs, "true"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    vmm = [None]

    def pids():
        if vmm[0] is None:
            try:
                with open(os.path.join(root, name, "state.json")) as f:
                    vmm[0] = json.load(f).get("pid") or None
            except (OSError, ValueError):
                return []
        if not vmm[0]:
            return []
        return [vmm[0]] + children(vmm[0])

    over, total, steady = sample(p, pids, a.mem * 1024)
    err = p.stderr.read().decode(errors="replace")
    dt = time.monotonic() - t0
    return p.returncode == 0, dt, over, total, steady, err.strip()


def run_qemu(a, work, i):
    cmd = ["qemu-system-x86_64", "-M", "microvm,rtc=on,acpi=off", "-accel", "tcg", "-cpu", "max",
           "-m", "%dM" % a.mem, "-smp", "1", "-no-reboot", "-nographic", "-nodefaults",
           "-no-user-config", "-serial", os.environ.get("VM_BOOT_SERIAL", "null"), "-kernel", a.kernel, "-initrd", a.initrd,
           "-append", CMDLINE + (" tsc_early_khz=%d" % tsc_khz() if tsc_khz() else ""),
           "-drive", "id=root,file=%s,format=raw,if=none,readonly=on" % a.disk,
           "-device", "virtio-blk-device,drive=root",
           "-chardev", "stdio,id=con0,signal=off", "-device",
           "virtio-serial-device,id=vser0,max_ports=1", "-device",
           "virtconsole,chardev=con0,bus=vser0.0",
           # the control channel hvrun gives the guest too (its lines are dropped here)
           "-chardev", "null,id=ctl", "-device", "virtio-serial-device,id=vser1,max_ports=1",
           "-device", "virtconsole,chardev=ctl,bus=vser1.0",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    over, total, steady = sample(p, lambda: [p.pid], a.mem * 1024)
    err = p.stderr.read().decode(errors="replace")
    dt = time.monotonic() - t0
    # isa-debug-exit: status (v << 1) | 1, so `true` (0) exits 1
    # 1: the init's exit port; 0: its reset fallback (a kernel without ioperm)
    ok = p.returncode in (0, 1)
    if not ok and not err.strip():
        err = "qemu exited %d" % p.returncode
    return ok, dt, over, total, steady, err.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hvrun", default=os.path.join(REPO, "build", "hvrun"))
    ap.add_argument("--kernel", default=os.environ.get("HVRUN_KERNEL",
                                                       os.path.join(REPO, "build", "kernel",
                                                                    "vmlinux")))
    ap.add_argument("--init", default=os.environ.get("HVRUN_INIT",
                                                     os.path.join(REPO, "build", "hvrun-init")))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="hvrun-qemu,qemu,hvrun")
    ap.add_argument("--mem", type=int, default=256, help="guest RAM in MiB")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    a.hvrun = os.path.abspath(a.hvrun)
    a.kernel = os.path.realpath(a.kernel)
    a.init = os.path.realpath(a.init)
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ("hvrun", "hvrun-qemu", "qemu"):
            sys.exit("vm_boot.py: unknown mode %r (hvrun, hvrun-qemu, qemu)" % m)
    for f, what in ((a.kernel, "kernel (make kernel)"), (a.init, "init (make guest-init)"),
                    (a.hvrun, "hvrun (make)")):
        if not os.path.isfile(f):
            sys.exit("vm_boot.py: %s %s is missing" % (what, f))
    work = tempfile.mkdtemp(prefix="hvrun-vmboot-")
    try:
        a.rootfs = os.path.join(work, "rootfs")
        busybox_rootfs(a.rootfs)
        a.disk = os.path.join(work, "root.erofs")
        subprocess.run(["mkfs.erofs", "--quiet", a.disk, a.rootfs], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([a.hvrun, "spec", "--bundle", work], check=True)
        with open(os.path.join(work, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["args"] = ["true"]
        spec["process"]["terminal"] = False
        a.initrd = os.path.join(work, "initrd.cpio")
        write_initrd(a.initrd, a.init, spec)
        res = {m: [] for m in modes}
        for rnd in range(a.rounds):
            # interleaved, order rotated each round
            order = modes[rnd % len(modes):] + modes[:rnd % len(modes)]
            for m in order:
                if m == "qemu":
                    r = run_qemu(a, work, rnd)
                else:
                    r = run_hvrun(a, work, "hvrun" if m == "hvrun" else "qemu", rnd)
                ok, dt, over, total, steady, err = r
                res[m].append({"ok": ok, "seconds": dt, "overhead_kib": over,
                               "steady_overhead_kib": steady, "rss_kib": total,
                               "error": None if ok else err[-300:]})
                print("round %d %-10s %s %7.3f s  VMM RSS %6.1f MiB, overhead beyond guest "
                      "RAM: peak %6.1f MiB, steady %6.1f MiB%s"
                      % (rnd, m, "ok  " if ok else "FAIL", dt, total / 1024, over / 1024,
                         steady / 1024, "" if ok else "  (%s)" % err.splitlines()[0][-160:]),
                      flush=True)
        print("\nmode        runs  ok  median_s   min_s   max_s  overhead_MiB peak/steady (median)")
        summary = {}
        for m in modes:
            good = [x for x in res[m] if x["ok"]]
            if not good:
                steady = statistics.median(x["steady_overhead_kib"] for x in res[m]) / 1024
                print("%-10s %5d %3d  (all failed; steady overhead while it ran %.1f MiB)"
                      % (m, len(res[m]), 0, steady))
                summary[m] = {"runs": len(res[m]), "ok": 0}
                continue
            secs = [x["seconds"] for x in good]
            over = statistics.median(x["overhead_kib"] for x in good) / 1024
            steady = statistics.median(x["steady_overhead_kib"] for x in good) / 1024
            summary[m] = {"runs": len(res[m]), "ok": len(good), "median_s": statistics.median(secs),
                          "min_s": min(secs), "max_s": max(secs), "overhead_mib": over,
                          "steady_overhead_mib": steady}
            print("%-10s %5d %3d  %8.3f %7.3f %7.3f  %8.1f / %.1f"
                  % (m, len(res[m]), len(good), statistics.median(secs), min(secs), max(secs),
                     over, steady))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"rounds": a.rounds, "mem_mib": a.mem, "kernel": a.kernel,
                           "results": res, "summary": summary}, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
