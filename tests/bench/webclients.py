"""Raw-socket clients for the console benchmarks (console_bench.py): what a
browser does over HTTP/1.1 (a login, a keep-alive poller, an EventSource
reading Server-Sent Events with chunked transfer coding) and a device-side
MQTT 3.1.1 client (QoS 1 publish, QoS 0 subscribe), all non-blocking, for
one selector loop. Every read is stamped with the kernel's receive time
(SO_TIMESTAMPNS, converted to CLOCK_MONOTONIC), so a late pass of the
harness does not make an arrival look late. Standard library only."""
import http.client
import json
import selectors
import socket
import struct
import time


def _ms(ns):
    return ns / 1e6


SO_TIMESTAMPNS = 35         # Linux (asm-generic and x86): the kernel's receive time
_OFFSET = [0]               # CLOCK_REALTIME - CLOCK_MONOTONIC, ns: set_clock_offset()


def stamp_offset():
    """CLOCK_REALTIME - CLOCK_MONOTONIC (ns), the tightest of a few samples:
    converts the kernel's CLOCK_REALTIME receive stamps to CLOCK_MONOTONIC."""
    best = None
    for _ in range(5):
        a = time.monotonic_ns()
        r = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) // 2)
    return best[1]


def set_clock_offset():
    """Take the offset now (before a measurement); returns it."""
    _OFFSET[0] = stamp_offset()
    return _OFFSET[0]


def _stamped(s):
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return s


def _recv(s, fallback_ns):
    """(data, when the kernel received its last segment, CLOCK_MONOTONIC ns):
    a late harness pass does not make an arrival look late. Raises
    BlockingIOError when there is nothing; data b"" at the end."""
    data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(16))
    t = fallback_ns
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
            sec, ns = struct.unpack("qq", raw[:16])
            t = sec * 1_000_000_000 + ns - _OFFSET[0]
    return data, t


# --------------------------------------------------------------------------
# HTTP, blocking: logins and one-off requests


def http_request(port, method, path, cookie=None, body=None, timeout=60):
    """(status, parsed JSON or None, set cookie or None, seconds) on a new
    connection, timed from connect to the whole answer (CLOCK_MONOTONIC)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {}
    if cookie:
        h["Cookie"] = f"tc_session={cookie}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
        h["X-Requested-With"] = "telecare"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    text = r.read()
    took = time.monotonic() - t0
    set_cookie = None
    for k, v in r.getheaders():
        if k.lower() == "set-cookie" and v.startswith("tc_session="):
            set_cookie = v.split(";")[0].split("=", 1)[1] or None
    c.close()
    try:
        j = json.loads(text) if text else None
    except ValueError:
        j = None
    return r.status, j, set_cookie, took


def login(port, user, password):
    status, j, cookie, _ = http_request(port, "POST", "/api/session",
                                        body={"username": user, "password": password})
    if status != 200 or not cookie:
        raise RuntimeError(f"login {user}: {status} {j}")
    return cookie


# --------------------------------------------------------------------------
# HTTP, non-blocking: an SSE stream and a poller, driven by one selector


class Dechunk:
    """HTTP/1.1 chunked transfer coding, incrementally (what a browser reads)."""

    def __init__(self):
        self.raw = b""
        self.left = 0          # bytes of the current chunk still to come
        self.crlf = False      # the CRLF after a chunk's data is owed
        self.ended = False

    def feed(self, data):
        self.raw += data
        out = []
        while self.raw and not self.ended:
            if self.left == 0:
                if self.crlf:
                    if len(self.raw) < 2:
                        break
                    self.raw = self.raw[2:]
                    self.crlf = False
                    continue
                i = self.raw.find(b"\r\n")
                if i < 0:
                    break
                size = int(self.raw[:i].split(b";")[0], 16)
                self.raw = self.raw[i + 2:]
                if size == 0:
                    self.ended = True
                    break
                self.left = size
            take = self.raw[:self.left]
            out.append(take)
            self.raw = self.raw[len(take):]
            self.left -= len(take)
            if self.left == 0:
                self.crlf = True
        return b"".join(out)


def _head(buf):
    """(status, headers dict, rest) once the head is complete, else None."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = buf[:i].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, buf[i + 4:]


class SseClient:
    """GET /api/stream on a raw socket, as the console's EventSource. Each
    `alarm` event opening an alarm we published is stamped with the time
    the selector said the socket was readable."""

    def __init__(self, port, cookie, index):
        self.index = index
        self.s = _stamped(socket.create_connection(("127.0.0.1", port), timeout=10))
        self.s.sendall((f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: tc_session={cookie}\r\n"
                        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode())
        buf = b""
        while (h := _head(buf)) is None:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("the event stream closed before its head")
            buf += chunk
        status, headers, rest = h
        if status != 200 or "text/event-stream" not in headers.get("content-type", ""):
            raise RuntimeError(f"GET /api/stream: {status} {headers}")
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        self.dechunk = Dechunk()
        self.text = b""
        self.closed = False
        self.events = 0
        self.bytes = 0
        self.read_lag_max_ns = 0
        self.s.setblocking(False)
        if rest:
            self._body(rest, time.monotonic_ns(), None)

    def on_readable(self, t_sel, sink):
        try:
            data, t_ns = _recv(self.s, t_sel)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        # how long the data waited for this harness: what the stamps spare us
        self.read_lag_max_ns = max(self.read_lag_max_ns, t_sel - t_ns)
        self._body(data, t_ns, sink)

    def _body(self, data, t_ns, sink):
        self.bytes += len(data)
        self.text += self.dechunk.feed(data) if self.chunked else data
        while b"\n\n" in self.text:
            block, self.text = self.text.split(b"\n\n", 1)
            ev, payload = None, None
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    ev = line[7:]
                elif line.startswith(b"data: "):
                    payload = line[6:]
            if ev is None:
                continue   # retry:, or a keep-alive comment
            self.events += 1
            if ev == b"alarm" and payload and sink:
                sink(self.index, payload, t_ns)


class Poller:
    """A dispatcher's console polling GET /api/alarms?state=open every
    second on one keep-alive connection (reconnecting if the server closes
    it), each answer timed from the request's send to its last byte."""

    def __init__(self, port, cookie, first_at_ns, every_s=1.0):
        self.every_ns = int(every_s * 1e9)
        self.port = port
        self.cookie = cookie
        self.next_ns = first_at_ns
        self.s = None
        self.sent_ns = None
        self.buf = b""
        self.times = []        # (sent_ns, answer ms, alarms listed)
        self.errors = 0
        self.reconnects = 0

    def _connect(self, sel):
        self.s = _stamped(socket.create_connection(("127.0.0.1", self.port), timeout=10))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.setblocking(False)
        sel.register(self.s, selectors.EVENT_READ, self)

    def _drop(self, sel):
        if self.s:
            sel.unregister(self.s)
            self.s.close()
            self.s = None

    def due(self, now_ns, sel):
        if self.sent_ns is not None or now_ns < self.next_ns:
            return
        if self.s is None:
            self._connect(sel)
            self.reconnects += 1
        self.buf = b""
        self.sent_ns = time.monotonic_ns()
        try:
            self.s.sendall((f"GET /api/alarms?state=open HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Cookie: tc_session={self.cookie}\r\nAccept: application/json\r\n\r\n").encode())
        except OSError:
            self.errors += 1
            self.sent_ns = None
            self._drop(sel)
        self.next_ns += self.every_ns

    def on_readable(self, t_ns, sel):
        try:
            data, t_ns = _recv(self.s, t_ns)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self.sent_ns is not None:
                self.errors += 1
                self.sent_ns = None
            self._drop(sel)
            return
        self.buf += data
        h = _head(self.buf)
        if h is None or self.sent_ns is None:
            return
        status, headers, rest = h
        if headers.get("transfer-encoding", "").lower() == "chunked":
            d = Dechunk()
            body = d.feed(rest)
            if not d.ended:
                return
        else:
            n = int(headers.get("content-length", "0"))
            if len(rest) < n:
                return
            body = rest[:n]
        if status == 200:
            try:
                listed = len(json.loads(body))
            except ValueError:
                listed = None
            self.times.append((self.sent_ns, _ms(t_ns - self.sent_ns), listed))
        else:
            self.errors += 1
        self.sent_ns = None
        self.buf = b""
        if headers.get("connection", "").lower() == "close":
            self._drop(sel)


# --------------------------------------------------------------------------
# MQTT, just enough: publish QoS 1 panics, read a worker's alerts (QoS 0)


def _mqtt_str(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _mqtt_len(n):
    out = bytearray()
    while True:
        d, n = n % 128, n // 128
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Mqtt:
    """A device-side client on a raw socket: events published at QoS 1
    (stamped just before the send), PUBACKs discarded, and some topics read
    at QoS 0, each message handed to handler(topic, payload, kernel receive
    time) (the worker's alerts in "console", the receipts in "report")."""

    def __init__(self, port, client_id, topics, handler):
        self.s = _stamped(socket.create_connection(("127.0.0.1", port), timeout=10))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        vh = b"\x00\x04MQTT\x04\x02\x00\x00"      # 3.1.1, clean session, no keep-alive
        pl = _mqtt_str(client_id)
        self.s.sendall(b"\x10" + _mqtt_len(len(vh) + len(pl)) + vh + pl)
        self.buf = b""
        self.mid = 0
        self.handler = handler
        pkt = self._read_packet_blocking()
        if pkt[0] >> 4 != 2 or pkt[1][1] != 0:
            raise RuntimeError(f"MQTT CONNACK refused: {pkt}")
        for topic in topics:
            self.s.sendall(b"\x82" + _mqtt_len(2 + len(_mqtt_str(topic)) + 1) + b"\x00\x01"
                           + _mqtt_str(topic) + b"\x00")
            pkt = self._read_packet_blocking()
            if pkt[0] >> 4 != 9:
                raise RuntimeError(f"MQTT: no SUBACK: {pkt}")
        self.s.setblocking(False)

    def _packet(self):
        """(type byte, body) of the next whole packet in buf, or None."""
        if len(self.buf) < 2:
            return None
        n, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return None
            d = self.buf[i]
            n += (d & 0x7f) * mult
            mult *= 128
            i += 1
            if not d & 0x80:
                break
        if len(self.buf) < i + n:
            return None
        t, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return t, body

    def _read_packet_blocking(self):
        while (p := self._packet()) is None:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("MQTT: the broker closed the connection")
            self.buf += chunk
        return p

    def publish(self, topic, payload):
        self.mid = self.mid % 65535 + 1
        vh = _mqtt_str(topic) + self.mid.to_bytes(2, "big")
        t = time.monotonic_ns()
        self.s.sendall(b"\x32" + _mqtt_len(len(vh) + len(payload)) + vh + payload)
        return t

    def on_readable(self, t_ns):
        try:
            data, t_ns = _recv(self.s, t_ns)
        except BlockingIOError:
            return
        if not data:
            raise RuntimeError("MQTT: the broker closed the connection")
        self.buf += data
        while (p := self._packet()) is not None:
            t, body = p
            if t >> 4 != 3:
                continue          # PUBACKs of what we published
            tl = int.from_bytes(body[:2], "big")
            off = 2 + tl + (2 if (t >> 1) & 3 else 0)
            self.handler(body[2:2 + tl].decode("utf-8", "replace"), body[off:], t_ns)


class FirstAlerts:
    """device -> when the first alert naming it arrived (ns)."""

    def __init__(self):
        self.at = {}

    def __call__(self, topic, payload, t_ns):
        try:
            dev = json.loads(payload).get("device")
        except ValueError:
            return
        if dev and dev not in self.at:
            self.at[dev] = t_ns
