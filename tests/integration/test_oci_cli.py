"""The OCI runtime CLI, as runc defines it, driven directly."""
import array
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import one_line_error, pid_alive, wait_for


def test_run_prints_hi(hv):
    b = hv.bundle(["echo", "hi"])
    r = hv.run("run", "--bundle", b, hv.id())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"


def test_run_exit_code(hv):
    b = hv.bundle(["sh", "-c", "exit 7"])
    assert hv.run("run", "-b", b, hv.id()).returncode == 7


def test_run_exec_failure_statuses(hv):
    # as a shell and runc: 127 when the program is not found, 126 when it
    # is found but cannot be executed; the message names it
    b = hv.bundle(["/no/such/program"])
    r = hv.run("run", "-b", b, hv.id())
    assert r.returncode == 127, (r.returncode, r.stderr)
    assert "/no/such/program" in r.stderr
    b = hv.bundle(["/etc/passwd"])
    r = hv.run("run", "-b", b, hv.id())
    assert r.returncode == 126, (r.returncode, r.stderr)
    assert "/etc/passwd" in r.stderr


def test_exec_failure_statuses(hv):
    b = hv.bundle(["sleep", "1000"])
    cid = hv.id()
    hv.run("run", "-d", "-b", b, cid, check=True)
    r = hv.run("exec", cid, "no-such-program")
    assert r.returncode == 127, (r.returncode, r.stderr)
    assert "no-such-program" in one_line_error(r)
    r = hv.run("exec", cid, "/etc/passwd")
    assert r.returncode == 126, (r.returncode, r.stderr)
    r = hv.run("exec", cid, "sh", "-c", "exit 5")
    assert r.returncode == 5, r.stderr
    hv.run("delete", "--force", cid, check=True)


class NotifyListener:
    """A seccomp notify listener socket that records what each connection
    sends (the state JSON with the notify fd) and closes the fd, so the
    notified syscall then fails with ENOSYS instead of blocking."""

    def __init__(self, path):
        import threading
        self.msgs = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.srv.settimeout(60)
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        try:
            while True:
                conn, _ = self.srv.accept()
                with conn:
                    conn.settimeout(60)
                    msg, fds, _, _ = socket.recv_fds(conn, 65536, 1)
                    for fd in fds:
                        os.close(fd)
                    self.msgs.append((json.loads(msg.decode()), len(fds)))
        except OSError:
            pass

    def close(self):
        self.srv.close()


def notify_cfg(path):
    def edit(cfg):
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "listenerMetadata": "meta-1",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    return edit


def test_seccomp_notify_listener_gets_state(hv, tmp_path):
    sock = str(tmp_path / "listener.sock")
    lst = NotifyListener(sock)
    try:
        b = hv.bundle(["sleep", "1000"], edit=notify_cfg(sock))
        cid = hv.id()
        hv.run("create", "-b", b, cid, check=True)
        pid = hv.state(cid)["pid"]
        hv.run("start", cid, check=True)
        wait_for(lambda: len(lst.msgs) == 1, what="the init's notify fd")
        st, nfds = lst.msgs[0]
        assert nfds == 1
        assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta-1", st
        assert st["pid"] == pid and st["state"]["id"] == cid and st["state"]["pid"] == pid, st
        # exec: the listener hears about the exec'd process, in the same container
        r = hv.run("exec", cid, "sh", "-c", "mkdir /tmp/n 2>/dev/null; echo done")
        assert r.returncode == 0 and r.stdout == "done\n", r.stderr
        wait_for(lambda: len(lst.msgs) == 2, what="the exec'd process's notify fd")
        st, nfds = lst.msgs[1]
        assert nfds == 1 and st["pid"] not in (0, pid), st
        assert st["state"]["id"] == cid and st["state"]["pid"] == pid, st
        hv.run("delete", "--force", cid, check=True)
    finally:
        lst.close()


def test_ps_table_and_json(hv):
    b = hv.bundle(["sh", "-c", "sleep 1000 & exec sleep 999"])
    cid = hv.id()
    hv.run("run", "-d", "-b", b, cid, check=True)
    wait_for(lambda: len(json.loads(hv.run("ps", "--format", "json", cid).stdout)) == 2,
             what="two processes")
    pids = json.loads(hv.run("ps", "--format", "json", cid, check=True).stdout)
    # default: `ps -ef`'s table, only the container's processes
    r = hv.run("ps", cid, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], lines
    assert sorted(int(l.split()[1]) for l in lines[1:]) == sorted(pids), lines
    assert any("sleep 999" in l for l in lines[1:]) and any("sleep 1000" in l for l in lines[1:])
    # ps options after the id, as runc
    r = hv.run("ps", cid, "-o", "pid,comm", check=True)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"], lines
    assert sorted(int(l.split()[0]) for l in lines[1:]) == sorted(pids), lines
    r = hv.run("ps", "--format", "json", cid, "-o", "pid")
    assert r.returncode != 0 and "--format json" in one_line_error(r)
    hv.run("delete", "--force", cid, check=True)


def test_run_killed_by_signal_is_128_plus_n(hv):
    b = hv.bundle(["sleep", "100"])
    cid = hv.id()
    p = hv.popen("run", "-b", b, cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(hv.root, cid)) and
             hv.run("state", cid).returncode == 0 and hv.state(cid)["status"] == "running",
             what="running")
    hv.run("kill", cid, "KILL", check=True)
    assert p.wait(timeout=30) == 128 + 9


def test_run_forwards_signals(hv):
    # pid 1 only gets signals it handles: the trap makes SIGTERM count.
    b = hv.bundle(["sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"])
    cid = hv.id()
    p = hv.popen("run", "-b", b, cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 42


def test_lifecycle(hv, tmp_path):
    b = hv.bundle(["sleep", "1000"])
    cid = hv.id()
    pidfile = tmp_path / "pid"
    hv.run("create", "--bundle", b, "--pid-file", pidfile, cid, check=True)
    st = hv.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == b
    pid = int(pidfile.read_text())
    assert pid == st["pid"] and pid_alive(pid)
    # created: the workload has not run yet
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert b"sleep" not in f.read()
    hv.run("start", cid, check=True)
    assert hv.state(cid)["status"] == "running"
    wait_for(lambda: b"sleep" in open("/proc/%d/cmdline" % pid, "rb").read(), what="exec")
    r = hv.run("ps", "--format", "json", cid, check=True)
    assert pid in json.loads(r.stdout)
    r = hv.run("exec", cid, "sh", "-c", "echo in-$(hostname); exit 3")
    assert r.returncode == 3 and r.stdout == "in-runc\n", r.stderr
    hv.run("pause", cid, check=True)
    assert hv.state(cid)["status"] == "paused"
    hv.run("resume", cid, check=True)
    assert hv.state(cid)["status"] == "running"
    lst = json.loads(hv.run("list", "--format", "json", check=True).stdout)
    assert [c["id"] for c in lst] == [cid]
    assert hv.run("list", "-q", check=True).stdout == cid + "\n"
    # a running container is not deleted without --force
    one_line_error(hv.run("delete", cid))
    hv.run("kill", cid, "KILL", check=True)
    wait_for(lambda: hv.state(cid)["status"] == "stopped", what="stopped")
    err = one_line_error(hv.run("kill", cid))
    assert "not running" in err
    hv.run("delete", cid, check=True)
    assert not pid_alive(pid)


def test_start_twice_and_delete_created(hv):
    b = hv.bundle(["sleep", "1000"])
    cid = hv.id()
    hv.run("create", "-b", b, cid, check=True)
    pid = hv.state(cid)["pid"]
    # delete of a created container needs no --force (as runc)
    hv.run("delete", cid, check=True)
    assert not pid_alive(pid)
    cid2 = hv.id()
    hv.run("create", "-b", b, cid2, check=True)
    hv.run("start", cid2, check=True)
    one_line_error(hv.run("start", cid2))
    hv.run("delete", "--force", cid2, check=True)


def test_kill_all_and_named_signals(hv):
    b = hv.bundle(["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    cid = hv.id()
    hv.run("run", "-d", "-b", b, cid, check=True)
    wait_for(lambda: len(json.loads(hv.run("ps", "--format", "json", cid).stdout)) == 3,
             what="3 processes")
    hv.run("kill", "--all", cid, "SIGKILL", check=True)
    wait_for(lambda: hv.state(cid)["status"] == "stopped", what="stopped")
    hv.run("delete", cid, check=True)


def test_exec_process_file_and_flags(hv, tmp_path):
    b = hv.bundle(["sleep", "1000"])
    cid = hv.id()
    hv.run("run", "-d", "-b", b, cid, check=True)
    proc = {"args": ["sh", "-c", "echo $FOO $(id -u) $(pwd)"], "cwd": "/tmp",
            "env": ["PATH=/bin", "FOO=from-file"], "user": {"uid": 65534, "gid": 65534}}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    r = hv.run("exec", "--process", pf, cid, check=True)
    assert r.stdout == "from-file 65534 /tmp\n"
    r = hv.run("exec", "-e", "FOO=flag", "--cwd", "/etc", "-u", "65534:65534", cid,
               "sh", "-c", "echo $FOO $(id -u) $(pwd)", check=True)
    assert r.stdout == "flag 65534 /etc\n"
    r = hv.run("exec", cid, "/no/such/binary")
    assert r.returncode != 0
    # detached exec with a pid file
    pidf = tmp_path / "exec.pid"
    hv.run("exec", "-d", "--pid-file", pidf, cid, "sleep", "500", check=True)
    epid = int(pidf.read_text())
    assert pid_alive(epid)
    assert epid in json.loads(hv.run("ps", "--format", "json", cid, check=True).stdout)
    hv.run("delete", "--force", cid, check=True)
    wait_for(lambda: not pid_alive(epid), what="exec'd process killed")


def test_update_and_events(hv):
    b = hv.bundle(["sleep", "1000"])
    cid = hv.id()
    hv.run("run", "-d", "-b", b, cid, check=True)
    hv.run("update", "--memory", "48m", "--pids-limit", "20", cid, check=True)
    r = hv.run("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
               "/sys/fs/cgroup/pids/pids.max", check=True)
    assert r.stdout.split() == [str(48 << 20), "20"]
    ev = json.loads(hv.run("events", "--stats", cid, check=True).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid and "memory" in ev["data"]
    r = hv.run("update", "--resources", "-", cid, input=json.dumps({"pids": {"limit": 30}}))
    assert r.returncode == 0, r.stderr
    r = hv.run("exec", cid, "cat", "/sys/fs/cgroup/pids/pids.max", check=True)
    assert r.stdout.strip() == "30"
    hv.run("delete", "-f", cid, check=True)


def test_cgroup_mount_is_own_and_read_only(hv):
    # runc spec mounts cgroup "ro": the tmpfs and every hierarchy under it
    b = hv.bundle(["sh", "-c",
                   "for d in /sys/fs/cgroup /sys/fs/cgroup/*; do "
                   "  grep -q \" $d ro,\" /proc/self/mountinfo || echo RW $d; done; "
                   "echo 1 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo WROTE; "
                   "mkdir /sys/fs/cgroup/pids/x 2>/dev/null && echo MADE; "
                   "cat /sys/fs/cgroup/pids/tasks | wc -l"])
    r = hv.run("run", "-b", b, hv.id(), check=True)
    lines = r.stdout.split()
    assert "RW" not in lines and "WROTE" not in lines and "MADE" not in lines, r.stdout
    assert lines[-1] in ("2", "3"), r.stdout  # sh (+ cat, wc): the container's own cgroup


def recv_fd(sock):
    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
            return fds[0]
    raise AssertionError("no fd received")


def test_console_socket(hv, tmp_path):
    b = hv.bundle(["sh", "-c", "tty; echo hello-tty"], terminal=True)
    cid = hv.id()
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    hv.run("create", "-b", b, "--console-socket", path, cid, check=True)
    conn, _ = srv.accept()
    master = recv_fd(conn)
    conn.close()
    srv.close()
    hv.run("start", cid, check=True)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert b"/dev/pts/" in out and b"hello-tty" in out, out
    wait_for(lambda: hv.state(cid)["status"] == "stopped", what="stopped")
    hv.run("delete", cid, check=True)


def test_run_terminal_without_console_socket(hv):
    b = hv.bundle(["sh", "-c", "tty && echo via-relay"], terminal=True)
    cid = hv.id()
    r = subprocess.run(["script", "-qec", " ".join(hv.cmd("run", "-b", b, cid)), "/dev/null"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "via-relay" in r.stdout and "/dev/pts/" in r.stdout


def test_hooks(hv, tmp_path):
    log = tmp_path / "hooks.log"

    def hooks(cfg):
        def h(name):
            return [{"path": "/bin/sh",
                     "args": ["sh", "-c", "read s; echo %s >> %s" % (name, log)]}]
        cfg["hooks"] = {k: h(k) for k in ("prestart", "createRuntime", "poststart",
                                          "poststop")}
    b = hv.bundle(["true"], edit=hooks)
    cid = hv.id()
    hv.run("run", "-b", b, cid, check=True)
    assert log.read_text().split() == ["prestart", "createRuntime", "poststart", "poststop"]


def test_features_spec_version(hv, tmp_path):
    f = json.loads(hv.run("features", check=True).stdout)
    assert f["ociVersionMin"] and f["ociVersionMax"]
    assert "prestart" in f["hooks"] and "bind" in f["mountOptions"]
    assert "user" in f["linux"]["namespaces"]
    assert "SCMP_ACT_ERRNO" in f["linux"]["seccomp"]["actions"]
    backends = json.loads(f["annotations"]["org.hvrun.backends"])
    assert "memory" in backends["container"]["policy"]
    hv.run("spec", "--bundle", tmp_path, check=True)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"]
    one_line_error(hv.run("spec", "--bundle", tmp_path))  # exists already
    r = hv.run("--version", check=True)
    assert r.stdout.startswith("hvrun version")


# Every policy field (struct hv_policy: the one-shot flags) and devices.
POLICY_FIELDS = {"cpus", "cpuset_cpus", "memory", "memory_swap", "pids", "blkio_weight",
                 "device_read_bps", "device_write_bps", "read_only", "cap_add", "cap_drop",
                 "seccomp", "network", "devices"}


def test_features_every_backend_declares_every_policy_field(hv):
    """`hvrun features` says, per backend, how each policy field is
    honoured: the container with cgroups, capabilities and seccomp; the VM
    with its shape (vCPUs, guest RAM), the VMM's cgroup and the guest."""
    f = json.loads(hv.run("features", check=True).stdout)
    backends = json.loads(f["annotations"]["org.hvrun.backends"])
    assert set(backends) == {"container", "vm"}
    container, vm = backends["container"]["policy"], backends["vm"]["policy"]
    assert set(container) == POLICY_FIELDS
    assert all(isinstance(v, str) and v for v in container.values()), container
    assert "cgroup" in container["memory"] and "capabilit" in container["cap_add"]
    assert "seccomp" in container["seccomp"]
    assert not set(vm) - POLICY_FIELDS, "vm declares unknown fields"
    assert all(isinstance(v, str) and v for v in vm.values()), vm
    assert "vCPU" in vm["cpus"] and "guest RAM" in vm["memory"]
    assert "VMM cgroup" in vm["pids"] and "guest" in vm["seccomp"]
    missing = POLICY_FIELDS - set(vm)
    assert not missing, "vm does not say how it honours %s" % sorted(missing)


def test_cli_errors(hv):
    err = one_line_error(hv.run("foo"))
    assert 'unknown command "foo"' in err
    err = one_line_error(hv.run("create", "--frobnicate", "x"))
    assert "--frobnicate" in err
    if not os.path.exists("/run/systemd/system"):
        err = one_line_error(hv.run("--systemd-cgroup", "list"))
        assert "systemd" in err
    one_line_error(hv.run("--log-format", "xml", "list"))


@pytest.fixture(scope="module")
def public_rootfs():
    """A rootfs the container's (unprivileged on the host) root can reach:
    pytest's tmp dirs are 0700."""
    import shutil
    import tempfile
    from conftest import make_busybox_rootfs
    d = tempfile.mkdtemp(prefix="hvrun-userns-")
    os.chmod(d, 0o755)
    yield make_busybox_rootfs(os.path.join(d, "rootfs"))
    shutil.rmtree(d)


def test_user_namespace_maps(hv, public_rootfs):
    def userns(cfg):
        cfg["root"]["path"] = public_rootfs
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        # a v1 cgroupfs cannot be mounted from a non-initial user namespace
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    b = hv.bundle(["sh", "-c", "id -u; cat /proc/self/uid_map"], edit=userns)
    r = hv.run("run", "-b", b, hv.id())
    assert r.returncode == 0, r.stderr
    uid, cid0, host0, size = r.stdout.split()
    assert (uid, cid0, host0, size) == ("0", "0", "200000", "65536")


def test_loopback_up_in_user_namespace_container(hv, public_rootfs):
    # With a user namespace the init still owns its new network namespace
    # (CAP_NET_ADMIN there), so `lo` comes up as well.
    def userns(cfg):
        cfg["root"]["path"] = public_rootfs
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    script = ("mkdir -p /dev/shm/www && echo lo-ok > /dev/shm/www/index.html && "
              "httpd -p 127.0.0.1:8080 -h /dev/shm/www && wget -qO- http://127.0.0.1:8080/")
    b = hv.bundle(["sh", "-c", script], edit=userns)
    r = hv.run("run", "-b", b, hv.id())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "lo-ok\n"


def test_joined_network_namespace_is_left_alone(hv):
    # linux.namespaces[].path: the namespace belongs to someone else;
    # hvrun does not touch its interfaces (here: `lo` stays down).
    name = "hvrun-" + hv.id("netns")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        def join(cfg):
            for n in cfg["linux"]["namespaces"]:
                if n["type"] == "network":
                    n["path"] = "/var/run/netns/" + name
        b = hv.bundle(["cat", "/sys/class/net/lo/flags"], edit=join)
        r = hv.run("run", "-b", b, hv.id())
        assert r.returncode == 0, r.stderr
        assert not int(r.stdout, 16) & 0x1, "lo was brought up: " + r.stdout
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_time_namespace_offsets(hv):
    def timens(cfg):
        cfg["linux"]["namespaces"].append({"type": "time"})
        cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 864000, "nanosecs": 0},
                                       "monotonic": {"secs": 864000, "nanosecs": 0}}
    b = hv.bundle(["cat", "/proc/uptime"], edit=timens)
    r = hv.run("run", "-b", b, hv.id())
    assert r.returncode == 0, r.stderr
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert float(r.stdout.split()[0]) - host > 864000 - 60
