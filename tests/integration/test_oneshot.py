"""`hvrun container ROOTFS|BUNDLE|IMAGE [CMD...]`: run, wait, clean up."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import cgroup_dirs_named, one_line_error, wait_for


def oneshot(hv, *args, **kw):
    return hv.run("container", *args, **kw)


def test_rootfs_dir_echo(hv):
    r = oneshot(hv, hv.rootfs, "echo", "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"


def test_exit_status(hv):
    assert oneshot(hv, hv.rootfs, "sh", "-c", "exit 9").returncode == 9


def test_exec_failure_statuses(hv):
    r = oneshot(hv, hv.rootfs, "/no/such/program")
    assert r.returncode == 127, (r.returncode, r.stderr)
    assert "/no/such/program" in r.stderr
    r = oneshot(hv, hv.rootfs, "/etc/passwd")
    assert r.returncode == 126, (r.returncode, r.stderr)


def test_default_command_is_sh(hv):
    r = oneshot(hv, "-i", hv.rootfs, input="echo from-stdin; exit 4\n")
    assert r.returncode == 4 and r.stdout == "from-stdin\n", r.stderr


def test_stdin_closed_without_i(hv):
    r = oneshot(hv, hv.rootfs, "cat", input="should-not-arrive\n")
    assert r.returncode == 0 and r.stdout == ""


def test_bundle_dir_and_cmd_override(hv):
    b = hv.bundle(["echo", "from-config"])
    assert oneshot(hv, b).stdout == "from-config\n"
    assert oneshot(hv, b, "echo", "overridden").stdout == "overridden\n"


def test_policy_flags(hv):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
              "cat /sys/fs/cgroup/pids/pids.max; "
              "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; "
              "cat /sys/fs/cgroup/cpuset/cpuset.cpus; "
              "hostname; echo $FOO; pwd; id -u")
    r = oneshot(hv, "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5",
                "--cpuset-cpus", "0", "--hostname", "box", "-e", "FOO=bar", "-w", "/tmp",
                "--rm", hv.rootfs, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    mem, pids, quota, cpus, host, foo, cwd, uid = r.stdout.split()
    assert int(mem) == 64 << 20
    assert pids == "50"
    assert int(quota) > 0
    assert cpus == "0"
    assert (host, foo, cwd, uid) == ("box", "bar", "/tmp", "0")


def test_user_read_only_caps(hv):
    r = oneshot(hv, "-u", "1000:1000", hv.rootfs, "id", "-u")
    assert r.stdout == "1000\n", r.stderr
    r = oneshot(hv, "--read-only", hv.rootfs, "sh", "-c", "touch /x 2>/dev/null || echo ro")
    assert r.stdout == "ro\n", r.stderr
    # --cap-add CHOWN allows chown; --cap-drop CHOWN forbids it again.
    chown = "touch /dev/shm/f && chown 5 /dev/shm/f 2>/dev/null && echo can || echo cannot"
    r = oneshot(hv, "--cap-add", "CHOWN", hv.rootfs, "sh", "-c", chown)
    assert r.stdout == "can\n", r.stdout + r.stderr
    r = oneshot(hv, "--cap-add", "CHOWN", "--cap-drop", "chown", hv.rootfs, "sh", "-c", chown)
    assert r.stdout == "cannot\n", r.stdout + r.stderr


def test_network_none_by_default(hv):
    r = oneshot(hv, hv.rootfs, "sh", "-c", "ls /sys/class/net")
    assert r.stdout.split() == ["lo"], r.stdout + r.stderr
    r = oneshot(hv, "--network", "host", hv.rootfs, "sh", "-c", "ls /sys/class/net | wc -l")
    assert r.returncode == 0
    with open("/proc/net/dev") as f:
        host_ifaces = len(f.readlines()) - 2
    assert int(r.stdout.strip()) == host_ifaces


LOOPBACK_HTTP = ("mkdir -p /dev/shm/www && echo over-lo > /dev/shm/www/index.html && "
                 "httpd -p 127.0.0.1:8080 -h /dev/shm/www && wget -qO- http://127.0.0.1:8080/")


def test_loopback_is_up_in_the_new_network_namespace(hv):
    # A new network namespace's `lo` starts DOWN; like runc/crun, the init
    # brings it up, so TCP over 127.0.0.1 works (httpd binds before it
    # goes to the background, so wget needs no retry).
    r = oneshot(hv, hv.rootfs, "sh", "-c", LOOPBACK_HTTP + "; cat /sys/class/net/lo/flags")
    assert r.returncode == 0, r.stderr
    body, flags = r.stdout.split()
    assert body == "over-lo"
    assert int(flags, 16) & 0x1, "lo is not IFF_UP: " + flags


def test_tty(hv):
    cmd = " ".join(hv.cmd("container", "-t", hv.rootfs, "sh", "-c", "'tty; echo T-OK'"))
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "/dev/pts/" in r.stdout and "T-OK" in r.stdout


def test_sigint_cleans_up(hv):
    cid = hv.id("os")
    p = hv.popen("container", "--name", cid, hv.rootfs, "sh", "-c",
                 "trap 'exit 130' INT; echo up; while :; do sleep 0.1; done",
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "up\n"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 130
    assert os.listdir(hv.root) == []
    assert not cgroup_dirs_named(cid)


def test_error_leaves_nothing(hv):
    one_line_error(oneshot(hv, hv.rootfs, "/no/such/program"))
    one_line_error(oneshot(hv, "--memory", "lots", hv.rootfs, "true"))
    one_line_error(oneshot(hv, "--network", "bridge", hv.rootfs, "true"))
    one_line_error(oneshot(hv, "/no/such/dir", "true"))
    one_line_error(oneshot(hv, "--bogus", hv.rootfs))
    assert os.listdir(hv.root) == [] if os.path.isdir(hv.root) else True


def test_unknown_image_name(hv, tmp_path):
    env = dict(os.environ, HVRUN_STORE=str(tmp_path / "store"))
    err = one_line_error(oneshot(hv, "no-such-image", "true", env=env))
    assert "no-such-image" in err


def test_image_name(hv, tmp_path):
    """IMAGE: imported into an hvrun store (HVRUN_STORE) from a rootfs
    tarball; the one-shot mounts it, runs, and releases the mount."""
    import tarfile
    tar = str(tmp_path / "rootfs.tar")
    with tarfile.open(tar, "w") as t:
        t.add(hv.rootfs, arcname=".")
    env = dict(os.environ, HVRUN_STORE=str(tmp_path / "store"))
    r = hv.run("image", "import", "--rootfs", tar, "localhost/hvrun-bb:1", env=env)
    assert r.returncode == 0, r.stderr
    r = oneshot(hv, "localhost/hvrun-bb:1", "sh", "-c", "echo img-$((1+1)); id -u", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "img-2\n0\n"
    r = oneshot(hv, "-u", "nobody", "localhost/hvrun-bb:1", "id", "-u", env=env)
    assert r.stdout == "65534\n", r.stderr
    assert not [l for l in open("/proc/self/mountinfo") if str(tmp_path) in l]


def test_second_sigint_stops_a_deaf_pid1(hv):
    # `sleep` as pid 1 has no SIGINT handler, so the kernel drops the
    # forwarded signal; the second SIGINT kills it.
    cid = hv.id("os")
    p = hv.popen("container", "--name", cid, hv.rootfs, "sh", "-c", "echo up; exec sleep 1000",
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "up\n"
    wait_for(lambda: hv.run("state", cid).returncode == 0 and
             b"sleep" in open("/proc/%d/cmdline" % hv.state(cid)["pid"], "rb").read(),
             what="sleep running")
    # pending signals of one kind merge: send them apart
    for _ in range(100):
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=0.3)
            break
        except subprocess.TimeoutExpired:
            pass
    assert p.wait(timeout=30) == 128 + 9
    assert os.listdir(hv.root) == []
    assert not cgroup_dirs_named(cid)
