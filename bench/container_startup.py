#!/usr/bin/env python3
"""Start-to-exit of /bin/true in a busybox bundle: hvrun vs crun vs runc.

All runtimes run in ONE invocation, interleaved (hvrun crun runc hvrun ...),
after warm-ups, on the same bundle, and the report gives medians, p90 and
ratios against crun.  Peak RSS is the largest resident set of the runtime
process tree for one `run` (getrusage of the waited child).

crun 1.8 refuses this host's hybrid cgroup layout ("cgroups in hybrid mode
not supported"), so the whole benchmark re-executes itself in a private
mount namespace with /sys/fs/cgroup/unified unmounted: every runtime then
sees the same pure-v1 layout, which keeps the comparison fair.

Usage: bench/container_startup.py [--runs N] [--hvrun PATH] [--json FILE]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time


def in_private_ns():
    return os.environ.get("HVRUN_BENCH_NS") == "1"


def reexec_in_ns():
    env = dict(os.environ, HVRUN_BENCH_NS="1")
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
           'mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; exec "$@"',
           "sh", sys.executable] + sys.argv
    os.execvpe("unshare", cmd, env)


def make_bundle(root):
    rootfs = os.path.join(root, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy("/usr/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "true", "echo"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    subprocess.run(["runc", "spec"], cwd=root, check=True)
    with open(os.path.join(root, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(cfg, f)
    return root


def build_wrapper(tmp):
    """bench/rss_wrap.c, compiled for this run (see its comment for why)."""
    out = os.path.join(tmp, "rss_wrap")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rss_wrap.c")
    subprocess.run(["cc", "-O2", "-o", out, src], check=True)
    return out


def run_once(wrap, argv, bundle):
    """Wall time of one `run`, and the peak RSS of the runtime's process tree."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    p = subprocess.Popen([wrap] + argv, cwd=bundle, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(w,),
                         env=dict(os.environ, RSS_FD=str(w)))
    os.close(w)
    p.wait()
    dt = time.perf_counter() - t0
    with os.fdopen(r) as f:
        maxrss, status = (int(x) for x in f.read().split())
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {status}")
    return dt, maxrss


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--hvrun", default=os.path.abspath("build/hvrun"))
    ap.add_argument("--json")
    a = ap.parse_args()
    a.hvrun = os.path.abspath(a.hvrun)
    if not in_private_ns():
        reexec_in_ns()
    peers = {"hvrun": a.hvrun, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
    missing = [k for k, v in peers.items() if not v or not os.access(v, os.X_OK)]
    for k in missing:
        print(f"bench: {k} not found, skipped", file=sys.stderr)
        del peers[k]
    tmp = tempfile.mkdtemp(prefix="hvrun-bench-")
    try:
        bundle = make_bundle(tmp)
        wrap = build_wrapper(tmp)
        roots = {k: os.path.join(tmp, "state-" + k) for k in peers}
        times = {k: [] for k in peers}
        rss = {k: [] for k in peers}
        n = 0
        for i in range(a.warmup + a.runs):
            for name, binary in peers.items():  # interleaved: A B C A B C
                n += 1
                argv = [binary, "--root", roots[name], "run", f"b{n}"]
                dt, maxrss = run_once(wrap, argv, bundle)
                if i >= a.warmup:
                    times[name].append(dt)
                    rss[name].append(maxrss)
        res = {}
        for k in peers:
            res[k] = {"median_ms": statistics.median(times[k]) * 1e3,
                      "p90_ms": pct(times[k], 90) * 1e3,
                      "min_ms": min(times[k]) * 1e3, "max_ms": max(times[k]) * 1e3,
                      "peak_rss_kib": max(rss[k]), "runs": len(times[k])}
        base = res.get("crun")
        print(f"{'runtime':8} {'median ms':>10} {'p90 ms':>8} {'peak RSS KiB':>13} {'time/crun':>10} {'RSS/crun':>9}")
        for k, r in res.items():
            tr = r["median_ms"] / base["median_ms"] if base else float("nan")
            rr = r["peak_rss_kib"] / base["peak_rss_kib"] if base else float("nan")
            r["time_ratio_vs_crun"], r["rss_ratio_vs_crun"] = tr, rr
            print(f"{k:8} {r['median_ms']:10.2f} {r['p90_ms']:8.2f} {r['peak_rss_kib']:13d} {tr:10.2f} {rr:9.2f}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"workload": "run /bin/true (busybox bundle)", "results": res}, f, indent=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
