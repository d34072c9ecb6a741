"""Bad input: one clear line on stderr, non-zero exit, nothing left behind
(the hv fixture checks --root, mounts and cgroups after every test)."""
import json
import os

import pytest

from conftest import one_line_error


def write_config(hv, text):
    b = os.path.join(hv.tmp, "bad-bundle")
    os.makedirs(b, exist_ok=True)
    with open(os.path.join(b, "config.json"), "w") as f:
        f.write(text)
    return b


def create_fails(hv, bundle, *extra):
    cid = hv.id()
    err = one_line_error(hv.run("create", "--bundle", bundle, *extra, cid))
    assert hv.run("state", cid).returncode != 0
    return err


def test_malformed_json(hv):
    b = write_config(hv, '{"ociVersion": "1.0.2", "process": {"args": ["sh"],}')
    err = create_fails(hv, b)
    assert "config.json" in err


def test_wrong_types(hv):
    good = hv.bundle(["true"], name="typed")
    with open(os.path.join(good, "config.json")) as f:
        cfg = json.load(f)
    for path, value, field in [(("process", "args"), "echo hi", "process.args"),
                               (("process", "user", "uid"), "root", "uid"),
                               (("root", "path"), 42, "root.path"),
                               (("linux", "namespaces"), {"type": "pid"}, "namespaces")]:
        c = json.loads(json.dumps(cfg))
        o = c
        for k in path[:-1]:
            o = o[k]
        o[path[-1]] = value
        err = create_fails(hv, write_config(hv, json.dumps(c)))
        assert field in err, err


def test_missing_rootfs(hv):
    b = hv.bundle(["true"], edit=lambda c: c["root"].update(path="/no/such/rootfs"))
    err = create_fails(hv, b)
    assert "/no/such/rootfs" in err or "root" in err


def test_empty_args(hv):
    b = hv.bundle(["true"], edit=lambda c: c["process"].update(args=[]))
    create_fails(hv, b)


def test_missing_bundle(hv):
    err = create_fails(hv, os.path.join(hv.tmp, "nope"))
    assert "nope" in err


def test_bad_cgroups_path_leaves_nothing(hv):
    b = hv.bundle(["true"], edit=lambda c: c["linux"].update(
        resources={"memory": {"limit": 1}}))
    # a 1-byte limit is refused by the kernel or kills the init: either way
    # create/run must fail cleanly
    cid = hv.id()
    r = hv.run("run", "-b", b, cid)
    assert r.returncode != 0


@pytest.mark.parametrize("cmd", [["state"], ["start"], ["kill"], ["delete"], ["pause"],
                                 ["resume"], ["ps"], ["events", "--stats"],
                                 ["update", "--memory", "10m"], ["exec", "@ID", "true"]])
def test_unknown_id(hv, cmd):
    cid = hv.id()
    args = [a if a != "@ID" else cid for a in cmd]
    if "@ID" not in cmd:
        args.append(cid)
    err = one_line_error(hv.run(*args))
    assert cid in err and "not exist" in err, err


def test_duplicate_id(hv):
    b = hv.bundle(["sleep", "100"])
    cid = hv.id()
    hv.run("create", "-b", b, cid, check=True)
    pid = hv.state(cid)["pid"]
    err = one_line_error(hv.run("create", "-b", b, cid))
    assert "already exists" in err
    # the first one is untouched
    st = hv.state(cid)
    assert st["status"] == "created" and st["pid"] == pid
    hv.run("delete", cid, check=True)


def test_bad_signal(hv):
    b = hv.bundle(["sleep", "100"])
    cid = hv.id()
    hv.run("run", "-d", "-b", b, cid, check=True)
    err = one_line_error(hv.run("kill", cid, "SIGFOO"))
    assert "SIGFOO" in err
    one_line_error(hv.run("kill", cid, "99999"))
    assert hv.state(cid)["status"] == "running"
    hv.run("delete", "--force", cid, check=True)


def test_bad_ids_and_flags(hv):
    b = hv.bundle(["true"])
    for bad in ["../escape", "a/b", ".hidden", ""]:
        one_line_error(hv.run("create", "-b", b, bad))
    one_line_error(hv.run("create", "-b", b, "--preserve-fds", "abc", hv.id()))
    one_line_error(hv.run("create", "-b", b))
    one_line_error(hv.run("ps", "--format", "xml", hv.id()))
    one_line_error(hv.run("update", "--memory", "ten", hv.id()))
    one_line_error(hv.run("exec", hv.id()))


def no_netns_sysctl(c):
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]


def empty_mount_destination(c):
    c["mounts"].append({"destination": "", "type": "tmpfs", "source": "tmpfs"})


@pytest.mark.parametrize("edit,field", [(no_netns_sysctl, "linux.sysctl"),
                                        (empty_mount_destination, "mounts[")])
def test_backend_config_errors_before_anything_is_made(hv, edit, field):
    # The id is taken: had it been reserved (and a cgroup made after it)
    # before the backend's own checks, the error would be "already exists".
    cid = hv.id()
    hv.run("create", "--bundle", hv.bundle(["sleep", "100"]), cid, check=True)
    err = one_line_error(hv.run("create", "--bundle", hv.bundle(["true"], edit=edit), cid))
    assert field in err and "already exists" not in err, err
    assert hv.state(cid)["status"] == "created"
    hv.run("delete", "--force", cid, check=True)


def test_cgroup_resource_error_names_the_field_once(hv):
    b = hv.bundle(["true"], edit=lambda c: c["linux"].setdefault("resources", {}).update(
        memory={"limit": 64 << 20, "swap": 32 << 20}))
    err = create_fails(hv, b)
    assert "linux.resources.memory" in err and "cgroupsPath" not in err, err
