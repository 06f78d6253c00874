"""Every promise backed by a commit (issue 10; SPEC 3, 7): ids that are never
reused, a damaged database refused at start, refused writes never reported
as done, control sockets that delete nothing they do not own, webhook
failures recorded as they happen, and text that survives being cut.

Real broker, real daemon, real SQLite; faults made with SQLite itself (a lock
held by another process, a trigger that refuses a row, garbage written over
a page of the file)."""
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import threading
import time

import pytest

from conftest import (MSG_TIMEOUT, PREFIX, START_TIMEOUT, TELECARECTL, TELECARED, run_ctl,
                      wait_until)
from test_escalation import action, alert_topic, policy


# --------------------------------------------------------------------------
# helpers


def register(d, workers=("w-jan",), devices=("pendant-1", "pendant-2"), on_duty=True):
    d.add_resident("r-1", "Anna Kowalska", "--team", "north")
    for dev in devices:
        d.add_device(dev, "r-1")
    for w in workers:
        rc, _, err = d.ctl("worker", "add", w, "--name", f"Name {w}", "--team", "north")
        assert rc == 0, err
        if on_duty:
            rc, _, err = d.ctl("shift", "add", w, "--always")
            assert rc == 0, err


def writer(db):
    """A second writer on the daemon's database (another process would do the
    same): autocommit, so BEGIN/ROLLBACK are explicit."""
    return sqlite3.connect(str(db), timeout=15, isolation_level=None, check_same_thread=False)


def conf_with(d, out, **replace):
    """A copy of d's configuration with `key = value` lines replaced."""
    text = d.conf.read_text()
    for key, value in replace.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, f"no single '{key} =' line in {d.conf}"
    out.write_text(text)
    return out


def run_telecared(conf, *args, timeout=START_TIMEOUT, gone_wrong=None, log=None):
    """Run telecared -c conf ARGS expecting it to exit by itself. Returns
    (rc, output). If it is still running at the deadline, or gone_wrong()
    returns a text first, it is killed and rc is None (the output then
    starts with why)."""
    log = log or (conf.parent / (conf.stem + ".out"))
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(k, None)
    with open(log, "wb") as out:
        p = subprocess.Popen([TELECARED, "-c", str(conf), *args], stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        why = None
        while p.poll() is None:
            why = gone_wrong() if gone_wrong else None
            if why or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if p.poll() is None:
            p.kill()
            p.wait(10)
            return None, (f"telecared -c {conf} {' '.join(args)} kept running "
                          f"({why or f'for {timeout}s'}); its output:\n"
                          f"{log.read_text(errors='replace')[-3000:]}")
    return p.returncode, log.read_text(errors="replace")


def exits(conf, *args, **kw):
    """run_telecared, failing the test if telecared does not exit by itself."""
    rc, out = run_telecared(conf, *args, **kw)
    if rc is None:
        pytest.fail(out, pytrace=False)
    return rc, out


def control(sock_path, request, timeout=10):
    """One raw request on the control socket: the raw answer line (bytes), or
    None when the daemon closed the connection without one."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock_path))
        s.sendall(json.dumps(request, ensure_ascii=False).encode("utf-8") + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        return buf.split(b"\n", 1)[0]
    finally:
        s.close()


def ctl_bytes(d, *args):
    """telecarectl with its output as bytes: (rc, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("TELECARE_SOCKET", None)
    p = subprocess.run([TELECARECTL, "--socket", str(d.socket), *[str(a) for a in args]],
                       capture_output=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def utf8(data, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError(f"{what} is not valid UTF-8 ({e}): ...{data[max(0, e.start - 40):e.end + 10]!r}")


# --------------------------------------------------------------------------
# ids never reused


def test_alarm_ids_survive_a_crash_while_the_database_is_locked(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 3s"))
    register(d)
    lock = writer(d.db)
    try:
        lock.execute("BEGIN IMMEDIATE")       # another process holds the write lock
        mqtt.publish(f"{PREFIX}/dev/pendant-1/event", {"id": "p1-1", "type": "panic"})
        # alerting never waits for the disk (SPEC 4): w-jan hears of it anyway
        first = mqtt.wait_for(alert_topic("w-jan"), lambda m: m.json()["device"] == "pendant-1",
                              timeout=MSG_TIMEOUT).json()
        n = first["alarm"]
        d.kill9()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    d.start()
    mark = mqtt.mark(alert_topic("w-jan"))
    r, _ = mqtt.event("pendant-2", {"id": "p2-1", "type": "fall"})
    assert r["status"] == "stored", r
    m = r["alarm"]
    assert isinstance(m, int) and m != n, (
        f"pendant-2's fall got alarm {m}, the id w-jan was alerted with for pendant-1's panic "
        f"before the crash: ids are reused")

    # the stale ack for N is refused, or lands on pendant-1's alarm: never on pendant-2's
    res = action(mqtt, "w-jan", {"alarm": n, "action": "ack"})
    if res.get("ok"):
        shown = d.ctl_json("alarm", "show", n)
        assert shown["device"] == "pendant-1", f"w-jan's ack for alarm {n} acknowledged {shown}"
    assert d.ctl_json("alarm", "show", m)["state"] == "open"
    mqtt.wait_for(alert_topic("w-jan"), lambda m_: m_.json()["alarm"] == m and
                  m_.json()["state"] == "open", after=mark, timeout=MSG_TIMEOUT)
    after_ack = mqtt.mark(alert_topic("w-jan"))
    again = mqtt.wait_for(alert_topic("w-jan"), lambda m_: m_.json()["alarm"] == m and
                          m_.json()["state"] == "open", after=after_ack, timeout=MSG_TIMEOUT)
    assert again.json()["device"] == "pendant-2"   # still escalating after the stale ack


# --------------------------------------------------------------------------
# a damaged database


def test_garbage_in_the_database_is_refused_at_start_and_by_check_db(daemon, mqtt, tmp_path):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 10m"))
    d.sigterm()
    # 200 residents with long notes (many pages), written the way the daemon
    # stores them; then 30 open alarms made by the daemon itself
    con = writer(d.db)
    now_ms = int(time.time() * 1000)
    with con:
        con.execute("BEGIN")
        con.executemany("INSERT INTO residents(id, name, address, phone, team, notes, created_at)"
                        " VALUES (?,?,?,?,?,?,?)",
                        [(f"r-{i:03d}", f"Resident {i}", f"Street {i}", "+48 600 000 000", "north",
                          "key safe 1234; " + "medical notes " * 40, now_ms) for i in range(200)])
        con.execute("COMMIT")
    con.close()
    d.start()
    csv = tmp_path / "devices.csv"
    csv.write_text("id,resident\n" + "".join(f"p-{i:02d},r-{i:03d}\n" for i in range(30)))
    rc, _, err = d.ctl("device", "import", csv)
    assert rc == 0, err
    for i in range(30):
        r, _ = mqtt.event(f"p-{i:02d}", {"id": "e-1", "type": "panic"})
        assert r["status"] == "stored"
    status = d.ctl_json("status")["counts"]
    assert status["residents"] == 200 and status["alarms_open"] == 30, status
    assert d.sigterm() == 0
    con = writer(d.db)          # whatever the daemon left in the WAL goes into the file
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    intact = tmp_path / "intact.db"
    shutil.copy(d.db, intact)

    # garbage over a page of the residents table in the middle of the file
    con = sqlite3.connect(f"file:{d.db}?mode=ro", uri=True)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in con.execute("SELECT pageno FROM dbstat WHERE name = 'residents'"
                                       " AND pagetype = 'leaf' ORDER BY pageno")]
    total = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    assert len(pages) >= 10, f"the residents table has only {len(pages)} leaf pages"
    victim = pages[len(pages) // 2]
    assert 1 < victim < total
    garbage = random.Random(victim).randbytes(page_size)
    with open(d.db, "r+b") as f:
        f.seek((victim - 1) * page_size)
        f.write(garbage)

    def half_loaded():
        if not os.path.exists(d.socket):
            return None
        rc, out, _ = run_ctl(d.socket, "status", json_out=True, timeout=5)
        if rc != 0:
            return None
        counts = json.loads(out)["counts"]
        return (f"it answers status on the damaged database: {counts['residents']} of 200 "
                f"residents, {counts['alarms_open']} of 30 open alarms")

    rc, out = exits(d.conf, gone_wrong=half_loaded)
    assert rc != 0, f"telecared on a damaged database exited {rc}:\n{out[-3000:]}"
    assert str(d.db) in out, f"the error does not name the database {d.db}:\n{out[-3000:]}"
    assert garbage == open(d.db, "rb").read()[(victim - 1) * page_size:victim * page_size], \
        "telecared changed the damaged file"

    # --check-db: 0 on an intact copy, an error naming the file on the damaged one
    intact_conf = conf_with(d, tmp_path / "intact.conf", path=str(intact))
    rc, out = exits(intact_conf, "--check-db")
    assert rc == 0, f"telecared --check-db on an intact database exited {rc}:\n{out[-3000:]}"
    rc, out = exits(d.conf, "--check-db")
    assert rc != 0, f"telecared --check-db on a damaged database exited 0:\n{out[-3000:]}"
    assert str(d.db) in out, f"--check-db does not name the database:\n{out[-3000:]}"
    assert len(out.strip().splitlines()) >= 1 and "usage" not in out.lower(), out[-3000:]


# --------------------------------------------------------------------------
# refused writes


def test_a_write_the_database_refuses_is_never_reported_done(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 10m"))
    register(d, workers=("w-a",), devices=("p-good", "p-bad"))
    problems = []
    con = writer(d.db)
    try:
        con.execute("CREATE TRIGGER refuse_p_bad BEFORE INSERT ON events WHEN NEW.device_id = 'p-bad'"
                    " BEGIN SELECT RAISE(ABORT, 'test: event of p-bad refused'); END")
        # a device whose event row is refused
        r, _ = mqtt.event("p-bad", {"id": "e-1", "type": "heartbeat"})
        if r.get("status") != "rejected" or "error" not in r:
            problems.append(f"an event the database refused was receipted {r}")
        elif not re.search(r"refused|not stored", r["error"]):
            problems.append(f"the rejected receipt does not say the database refused it: {r}")
        rows = d.query("SELECT seq FROM events WHERE device_id = 'p-bad'")
        assert rows == [], f"the trigger did not refuse the row: {rows}"
        # ...while other devices are stored as usual
        r, _ = mqtt.event("p-good", {"id": "e-1", "type": "panic"})
        assert r["status"] == "stored", r
        alarm = r["alarm"]
        mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == alarm)

        # a worker's ack whose timeline row is refused
        con.execute("CREATE TRIGGER refuse_ack BEFORE INSERT ON timeline WHEN NEW.what = 'acknowledged'"
                    " BEGIN SELECT RAISE(ABORT, 'test: acknowledgement refused'); END")
        res = action(mqtt, "w-a", {"alarm": alarm, "action": "ack"})
        if res.get("ok") is not False or not res.get("error"):
            problems.append(f"an ack whose timeline row the database refused was answered {res}")

        # a control command whose row is refused
        con.execute("CREATE TRIGGER refuse_residents BEFORE INSERT ON residents"
                    " BEGIN SELECT RAISE(ABORT, 'test: resident refused'); END")
        rc, out, err = d.ctl("resident", "add", "r-new", "--name", "New Resident")
        if rc != 1 or not err.strip():
            problems.append(f"telecarectl resident add whose row the database refused exited {rc} "
                            f"(stdout {out.strip()!r}, stderr {err.strip()!r}); want 1 and the reason")
    finally:
        con.close()
    assert d.ctl("status")[0] == 0
    assert not problems, "; ".join(problems)


# --------------------------------------------------------------------------
# files: the control socket


def test_control_socket_path_deletes_nothing_it_does_not_own(daemon, tmp_path):
    d = daemon()
    problems = []
    # a second telecared with the same socket (and database) exits, and the
    # first one's socket still answers
    second = conf_with(d, tmp_path / "second.conf", client_id="telecared-second")
    rc, out = run_telecared(second)
    if rc is None or rc == 0:
        problems.append(f"a second telecared on a busy socket exited {rc}:\n{out[-1500:]}")
    rc_status, _, err = d.ctl("status")
    if rc_status != 0:
        problems.append(f"after the second telecared exited, telecarectl status against the "
                        f"first exits {rc_status}: {err.strip()} (socket exists: "
                        f"{os.path.exists(d.socket)})")

    # a regular file at the socket path is left alone: an error, not an unlink
    precious = tmp_path / "precious.txt"
    precious.write_text("not a socket\n")
    db2 = tmp_path / "other.db"
    conf_file = conf_with(d, tmp_path / "file.conf", socket=str(precious), path=str(db2),
                          client_id="telecared-file")

    def clobbered():
        if not precious.exists():
            return f"{precious} was deleted"
        if stat.S_ISSOCK(os.stat(precious).st_mode):
            return f"{precious} was replaced by a socket"
        return None

    rc, out = run_telecared(conf_file, gone_wrong=clobbered)
    if rc is None:
        problems.append(out[:300])
    elif rc == 0 or precious.read_text() != "not a socket\n" or str(precious) not in out:
        problems.append(f"[control] socket naming a regular file: exit {rc}, file intact: "
                        f"{precious.exists() and precious.read_text() == 'not a socket' + chr(10)}, "
                        f"output: {out[-800:]!r}")

    # the database itself named as the socket: refused, the database intact
    assert d.sigterm() == 0
    residents_before = sqlite3.connect(f"file:{d.db}?mode=ro", uri=True).execute(
        "SELECT count(*) FROM sqlite_master").fetchone()[0]
    conf_db = conf_with(d, tmp_path / "db.conf", socket=str(d.db))

    def db_clobbered():
        if not d.db.exists():
            return f"the database {d.db} was deleted"
        if stat.S_ISSOCK(os.stat(d.db).st_mode):
            return f"the database {d.db} was replaced by a socket"
        return None

    rc, out = run_telecared(conf_db, gone_wrong=db_clobbered)
    if rc is None:
        problems.append(out[:300])
    elif rc == 0 or not d.db.exists() or not stat.S_ISREG(os.stat(d.db).st_mode):
        problems.append(f"[control] socket = the database path: exit {rc}, database a regular "
                        f"file: {d.db.exists() and stat.S_ISREG(os.stat(d.db).st_mode)}; "
                        f"output: {out[-800:]!r}")
    else:
        tables = sqlite3.connect(f"file:{d.db}?mode=ro", uri=True).execute(
            "SELECT count(*) FROM sqlite_master").fetchone()[0]
        assert tables == residents_before

    # --check-config says so for both
    for conf, path in ((conf_file, precious), (conf_db, d.db)):
        rc, out = exits(conf, "--check-config")
        if rc == 0 or str(path) not in out:
            problems.append(f"--check-config with [control] socket = {path} exited {rc}: "
                            f"{out.strip()[-500:]!r}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# webhooks: each failed try is a row when it fails


class HangingServer:
    """Accepts HTTP connections, reads, never answers (until closed)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = []          # monotonic time of each connection
        self.conns = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self.conns.append(c)

    def close(self):
        self._stop.set()
        self._t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def hanging():
    s = HangingServer()
    yield s
    s.close()


def test_a_hanging_webhook_try_is_recorded_when_it_fails(daemon, mqtt, hanging):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 10m"))
    d.add_resident("r-1", "Anna Kowalska")
    d.add_device("p-1", "r-1")
    rc, _, err = d.ctl("worker", "add", "w-h", "--name", "Hook Worker",
                       "--webhook", f"http://127.0.0.1:{hanging.port}/alert")
    assert rc == 0, err
    assert d.ctl("shift", "add", "w-h", "--always")[0] == 0
    r, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    alarm = r["alarm"]
    mqtt.wait_for(alert_topic("w-h"), lambda m: m.json()["alarm"] == alarm)
    wait_until(lambda: hanging.accepted, 10, "the webhook's first try")
    t1 = hanging.accepted[0]
    try_1 = re.compile(r"\btry\s*#?\s*1\b|\b1(st)?\s+try\b", re.I)

    def failed_rows():
        return [e for e in d.ctl_json("alarm", "show", alarm)["timeline"]
                if e["what"] == "delivery_failed"]

    deadline = t1 + 10          # the try times out after 5 s; the third try starts at ~13 s
    found = None
    while time.monotonic() < deadline and not found:
        found = [e for e in failed_rows() if try_1.search(e["detail"] or "")]
        time.sleep(0.2)
    tries = len(hanging.accepted)
    assert found, (f"no delivery_failed row naming try 1 within {time.monotonic() - t1:.1f}s of the "
                   f"first try ({tries} tries so far; rows: {failed_rows()})")
    assert tries < 3, f"the try-1 row came only after the third try began ({tries} tries)"
    assert "w-h" in found[0]["detail"], found


# --------------------------------------------------------------------------
# text: 400 x "ą"


LONG = "ą" * 400          # 800 bytes of UTF-8: longer than any fixed buffer on the way


def test_long_multibyte_text_survives_every_row_and_answer(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 10m"))
    d.add_resident("r-1", "Anna Kowalska")
    d.add_device("p-1", "r-1")
    d.add_device("p-2", "r-1")
    # texts and ids of both parities: a cut at a fixed byte count falls inside
    # a character for one of them, whatever the buffer's size
    for w, name in (("w-l", LONG), ("w-lo", "A" + LONG), ("w-b", "Beata Nowak")):
        rc, out, err = ctl_bytes(d, "worker", "add", w, "--name", name)
        assert rc == 0, utf8(err, "stderr")
        assert d.ctl("shift", "add", w, "--always")[0] == 0
    problems = []

    r, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    a = r["alarm"]
    r, _ = mqtt.event("p-2", {"id": "e-1", "type": "panic"})
    b = r["alarm"]
    for w in ("w-l", "w-lo", "w-b"):
        for alarm in (a, b):
            mqtt.wait_for(alert_topic(w), lambda m: m.json()["alarm"] == alarm)
    # A acked by w-l over MQTT, B by w-lo with telecarectl
    assert action(mqtt, "w-l", {"alarm": a, "action": "ack"})["ok"] is True
    rc, out, err = ctl_bytes(d, "alarm", "ack", b, "--as", "w-lo")
    utf8(out, "telecarectl alarm ack stdout")
    if rc != 0:
        problems.append(f"telecarectl alarm ack {b} --as w-lo exited {rc}: "
                        f"{utf8(err, 'stderr')[-300:]!r}")
    # w-b is refused both, with the holder's long name in the reason
    for alarm in (a, b):
        res = action(mqtt, "w-b", {"alarm": alarm, "action": "ack"})
        if res.get("ok") is not False or "ą" not in res.get("error", ""):
            problems.append(f"w-b's ack over MQTT of alarm {alarm}, held by a long name: {res}")
        rc, out, err = ctl_bytes(d, "alarm", "ack", alarm, "--as", "w-b")
        err_text = utf8(err, "telecarectl alarm ack stderr")
        if rc != 1 or "ą" not in err_text:
            problems.append(f"telecarectl alarm ack {alarm} --as w-b (held by a long name) exited "
                            f"{rc} (want 1 naming who holds it): {err_text[-300:]!r}")
    # resolved with a long note: over MQTT, and with telecarectl
    res = action(mqtt, "w-l", {"alarm": a, "action": "resolve", "outcome": "visit", "note": LONG})
    assert res.get("ok") is True, res
    rc, out, err = ctl_bytes(d, "alarm", "resolve", b, "--as", "w-lo", "--outcome", "police",
                             "--note", LONG)
    utf8(out, "telecarectl alarm resolve stdout")
    if rc != 0:
        problems.append(f"telecarectl alarm resolve {b} with a long note exited {rc}: "
                        f"{utf8(err, 'stderr')[-300:]!r}")

    # every timeline row there, whole characters only
    for alarm in (a, b):
        rc, out, err = ctl_bytes(d, "--json", "alarm", "show", alarm)
        assert rc == 0, utf8(err, "stderr")
        shown = json.loads(utf8(out, f"alarm show {alarm}"))
        tl = shown["timeline"]
        whats = [e["what"] for e in tl]
        for e in tl:
            for k in ("actor", "detail"):
                if e.get(k) and "\ufffd" in e[k]:
                    problems.append(f"alarm {alarm}: a {e['what']} row has a broken character: {e}")
        alerted = {w for w in ("w-l", "w-lo", "w-b")
                   if any(e["what"] == "alerted" and w in re.findall(r"[\w-]+", e["detail"] or "")
                          for e in tl)}
        if alerted != {"w-l", "w-lo", "w-b"}:
            problems.append(f"alarm {alarm}: 'alerted' rows for {sorted(alerted)} only (3 workers "
                            f"were alerted; rows: {whats})")
        if "acknowledged" not in whats:
            problems.append(f"alarm {alarm}: no 'acknowledged' row ({whats})")
        if not any(e["what"] == "resolved" and "ą" * 50 in (e["detail"] or "") for e in tl):
            problems.append(f"alarm {alarm}: no 'resolved' row with the note ({whats})")

    # errors that quote long multibyte input: one whole answer each
    for req in ({"cmd": "resident.add", "args": {"id": "r-x", "name": "X", "team": LONG}},
                {"cmd": "resident.add", "args": {"id": "r-xy", "name": "X", "team": LONG}},
                {"cmd": "worker.add", "args": {"id": "w-x", "name": "X", "team": LONG}},
                {"cmd": "worker.add", "args": {"id": "w-xy", "name": "X", "team": LONG}},
                {"cmd": "resident.show", "args": {"id": LONG}}):
        raw = control(d.socket, req)
        if raw is None:
            problems.append(f"{req['cmd']} {list(req['args'])}: the connection closed without an "
                            f"answer")
            continue
        try:
            answer = json.loads(utf8(raw, f"the answer to {req['cmd']}"))
        except (AssertionError, ValueError) as e:
            problems.append(f"{req['cmd']}: {e}")
            continue
        if answer.get("ok") is not False or not answer.get("error"):
            problems.append(f"{req['cmd']} with a long multibyte value answered {answer}")
    assert d.ctl("status")[0] == 0
    assert not problems, "\n".join(problems)
