#!/usr/bin/python3
"""DEVELOPMENT AID ONLY: a throwaway mock of telecared's HTTP API.

Not installed, not used by any test. It serves ../ (the console) and an
in-memory imitation of docs/HTTP.md so the console can be worked on without
a daemon. Where it and the real daemon differ, the daemon is right.

    /usr/bin/python3 console/dev/mock.py 8099
    # users: admin/admin-pass anna/anna-pass (dispatcher) ian/ian-pass (installer)
    #        jan/jan-pass (worker w-jan)
    curl -X POST localhost:8099/dev/event -d '{"device":"pendant-1","type":"panic"}'
"""
import json
import os
import queue
import secrets
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
PRIO = {"panic": 1, "fall": 1, "smoke": 1, "co": 1, "gas": 1, "heat": 1, "medical": 1,
        "inactivity": 2, "wander": 2, "door": 2, "bed_exit": 2, "chair_exit": 2,
        "band_removed": 2, "flood": 2, "temperature": 2,
        "low_battery": 3, "tamper": 3, "power_loss": 3, "connection_lost": 3}
LOCK = threading.RLock()


def now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class State:
    def __init__(self):
        self.users = {
            "admin": {"name": "admin", "role": "admin", "worker": None, "password": "admin-pass"},
            "anna": {"name": "anna", "role": "dispatcher", "worker": "w-anna", "password": "anna-pass"},
            "ian": {"name": "ian", "role": "installer", "worker": None, "password": "ian-pass"},
            "jan": {"name": "jan", "role": "worker", "worker": "w-jan", "password": "jan-pass"},
        }
        for u in self.users.values():
            u["created_at"] = u["changed_at"] = now()
        self.sessions = {}
        self.fails = {}
        self.residents = {
            "r-17": {"id": "r-17", "name": "Anna Kowalska", "address": "ul. Słowackiego 12/3, Kraków",
                     "phone": "+48 600 000 000", "team": "north",
                     "notes": "Key safe by the door: code 1234.\nDiabetic; lives alone.",
                     "created_at": now()},
            "r-18": {"id": "r-18", "name": "Józef Wiśniewski", "address": "ul. Długa 5, Kraków",
                     "phone": "+48 600 000 111", "team": "south", "notes": None, "created_at": now()},
        }
        self.devices = {}
        for did, rid in (("pendant-1", "r-17"), ("pendant-2", "r-18"), ("base-1", "r-17")):
            self.devices[did] = {"id": did, "resident": rid, "kind": "pendant", "heartbeat": None,
                                 "heartbeat_ms": None, "test": False, "created_at": now(),
                                 "last_seen": None, "battery": 87, "rssi": -70, "source": None,
                                 "address": None, "supervision": "none"}
        self.workers = {
            "w-jan": {"id": "w-jan", "name": "Jan Nowak", "teams": ["north"], "phone": "+48 600 1",
                      "webhook": None, "created_at": now()},
            "w-anna": {"id": "w-anna", "name": "Anna Nowak", "teams": ["north", "supervisors"],
                       "phone": "+48 600 2", "webhook": None, "created_at": now()},
        }
        self.shifts = {1: {"id": 1, "worker": "w-jan", "kind": "always"},
                       2: {"id": 2, "worker": "w-anna", "kind": "weekly", "days": ["mon", "tue"],
                           "hours": "07:00-15:00"}}
        self.alarms = {}
        self.next_alarm = 1
        self.events = []
        self.stream_id = 0
        self.history = []
        self.listeners = []
        self.tests = {}

    def emit(self, event, data, who=None):
        with LOCK:
            self.stream_id += 1
            item = (self.stream_id, event, data, who)
            self.history.append(item)
            del self.history[:-4096]
            for q, sess in list(self.listeners):
                if visible(sess, item):
                    q.put(item)

    def summary(self, a):
        out = {k: v for k, v in a.items() if k not in ("timeline", "alerted")}
        r = self.residents.get(a["resident_id"]) if a["resident_id"] else None
        out["resident"] = r
        out.pop("resident_id", None)
        return out

    def add_tl(self, a, what, actor, detail=None):
        e = {"at": now(), "what": what, "actor": actor, "detail": detail}
        a["timeline"].append(e)
        self.emit("timeline", {"alarm": a["alarm"], "entry": e}, who=a)

    def event(self, device, etype, loc=None, test=False):
        with LOCK:
            d = self.devices.get(device)
            seq = len(self.events) + 1
            ev = {"seq": seq, "device": device, "id": f"e-{seq}", "type": etype, "received_at": now(),
                  "alarm": None, "known": d is not None, "payload": {"id": f"e-{seq}", "type": etype}}
            self.events.append(ev)
            if d:
                d["last_seen"] = ev["received_at"]
            if device in self.tests:
                self.test_stage(device, "received")
            if etype not in PRIO:
                return None
            a = next((x for x in self.alarms.values() if x["device"] == device and x["state"] != "resolved"), None)
            if a:
                a["types"].append(etype)
                a["priority"] = min(a["priority"], PRIO[etype])
                ev["alarm"] = a["alarm"]
                self.add_tl(a, "joined", device, etype)
                self.emit("alarm", self.summary(a), who=a)
                return a
            aid = self.next_alarm
            self.next_alarm += 1
            a = {"alarm": aid, "state": "open", "priority": PRIO[etype], "types": [etype], "level": 1,
                 "device": device, "test": device in self.tests, "technical": PRIO[etype] == 3,
                 "resident_id": d["resident"] if d else None, "opened_at": now(), "loc": loc,
                 "acked_by": None, "acked_at": None, "resolved_at": None, "outcome": None,
                 "policy": "urgent", "acked_by_id": None, "timeline": [], "alerted": {"w-jan"}}
            ev["alarm"] = aid
            self.alarms[aid] = a
            self.add_tl(a, "opened", device, f"{etype}, priority {a['priority']}")
            if device in self.tests:
                self.test_stage(device, "stored", aid)
                self.test_stage(device, "receipt_sent", aid)
                self.test_stage(device, "alerted", aid, "installer alerted")
                a["state"] = "resolved"
                a["outcome"] = "test"
                self.tests.pop(device, None)
                return a
            self.add_tl(a, "alerted", "telecared", "w-jan (mqtt), step 1")
            self.emit("alarm", self.summary(a), who=a)
            return a

    def test_stage(self, device, stage, alarm=None, detail=None):
        sess = self.tests.get(device)
        self.emit("test", {"stage": stage, "device": device, "at": now(), "alarm": alarm,
                           "detail": detail}, who=("test", sess))

    def incident(self, n=240):
        with LOCK:
            aid = self.next_alarm
            self.next_alarm += 1
            a = {"alarm": aid, "state": "open", "priority": 3, "types": ["power_loss"], "level": 1,
                 "device": "telecared", "test": False, "technical": True, "resident_id": None,
                 "opened_at": now(), "loc": None, "acked_by": None, "acked_at": None,
                 "resolved_at": None, "outcome": None, "policy": "builtin-technical",
                 "acked_by_id": None, "timeline": [], "alerted": set(),
                 "incident": {"class": "power_loss", "devices": n, "restored": 12,
                              "teams": {"north": n - 40, "south": 40},
                              "sample": [f"base-{i}" for i in range(20)]}}
            self.alarms[aid] = a
            self.add_tl(a, "opened", "telecared", f"mass incident: power_loss from {n} devices")
            self.emit("alarm", self.summary(a), who=a)


S = State()


def visible(sess, item):
    _, event, data, who = item
    if event == "test":
        return who[1] is sess
    if event == "status":
        return True
    if sess["role"] in ("admin", "dispatcher"):
        return True
    if sess["role"] == "worker" and isinstance(who, dict):
        return sess["worker"] in who.get("alerted", ())
    return False


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *a, **kw):
        super().__init__(*a, directory=ROOT, **kw)

    def log_message(self, fmt, *args):
        sys.stderr.write("mock: " + fmt % args + "\n")

    def end_headers(self):
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def send_json(self, code, body, headers=()):
        raw = b"" if body is None and code == 204 else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def err(self, code, msg, headers=()):
        self.send_json(code, {"error": msg}, headers)

    def session(self):
        c = self.headers.get("Cookie", "")
        for part in c.split(";"):
            k, _, v = part.strip().partition("=")
            if k == "tc_session" and v in S.sessions:
                return S.sessions[v]
        return None

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Type", "").startswith("text/csv"):
            return raw.decode()
        return json.loads(raw or b"null")

    def do_GET(self):
        if self.path.startswith("/api/"):
            return self.api("GET")
        return super().do_GET()

    def do_POST(self):
        return self.api("POST")

    def do_PUT(self):
        return self.api("PUT")

    def do_DELETE(self):
        return self.api("DELETE")

    def api(self, method):
        time.sleep(0.05)
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        parts = [p for p in u.path.split("/") if p]
        if parts[:1] == ["dev"]:
            b = self.body()
            if parts[1] == "event":
                S.event(b["device"], b["type"], b.get("loc"))
            elif parts[1] == "incident":
                S.incident()
            elif parts[1] == "status":
                S.emit("status", b)
            return self.send_json(200, {})
        parts = parts[1:]
        if method != "GET" and self.headers.get("X-Requested-With") != "telecare":
            return self.err(403, "the X-Requested-With: telecare header is missing")
        with LOCK:
            if parts == ["session"]:
                if method == "POST":
                    b = self.body() or {}
                    name = b.get("username", "")
                    until = S.fails.get(name, 0)
                    if time.time() < until:
                        wait = int(until - time.time()) + 1
                        return self.err(429, f"too many failed logins: try again in {wait} s",
                                        [("Retry-After", str(wait))])
                    user = S.users.get(name)
                    if not user or user["password"] != b.get("password"):
                        S.fails[name] = time.time() + 3
                        return self.err(401, "wrong user name or password")
                    tok = secrets.token_urlsafe(32)
                    S.sessions[tok] = {"name": name, "role": user["role"], "worker": user["worker"]}
                    return self.send_json(200, self.me(S.sessions[tok]),
                                          [("Set-Cookie", f"tc_session={tok}; HttpOnly; SameSite=Strict; Path=/")])
            sess = self.session()
            if not sess:
                return self.err(401, "no session: log in")
            if parts == ["session"]:
                if method == "DELETE":
                    for k, v in list(S.sessions.items()):
                        if v is sess:
                            del S.sessions[k]
                    return self.send_json(204, None)
                return self.send_json(200, self.me(sess))
        if parts == ["stream"]:
            return self.stream(sess)
        with LOCK:
            try:
                return self.route(method, parts, q, sess)
            except KeyError as e:
                return self.err(404, f"no such thing: {e}")

    def me(self, sess):
        return {"user": dict(sess), "expires_at": now()}

    def route(self, method, parts, q, sess):
        role = sess["role"]
        r0 = parts[0] if parts else ""
        if r0 == "status":
            return self.send_json(200, {
                "version": "mock", "pid": os.getpid(), "started_at": now(), "uptime_s": 1234,
                "mqtt": {"connected": True, "host": "127.0.0.1", "port": 1883, "client_id": "telecared"},
                "store": {"path": "/tmp/x.db", "ok": True, "pending": 0, "error": None},
                "counts": {"events_received": len(S.events), "events_stored": len(S.events),
                           "events_duplicate": 0, "events_rejected": 0, "events_flood_dropped": 0,
                           "receipts_shed": 0, "alarms_open": 1, "devices": len(S.devices),
                           "residents": len(S.residents)},
                "outbox": {"queued": {"urgent": 0, "high": 0, "board": 2, "result": 0, "receipt": 13, "low": 0},
                           "shed": {"urgent": 0, "high": 0, "board": 0, "result": 0, "receipt": 0, "low": 0},
                           "coalesced": {}, "receipt_limit": 100000, "inflight": 3,
                           "inflight_max_seen": 17, "window": 256, "handed": 100, "acked": 97,
                           "failed": 0, "webhooks": {"queued": 0, "running": 0, "max": 16}},
                "loop": {"iterations": 1000, "worst_ms": 4.2, "worst_at": now(), "over_10ms": 0,
                         "over_100ms": 0}})
        if r0 == "alarms":
            if len(parts) == 1:
                xs = [a for a in S.alarms.values() if not a["test"]]
                if q.get("state") == "open":
                    xs = [a for a in xs if a["state"] != "resolved"]
                if role == "worker":
                    xs = [a for a in xs if sess["worker"] in a["alerted"]]
                return self.send_json(200, [S.summary(a) for a in reversed(xs)])
            a = S.alarms[int(parts[1])]
            if len(parts) == 2:
                out = S.summary(a)
                out["timeline"] = a["timeline"]
                out["events"] = [e for e in S.events if e["alarm"] == a["alarm"]]
                return self.send_json(200, out)
            b = self.body()
            act = b.get("action")
            actor = f"user {sess['name']}"
            if b.get("as"):
                actor = f"{b['as']} (by user {sess['name']})"
            if a["state"] == "resolved":
                return self.send_json(409, {"alarm": a["alarm"], "action": act, "ok": False,
                                            "error": f"alarm {a['alarm']} is resolved"})
            if act == "ack":
                if a["state"] == "acknowledged":
                    return self.send_json(409, {"alarm": a["alarm"], "action": act, "ok": False,
                                                "error": f"alarm {a['alarm']} is already acknowledged by {a['acked_by']}"})
                a["state"] = "acknowledged"
                a["acked_by"] = sess["name"]
                a["acked_at"] = now()
                S.add_tl(a, "acknowledged", actor, sess["name"])
            elif act == "note":
                S.add_tl(a, "note", actor, b.get("note"))
            elif act == "decline":
                S.add_tl(a, "declined", actor)
            elif act == "resolve":
                if not b.get("outcome"):
                    return self.err(400, "missing outcome")
                a["state"] = "resolved"
                a["outcome"] = b["outcome"]
                a["resolved_at"] = now()
                S.add_tl(a, "resolved", actor, b["outcome"] + (": " + b["note"] if b.get("note") else ""))
            else:
                return self.err(400, f"unknown action {act}")
            S.emit("alarm", S.summary(a), who=a)
            return self.send_json(200, {"alarm": a["alarm"], "action": act, "ok": True, "data": S.summary(a)})
        if r0 == "residents":
            if method == "GET" and len(parts) == 1:
                return self.send_json(200, list(S.residents.values()))
            if method == "POST":
                b = self.body()
                if b.get("id") in S.residents:
                    return self.err(409, f"resident {b['id']} already exists")
                r = {k: b.get(k) for k in ("id", "name", "address", "phone", "team", "notes")}
                r["created_at"] = now()
                S.residents[r["id"]] = r
                return self.send_json(200, r)
            r = S.residents[parts[1]]
            if method == "DELETE":
                if any(d["resident"] == r["id"] for d in S.devices.values()):
                    return self.err(409, f"resident {r['id']} still has devices")
                del S.residents[r["id"]]
                return self.send_json(200, None)
            out = dict(r)
            out["devices"] = [d["id"] for d in S.devices.values() if d["resident"] == r["id"]]
            out["alarms"] = [S.summary(a) for a in S.alarms.values()
                             if a["resident_id"] == r["id"] and a["state"] != "resolved"]
            return self.send_json(200, out)
        if r0 == "devices":
            if len(parts) == 1 and method == "GET":
                return self.send_json(200, list(S.devices.values()))
            if parts[1:] == ["unknown"]:
                unk = {}
                for e in S.events:
                    if not e["known"]:
                        u = unk.setdefault(e["device"], {"device": e["device"], "events": 0,
                                                         "first_seen": e["received_at"]})
                        u["events"] += 1
                        u["last_seen"] = e["received_at"]
                        u["last_type"] = e["type"]
                return self.send_json(200, list(unk.values()))
            if parts[1:] == ["import"]:
                rows = [line.split(",") for line in self.body().splitlines()]
                bad = [f"line {i + 1}: resident {r[1]} does not exist" for i, r in enumerate(rows[1:], 1)
                       if len(r) > 1 and r[1] not in S.residents]
                if bad:
                    return self.err(400, "; ".join(bad))
                added = []
                for r in rows[1:]:
                    S.devices[r[0]] = {"id": r[0], "resident": r[1], "kind": r[2] if len(r) > 2 else None,
                                       "heartbeat": None, "heartbeat_ms": None, "test": False,
                                       "created_at": now(), "last_seen": None, "battery": None,
                                       "rssi": None, "source": None, "address": None, "supervision": "none"}
                    added.append(r[0])
                return self.send_json(200, {"added": len(added), "devices": added})
            if method == "POST" and len(parts) == 1:
                b = self.body()
                if b.get("resident") not in S.residents:
                    return self.err(400, f"resident {b.get('resident')} does not exist")
                d = {"id": b["id"], "resident": b["resident"], "kind": b.get("kind"),
                     "heartbeat": None, "heartbeat_ms": b.get("heartbeat_ms"), "test": False,
                     "created_at": now(), "last_seen": None, "battery": None, "rssi": None,
                     "source": b.get("source"), "address": b.get("address"), "supervision": "none"}
                S.devices[d["id"]] = d
                return self.send_json(200, d)
            if len(parts) == 3 and parts[2] == "test":
                S.devices[parts[1]]
                S.tests[parts[1]] = sess
                return self.send_json(200, {"stage": "waiting", "device": parts[1], "at": now()})
            if len(parts) == 3 and parts[2] == "adopt":
                b = self.body()
                d = {"id": parts[1], "resident": b["resident"], "kind": b.get("kind"), "heartbeat": None,
                     "heartbeat_ms": None, "test": False, "created_at": now(), "last_seen": None,
                     "battery": None, "rssi": None, "source": None, "address": None, "supervision": "none"}
                S.devices[parts[1]] = d
                return self.send_json(200, d)
            d = S.devices[parts[1]]
            if method == "DELETE":
                del S.devices[parts[1]]
                return self.send_json(200, None)
            out = dict(d)
            out["events"] = [e for e in S.events if e["device"] == d["id"]][-10:]
            return self.send_json(200, out)
        if r0 == "sources":
            return self.send_json(200, [{"source": "panels", "address": "1234", "messages": 3,
                                         "first_seen": now(), "last_seen": now(),
                                         "reason": "account 1234 is not registered",
                                         "last_payload": {"cid": "1101"}}])
        if r0 == "events":
            xs = [e for e in S.events if not q.get("device") or e["device"] == q["device"]]
            return self.send_json(200, xs[-int(q.get("limit", 20)):])
        if r0 == "workers":
            if method == "GET" and len(parts) == 1:
                return self.send_json(200, list(S.workers.values()))
            if method == "POST":
                b = self.body()
                w = {"id": b["id"], "name": b["name"],
                     "teams": [t for t in (b.get("team") or "").split(",") if t],
                     "phone": b.get("phone"), "webhook": b.get("webhook"), "created_at": now()}
                S.workers[w["id"]] = w
                return self.send_json(200, w)
            w = S.workers[parts[1]]
            if method == "DELETE":
                del S.workers[parts[1]]
                return self.send_json(200, None)
            out = dict(w)
            out["shifts"] = [s for s in S.shifts.values() if s["worker"] == w["id"]]
            out["on_duty"] = True
            return self.send_json(200, out)
        if r0 == "shifts":
            if method == "GET":
                return self.send_json(200, list(S.shifts.values()))
            if method == "POST":
                b = self.body()
                sid = max(S.shifts, default=0) + 1
                s = {"id": sid, "worker": b["worker"]}
                if b.get("always"):
                    s["kind"] = "always"
                elif b.get("days"):
                    s.update(kind="weekly", days=b["days"].split(","), hours=b["hours"])
                else:
                    s.update(kind="once", **{"from": b["from"], "to": b["to"]})
                S.shifts[sid] = s
                return self.send_json(200, s)
            del S.shifts[int(parts[1])]
            return self.send_json(200, None)
        if r0 == "oncall":
            if parts[1:] == ["gaps"]:
                t0 = datetime.now(timezone.utc) + timedelta(hours=3)
                return self.send_json(200, [{"from": t0.isoformat().replace("+00:00", "Z"),
                                             "to": (t0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
                                             "team": "south"}])
            out = []
            for w in S.workers.values():
                w = dict(w)
                w["shifts"] = [s for s in S.shifts.values() if s["worker"] == w["id"]]
                out.append(w)
            return self.send_json(200, out)
        if r0 == "report":
            days = []
            base = datetime.now(timezone.utc).date()
            for i in range(14):
                day = (base - timedelta(days=13 - i)).isoformat()
                for p, n in ((1, 3 + i % 4), (2, 1 + i % 3), (3, i % 2)):
                    days.append({"day": day, "priority": p, "alarms": n,
                                 "within_60s": 0.6 + 0.02 * (i % 5), "within_180s": 0.95})
            return self.send_json(200, {"from": now(), "to": now(), "priorities": [
                {"priority": 1, "alarms": 62, "acknowledged": 60, "within_60s": 0.71,
                 "within_180s": 0.97, "median_ack_s": 38, "p90_ack_s": 110},
                {"priority": 2, "alarms": 28, "acknowledged": 28, "within_60s": 0.5,
                 "within_180s": 0.9, "median_ack_s": 60, "p90_ack_s": 170},
                {"priority": 3, "alarms": 7, "acknowledged": 5, "within_60s": 0.1,
                 "within_180s": 0.3, "median_ack_s": 900, "p90_ack_s": None}], "days": days})
        if r0 == "users":
            if role != "admin":
                return self.err(403, "permission denied: user.list needs the admin role")
            if method == "GET":
                return self.send_json(200, [{k: u[k] for k in ("name", "role", "worker", "created_at",
                                                                "changed_at")} for u in S.users.values()])
            if method == "POST":
                b = self.body()
                if len(b.get("password") or "") < 8:
                    return self.err(400, "a password is 8-1024 bytes")
                S.users[b["name"]] = {"name": b["name"], "role": b["role"], "worker": b.get("worker"),
                                      "password": b["password"], "created_at": now(), "changed_at": now()}
                return self.send_json(200, {k: S.users[b["name"]][k] for k in ("name", "role", "worker")})
            if method == "PUT":
                S.users[parts[1]]["password"] = self.body()["password"]
                return self.send_json(200, None)
            del S.users[parts[1]]
            return self.send_json(200, None)
        return self.err(404, "no such route")

    def stream(self, sess):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        q = queue.Queue()
        last = self.headers.get("Last-Event-ID")
        with LOCK:
            if last is not None:
                last = int(last)
                if S.history and last < S.history[0][0] - 1:
                    q.put((S.stream_id, "reset", {}, None))
                else:
                    for item in S.history:
                        if item[0] > last and visible(sess, item):
                            q.put(item)
            S.listeners.append((q, sess))
        try:
            self.wfile.write(b": hello\n\n")
            self.wfile.flush()
            while True:
                try:
                    sid, ev, data, _ = q.get(timeout=15)
                    self.wfile.write(f"id: {sid}\nevent: {ev}\ndata: {json.dumps(data)}\n\n".encode())
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with LOCK:
                S.listeners[:] = [x for x in S.listeners if x[0] is not q]


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    S.event("pendant-1", "fall", {"lat": 50.0614, "lon": 19.9366, "acc": 25})
    S.event("pendant-2", "inactivity")
    S.incident()
    print(f"mock console on http://127.0.0.1:{port}/ (development aid only)", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
