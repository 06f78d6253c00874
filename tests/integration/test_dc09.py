"""The SIA DC-09 receiver (SPEC 2.8): a sender written from the standard
(dc09lib.py) talks to the real telecared over TCP and UDP on 127.0.0.1; the
events are looked for in the real SQLite file and through telecarectl."""
import os
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

import dc09lib as dc
from conftest import TELECARED, free_port, wait_until

KEY = bytes(range(16))                       # 000102...0f
KEY256 = b"0123456789abcdef0123456789abcdef"  # as "ascii:" in the keys file


def free_port_both():
    """A port free for TCP and UDP alike."""
    for _ in range(50):
        p = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise AssertionError("no port free for both TCP and UDP")


def source(port, keys=None, extra=""):
    lines = ["", "[source panels]", "format = sia-dc09", f"listen = 127.0.0.1:{port}"]
    if keys:
        lines.append(f"keys = {keys}")
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def rx(daemon, tmp_path):
    """A daemon with a DC-09 source, a resident and four panels registered."""
    port = free_port_both()
    keys = tmp_path / "dc09.keys"
    dc.write_keys(keys, ["# account key", f"ABCD {KEY.hex()}", f"C0FFEE ascii:{KEY256.decode()}"])
    d = daemon(overrides={"supervision": {"grace": "1s"}},
               extra_lines=source(port, keys, "rule = cid=1102 -> fall\n"))
    d.port = port
    d.keys = keys
    d.add_resident("r-1", "Anna Kowalska")
    for dev, acct in (("panel-1", "1234"), ("panel-2", "5678"), ("panel-enc", "ABCD"),
                      ("panel-256", "C0FFEE")):
        d.add_device(dev, "r-1", "--source", "panels", "--address", acct)
    return d


def events(d, device):
    return d.query("SELECT eid, type, alarm_id, payload FROM events WHERE device_id = ? ORDER BY seq",
                   (device,))


def open_alarm(d, device):
    rows = d.query("SELECT id, types, state, technical, loc FROM alarms WHERE device_id = ?"
                   " AND state != 'resolved'", (device,))
    return rows[0] if rows else None


def check_ack(r, seq, account, receiver="1", prefix="0", encrypted=False):
    assert r.kind == "ACK", r
    assert (r.seq, r.account, r.receiver, r.prefix, r.encrypted) == \
        (seq, account, receiver, prefix, encrypted), r
    assert r.ts is not None and abs(r.time - time.time()) < 30, f"no receiver time in {r}"


def test_sia_qa_and_cid_1101_open_panic_alarms_and_are_acked(rx):
    t = dc.Tcp(rx.port)
    u = dc.Udp(rx.port)
    try:
        r = t.ask(dc.sia(42, "1234", "Nri1/QA001^Living room^"))
        check_ack(r, 42, "1234")
        r = u.ask(dc.cid(9999, "5678", "1101", "01", "015", receiver="R12AB", prefix="L3F"))
        check_ack(r, 9999, "5678", receiver="12AB", prefix="3F")
    finally:
        t.close()
        u.close()
    for dev, want in (("panel-1", "panic"), ("panel-2", "panic")):
        ev = events(rx, dev)
        assert [e["type"] for e in ev] == [want], ev
        a = open_alarm(rx, dev)
        assert a and a["types"] == '["panic"]' and ev[0]["alarm_id"] == a["id"], (a, ev)
    e = events(rx, "panel-1")[0]
    assert e["eid"].startswith('"1234/0042/') and e["eid"].endswith('/0"'), e
    assert '"text":"Living room"' in e["payload"] and '"sia":"QA"' in e["payload"], e
    assert '"cid":"1101"' in events(rx, "panel-2")[0]["payload"]


def test_ack_only_after_the_commit(rx):
    """The database held locked by another connection: the message is not
    stored and not ACKed; released, the event is committed and then ACKed."""
    lock = sqlite3.connect(str(rx.db), timeout=10, isolation_level=None)
    t = dc.Tcp(rx.port)
    try:
        lock.execute("BEGIN IMMEDIATE")
        t.send(dc.sia(7, "1234", "NQA002"))
        assert t.nothing_for(3.0), "an ACK while the event could not be written"
        assert events(rx, "panel-1") == []
        lock.execute("ROLLBACK")
        r = t.reply(timeout=15)
        check_ack(r, 7, "1234")
        assert [e["type"] for e in events(rx, "panel-1")] == ["panic"]
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
        t.close()


def test_replies_keep_the_order_of_the_messages(rx):
    """A NAK for a later frame waits behind the ACK of an earlier one."""
    lock = sqlite3.connect(str(rx.db), timeout=10, isolation_level=None)
    t = dc.Tcp(rx.port)
    try:
        lock.execute("BEGIN IMMEDIATE")
        good = dc.sia(11, "1234", "NQA003")
        bad = dc.sia(12, "1234", "NQA004", crc=0x0001)
        t.send(good + bad + dc.null(13, "1234"))
        assert t.nothing_for(2.5), "a reply overtook the ACK that waits for the commit"
        lock.execute("ROLLBACK")
        got = [t.reply(15), t.reply(15), t.reply(15)]
        assert [(r.kind, r.seq) for r in got] == [("ACK", 11), ("NAK", 0), ("ACK", 13)], got
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
        t.close()


def test_pipelined_messages_are_all_answered_in_order(rx):
    """More messages at once than a connection has reply slots (8): reading
    pauses and resumes; every message is answered, in order."""
    t = dc.Tcp(rx.port)
    try:
        burst = b"".join(dc.sia(seq, "1234", f"Nri1/RP{seq:03d}") if seq % 3 else
                         dc.null(seq, "1234") for seq in range(1, 61))
        t.send(burst + dc.sia(61, "1234", "NQA001", crc=0x0001))
        got = [t.reply(20) for _ in range(61)]
        assert [r.seq for r in got[:60]] == list(range(1, 61)), [r.seq for r in got]
        assert all(r.kind == "ACK" for r in got[:60]) and got[60].kind == "NAK", got[-3:]
    finally:
        t.close()
    assert len(events(rx, "panel-1")) == 40


def test_bad_crc_length_and_format_get_a_nak_with_the_receivers_time(rx):
    t = dc.Tcp(rx.port)
    u = dc.Udp(rx.port)
    try:
        for r in (t.ask(dc.sia(1, "1234", "NQA001", crc=0xBEEF)),
                  t.ask(dc.sia(2, "1234", "NQA001", length=5)),
                  t.ask(dc.frame(b'"SIA-DCS"0003R1L0#12[#12|NQA001]')),
                  u.ask(dc.sia(4, "1234", "NQA001", crc=0x1234)),
                  u.ask(b"hello\r")):
            assert r.kind == "NAK" and (r.seq, r.receiver, r.prefix) == (0, "0", "0"), r
            assert b'"NAK"0000R0L0A0[]_' in r.raw, r
            assert r.ts and abs(r.time - time.time()) < 30, r
        # a frame that never ends: NAK once 1024 bytes passed without a CR
        r = t.ask(b"\n" + b"A" * 1100)
        assert r.kind == "NAK", r
        # the connection still works
        check_ack(t.ask(dc.null(5, "1234")), 5, "1234")
    finally:
        t.close()
        u.close()
    assert events(rx, "panel-1") == []
    st = rx.ctl_json("status")["dc09"]["panels"]
    assert st["replies"]["NAK"]["crc"] == 2 and st["replies"]["NAK"]["length"] == 2, st
    assert st["replies"]["NAK"]["format"] == 2, st


def test_timestamps_outside_the_window_get_a_nak(rx):
    t = dc.Tcp(rx.port)
    try:
        old = dc.timestamp(time.time() - 300)
        r = t.ask(dc.sia(21, "1234", "NQA001", ts=old))
        assert r.kind == "NAK" and r.ts and abs(r.time - time.time()) < 30, r
        ahead = dc.timestamp(time.time() + 120)
        assert t.ask(dc.cid(22, "1234", "1101", ts=ahead)).kind == "NAK"
        # within the window, and without a timestamp at all: accepted
        check_ack(t.ask(dc.sia(23, "1234", "NQA001", ts=dc.timestamp(time.time() - 20))), 23, "1234")
        check_ack(t.ask(dc.sia(24, "1234", "NQA001", ts="")), 24, "1234")
    finally:
        t.close()
    assert len(events(rx, "panel-1")) == 2
    assert rx.ctl_json("status")["dc09"]["panels"]["replies"]["NAK"]["time"] == 2


def test_unknown_id_gets_duh(rx):
    t = dc.Tcp(rx.port)
    try:
        r = t.ask(dc.message("FOO-BAR", 31, "1234", "#1234|Nwhatever"))
        assert (r.kind, r.seq, r.account, r.encrypted) == ("DUH", 31, "1234", False), r
        assert r.ts, r
    finally:
        t.close()
    assert events(rx, "panel-1") == []
    assert rx.ctl_json("status")["dc09"]["panels"]["replies"]["DUH"]["id"] == 1


def test_encrypted_messages(rx):
    t = dc.Tcp(rx.port)
    try:
        r = t.ask(dc.sia(51, "ABCD", "Nri1/QA001", key=KEY), key=KEY)
        check_ack(r, 51, "ABCD", encrypted=True)
        assert r.content.startswith("]_"), r.content
        r = t.ask(dc.cid(52, "C0FFEE", "1101", key=KEY256), key=KEY256)
        check_ack(r, 52, "C0FFEE", encrypted=True)
        # the wrong key, a key for an account without one, plain text for a keyed account
        assert t.ask(dc.sia(53, "ABCD", "NQA001", key=bytes(range(1, 17)))).kind == "NAK"
        assert t.ask(dc.sia(54, "1234", "NQA001", key=KEY)).kind == "NAK"
        assert t.ask(dc.sia(55, "ABCD", "NQA001")).kind == "NAK"
        # NULL is encrypted too for a keyed panel
        check_ack(t.ask(dc.null(56, "ABCD", key=KEY), key=KEY), 56, "ABCD", encrypted=True)
    finally:
        t.close()
    assert [e["type"] for e in events(rx, "panel-enc")] == ["panic"]
    assert [e["type"] for e in events(rx, "panel-256")] == ["panic"]
    nak = rx.ctl_json("status")["dc09"]["panels"]["replies"]["NAK"]
    assert (nak["decrypt"], nak["key"]) == (1, 2), nak
    log = open(rx.log, encoding="utf-8", errors="replace").read()
    assert KEY.hex() not in log.lower() and KEY256.decode() not in log, "a key in the log"


def test_the_same_message_resent_is_stored_once_and_acked_again(rx):
    msg = dc.sia(61, "1234", "Nri1/QA001/FA002")
    t = dc.Tcp(rx.port)
    u = dc.Udp(rx.port)
    try:
        for r in (t.ask(msg), t.ask(msg), u.ask(msg)):
            check_ack(r, 61, "1234")
    finally:
        t.close()
        u.close()
    ev = events(rx, "panel-1")
    assert [e["type"] for e in ev] == ["panic", "smoke"], ev
    # the same sequence number with another timestamp is another message
    t = dc.Tcp(rx.port)
    try:
        check_ack(t.ask(dc.sia(61, "1234", "Nri1/QA001/FA002", ts=dc.timestamp(time.time() - 5))),
                  61, "1234")
    finally:
        t.close()
    assert len(events(rx, "panel-1")) == 4
    st = rx.ctl_json("status")["dc09"]["panels"]["messages"]
    assert st["duplicates"] == 4, st


def test_resend_without_timestamp_is_a_duplicate(rx):
    msg = dc.cid(71, "1234", "1101", ts="")
    t = dc.Tcp(rx.port)
    try:
        check_ack(t.ask(msg), 71, "1234")
        check_ack(t.ask(msg), 71, "1234")
        # the sequence number again with other content: another message
        check_ack(t.ask(dc.cid(71, "1234", "1110", ts="")), 71, "1234")
    finally:
        t.close()
    assert [e["type"] for e in events(rx, "panel-1")] == ["panic", "smoke"]


def test_ac_loss_and_restore_open_and_resolve_power_loss(rx):
    t = dc.Tcp(rx.port)
    try:
        check_ack(t.ask(dc.cid(81, "5678", "1301", "00", "000")), 81, "5678")
        a = wait_until(lambda: open_alarm(rx, "panel-2"), 10, "a power_loss alarm")
        assert a["types"] == '["power_loss"]' and a["technical"] == 1, a
        check_ack(t.ask(dc.cid(82, "5678", "3301", "00", "000")), 82, "5678")
    finally:
        t.close()
    wait_until(lambda: open_alarm(rx, "panel-2") is None, 10, "power_loss resolved")
    row = rx.query("SELECT state, outcome FROM alarms WHERE id = ?", (a["id"],))[0]
    assert row == {"state": "resolved", "outcome": "restored"}, row
    assert [e["type"] for e in events(rx, "panel-2")] == ["power_loss", "power_restored"]
    # SIA: AT, then AR
    t = dc.Tcp(rx.port)
    try:
        check_ack(t.ask(dc.sia(83, "1234", "NAT")), 83, "1234")
        wait_until(lambda: open_alarm(rx, "panel-1"), 10, "power_loss from AT")
        check_ack(t.ask(dc.sia(84, "1234", "NAR")), 84, "1234")
    finally:
        t.close()
    wait_until(lambda: open_alarm(rx, "panel-1") is None, 10, "power_loss resolved by AR")


def test_rule_and_position(rx):
    t = dc.Tcp(rx.port)
    try:
        check_ack(t.ask(dc.cid(91, "1234", "1102")), 91, "1234")
        check_ack(t.ask(dc.sia(92, "5678", "NQA001", xdata="[X019E57.1234][Y50N03.7020]")),
                  92, "5678")
    finally:
        t.close()
    assert [e["type"] for e in events(rx, "panel-1")] == ["fall"]
    a = open_alarm(rx, "panel-2")
    import json
    loc = json.loads(a["loc"])
    assert abs(loc["lat"] - 50.0617) < 0.001 and abs(loc["lon"] - 19.95206) < 0.001, loc


def test_null_polls_keep_a_device_supervised(rx):
    rx.add_device("polled", "r-1", "--source", "panels", "--address", "90A", "--heartbeat", "2s")
    t = dc.Tcp(rx.port)
    try:
        for seq in range(1, 9):       # 4 s of polls every 0.5 s: never silent
            check_ack(t.ask(dc.null(seq, "90A")), seq, "90A")
            time.sleep(0.5)
        assert open_alarm(rx, "polled") is None, open_alarm(rx, "polled")
        show = rx.ctl_json("device", "show", "polled")
        assert show["last_poll"] and show["supervision"] == "ok", show
        rc, out, _ = rx.ctl("device", "show", "polled")
        assert rc == 0 and "last poll:" in out, out
        assert events(rx, "polled") == [], "a NULL poll stored an event"
        # the polls stop: heartbeat 2 s + grace 1 s
        a = wait_until(lambda: open_alarm(rx, "polled"), 15, "connection_lost")
        assert a["types"] == '["connection_lost"]', a
        check_ack(t.ask(dc.null(9, "90A")), 9, "90A")
    finally:
        t.close()
    wait_until(lambda: open_alarm(rx, "polled") is None, 10, "connection restored by a poll")
    st = rx.ctl_json("status")["dc09"]["panels"]
    assert st["messages"]["polls"] == 9 and st["polling_devices"] == 1, st


def test_unregistered_accounts_and_unmapped_codes_are_kept_and_acked(rx):
    t = dc.Tcp(rx.port)
    u = dc.Udp(rx.port)
    try:
        check_ack(t.ask(dc.sia(101, "7777", "Nri1/QA001")), 101, "7777")
        check_ack(u.ask(dc.sia(101, "7777", "Nri1/QA001")), 101, "7777")   # resent: once
        check_ack(t.ask(dc.null(102, "7777")), 102, "7777")
        check_ack(t.ask(dc.sia(103, "1234", "Nri1/BA003/OP001")), 103, "1234")
    finally:
        t.close()
        u.close()
    rows = rx.query("SELECT address, device_id, reason, topic FROM unmapped WHERE source = 'panels'"
                    " ORDER BY seq")
    assert [(r["address"], r["device_id"]) for r in rows] == \
        [("7777", None), ("7777", None), ("1234", "panel-1")], rows
    assert rows[0]["reason"] == "no device registered for account 7777", rows
    assert "link test" in rows[1]["reason"], rows
    assert "SIA BA zone 003" in rows[2]["reason"] and "SIA OP" in rows[2]["reason"], rows
    assert rx.query("SELECT count(*) AS n FROM events")[0]["n"] == 0
    assert rx.query("SELECT count(*) AS n FROM alarms")[0]["n"] == 0
    rc, out, err = rx.ctl("device", "unmapped")
    assert rc == 0 and "7777" in out and "no device registered" in out, out + err
    # panel-1 was heard by its unmapped message
    assert rx.ctl_json("device", "show", "panel-1")["last_seen"]


def test_status_shows_the_receiver(rx):
    t = dc.Tcp(rx.port)
    try:
        check_ack(t.ask(dc.null(1, "1234")), 1, "1234")
        st = rx.ctl_json("status")["dc09"]["panels"]
        assert st["connections"]["open"] == 1 and st["connections"]["accepted"] == 1, st
        assert st["keys"] == 2 and st["listen"] == f"127.0.0.1:{rx.port}", st
        rc, out, _ = rx.ctl("status")
        assert rc == 0 and "dc09 panels" in out and "ACK 1" in out, out
    finally:
        t.close()


def test_connection_bound_and_idle_timeout(daemon):
    port = free_port_both()
    d = daemon(extra_lines=source(port, extra="max_connections = 2\nidle_timeout = 2s\n"))
    a, b = dc.Tcp(port), dc.Tcp(port)
    try:
        check_ack(a.ask(dc.null(1, "111")), 1, "111")
        check_ack(b.ask(dc.null(1, "222")), 1, "222")
        c = dc.Tcp(port)
        try:
            assert c.closed_by_peer(10), "a third connection was kept"
        finally:
            c.close()
        st = d.ctl_json("status")["dc09"]["panels"]["connections"]
        assert (st["open"], st["refused"]) == (2, 1), st
        # a connection that keeps talking stays; a silent one goes after 2 s
        t0 = time.monotonic()
        for seq in range(2, 8):
            check_ack(a.ask(dc.null(seq, "111")), seq, "111")
            time.sleep(0.5)
        assert b.closed_by_peer(10), "an idle connection was not closed"
        assert time.monotonic() - t0 >= 1.5
        check_ack(a.ask(dc.null(9, "111")), 9, "111")
    finally:
        a.close()
        b.close()
    wait_until(lambda: d.ctl_json("status")["dc09"]["panels"]["connections"]["idle_closed"] >= 1,
               10, "idle_closed counted")


def test_sighup_reads_the_keys_file_again(rx):
    import signal
    key2 = bytes(range(32, 48))
    rx.add_device("panel-new", "r-1", "--source", "panels", "--address", "BEEF")
    t = dc.Tcp(rx.port)
    try:
        assert t.ask(dc.sia(1, "BEEF", "NQA001", key=key2)).kind == "NAK"   # no key yet
        dc.write_keys(rx.keys, [f"ABCD {KEY.hex()}", f"C0FFEE ascii:{KEY256.decode()}",
                                f"BEEF {key2.hex()}"])
        rx.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload: source panels: 3 account keys" in open(rx.log).read(), 15,
                   "the keys read again")
        check_ack(t.ask(dc.sia(2, "BEEF", "NQA001", key=key2), key=key2), 2, "BEEF", encrypted=True)
        # a keys file gone wrong: logged, the keys read before stay
        os.chmod(rx.keys, 0o644)
        rx.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "the keys read before stay in use" in open(rx.log).read(), 15,
                   "the reload refused")
        check_ack(t.ask(dc.sia(3, "BEEF", "NQA001", key=key2), key=key2), 3, "BEEF", encrypted=True)
    finally:
        t.close()
    log = open(rx.log).read().lower()
    assert key2.hex() not in log and KEY.hex() not in log


def test_keys_file_readable_by_others_is_refused(daemon, tmp_path):
    port = free_port_both()
    keys = tmp_path / "open.keys"
    dc.write_keys(keys, [f"ABCD {KEY.hex()}"], mode=0o644)
    d = daemon(extra_lines=source(port, keys), start=False)
    p = subprocess.run([TELECARED, "-c", str(d.conf), "--check-config"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 1 and str(keys) in p.stderr and "readable by others" in p.stderr, p
    assert KEY.hex() not in p.stderr
    p = subprocess.run([TELECARED, "-c", str(d.conf)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and str(keys) in p.stderr, p.stderr[-2000:]
    os.chmod(keys, 0o640)
    p = subprocess.run([TELECARED, "-c", str(d.conf), "--check-config"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stderr


def test_a_listen_address_in_use_is_an_error_at_start(daemon):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        d = daemon(extra_lines=source(port), start=False)
        p = subprocess.run([TELECARED, "-c", str(d.conf)], capture_output=True, text=True,
                           timeout=20)
        assert p.returncode == 1, p.stderr[-2000:]
        assert f"cannot listen on 127.0.0.1:{port}" in p.stderr, p.stderr[-2000:]
    finally:
        busy.close()


@pytest.mark.parametrize("extra,error", [
    ("[source p]\nformat = sia-dc09\n", "needs listen"),
    ("[source p]\nformat = sia-dc09\nlisten = 127.0.0.1:1\ntopic = x/#\n", "topic is for MQTT"),
    ("[source p]\nformat = zigbee2mqtt\nlisten = 127.0.0.1:1\n", "are for format sia-dc09"),
    ("[source p]\nformat = sia-dc09\nlisten = localhost:1\n", "listen must be ADDRESS:PORT"),
    ("[source p]\nformat = sia-dc09\nlisten = 127.0.0.1:1\ntime_window = soon\n", "time_window"),
    ("[source p]\nrule = cid=2102 -> fall\nformat = sia-dc09\nlisten = 127.0.0.1:1\n",
     ":2: rule \"cid=2102 -> fall\""),
    ("[source p]\nformat = sia-dc09\nlisten = 127.0.0.1:1\nmax_connections = 0\n",
     "max_connections"),
])
def test_config_errors(daemon, extra, error):
    d = daemon(start=False)
    text = d.conf.read_text()
    d.conf.write_text(text + "\n" + extra)
    first = len(text.splitlines()) + 1
    p = subprocess.run([TELECARED, "-c", str(d.conf), "--check-config"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 1, p
    want = error.replace(":2:", f":{first + 2}:")
    assert want in p.stderr, p.stderr


def test_many_panels_at_once(rx):
    """Forty connections and UDP senders in threads, each waiting for its ACKs."""
    errors = []

    def panel(k):
        try:
            acct = "1234" if k % 2 else "5678"
            conn = dc.Tcp(rx.port) if k % 4 else dc.Udp(rx.port)
            try:
                for seq in range(1, 6):
                    msg = dc.null(k * 10 + seq, acct) if seq % 2 else \
                        dc.sia(k * 10 + seq, acct, f"Nri1/RP{k:03d}")
                    r = conn.ask(msg, timeout=30)
                    assert r.kind == "ACK" and r.seq == k * 10 + seq, r
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(f"panel {k}: {e!r}")

    threads = [threading.Thread(target=panel, args=(k,)) for k in range(40)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors[:5]
    n = rx.query("SELECT count(*) AS n FROM events WHERE type = 'heartbeat'")[0]["n"]
    assert n == 40 * 2, n


def test_a_panel_is_registered_by_its_account_and_nothing_else(rx):
    """device add checks the address of a DC-09 source is an account (3-16
    hex digits), so a typo is said at once, not found when the panel calls."""
    d = rx
    d.add_resident("r-2", "Jan")
    for bad in ("12", "1234567890ABCDEF0", "12G4", "#1234", "12 34"):
        rc, _, err = d.ctl("device", "add", "p-bad", "--resident", "r-2", "--source", "panels",
                           "--address", bad)
        assert rc == 1 and "3-16 hex digits" in err, (bad, rc, err)
    rc, _, err = d.ctl("device", "add", "p-good", "--resident", "r-2", "--source", "panels",
                       "--address", "00ABcd")
    assert rc == 0, err
