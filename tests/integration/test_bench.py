"""`hvrun bench`: the quick run CI does (its JSON validated against
bench/schema.json, its HTML rendered by a real headless Chromium), and the
bad-input cases: an unknown mode, a missing peer, a failing workload, an
interrupted run.

The default image is built into a private store here (the helpers in
tests/helpers/ compiled -static, then images/mkbusybox.py and `hvrun image
import`, as `make image` does), so the test depends neither on /var/lib/hvrun
nor on a particular BUILD dir.  No timing is asserted: only that figures
exist, are positive and are consistent with the statuses.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import zlib

import pytest

from conftest import REPO, hvrun_path, make_busybox_rootfs

SCHEMA = os.path.join(REPO, "bench", "schema.json")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


# ---------------- a small JSON Schema validator ----------------
# Enough of draft 2020-12 for bench/schema.json (type, const, enum, required,
# properties, additionalProperties, items, minItems, minimum, pattern), so the
# test needs no extra package.

def _type_ok(v, t):
    return {
        "object": isinstance(v, dict),
        "array": isinstance(v, list),
        "string": isinstance(v, str),
        "boolean": isinstance(v, bool),
        "integer": isinstance(v, int) and not isinstance(v, bool),
        "number": isinstance(v, (int, float)) and not isinstance(v, bool),
        "null": v is None,
    }[t]


def validate(v, s, path="$"):
    errs = []
    if "const" in s and v != s["const"]:
        errs.append("%s: %r is not %r" % (path, v, s["const"]))
    if "enum" in s and v not in s["enum"]:
        errs.append("%s: %r not in %r" % (path, v, s["enum"]))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_type_ok(v, t) for t in types):
            return errs + ["%s: %r is not of type %s" % (path, v, s["type"])]
    if "minimum" in s and isinstance(v, (int, float)) and v < s["minimum"]:
        errs.append("%s: %r < %r" % (path, v, s["minimum"]))
    if "pattern" in s and isinstance(v, str) and not re.search(s["pattern"], v):
        errs.append("%s: %r does not match %s" % (path, v, s["pattern"]))
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errs.append("%s: missing %s" % (path, k))
        props = s.get("properties", {})
        for k, sub in v.items():
            if k in props:
                errs += validate(sub, props[k], path + "." + k)
            elif s.get("additionalProperties") is False:
                errs.append("%s: unexpected %s" % (path, k))
            elif isinstance(s.get("additionalProperties"), dict):
                errs += validate(sub, s["additionalProperties"], path + "." + k)
    if isinstance(v, list):
        if len(v) < s.get("minItems", 0):
            errs.append("%s: fewer than %d items" % (path, s["minItems"]))
        if "items" in s:
            for i, sub in enumerate(v):
                errs += validate(sub, s["items"], "%s[%d]" % (path, i))
    return errs


def test_validator_rejects_bad_documents():
    """The validator must be able to fail, or test_quick proves nothing."""
    with open(SCHEMA) as f:
        schema = json.load(f)
    assert validate({}, schema)
    assert validate({"schema": "other"}, {"properties": {"schema": {"const": "x"}}})
    assert validate({"a": 1}, {"type": "object", "additionalProperties": False})
    assert validate([1, "x"], {"type": "array", "items": {"type": "number"}})


# ---------------- fixtures ----------------

@pytest.fixture(scope="module")
def hvrun():
    p = hvrun_path()
    if not os.access(p, os.X_OK):
        pytest.fail("hvrun binary %s is missing: run `make` first" % p)
    return p


def build_helpers(out):
    helpers = []
    for src in sorted(glob.glob(os.path.join(REPO, "tests", "helpers", "*.c"))):
        dst = os.path.join(out, os.path.basename(src)[:-2])
        subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                        "-o", dst, src], check=True)
        helpers.append(dst)
    return helpers


@pytest.fixture(scope="module")
def store(hvrun, tmp_path_factory):
    """A private image store holding hvrun/busybox with the bench helpers."""
    work = tmp_path_factory.mktemp("benchimg")
    helpers = build_helpers(str(work))
    layout = str(work / "layout")
    args = ["/usr/bin/python3", os.path.join(REPO, "images", "mkbusybox.py"), layout]
    for h in helpers:
        args += ["--helper", h]
    subprocess.run(args, check=True, cwd=REPO)
    st = str(work / "store")
    subprocess.run([hvrun, "image", "--store", st, "import", layout, "hvrun/busybox:latest"],
                   check=True, stdout=subprocess.DEVNULL)
    return st


def bench_env(store, **extra):
    env = dict(os.environ, HVRUN_STORE=store)
    env.update(extra)
    return env


def no_leftovers():
    """The harness owns /var/tmp/hvrun-bench.*: mounts and dirs must be gone."""
    with open("/proc/self/mountinfo") as f:
        mounts = [l for l in f if "hvrun-bench." in l]
    dirs = glob.glob("/var/tmp/hvrun-bench.*")
    return mounts + dirs


@pytest.fixture
def clean():
    before = set(no_leftovers())
    yield
    after = [x for x in no_leftovers() if x not in before]
    assert not after, "left behind: %s" % after


def run_bench(hvrun, store, args, timeout=600, **env):
    return subprocess.run([hvrun, "bench"] + args, env=bench_env(store, **env),
                          capture_output=True, text=True, timeout=timeout)


# ---------------- the CI run ----------------

@pytest.fixture(scope="module")
def quick(hvrun, store, tmp_path_factory):
    out = tmp_path_factory.mktemp("benchquick")
    j, h = str(out / "bench.json"), str(out / "bench.html")
    before = set(no_leftovers())
    r = run_bench(hvrun, store, ["--quick", "--json", j, "--html", h])
    # Module-scoped, so the `clean` fixture cannot see this run: check here.
    left = [x for x in no_leftovers() if x not in before]
    assert not left, "left behind by the quick run: %s" % left
    return r, j, h


def test_quick_runs_and_validates(quick, clean):
    r, j, _ = quick
    assert r.returncode in (0, 3), r.stderr
    assert "hvrun bench" in r.stdout and "isolation" in r.stdout
    with open(j) as f:
        doc = json.load(f)
    with open(SCHEMA) as f:
        schema = json.load(f)
    errs = validate(doc, schema)
    assert not errs, errs[:20]
    modes = {m["name"]: m for m in doc["modes"]}
    # Every mode is accounted for: the default is all of them.
    assert set(modes) == {"host", "container", "vm", "crun", "runc", "bwrap", "qemu"}
    for name in ("host", "container"):
        assert modes[name]["status"] in ("ok", "partial"), modes[name]
        res = doc["results"][name]
        for metric in ("startup_ms", "pss_mib", "cpu_mops", "membw_mbs", "getpid_ns",
                       "disk_randread_iops", "tmpfs_seqwrite_mbs", "density"):
            assert res[metric]["median"] > 0, (name, metric)
        assert res["startup_ms"]["p50"] <= res["startup_ms"]["p90"] <= res["startup_ms"]["p99"]
    assert doc["results"]["host"]["cpu_mops"]["vs_host"] == 1.0
    assert doc["results"]["container"]["startup_ms"]["vs_container"] == 1.0
    # Partial exactly when something did not complete, and each such mode says why.
    incomplete = [m for m in doc["modes"] if m["status"] != "ok"]
    assert doc["partial"] == bool(incomplete)
    assert (r.returncode == 3) == doc["partial"]
    for m in incomplete:
        assert m.get("reason") or m["failures"] > 0, m
    # The isolation matrix: a container shares the host kernel, filters
    # syscalls, and keeps the kernel log from the workload.
    iso = doc["isolation"]
    assert iso["host"]["kernel_shared"] is True
    assert iso["container"]["kernel_shared"] is True
    assert iso["container"]["direct_host_syscalls"] < iso["host"]["direct_host_syscalls"]
    assert iso["container"]["dmesg_readable"] is False
    assert iso["container"]["escapes"]["mount_tmpfs"]["reaches_host"] is False
    for name, m in modes.items():
        if m["kind"] == "vm" and name in iso:
            assert iso[name]["kernel_shared"] is False
            assert iso[name]["direct_host_syscalls"] == 0
    assert doc["host"]["kvm"] in ("VMX", "SVM", "PVM", "unknown", "none (no /dev/kvm)")


def png_pixels_vary(path):
    """Decode enough of a PNG to tell a rendered page from a blank one."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return len(set(raw[:2_000_000])), len(raw)


def test_html_renders_in_headless_chromium(quick, tmp_path):
    _, _, h = quick
    with open(h) as f:
        html = f.read()
    # Self-contained: nothing to fetch, no script.
    assert "<script" not in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert os.access(CHROMIUM, os.X_OK), "chromium is missing: `make deps` installs it"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--user-data-dir=" + str(tmp_path / "profile")]
    url = "file://" + os.path.abspath(h)
    dom = subprocess.run([CHROMIUM] + flags + ["--dump-dom", url], capture_output=True,
                         text=True, timeout=120).stdout
    assert "<h1>hvrun bench</h1>" in dom
    assert re.search(r'<svg class="chart startup"', dom)
    assert re.search(r'<svg class="chart isolation"', dom)
    assert len(re.findall(r'<svg class="chart bar"', dom)) >= 10
    assert len(re.findall(r'<circle class="sample"', dom)) >= 8
    assert len(re.findall(r'<rect class="barrect"', dom)) >= 20
    assert len(re.findall(r'<rect class="cell"', dom)) >= 10
    png = str(tmp_path / "shot.png")
    subprocess.run([CHROMIUM] + flags + ["--window-size=1200,1600", "--screenshot=" + png, url],
                   capture_output=True, timeout=120)
    distinct, size = png_pixels_vary(png)
    assert size > 1200 * 100
    assert distinct > 40, "screenshot looks blank (%d distinct byte values)" % distinct


# ---------------- bad input ----------------

def test_unknown_mode(hvrun, store, tmp_path, clean):
    j = str(tmp_path / "x.json")
    r = run_bench(hvrun, store, ["--modes", "host,kvmtool", "--json", j], timeout=60)
    assert r.returncode not in (0, 3)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "kvmtool" in lines[0] and "known: host,container,vm" in lines[0]
    assert not os.path.exists(j)


@pytest.mark.parametrize("args,needle", [
    (["--runs", "0"], "--runs"),
    (["--json", "/nonexistent-dir/x.json"], "/nonexistent-dir"),
    (["--image", "/nonexistent-rootfs"], "/nonexistent-rootfs"),
    (["--modes", "host,host"], "twice"),
    (["--frobnicate"], "frobnicate"),
])
def test_bad_arguments(hvrun, store, args, needle, clean):
    r = run_bench(hvrun, store, args, timeout=60)
    assert r.returncode not in (0, 3)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_missing_peer_is_reported_and_partial(hvrun, store, tmp_path, clean):
    j = str(tmp_path / "p.json")
    r = run_bench(hvrun, store, ["--quick", "--modes", "host,crun", "--runs", "2", "--json", j],
                  HVRUN_BENCH_CRUN="/nonexistent/crun")
    assert r.returncode == 3, r.stderr
    assert re.search(r"crun: .*/nonexistent/crun.*; skipped", r.stderr), r.stderr
    with open(j) as f:
        doc = json.load(f)
    modes = {m["name"]: m for m in doc["modes"]}
    assert modes["crun"]["status"] == "unavailable"
    assert "/nonexistent/crun" in modes["crun"]["reason"]
    assert modes["host"]["status"] == "ok"
    assert doc["partial"] is True and doc["interrupted"] is False
    assert doc["results"]["host"]["startup_ms"]["n"] == 2
    assert "crun" not in doc["results"]


def test_failing_workload_is_reported_and_partial(hvrun, store, tmp_path, clean):
    """A rootfs whose hvbench always fails: the probe and start-up still run,
    the suite/memory/density failures are named, the mode is partial."""
    root = make_busybox_rootfs(str(tmp_path / "rootfs"))
    os.makedirs(os.path.join(root, "usr", "local", "bin"))
    helpers = build_helpers(str(tmp_path))
    shutil.copy(os.path.join(str(tmp_path), "hvprobe"), os.path.join(root, "usr/local/bin"))
    with open(os.path.join(root, "usr", "local", "bin", "hvbench"), "w") as f:
        f.write("#!/bin/sh\necho 'hvbench: simulated failure' >&2\nexit 7\n")
    os.chmod(os.path.join(root, "usr", "local", "bin", "hvbench"), 0o755)
    assert helpers
    j = str(tmp_path / "f.json")
    r = run_bench(hvrun, store, ["--quick", "--modes", "host", "--image", root, "--runs", "2",
                                 "--json", j])
    assert r.returncode == 3, r.stderr
    assert re.search(r"host: suite: .*status 7: hvbench: simulated failure", r.stderr), r.stderr
    with open(j) as f:
        doc = json.load(f)
    assert doc["partial"] is True
    assert doc["modes"][0]["status"] == "partial"
    assert {e["workload"] for e in doc["errors"]} >= {"suite", "memory"}
    assert doc["results"]["host"]["startup_ms"]["n"] == 2
    assert "host" in doc["isolation"]


def test_sigint_keeps_partial_results(hvrun, store, tmp_path, clean):
    j = str(tmp_path / "i.json")
    p = subprocess.Popen([hvrun, "bench", "--modes", "host,container", "--runs", "500",
                          "--json", j], env=bench_env(store), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        # Wait for a few start-up samples of each mode.
        deadline = time.monotonic() + 120
        seen = ""
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            seen += line
            if re.search(r"container\s+startup\s+run [3-9]/", line):
                break
            if not line and p.poll() is not None:
                break
        assert p.poll() is None, "bench ended early: %s" % seen
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "interrupted" in err
    with open(j) as f:
        doc = json.load(f)
    assert doc["partial"] is True and doc["interrupted"] is True
    assert doc["results"]["container"]["startup_ms"]["n"] >= 2
    assert {m["name"]: m["status"] for m in doc["modes"]}["container"] == "interrupted"
    # No container of the interrupted run is left: its state roots and
    # overlay mounts were in the work dir the `clean` fixture checks.
