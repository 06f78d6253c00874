"""Roles on the control socket (SPEC 6.1, issue 11), with real Unix users
and groups made by the test (as root) and telecarectl run as them.

- root and telecare-admin: admin; telecare-dispatch: dispatcher;
  telecare-install: installer; primary or supplementary group alike, read
  from the user database at each connection;
- anyone else is refused at connect with one line naming their uid;
- a command beyond the role: `permission denied: CMD needs the ROLE role`,
  exit 1, nothing changed;
- changes name the Unix user who made them ("uid 1001 (anna)").
"""
import json
import subprocess
from pathlib import Path

import pytest

from conftest import TELECARECTL
from unixusers import UnixIdentities, public_dir


@pytest.fixture
def ids():
    with UnixIdentities() as u:
        yield u


@pytest.fixture
def d(daemon, request):
    """A daemon whose socket every user can reach (tmp_path is root's)."""
    sock = Path(public_dir(request, "telecare-roles-")) / "control.sock"
    dm = daemon({"control": {"socket": str(sock)}}, start=False)
    dm.socket = sock
    dm.start()
    return dm


def as_user(d, user, *args, json_out=False, **kw):
    argv = [TELECARECTL, "--socket", str(d.socket)] + (["--json"] if json_out else []) + \
        [str(a) for a in args]
    p = subprocess.run(user.cmd(argv, **kw), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def caller(d, user, **kw):
    rc, out, err = as_user(d, user, "status", json_out=True, **kw)
    assert rc == 0, f"status as {user.name}: rc {rc}: {err}"
    return json.loads(out)["caller"]


def refused(d, user, cmd_words, wire, role):
    rc, out, err = as_user(d, user, *cmd_words)
    assert rc == 1, f"{' '.join(cmd_words)} as {user.name}: expected 1, got {rc}: {out}{err}"
    assert f"permission denied: {wire} needs the {role} role" in err, err


def setup_alarm(d, mqtt):
    d.add_resident("r-1", "Anna Kowalska")
    d.add_device("p-1", "r-1")
    for args in (["worker", "add", "w-1", "--name", "Jan"], ["shift", "add", "w-1", "--always"]):
        rc, _, err = d.ctl(*args)
        assert rc == 0, err
    r, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    assert r["status"] == "stored", r
    return r["alarm"]


def test_each_role_one_allowed_one_refused(d, ids, mqtt):
    alarm = setup_alarm(d, mqtt)
    admin = ids.user(groups=["telecare-admin"])
    disp = ids.user(groups=["telecare-dispatch"])
    inst = ids.user(groups=["telecare-install"])

    # admin: the admin-only commands
    assert caller(d, admin) == {"actor": f"uid {admin.uid} ({admin.name})", "role": "admin"}
    rc, _, err = as_user(d, admin, "worker", "add", "w-2", "--name", "Ewa")
    assert rc == 0, err

    # dispatcher: alarms and reads; not the registry or the roster
    assert caller(d, disp)["role"] == "dispatcher"
    rc, out, err = as_user(d, disp, "resident", "list", json_out=True)
    assert rc == 0 and [r["id"] for r in json.loads(out)] == ["r-1"], (rc, out, err)
    rc, _, err = as_user(d, disp, "alarm", "ack", alarm, "--as", "w-1")
    assert rc == 0, err
    refused(d, disp, ["resident", "add", "r-9", "--name", "X"], "resident.add", "installer")
    refused(d, disp, ["shift", "add", "w-1", "--always"], "shift.add", "admin")

    # installer: residents and devices; not alarms, not the report
    assert caller(d, inst)["role"] == "installer"
    rc, _, err = as_user(d, inst, "resident", "add", "r-2", "--name", "Maria")
    assert rc == 0, err
    rc, _, err = as_user(d, inst, "device", "add", "p-2", "--resident", "r-2")
    assert rc == 0, err
    refused(d, inst, ["report"], "report", "dispatcher")
    refused(d, inst, ["worker", "add", "w-9", "--name", "X"], "worker.add", "admin")
    # alarm actions: only on alarms of devices on test (decided per alarm)
    rc, _, err = as_user(d, inst, "alarm", "note", alarm, "--note", "hello")
    assert rc == 1 and "device on test" in err, (rc, err)
    # an installer sees test alarms only: this one is not theirs to see
    rc, out, err = as_user(d, inst, "alarm", "list", "--open", json_out=True)
    assert rc == 0 and json.loads(out) == [], (rc, out, err)
    rc, _, err = as_user(d, inst, "alarm", "show", alarm)
    assert rc == 1 and f"alarm {alarm} does not exist" in err, err

    # the refusals changed nothing; what was allowed is there, and the log
    # names who did it
    residents = [r["id"] for r in d.ctl_json("resident", "list")]
    assert residents == ["r-1", "r-2"], residents
    assert [s["worker"] for s in d.ctl_json("shift", "list")] == ["w-1"]
    shown = d.ctl_json("alarm", "show", alarm)
    assert shown["state"] == "acknowledged", shown
    log = d.log.read_text()
    assert f"resident r-2 added by uid {inst.uid} ({inst.name})" in log, log[-3000:]
    assert f"worker w-2 added by uid {admin.uid} ({admin.name})" in log


def test_no_group_cannot_connect(d, ids):
    stranger = ids.user()
    rc, out, err = as_user(d, stranger, "status")
    assert rc == 1, (rc, out, err)
    want = (f"permission denied: uid {stranger.uid} ({stranger.name}) is in none of the groups "
            "telecare-admin, telecare-dispatch, telecare-install")
    assert want in err, err
    # the raw protocol, as that user: the refusal is the first line, unasked,
    # then the end of the connection
    p = subprocess.run(stranger.cmd(["/usr/bin/python3", "-c", (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX);s.settimeout(10);s.connect(sys.argv[1])\n"
        "data=b''\n"
        "while True:\n"
        "    b=s.recv(4096)\n"
        "    if not b: break\n"
        "    data+=b\n"
        "sys.stdout.write(data.decode())\n"), str(d.socket)]),
        capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == {"ok": False, "error": want}, p.stdout
    status = d.ctl_json("status")["control"]
    assert status["denied"] >= 2, status
    assert "permission denied: uid %d (%s)" % (stranger.uid, stranger.name) in d.log.read_text()


def test_supplementary_and_primary_groups_count(d, ids):
    # supplementary only: the user's primary group is their own
    disp = ids.user(groups=["telecare-dispatch"])
    assert caller(d, disp)["role"] == "dispatcher"
    # the user database decides, not the groups the process happens to carry
    assert caller(d, disp, init_groups=False)["role"] == "dispatcher"
    # primary group
    inst = ids.user(primary="telecare-install")
    assert caller(d, inst, init_groups=False)["role"] == "installer"
    # in two groups: the higher role
    both = ids.user(groups=["telecare-install", "telecare-dispatch"])
    assert caller(d, both)["role"] == "dispatcher"
    # taken out of the group: refused at the next command, no new login needed
    ids.remove_from_group(disp, "telecare-dispatch")
    rc, _, err = as_user(d, disp, "status")
    assert rc == 1 and "is in none of the groups" in err, (rc, err)
    # put into telecare-admin: admin at the next command
    ids.add_to_group(disp, "telecare-admin")
    assert caller(d, disp)["role"] == "admin"


def test_root_is_admin(d):
    c = d.ctl_json("status")["caller"]
    assert c == {"actor": "uid 0 (root)", "role": "admin"}, c


def test_dispatcher_may_not_manage_users(d, ids):
    """user.* are admin only: over the raw protocol, as a dispatcher."""
    disp = ids.user(groups=["telecare-dispatch"])
    script = ("import socket,sys,json\n"
              "s=socket.socket(socket.AF_UNIX);s.settimeout(10);s.connect(sys.argv[1])\n"
              "f=s.makefile('rwb')\n"
              "for req in sys.argv[2:]:\n"
              "    f.write(req.encode()+b'\\n');f.flush()\n"
              "    sys.stdout.write(f.readline().decode())\n")
    reqs = [json.dumps({"cmd": "user.list"}),
            json.dumps({"cmd": "user.add", "args": {"name": "eve", "role": "admin",
                                                   "password": "hunter2hunter2"}})]
    p = subprocess.run(disp.cmd(["/usr/bin/python3", "-c", script, str(d.socket)] + reqs),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    answers = [json.loads(x) for x in p.stdout.splitlines()]
    assert answers == [
        {"ok": False, "error": "permission denied: user.list needs the admin role"},
        {"ok": False, "error": "permission denied: user.add needs the admin role"},
    ], answers
    assert d.ctl_json("status")["pid"] == d.proc.pid
