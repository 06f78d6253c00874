"""Journal fields (issue 5): under systemd every alarm-related log line carries
TELECARE_ALARM=, TELECARE_DEVICE=, TELECARE_WORKER=, so that
`journalctl TELECARE_ALARM=42` tells one alarm's story.

There is no journald here, but libsystemd only needs a datagram socket at
/run/systemd/journal/socket: the daemon runs in a private mount namespace
(unshare, needs root) where the test's own socket is bind-mounted there, with
JOURNAL_STREAM naming its stderr as systemd would."""
import os
import shutil
import socket
import subprocess

import pytest

from conftest import PREFIX, TELECARED, wait_until


def parse(datagram):
    """The journal's native protocol: KEY=VALUE lines (binary values, which
    the daemon's short fields never need, are not expected)."""
    fields = {}
    for line in datagram.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}


@pytest.fixture
def journal(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.fail("this test needs root and unshare(1) (util-linux) for a private mount namespace")
    d = tmp_path / "journal"
    d.mkdir()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(d / "socket"))
    s.settimeout(0.2)
    yield d, s
    s.close()


def test_alarm_lines_carry_journal_fields(daemon, mqtt, journal, tmp_path):
    jdir, sock = journal
    d = daemon(start=False)
    os.makedirs("/run/systemd/journal", exist_ok=True)   # the mount point, outside the namespace
    script = (f'mount --bind "{jdir}" /run/systemd/journal && '
              'export JOURNAL_STREAM="$(stat -L -c %d:%i /proc/self/fd/2)" && '
              f'exec "{TELECARED}" -c "{d.conf}"')
    log = open(d.log, "ab")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        d.proc = proc
        d._logf = log
        d.wait_ready()
        d.add_resident("r-1")
        d.add_device("p-1", "r-1")
        rc, _, err = d.ctl("worker", "add", "w-1", "--name", "Jan")
        assert rc == 0, err
        rc, _, err = d.ctl("shift", "add", "w-1", "--always")   # alerted, so it may act (SPEC 2.5)
        assert rc == 0, err
        mqtt.wait_for(f"{PREFIX}/gateway/status", lambda m: m.payload == b"online")
        receipt, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
        alarm = receipt["alarm"]
        mqtt.publish(f"{PREFIX}/worker/w-1/action", {"alarm": alarm, "action": "ack"})
        mqtt.publish(f"{PREFIX}/worker/w-1/action", {"alarm": alarm, "action": "resolve",
                                                     "outcome": "visit"})

        entries = []

        def resolved_seen():
            try:
                while True:
                    entries.append(parse(sock.recv(65536)))
            except socket.timeout:
                pass
            return any("resolved" in e.get("MESSAGE", "") for e in entries)
        wait_until(resolved_seen, 15, "the resolution in the journal")
    finally:
        proc.terminate()
        proc.wait(15)
        d.proc = None

    story = [e for e in entries if e.get("TELECARE_ALARM") == str(alarm)]
    messages = " | ".join(e["MESSAGE"] for e in story)
    for what in ("opened by panic", "acknowledged by Jan", "resolved by w-1"):
        assert what in messages, messages
    assert all(e.get("TELECARE_DEVICE") == "p-1" for e in story if "opened" in e["MESSAGE"])
    assert any(e.get("TELECARE_WORKER") == "w-1" for e in story)
    assert all(e.get("PRIORITY") in {"3", "4", "5", "6"} for e in entries)
    # and nothing went to stderr as plain text
    assert "opened by panic" not in d.log.read_text()
