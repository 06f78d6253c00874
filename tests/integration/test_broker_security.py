"""Broker security (SPEC 2, issue 5): a real mosquitto started with the
shipped configuration (config/mosquitto.conf as a conf.d drop-in under a
Debian-like main file), the shipped ACL (config/mosquitto.acl) and logins
made by scripts/broker-credentials.sh; TLS with a CA the test makes with
scripts/make-test-ca.sh; the real telecared logging in with username,
password_file, cafile, certfile and keyfile.

Shown here:
- anonymous clients and wrong passwords are refused;
- a device cannot publish as another device, a worker cannot act as another
  worker (and neither can take the other's role), a device cannot read
  another device's receipt or alarm state nor the board, a console reads the
  board and the gateway's presence and writes nothing;
- the daemon works end to end through that broker, and forged events and
  forged worker actions never reach it;
- a refused login, a broker certificate from the wrong CA and a missing
  client certificate are each a clear log line and a retry, never a crash;
- TLS with a client certificate works end to end, also when the broker comes
  up after the daemon;
- each client id is bound to its login (SPEC 9): a device login connecting
  with the gateway's client id and a persistent session neither disconnects
  the gateway nor takes the events meant for it, and a device login cannot
  take over another device's session. The same tests run on the shipped
  configuration without the binding show the attack they guard against.

"Never arrives" is shown without sleeping: the forbidden message is
published at QoS 1 and its PUBACK awaited (mosquitto answers after routing
it), then a permitted sentinel is published; the subscriber gets messages in
order, so once the sentinel is there the forbidden one is not coming. With
MQTT 3.1.1 mosquitto drops a denied publish silently, so the sentinel is the
only way to know.

Everything listens on 127.0.0.1 only. Broker files live in a private
directory under /tmp (mosquitto started as root drops to its own user, and
pytest's tmp_path is not readable by that user), removed afterwards.
"""
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from conftest import (MSG_TIMEOUT, PREFIX, REPO, START_TIMEOUT, STATUS_TOPIC, Broker, Daemon,
                      MqttClient, free_port, tail, wait_until)

CREDENTIALS = os.path.join(REPO, "scripts", "broker-credentials.sh")
MAKE_CA = os.path.join(REPO, "scripts", "make-test-ca.sh")
SHIPPED_CONF = os.path.join(REPO, "config", "mosquitto.conf")
SHIPPED_ACL = os.path.join(REPO, "config", "mosquitto.acl")

DEVICES = ("p1", "p2")
WORKERS = ("w1", "w2")
CONSOLE = "dispatch"     # config/mosquitto.acl ships a block for console/dispatch


# --------------------------------------------------------------------------
# the broker, from the shipped files


def make_ca(directory):
    p = subprocess.run([MAKE_CA, "-d", "2", str(directory)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"make-test-ca.sh failed ({p.returncode}): {p.stderr}"
    for name in ("ca.crt", "broker.crt", "broker.key", "client.crt", "client.key"):
        assert (directory / name).is_file(), f"make-test-ca.sh wrote no {name}"
    return directory


def credentials(passwd, *args, pw_out=None, stdin=None):
    """Run broker-credentials.sh; returns {username: password} from its output."""
    cmd = [CREDENTIALS, "-f", str(passwd)]
    if pw_out:
        cmd += ["-o", str(pw_out)]
    p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                       input=stdin)
    assert p.returncode == 0, f"broker-credentials.sh {' '.join(args)}: {p.returncode}: {p.stderr}"
    logins = {}
    for line in p.stdout.splitlines():
        user, _, password = line.partition(" ")
        logins[user] = password
    return logins


class SecureBroker(Broker):
    """mosquitto with the shipped drop-in, ACL, logins and a TLS listener.
    .port is the plain loopback listener, .tls_port the TLS one (both on
    127.0.0.1); .logins maps usernames to passwords; .gateway_pw_file is the
    gateway's password file for telecared.conf."""

    def __init__(self, tmp_path, require_certificate=False, bind_client_ids=True):
        super().__init__(tmp_path)     # the log in tmp_path/broker, the port
        self.tls_port = free_port()
        while self.tls_port == self.port:   # two free_port() calls may return the same port
            self.tls_port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="telecare-broker-"))
        os.chmod(self.root, 0o755)
        self.ca = make_ca(self.root / "ca")
        confd = self.root / "conf.d"
        confd.mkdir()
        data = self.root / "data"
        data.mkdir()
        self.passwd = self.root / "telecare.passwd"
        self.acl = self.root / "telecare.acl"
        shutil.copy(SHIPPED_ACL, self.acl)

        self.gateway_pw_file = tmp_path / "gateway.password"
        self.logins = credentials(self.passwd, "gateway", pw_out=self.gateway_pw_file)
        assert self.logins == {}, "with -o the gateway's password goes to the file only"
        self.logins["telecared"] = self.gateway_pw_file.read_text().strip()
        self.logins.update(credentials(self.passwd, "device", *DEVICES))
        self.logins.update(credentials(self.passwd, "worker", *WORKERS))
        # the shipped ACL has console/dispatch's block: -a finds it and adds none
        self.logins.update(credentials(self.passwd, "-a", str(self.acl), "console", CONSOLE))
        expected = {"telecared"} | {f"dev/{d}" for d in DEVICES} | \
            {f"worker/{w}" for w in WORKERS} | {f"console/{CONSOLE}"}
        assert set(self.logins) == expected, self.logins

        text = Path(SHIPPED_CONF).read_text()
        for old, new in (
                ("password_file /etc/mosquitto/telecare.passwd", f"password_file {self.passwd}"),
                ("acl_file /etc/mosquitto/telecare.acl", f"acl_file {self.acl}"),
                ("listener 1883 127.0.0.1", f"listener {self.port} 127.0.0.1"),
                ("listener 8883", f"listener {self.tls_port} 127.0.0.1"),
                ("cafile /etc/mosquitto/ca_certificates/telecare-ca.crt",
                 f"cafile {self.ca / 'ca.crt'}"),
                ("certfile /etc/mosquitto/certs/broker.crt", f"certfile {self.ca / 'broker.crt'}"),
                ("keyfile /etc/mosquitto/certs/broker.key", f"keyfile {self.ca / 'broker.key'}"),
                ("require_certificate false",
                 f"require_certificate {'true' if require_certificate else 'false'}")):
            n = len(re.findall(rf"(?m)^{re.escape(old)}$", text))
            assert n == 1, f"config/mosquitto.conf: expected one line '{old}', found {n}"
            text = re.sub(rf"(?m)^{re.escape(old)}$", new, text)
        # the binding of client ids to logins: on every listener (in
        # mosquitto 2.0 it is a listener option), or, to show what it
        # prevents, nowhere
        listeners = re.findall(r"(?m)^listener .*\n(?:use_username_as_clientid true\n)?", text)
        assert len(listeners) == 2 and all("use_username_as_clientid true" in x
                                           for x in listeners), \
            f"config/mosquitto.conf: each listener must bind client ids to logins: {listeners}"
        if not bind_client_ids:
            text = re.sub(r"(?m)^use_username_as_clientid true\n", "", text)
        (confd / "telecare.conf").write_text(text)
        # Debian's /etc/mosquitto/mosquitto.conf, with the log on stderr
        self.conf = self.root / "mosquitto.conf"
        self.conf.write_text(
            "persistence true\n"
            f"persistence_location {data}/\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            f"include_dir {confd}\n")

        # As on Debian: secrets root:mosquitto 0640, data owned by mosquitto.
        # mosquitto started as root reads them after dropping to that user.
        try:
            mq = pwd.getpwnam("mosquitto")
        except KeyError:
            mq = None
        for f in (self.passwd, self.acl, self.ca / "broker.key"):
            os.chmod(f, 0o640)
            if os.geteuid() == 0 and mq:
                os.chown(f, 0, mq.pw_gid)
        os.chmod(self.ca, 0o755)
        if os.geteuid() == 0 and mq:
            os.chown(data, mq.pw_uid, mq.pw_gid)

    def start(self, timeout=START_TIMEOUT):
        super().start(timeout)

        def tls_accepting():
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(tls_accepting, timeout, f"mosquitto's TLS listener on {self.tls_port}")

    def remove(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self, user, subscriptions=(), tls=False, **kw):
        """A connected MqttClient logged in as user (on the TLS listener
        with tls=True)."""
        c = MqttClient(self.tls_port if tls else self.port, subscriptions=list(subscriptions),
                       client_id=f"pytest-{user.replace('/', '-')}-{uuid.uuid4().hex[:8]}", **kw)
        c.client.username_pw_set(user, self.logins[user])
        if tls:
            c.client.tls_set(ca_certs=str(self.ca / "ca.crt"))
        return c.connect()


@pytest.fixture
def secure_broker_factory(tmp_path, request):
    made = []
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])

    def make(require_certificate=False, start=True, bind_client_ids=True):
        assert not made, "one broker per test (they share tmp_path/broker)"
        b = SecureBroker(tmp_path, require_certificate=require_certificate,
                         bind_client_ids=bind_client_ids)
        made.append(b)
        request.node._telecare_logs.append(("mosquitto", b.log))
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.remove()


@pytest.fixture
def secure_broker(secure_broker_factory):
    return secure_broker_factory()


@pytest.fixture
def clients():
    made = []

    def make(broker, user, subscriptions=(), **kw):
        c = broker.client(user, subscriptions, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def daemons(tmp_path, request):
    """Like conftest's daemon fixture, for a broker of this file."""
    made = []
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])

    def make(broker, mqtt=None, name=None, start=True):
        overrides = {"mqtt": {"username": "telecared",
                              "password_file": str(broker.gateway_pw_file)}}
        overrides["mqtt"].update(mqtt or {})
        d = Daemon(tmp_path, broker, overrides, name=name or f"telecared{len(made) or ''}")
        made.append(d)
        request.node._telecare_logs.append((d.name, d.log))
        if start:
            d.start(wait_online=False)   # the conftest watcher cannot log in
        return d

    yield make
    problems = []
    for d in made:
        problems += d.cleanup()
    if problems:
        pytest.fail("; ".join(problems) + "\n" + "\n".join(
            f"--- {d.name} log ---\n{tail(d.log)}" for d in made), pytrace=False)


def connected(d, want=True, timeout=START_TIMEOUT):
    def check():
        s = d.ctl_json("status")
        return s["mqtt"]["connected"] == want
    wait_until(check, timeout, f"{d.name} mqtt.connected == {want}", interval=0.2,
               alive=d._alive)


def publish_acked(c, topic, payload, timeout=MSG_TIMEOUT):
    """Publish at QoS 1 and wait for the broker's PUBACK: by then the broker
    has routed (or dropped) the message."""
    info = c.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout)
    assert info.is_published(), f"no PUBACK for {topic} within {timeout}s"


def never_arrived(spy, topic, sentinel_topic, after):
    """The spy got the sentinel (published after the forbidden message); the
    forbidden message on topic is therefore never coming."""
    spy.wait_for(sentinel_topic, after=after)
    got = spy.messages(topic, after)
    assert not got, f"forbidden message delivered on {topic}: {got}"


def raw_connect(port, user=None, password=None, timeout=MSG_TIMEOUT):
    """Connect once; return the CONNACK code (0 accepted, 5 not authorised)."""
    result = []
    c = paho.Client(client_id="pytest-raw-" + uuid.uuid4().hex[:8], protocol=paho.MQTTv311)
    if user is not None:
        c.username_pw_set(user, password)
    c.on_connect = lambda client, userdata, flags, rc: result.append(rc)
    c.connect("127.0.0.1", port, keepalive=10)
    deadline = time.monotonic() + timeout
    try:
        while not result and time.monotonic() < deadline:
            c.loop(0.2)
    finally:
        c.disconnect()
    assert result, "no CONNACK"
    return result[0]


def register(d, devices=DEVICES, workers=()):
    d.add_resident("r1", "Anna Kowalska")
    for dev in devices:
        d.add_device(dev, "r1")
    for w in workers:
        rc, _, err = d.ctl("worker", "add", w, "--name", f"Worker {w}")
        assert rc == 0, err
        rc, _, err = d.ctl("shift", "add", w, "--always")
        assert rc == 0, err


# --------------------------------------------------------------------------
# the ACL alone


def test_anonymous_and_wrong_password_refused(secure_broker):
    b = secure_broker
    assert raw_connect(b.port) == 5, "allow_anonymous false: anonymous must be refused"
    assert raw_connect(b.port, "dev/p1", "not-the-password") == 5
    assert raw_connect(b.port, "dev/p9", b.logins["dev/p1"]) == 5, "no such login"
    assert raw_connect(b.port, "dev/p1", b.logins["dev/p1"]) == 0


def test_device_cannot_publish_as_another_device(secure_broker, clients):
    b = secure_broker
    gw = clients(b, "telecared", [PREFIX + "/#"])
    p1 = clients(b, "dev/p1")
    mark = gw.mark()
    publish_acked(p1, f"{PREFIX}/dev/p2/event", {"id": "forged", "type": "panic"})
    publish_acked(p1, f"{PREFIX}/worker/w1/action", {"alarm": 1, "action": "ack"})
    publish_acked(p1, f"{PREFIX}/alarms/1", "")           # clearing the board
    publish_acked(p1, f"{PREFIX}/gateway/status", "online")
    p1.publish(f"{PREFIX}/dev/p1/event", {"id": "own", "type": "heartbeat"})
    own = gw.wait_for(f"{PREFIX}/dev/p1/event", after=mark)
    assert own.json()["id"] == "own"
    for topic in ("dev/p2/event", "worker/w1/action", "alarms/1", "gateway/status"):
        assert not gw.messages(f"{PREFIX}/{topic}", mark), \
            f"dev/p1 could publish on {PREFIX}/{topic}"


def test_worker_cannot_act_as_another_worker(secure_broker, clients):
    b = secure_broker
    gw = clients(b, "telecared", [PREFIX + "/#"])
    w1 = clients(b, "worker/w1")
    mark = gw.mark()
    publish_acked(w1, f"{PREFIX}/worker/w2/action", {"alarm": 1, "action": "ack"})
    publish_acked(w1, f"{PREFIX}/dev/p1/event", {"id": "x", "type": "cancel"})
    publish_acked(w1, f"{PREFIX}/worker/w2/result", {"alarm": 1, "action": "ack", "ok": True})
    w1.publish(f"{PREFIX}/worker/w1/action", {"alarm": 1, "action": "note", "note": "sentinel"})
    gw.wait_for(f"{PREFIX}/worker/w1/action", after=mark)
    for topic in ("worker/w2/action", "dev/p1/event", "worker/w2/result"):
        assert not gw.messages(f"{PREFIX}/{topic}", mark), \
            f"worker/w1 could publish on {PREFIX}/{topic}"


def test_each_reads_only_its_own(secure_broker, clients):
    """Devices read their own receipt and alarm state only; workers their own
    alert and result; consoles the board and presence, and write nothing."""
    b = secure_broker
    others = [f"{PREFIX}/dev/p2/receipt", f"{PREFIX}/dev/p2/alarm", f"{PREFIX}/alarms/7",
              f"{PREFIX}/worker/w2/alert", f"{PREFIX}/worker/w2/result",
              f"{PREFIX}/dev/p2/event", f"{PREFIX}/worker/w2/action", STATUS_TOPIC]
    own = {"dev/p1": [f"{PREFIX}/dev/p1/receipt", f"{PREFIX}/dev/p1/alarm"],
           "worker/w1": [f"{PREFIX}/worker/w1/alert", f"{PREFIX}/worker/w1/result"],
           f"console/{CONSOLE}": [f"{PREFIX}/alarms/7", STATUS_TOPIC]}
    readers = {u: clients(b, u, [PREFIX + "/#"] + others + topics) for u, topics in own.items()}
    # one connection per login (use_username_as_clientid): the gateway's
    # login publishes and, later, spies
    gw = clients(b, "telecared", [PREFIX + "/#"])
    marks = {u: c.mark() for u, c in readers.items()}
    for t in others + [t for topics in own.values() for t in topics]:
        publish_acked(gw, t, json.dumps({"topic": t}))
    # then a sentinel for each reader on a topic it may read: after it, nothing
    # published before can still arrive
    for u in readers:
        publish_acked(gw, own[u][0], json.dumps({"final": u}))
    for u, c in readers.items():
        c.wait_for(own[u][0], lambda m: m.json().get("final") == u, after=marks[u])
        got = sorted({m.topic for m in c.matching("#", marks[u])})
        assert got == sorted(own[u]), f"{u} read {got}, may read only {sorted(own[u])}"

    # a console writes nothing: not the board, not the presence
    console = readers[f"console/{CONSOLE}"]
    mark = gw.mark()
    publish_acked(console, f"{PREFIX}/alarms/7", "")
    publish_acked(console, STATUS_TOPIC, "offline")
    publish_acked(console, f"{PREFIX}/worker/w1/alert", "{}")
    gw.publish(f"{PREFIX}/dev/p1/receipt", "sentinel")
    gw.wait_for(f"{PREFIX}/dev/p1/receipt", after=mark)
    assert [m.topic for m in gw.matching("#", mark)] == [f"{PREFIX}/dev/p1/receipt"]


def test_credentials_script_updates_and_removes(tmp_path):
    passwd = tmp_path / "passwd"
    first = credentials(passwd, "device", "p1", "p2")
    again = credentials(passwd, "device", "p1")
    assert again["dev/p1"] != first["dev/p1"], "a new random password each time"
    given = credentials(passwd, "-p", "-", "worker", "w1", stdin="s3cret\n")
    assert given == {"worker/w1": "s3cret"}
    users = [line.split(":")[0] for line in passwd.read_text().splitlines()]
    assert users == ["dev/p2", "dev/p1", "worker/w1"], users
    assert all(line.split(":")[1].startswith("$7$") for line in passwd.read_text().splitlines()), \
        "passwords are stored hashed (PBKDF2-SHA512)"
    p = subprocess.run([CREDENTIALS, "-f", str(passwd), "remove", "dev/p2"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([CREDENTIALS, "-f", str(passwd), "list"], capture_output=True, text=True,
                       timeout=30)
    assert p.stdout.split() == ["dev/p1", "worker/w1"]
    for bad in (["device", "a/b"], ["device", "+"], ["worker", "x" * 65], ["device"]):
        p = subprocess.run([CREDENTIALS, "-f", str(passwd)] + bad, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2, f"{bad} must be refused: {p.stdout} {p.stderr}"
    acl = tmp_path / "acl"
    shutil.copy(SHIPPED_ACL, acl)
    credentials(passwd, "-a", str(acl), "console", "night")
    credentials(passwd, "-a", str(acl), "console", "night")
    text = acl.read_text()
    assert text.count("user console/night\n") == 1, "one ACL block per console"
    assert "user console/night\ntopic read telecare/alarms/#\ntopic read telecare/gateway/status" \
        in text


# --------------------------------------------------------------------------
# the daemon through the secured broker


def test_daemon_end_to_end_with_acl(secure_broker, clients, daemons):
    b = secure_broker
    d = daemons(b)
    connected(d)
    register(d, workers=WORKERS)
    p1 = clients(b, "dev/p1", [f"{PREFIX}/dev/p1/receipt", f"{PREFIX}/dev/p1/alarm"])
    p2 = clients(b, "dev/p2", [f"{PREFIX}/dev/p2/receipt"])
    w1 = clients(b, "worker/w1", [f"{PREFIX}/worker/w1/alert", f"{PREFIX}/worker/w1/result"])
    w2 = clients(b, "worker/w2", [f"{PREFIX}/worker/w2/alert", f"{PREFIX}/worker/w2/result"])
    console = clients(b, f"console/{CONSOLE}", [f"{PREFIX}/alarms/+", STATUS_TOPIC])
    console.wait_for(STATUS_TOPIC, lambda m: m.payload == b"online")

    # the device's own panic goes through: stored, receipted to it, alarm state
    r, _ = p1.event("p1", {"id": "e-1", "type": "panic"})
    assert r["status"] == "stored", r
    alarm = r["alarm"]
    assert isinstance(alarm, int) and alarm > 0, r
    p1.wait_for(f"{PREFIX}/dev/p1/alarm", lambda m: m.json() == {"alarm": alarm, "state": "open"})
    console.wait_for(f"{PREFIX}/alarms/{alarm}", lambda m: m.json()["device"] == "p1")
    for wid, w in (("w1", w1), ("w2", w2)):
        w.wait_for(f"{PREFIX}/worker/{wid}/alert", lambda m: m.json()["alarm"] == alarm)

    # p2 forges an event for p1: never reaches the daemon
    publish_acked(p2, f"{PREFIX}/dev/p1/event", {"id": "forged", "type": "cancel"})
    r2, _ = p2.event("p2", {"id": "hb-1", "type": "heartbeat"})
    assert r2["status"] == "stored", r2
    ids = [e["id"] for e in d.ctl_json("events", "--device", "p1")]
    assert ids == ["e-1"], f"a forged event for p1 was stored: {ids}"

    # w2 forges an acknowledgement as w1: never reaches the daemon
    publish_acked(w2, f"{PREFIX}/worker/w1/action", {"alarm": alarm, "action": "ack"})
    mark = w2.mark(f"{PREFIX}/worker/w2/result")
    w2.publish(f"{PREFIX}/worker/w2/action", {"alarm": alarm, "action": "note", "note": "on it"})
    res = w2.wait_for(f"{PREFIX}/worker/w2/result", after=mark).json()
    assert res["ok"] is True, res
    a = d.ctl_json("alarm", "show", alarm)
    assert a["state"] == "open" and a["acked_by"] is None, \
        f"a forged ack as w1 reached the daemon: {a['state']} by {a['acked_by']}"
    assert not [t for t in a["timeline"] if t["what"] == "acknowledged"], a["timeline"]

    # w1 itself acknowledges: the device hears help is coming
    mark = w1.mark(f"{PREFIX}/worker/w1/result")
    w1.publish(f"{PREFIX}/worker/w1/action", {"alarm": alarm, "action": "ack"})
    res = w1.wait_for(f"{PREFIX}/worker/w1/result", after=mark).json()
    assert res == {"alarm": alarm, "action": "ack", "ok": True}, res
    st = p1.wait_for(f"{PREFIX}/dev/p1/alarm", lambda m: m.json()["state"] == "acknowledged")
    assert st.json()["by"] == "Worker w1"


def test_refused_login_is_logged_and_retried(secure_broker, tmp_path, daemons):
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    d = daemons(secure_broker, mqtt={"password_file": str(wrong)})
    # two refusals: the first attempt and a retry after the back-off
    wait_until(lambda: tail(d.log).count("not authorised") >= 2, 20,
               "two refused logins in the log", interval=0.2, alive=d._alive)
    log = tail(d.log)
    assert re.search(r"mqtt: broker 127\.0\.0\.1:\d+ refused the connection: "
                     r"Connection Refused: not authorised", log), log
    assert re.search(r"retrying in \d+s", log), log
    s = d.ctl_json("status")
    assert s["mqtt"]["connected"] is False
    # the store keeps working while the broker will not have us
    d.add_resident("r1", "Anna Kowalska")
    # teardown: SIGTERM must still exit 0 (cleanup() checks it)


# --------------------------------------------------------------------------
# client ids bound to logins (SPEC 9)
#
# Each test runs twice: on the shipped configuration ("bound"), where it
# shows the attack fails, and on the same configuration without
# use_username_as_clientid ("unbound"), where it shows the attack the
# binding prevents, so the first run's checks are known to be able to fail.

GATEWAY_ID = "telecared"    # the daemon's client_id, equal to its username as the docs ask


@pytest.fixture
def persistent_clients():
    """persistent_clients(broker, user, client_id, subscriptions) -> a client
    logged in as user that asks for client_id and a persistent session
    (clean session off) and reconnects by itself, like a real device; .drops
    records every disconnection it sees."""
    made = []

    def make(broker, user, client_id, subscriptions=()):
        c = MqttClient(broker.port, subscriptions=list(subscriptions), client_id=client_id)
        p = paho.Client(client_id=client_id, clean_session=False, protocol=paho.MQTTv311)
        p.max_inflight_messages_set(0)
        p.max_queued_messages_set(0)
        p.reconnect_delay_set(min_delay=0.2, max_delay=1)
        p.on_connect = c._on_connect
        p.on_subscribe = c._on_subscribe
        p.on_message = c._on_message
        c.drops = []
        p.on_disconnect = lambda client, userdata, rc: c.drops.append(rc)
        p.username_pw_set(user, broker.logins[user])
        c.client = p
        made.append(c)
        return c.connect()

    yield make
    for c in made:
        c.close()


@pytest.mark.parametrize("binding", ["bound", "unbound"])
def test_device_login_cannot_take_the_gateways_session(binding, secure_broker_factory, clients,
                                                       daemons, persistent_clients):
    """The attack of issue 11: dev/p1 connects with the gateway's client id
    and a persistent session. Bound: refused the session, the gateway is
    never disconnected and another device's 10 events are all stored."""
    b = secure_broker_factory(bind_client_ids=binding == "bound")
    d = daemons(b, mqtt={"client_id": GATEWAY_ID})
    connected(d)
    register(d)
    presence = clients(b, f"console/{CONSOLE}", [STATUS_TOPIC])
    presence.wait_for(STATUS_TOPIC, lambda m: m.payload == b"online")
    mark = presence.mark()
    p2 = clients(b, "dev/p2", [f"{PREFIX}/dev/p2/receipt"])

    # a valid login, so the broker accepts the connection either way; the
    # question is whose session it gets
    impostor = persistent_clients(b, "dev/p1", GATEWAY_ID)

    if binding == "unbound":
        # the broker hands the gateway's session to the impostor and closes
        # the gateway's connection (and they go on fighting over it)
        wait_until(lambda: "mqtt: lost the connection" in tail(d.log), MSG_TIMEOUT,
                   "the gateway to lose its connection", interval=0.1, alive=d._alive)
        assert f"Client {GATEWAY_ID} already connected, closing old connection" in \
            tail(b.log, 10**6)
        return

    # another device's events while the impostor is connected: all stored
    receipts = f"{PREFIX}/dev/p2/receipt"
    after = p2.mark(receipts)
    for i in range(10):
        p2.publish(f"{PREFIX}/dev/p2/event", {"id": f"e-{i}", "type": "heartbeat"})

    def all_receipted():
        got = {m.json()["id"]: m.json()["status"] for m in p2.messages(receipts, after)}
        return got if len(got) == 10 else None
    got = wait_until(all_receipted, MSG_TIMEOUT, "10 receipts for dev/p2", interval=0.1)
    assert set(got.values()) == {"stored"}, got
    assert d.query("SELECT count(*) AS n FROM events WHERE device_id = 'p2'")[0]["n"] == 10

    # The gateway was never disconnected. Had the impostor's CONNECT (before
    # its CONNACK, which connect() waited for) closed the gateway's
    # connection, the receipts above could only have come after a
    # reconnection, which the daemon logs first.
    log = tail(d.log, 10**6)
    assert log.count("mqtt: connected to") == 1, log
    assert "lost the connection" not in log, log
    assert d.ctl_json("status")["mqtt"]["connected"] is True
    assert [m.payload for m in presence.messages(STATUS_TOPIC, mark)] == [], \
        "the gateway's presence changed: it was disconnected"
    # the broker kept the impostor under its own login
    blog = tail(b.log, 10**6)
    assert re.search(r"New client connected from \S+ as dev/p1 \(p\d, c0,", blog), blog
    assert "already connected, closing old connection" not in blog, blog
    assert impostor.connects == 1 and not impostor.drops


@pytest.mark.parametrize("binding", ["bound", "unbound"])
def test_device_login_cannot_take_another_devices_session(binding, secure_broker_factory,
                                                          daemons, persistent_clients):
    """dev/p1 asks for the client id dev/p2's device connected with. Bound:
    dev/p2 stays connected and keeps getting its receipts."""
    b = secure_broker_factory(bind_client_ids=binding == "bound")
    d = daemons(b)
    connected(d)
    register(d)
    victim = persistent_clients(b, "dev/p2", "pendant-p2", [f"{PREFIX}/dev/p2/receipt"])
    r, _ = victim.event("p2", {"id": "before", "type": "heartbeat"})
    assert r["status"] == "stored", r

    impostor = persistent_clients(b, "dev/p1", "pendant-p2")

    if binding == "unbound":
        wait_until(lambda: victim.drops, MSG_TIMEOUT, "dev/p2's device to be disconnected",
                   interval=0.1)
        assert "Client pendant-p2 already connected, closing old connection" in \
            tail(b.log, 10**6)
        return

    # As above: a takeover at the impostor's CONNECT would show as a drop
    # before this receipt, which can only come on a live connection.
    r, _ = victim.event("p2", {"id": "after", "type": "heartbeat"})
    assert r["status"] == "stored", r
    assert victim.connects == 1 and not victim.drops, victim.drops
    assert impostor.connects == 1 and not impostor.drops
    blog = tail(b.log, 10**6)
    assert re.search(r"New client connected from \S+ as dev/p2 \(p\d, c0,", blog), blog
    assert re.search(r"New client connected from \S+ as dev/p1 \(p\d, c0,", blog), blog
    assert "already connected, closing old connection" not in blog, blog


# --------------------------------------------------------------------------
# TLS


def tls_mqtt(b, ca_dir, client_cert=True):
    o = {"port": b.tls_port, "cafile": str(ca_dir / "ca.crt")}
    if client_cert:
        o.update(certfile=str(b.ca / "client.crt"), keyfile=str(b.ca / "client.key"))
    return o


def test_tls_with_client_certificate_end_to_end(secure_broker_factory, clients, daemons):
    b = secure_broker_factory(require_certificate=True)
    d = daemons(b, mqtt=tls_mqtt(b, b.ca))
    connected(d)
    d.add_resident("r1", "Anna Kowalska")
    d.add_device("p1", "r1")
    p1 = clients(b, "dev/p1", [f"{PREFIX}/dev/p1/receipt"])     # on the loopback listener
    r, _ = p1.event("p1", {"id": "e-1", "type": "panic"})
    assert r["status"] == "stored" and r["alarm"], r
    assert d.query("SELECT count(*) AS n FROM events WHERE device_id = 'p1'")[0]["n"] == 1
    assert "connected to 127.0.0.1:%d" % b.tls_port in tail(d.log)


@pytest.mark.parametrize("case", ["wrong CA", "no client certificate"])
def test_tls_refused_clearly_and_retried(case, secure_broker_factory, tmp_path, daemons):
    b = secure_broker_factory(require_certificate=True)
    if case == "wrong CA":
        # the daemon trusts another CA than the one that signed the broker
        other = make_ca(tmp_path / "other-ca")
        d = daemons(b, mqtt=tls_mqtt(b, other))
        expect = "certificate verify failed"
    else:
        d = daemons(b, mqtt=tls_mqtt(b, b.ca, client_cert=False))
        expect = "certificate required"
    wait_until(lambda: tail(d.log).count(expect) >= 2, 20,
               f"two attempts failing with '{expect}' in the log", interval=0.2, alive=d._alive)
    log = tail(d.log)
    # one error line per attempt, naming the cause; the second is the retry
    assert re.search(rf"error: mqtt: OpenSSL Error\[0\]: .*{expect}", log), log
    assert d.ctl_json("status")["mqtt"]["connected"] is False
    assert "connected to" not in log


def test_tls_broker_comes_up_after_the_daemon(secure_broker_factory, clients, daemons):
    """At boot telecared may start before the broker listens: it must keep
    retrying (with back-off, quietly for the CPU) and connect soon after the
    broker does, not only when [mqtt] keepalive gives up on the first try."""
    b = secure_broker_factory(require_certificate=True, start=False)
    d = daemons(b, mqtt=tls_mqtt(b, b.ca))
    time.sleep(3)
    cpu = cpu_seconds(d.proc.pid)
    time.sleep(2)
    used = cpu_seconds(d.proc.pid) - cpu
    b.start()
    try:
        connected(d, timeout=15)    # the back-off is at most 8 s by now
        problem = None
    except AssertionError as e:
        problem = str(e)
    assert problem is None and used < 0.5, (
        f"with TLS and the broker down at start: connected once it came up: "
        f"{problem or 'yes'}; CPU used while waiting: {used:.2f}s in 2s")
    d.add_resident("r1", "Anna Kowalska")
    d.add_device("p1", "r1")
    p1 = clients(b, "dev/p1", [f"{PREFIX}/dev/p1/receipt"])
    r, _ = p1.event("p1", {"id": "e-1", "type": "panic"})
    assert r["status"] == "stored", r


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
