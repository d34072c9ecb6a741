#!/usr/bin/env python3
"""Print the README's tables from an `hvrun bench --json` file.

    python3 bench/report_md.py bench/results/full.json

Each figure is the median, `~` when the run flagged it noisy, with its
ratio to the host (xh) and to hvrun container (xc), as in the terminal
table.  Missing figures print as an em dash.
"""
import json
import sys

ROWS = [
    ("startup_ms", "start→exit of `true`, p50 [ms]"),
    ("pss_mib", "memory per instance, PSS [MiB]"),
    ("overhead_mib", "sandbox memory (PSS − host) [MiB]"),
    ("density", "instances at once (cap 32 / VM 8)"),
    ("cpu_mops", "CPU mixing chain [Mops/s]"),
    ("membw_mbs", "memory bandwidth, triad [MB/s]"),
    ("getpid_ns", "getpid [ns]"),
    ("openclose_ns", "open+close [ns]"),
    ("forkexec_us", "fork+exec+wait [µs]"),
    ("disk_seqwrite_mbs", "root disk seq. write [MB/s]"),
    ("disk_seqread_mbs", "root disk seq. read [MB/s]"),
    ("disk_randread_iops", "root disk 4k rand. read [IOPS]"),
    ("disk_randwrite_iops", "root disk 4k rand. write [IOPS]"),
    ("tmpfs_seqwrite_mbs", "tmpfs seq. write [MB/s]"),
    ("tmpfs_randread_iops", "tmpfs 4k rand. read [IOPS]"),
    ("net_rtt_us", "loopback TCP RTT [µs]"),
    ("net_tcp_mbs", "loopback TCP stream [MB/s]"),
    ("clock_ratio", "sandbox clock / host clock"),
]


def num(v):
    if v is None:
        return "—"
    a = abs(v)
    if float(v).is_integer() and a < 1e5:
        return "%d" % v
    if a >= 1e6:
        return "%.3gM" % (v / 1e6)
    if a >= 1e5:
        return "%.3gk" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def cell(res, key, mode):
    f = res.get(mode, {}).get(key)
    if not f or f.get("median") is None:
        return "—"
    s = num(f["median"]) + ("~" if f.get("noisy") else "")
    ratios = []
    if mode != "host" and f.get("vs_host") is not None:
        ratios.append("%.2f×h" % f["vs_host"])
    if mode not in ("host", "container") and f.get("vs_container") is not None:
        ratios.append("%.2f×c" % f["vs_container"])
    return s + (" (%s)" % ", ".join(ratios) if ratios else "")


def main(path):
    d = json.load(open(path))
    modes = [m["name"] for m in d["modes"]]
    res = d["results"]
    print("| figure | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))
    for key, label in ROWS:
        if any(res.get(m, {}).get(key) for m in modes):
            print("| %s | %s |" % (label, " | ".join(cell(res, key, m) for m in modes)))
    print()
    iso = d.get("isolation", {})
    print("| isolation | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))

    def yn(v):
        return "—" if v is None else ("yes" if v else "no")

    rows = [
        ("host kernel shared", lambda i: yn(i.get("kernel_shared"))),
        ("host syscalls reachable directly", lambda i: num(i.get("direct_host_syscalls"))),
        ("host dmesg readable", lambda i: yn(i.get("host_dmesg_readable"))),
        ("VMM under seccomp", lambda i: i.get("vmm_seccomp", "—")),
        ("escape probes reaching the host", lambda i: "%d of %d" % (
            sum(1 for e in i.get("escapes", {}).values() if e.get("reaches_host")),
            len(i.get("escapes", {}))) if i.get("escapes") else "—"),
    ]
    for label, f in rows:
        print("| %s | %s |" % (label, " | ".join(f(iso.get(m, {})) for m in modes)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/full.json")
