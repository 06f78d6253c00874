"""Console users (SPEC 6.1, DECISIONS "Actors and roles"): user.add,
user.passwd, user.list, user.remove over the control protocol, as root
(admin). The database holds a yescrypt hash ("$y$...") that verifies the
password with libcrypt itself, never the password; bad names, roles and
passwords are refused; users survive a restart."""
import ctypes
import json
import socket

import pytest

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "Tr0ub4dor&3-ąę"


def libcrypt_crypt(password, setting):
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    return out.decode() if out else None


class Conn:
    """One connection speaking the raw protocol."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(str(path))
        self.f = self.s.makefile("rwb")

    def send(self, cmd, args=None):
        req = {"cmd": cmd}
        if args is not None:
            req["args"] = args
        self.f.write(json.dumps(req).encode() + b"\n")
        self.f.flush()

    def answer(self):
        line = self.f.readline()
        assert line, "the daemon closed the connection"
        return json.loads(line)

    def __call__(self, cmd, args=None):
        self.send(cmd, args)
        return self.answer()

    def close(self):
        self.f.close()
        self.s.close()


@pytest.fixture
def d(daemon):
    return daemon()


@pytest.fixture
def conn(d):
    c = Conn(d.socket)
    yield c
    c.close()


def db_users(d):
    return {r["name"]: r for r in d.query("SELECT * FROM users")}


def all_bytes(d):
    data = b""
    for suffix in ("", "-wal"):
        p = d.db.parent / (d.db.name + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def test_add_passwd_list_remove(d, conn):
    d.ctl("worker", "add", "w-1", "--name", "Jan")
    r = conn("user.add", {"name": "anna", "role": "dispatcher", "password": PASSWORD})
    assert r["ok"], r
    assert r["data"]["name"] == "anna" and r["data"]["role"] == "dispatcher", r
    assert r["data"]["worker"] is None and r["data"]["created_at"], r
    assert "hash" not in r["data"] and "password" not in r["data"], r
    r = conn("user.add", {"name": "jan", "role": "worker", "worker": "w-1", "password": PASSWORD})
    assert r["ok"] and r["data"]["worker"] == "w-1", r

    listed = conn("user.list")
    assert listed["ok"], listed
    assert [(u["name"], u["role"], u["worker"]) for u in listed["data"]] == \
        [("anna", "dispatcher", None), ("jan", "worker", "w-1")], listed
    assert all(set(u) == {"name", "role", "worker", "created_at", "changed_at"}
               for u in listed["data"]), listed

    # committed before the answer: the row is there now, with a hash only
    rows = db_users(d)
    h = rows["anna"]["hash"]
    assert h.startswith("$y$"), h
    assert libcrypt_crypt(PASSWORD, h) == h, "the stored hash does not verify the password"
    assert libcrypt_crypt("wrong password", h) != h
    assert rows["jan"]["hash"] != h, "each hash has its own salt"
    assert rows["anna"]["role"] == "dispatcher" and rows["jan"]["worker_id"] == "w-1"
    assert PASSWORD.encode() not in all_bytes(d), "the password is in the database file"

    old = h
    r = conn("user.passwd", {"name": "anna", "password": NEW_PASSWORD})
    assert r["ok"] and r["data"]["changed_at"], r
    h = db_users(d)["anna"]["hash"]
    assert h.startswith("$y$") and h != old, h
    assert libcrypt_crypt(NEW_PASSWORD, h) == h
    assert libcrypt_crypt(PASSWORD, h) != h, "the old password still works"
    assert NEW_PASSWORD.encode() not in all_bytes(d)

    r = conn("user.remove", {"name": "anna"})
    assert r == {"ok": True, "data": None}, r
    assert [u["name"] for u in conn("user.list")["data"]] == ["jan"]
    row = db_users(d)["anna"]
    assert row["removed_at"] and row["hash"] == "", row

    # never in the log either
    log = d.log.read_text()
    assert PASSWORD not in log and NEW_PASSWORD not in log
    assert "user anna (dispatcher) added by uid 0 (root)" in log, log[-2000:]

    # loaded at start
    d.restart()
    c2 = Conn(d.socket)
    try:
        assert [u["name"] for u in c2("user.list")["data"]] == ["jan"]
        r = c2("user.add", {"name": "anna", "role": "installer", "password": PASSWORD})
        assert r["ok"] and r["data"]["role"] == "installer", r   # a removed name is free again
    finally:
        c2.close()


@pytest.mark.parametrize("args, error", [
    ({"name": "bad name", "role": "admin", "password": PASSWORD}, "invalid user name"),
    ({"name": "x" * 65, "role": "admin", "password": PASSWORD}, "invalid user name"),
    ({"name": "ünï", "role": "admin", "password": PASSWORD}, "invalid user name"),
    ({"name": "", "role": "admin", "password": PASSWORD}, "invalid user name"),
    ({"role": "admin", "password": PASSWORD}, "missing user name"),
    ({"name": "eve", "role": "root", "password": PASSWORD}, "\"root\" is not a role"),
    ({"name": "eve", "role": "", "password": PASSWORD}, "is not a role"),
    ({"name": "eve", "password": PASSWORD}, "missing \"role\""),
    ({"name": "eve", "role": "admin", "password": "short"}, "a password is 8-1024 bytes"),
    ({"name": "eve", "role": "admin", "password": "x" * 1025}, "a password is 8-1024 bytes"),
    # a NUL never gets as far as a command: the request is not accepted JSON
    ({"name": "eve", "role": "admin", "password": "1234567\u0000"}, "one JSON object"),
    ({"name": "eve", "role": "admin", "password": 12345678}, "a password is text"),
    ({"name": "eve", "role": "admin"}, "missing \"password\""),
    ({"name": "eve", "role": "worker", "password": PASSWORD}, "needs --worker"),
    ({"name": "eve", "role": "admin", "worker": "w-none", "password": PASSWORD},
     "worker w-none is not registered"),
])
def test_bad_user_add_refused(d, conn, args, error):
    r = conn("user.add", args)
    assert r["ok"] is False and error in r["error"], r
    assert conn("user.list")["data"] == []
    assert d.query("SELECT count(*) AS n FROM users")[0]["n"] == 0


def test_refusals_on_existing_and_missing(d, conn):
    assert conn("user.add", {"name": "anna", "role": "admin", "password": PASSWORD})["ok"]
    r = conn("user.add", {"name": "anna", "role": "admin", "password": PASSWORD})
    assert not r["ok"] and "user anna already exists" in r["error"], r
    r = conn("user.passwd", {"name": "nobody", "password": PASSWORD})
    assert not r["ok"] and "user nobody does not exist" in r["error"], r
    r = conn("user.passwd", {"name": "anna", "password": "short"})
    assert not r["ok"] and "8-1024" in r["error"], r
    r = conn("user.remove", {"name": "nobody"})
    assert not r["ok"] and "user nobody does not exist" in r["error"], r
    # a client cannot hand in a hash of its own choosing
    r = conn("user.passwd", {"name": "anna", "password": NEW_PASSWORD, "hash": "$y$forged"})
    assert r["ok"], r
    h = db_users(d)["anna"]["hash"]
    assert h != "$y$forged" and libcrypt_crypt(NEW_PASSWORD, h) == h


def test_answers_in_order_while_hashing(d, conn):
    """Hashes run off the loop: requests pipelined behind a user.add are
    answered after it, in order; another client is answered meanwhile."""
    names = [f"u{i}" for i in range(6)]
    for n in names:
        conn.send("user.add", {"name": n, "role": "installer", "password": PASSWORD})
    conn.send("user.list")
    other = Conn(d.socket)
    try:
        assert other("status")["ok"]
    finally:
        other.close()
    answers = [conn.answer() for _ in names]
    assert [a["data"]["name"] for a in answers] == names, answers
    assert [u["name"] for u in conn.answer()["data"]] == names


def test_disconnect_while_hashing(d):
    """A client gone before its answer: nothing crashes; the hash is
    dropped with the request, which therefore changed nothing."""
    c = Conn(d.socket)
    c.send("user.add", {"name": "gone", "role": "admin", "password": PASSWORD})
    c.close()
    conn = Conn(d.socket)
    try:
        assert conn("status")["ok"]
        names = [u["name"] for u in conn("user.list")["data"]]
        assert names in ([], ["gone"]), names   # gone before or after the hash was done
    finally:
        conn.close()
    assert d.proc.poll() is None
