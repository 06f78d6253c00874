"""telecarectl backup (issue 5): a consistent copy of the live database,
taken while events stream in."""
import sqlite3
import threading
import time

from conftest import PREFIX


def test_backup_under_load_is_consistent(daemon, mqtt, tmp_path):
    d = daemon()
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    stop = threading.Event()
    sent = []

    def stream():
        i = 0
        while not stop.is_set() and i < 20000:
            mqtt.publish(f"{PREFIX}/dev/p-1/event", {"id": i, "type": "heartbeat"})
            sent.append(i)
            i += 1
            if i % 200 == 0:
                time.sleep(0.01)

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    time.sleep(1.0)
    backups = []
    for n in range(3):                       # several, while the stream goes on
        path = tmp_path / f"backup-{n}.db"
        rc, out, err = d.ctl("backup", str(path))
        assert rc == 0, err
        assert "integrity check ok" in out
        backups.append(path)
        time.sleep(0.3)
    stop.set()
    t.join(10)
    assert len(sent) > 1000
    counts = []
    for path in backups:
        con = sqlite3.connect(path)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n, distinct, top = con.execute(
                "SELECT count(*), count(DISTINCT eid), max(seq) FROM events WHERE device_id='p-1'").fetchone()
            assert n == distinct                                  # nothing twice
            assert top == n                                       # no gap: one moment, whole
            assert con.execute("SELECT count(*) FROM residents").fetchone()[0] == 1
            counts.append(n)
        finally:
            con.close()
    assert counts == sorted(counts) and counts[-1] > counts[0], counts   # taken under load
    rc, _, err = d.ctl("backup", str(backups[0]))
    assert rc == 2 and "exists" in err                            # never overwrites
    assert d.ctl("status")[0] == 0
