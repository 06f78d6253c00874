"""Bounded inputs on the control socket (issue 9) and its socket file
(issue 10): real daemon, real broker, real sockets.

- 1,100 idle clients do not stop a device's receipt or a status answer:
  at the cap the longest-idle client makes room, and says why;
- an `events --follow` reader that does not read is disconnected once it
  is too far behind, counted, and named in the log;
- a client pipelining requests it does not read cannot starve others, and
  its answers come in order;
- answers that report a change come after the commit: a write the database
  refuses is answered `not stored`, never `ok`;
- a client gone before its answer breaks nothing;
- the socket file: a second instance leaves the first one's socket
  working; a regular file, or the database, named as the socket is an
  error at start and in --check-config and stays intact; a stale socket is
  replaced; on exit only our own socket is removed.
"""
import json
import os
import resource
import socket
import sqlite3
import subprocess
import time

import pytest

import conftest
from conftest import TELECARED, wait_until

IDLE = 1100


def connect(path, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def request(path, cmd, args=None):
    s = connect(path)
    try:
        f = s.makefile("rwb")
        f.write(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
        f.flush()
        return json.loads(f.readline())
    finally:
        s.close()


def control(d):
    return d.ctl_json("status")["control"]


@pytest.fixture
def fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4 * IDLE)
    if want < IDLE + 200:
        pytest.fail(f"the test needs {IDLE + 200} descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("daemon_nofile", [None, 1024])
def test_idle_clients_do_not_stop_receipts_or_status(daemon, mqtt, fd_limit, daemon_nofile,
                                                      tmp_path, monkeypatch):
    """daemon_nofile: the daemon started with that hard limit on open files
    (1024, as with a plain `ulimit -n`): its cap adapts to what it has."""
    if daemon_nofile:
        wrapper = tmp_path / "telecared-limited"
        wrapper.write_text(f"#!/bin/sh\nexec prlimit --nofile={daemon_nofile}:{daemon_nofile} "
                           f"{TELECARED} \"$@\"\n")
        wrapper.chmod(0o755)
        monkeypatch.setattr(conftest, "TELECARED", str(wrapper))
    d = daemon()
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    cap = control(d)["clients_max"]
    assert 0 < cap < IDLE, cap
    if daemon_nofile:
        assert cap < daemon_nofile - 100, cap
    idle = []
    try:
        for _ in range(IDLE):
            idle.append(connect(d.socket))
        # the daemon takes them all in (and makes room for the newest)
        wait_until(lambda: control(d)["accepted"] >= IDLE + 1, 60, "the idle clients accepted")
        r, _ = mqtt.event("p-1", {"id": "during-idle", "type": "panic"})
        assert r["status"] == "stored", r
        rc, out, err = d.ctl("status")
        assert rc == 0, err
        c = control(d)
        assert c["clients"] <= cap, c
        assert c["evicted"] >= IDLE - cap, c
        # the first ones were idle longest: closed, with the reason as their last line
        first = idle[0]
        first.settimeout(10)
        data = b""
        while not data.endswith(b"\n"):
            chunk = first.recv(4096)
            if not chunk:
                break
            data += chunk
        line = json.loads(data.decode().splitlines()[0])
        assert line["ok"] is False and "idle longest" in line["error"], line
        assert first.recv(4096) == b"", "evicted, the connection is closed"
        # and the newest idle ones are still served
        last = idle[-1]
        last.sendall(b'{"cmd": "status"}\n')
        f = last.makefile("rb")
        assert json.loads(f.readline())["ok"] is True
        f.close()
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: control(d)["clients"] <= 2, 30, "the idle clients gone")
    assert "closed to make room" in d.log.read_text()


def test_follower_that_does_not_read_is_dropped(daemon, mqtt):
    d = daemon({"mqtt": {"max_payload": 65536, "device_burst": 1000}})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(15)
    s.connect(str(d.socket))
    try:
        f = s.makefile("rwb")
        f.write(b'{"cmd": "events", "args": {"follow": true}}\n')
        f.flush()
        assert json.loads(f.readline())["ok"] is True
        follow_max = control(d)["follow_buffer_max"]
        pad = "x" * 60000
        sent = 0
        # stop reading; send until the daemon has given up on us
        deadline = time.monotonic() + 120
        while control(d)["followers_dropped"] == 0:
            assert time.monotonic() < deadline, f"still following after {sent} events"
            for _ in range(10):
                r, _ = mqtt.event("hb-1", {"id": f"h-{sent}", "type": "heartbeat", "pad": pad})
                assert r["status"] == "stored", r
                sent += 1
        assert sent * 60000 > follow_max, sent
        # still answering others; the dropped follower gets no more events
        assert d.ctl("status")[0] == 0
        assert control(d)["followers_dropped"] == 1
        log = d.log.read_text()
        assert "events --follow stream is more than" in log and "uid 0 (root)" in log, log[-2000:]
        # what it reads: whole lines, then (if it fitted) the reason, then the end
        s.settimeout(30)
        rest = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            rest += chunk
        lines = rest.decode().splitlines()
        events = [json.loads(x) for x in lines if x.startswith('{"event"')]
        assert events and all(e["event"]["device"] == "hb-1" for e in events)
        assert len(events) < sent, (len(events), sent)
        others = [json.loads(x) for x in lines if not x.startswith('{"event"')]
        assert all(o["ok"] is False and "unread" in o["error"] for o in others), others
    finally:
        s.close()


def test_pipelined_client_cannot_starve_others(daemon):
    d = daemon()
    n = 3000
    s = connect(d.socket)
    try:
        s.sendall(b'{"cmd": "status"}\n' * n)
        # it reads nothing for now; everyone else is still served
        for _ in range(5):
            rc, _, err = d.ctl("status")
            assert rc == 0, err
        f = s.makefile("rb")
        answers = [json.loads(f.readline()) for _ in range(n)]
        assert all(a["ok"] is True for a in answers)
        reqs = [a["data"]["control"]["requests"] for a in answers]
        assert reqs == sorted(reqs) and len(set(reqs)) == n, "answers out of order"
        f.close()
    finally:
        s.close()


def test_refused_write_is_not_reported_done(daemon):
    """SPEC 7: the answer to a change waits for its commit; a write the
    database refuses is answered 'not stored', never 'ok'."""
    d = daemon()
    d.add_resident("r-1")
    con = sqlite3.connect(str(d.db), timeout=10)
    try:
        con.execute("CREATE TRIGGER no_more_residents BEFORE INSERT ON residents"
                    " BEGIN SELECT RAISE(ABORT, 'residents are frozen'); END")
        con.commit()
    finally:
        con.close()
    rc, out, err = d.ctl("resident", "add", "r-2", "--name", "Refused")
    assert rc == 1, (rc, out, err)
    assert "not stored" in err and "residents are frozen" in err, err
    assert [r["id"] for r in d.query("SELECT id FROM residents")] == ["r-1"]
    # reads answer at once, and the next write that can be stored is
    assert d.ctl("status")[0] == 0
    rc, _, err = d.ctl("worker", "add", "w-1", "--name", "Jan")
    assert rc == 0, err
    assert d.query("SELECT id FROM workers") == [{"id": "w-1"}], "answered before the commit"


def test_client_gone_before_its_answer(daemon):
    d = daemon()
    for i in range(20):
        s = connect(d.socket)
        s.sendall(json.dumps({"cmd": "resident.add",
                              "args": {"id": f"r-{i}", "name": "Gone"}}).encode() + b"\n")
        s.close()
    wait_until(lambda: len(d.ctl_json("resident", "list")) == 20, 30, "the 20 residents")
    assert d.proc.poll() is None


# ---- the socket file ----

def start_raw(d, timeout=30):
    """Run telecared on d's configuration until it exits; (rc, log)."""
    p = subprocess.run([TELECARED, "-c", str(d.conf)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def check_config(d):
    p = subprocess.run([TELECARED, "-c", str(d.conf), "--check-config"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def test_second_instance_leaves_the_socket_working(daemon, tmp_path):
    first = daemon()
    before = os.stat(first.socket)
    second = daemon({"mqtt": {"client_id": "telecared-second"},
                     "store": {"path": str(tmp_path / "second.db")},
                     "control": {"socket": str(first.socket)}}, start=False, name="second")
    rc, log = start_raw(second)
    assert rc != 0, log
    assert "in use" in log and str(first.socket) in log, log
    after = os.stat(first.socket)
    assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev), "socket replaced"
    status = first.ctl_json("status")
    assert status["pid"] == first.proc.pid
    # and again: still there, still the first one's
    assert start_raw(second)[0] != 0
    assert first.ctl_json("status")["pid"] == first.proc.pid


@pytest.mark.parametrize("kind", ["regular file", "database", "directory", "fifo"])
def test_socket_path_that_is_not_a_stale_socket(daemon, tmp_path, kind):
    if kind == "database":
        target = tmp_path / "shared.db"
        con = sqlite3.connect(str(target))
        con.execute("CREATE TABLE precious(x)")
        con.commit()
        con.close()
        d = daemon({"control": {"socket": str(target)}, "store": {"path": str(target)}},
                   start=False)
    else:
        target = tmp_path / "not-a-socket"
        if kind == "regular file":
            target.write_text("precious\n")
        elif kind == "directory":
            target.mkdir()
        else:
            os.mkfifo(target)
        d = daemon({"control": {"socket": str(target)}}, start=False)
    before = os.lstat(target)
    rc, out = check_config(d)
    assert rc == 1, out
    assert str(target) in out and ("not a socket" in out or "is the database" in out), out
    rc, log = start_raw(d)
    assert rc != 0, log
    assert str(target) in log and "control" in log, log
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode), "file replaced"
    if kind == "regular file":
        assert target.read_text() == "precious\n"
    if kind == "database":
        con = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        assert con.execute("SELECT count(*) FROM precious").fetchone() == (0,)
        con.close()


def test_stale_socket_replaced_and_only_ours_removed(daemon, tmp_path):
    d = daemon(start=False)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(d.socket))
    stale.close()   # a socket file nobody listens on: what a killed daemon leaves
    assert check_config(d)[0] == 0
    d.start()
    assert d.ctl("status")[0] == 0
    # someone puts another file where the socket was: the daemon leaves it
    os.rename(d.socket, tmp_path / "moved.sock")
    d.socket.write_text("not yours\n")
    assert d.sigterm() == 0
    assert d.socket.read_text() == "not yours\n"
    d.socket.unlink()
    # a normal stop removes its own socket
    os.unlink(tmp_path / "moved.sock")
    d.start()
    assert d.sigterm() == 0
    assert not d.socket.exists(), "the daemon's own socket is left behind"


def test_large_requests_share_a_bounded_buffer(daemon):
    """Partial requests of 15 MiB from 6 clients: the buffered total is
    bounded (64 MiB beyond each client's first 64 KiB), the clients past it
    are refused with the reason, and everyone else is still answered."""
    import threading
    d = daemon()
    chunk = b'{"cmd": "status", "pad": "' + b"x" * (15 * 1024 * 1024)
    socks, results = [], {}

    def push(i, s):
        try:
            s.sendall(chunk)
            results[i] = "sent"
        except OSError as e:
            results[i] = type(e).__name__

    threads = []
    for i in range(6):
        s = connect(d.socket)
        socks.append(s)
        t = threading.Thread(target=push, args=(i, s), daemon=True)
        t.start()
        threads.append(t)
    try:
        wait_until(lambda: control(d)["input_refused"] >= 2, 60, "two large requests refused")
        c = control(d)
        assert c["input_buffered"] <= 64 * 1024 * 1024, c
        assert d.ctl("status")[0] == 0
        refused = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            if data:
                line = json.loads(data.decode().splitlines()[0])
                assert "too many large requests" in line["error"], line
                refused += 1
        assert refused >= 2, refused
    finally:
        for s in socks:
            s.close()
        for t in threads:
            t.join(30)
    wait_until(lambda: control(d)["input_buffered"] == 0, 30, "the buffers given back")
