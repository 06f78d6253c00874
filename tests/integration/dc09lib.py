"""A SIA DC-09 sender for the tests, written from ANSI/SIA DC-09-2013 (not from
telecared's code): frames, CRC, AES-CBC (through the openssl command: Python
has no AES in its standard library), TCP and UDP, and the receiver's replies
parsed and checked.

    LF CRC 0LLL "ID" SEQ Rrcvr Lpref #ACCT [DATA] [x-data] _HH:MM:SS,MM-DD-YYYY CR

Used by tests/integration/test_dc09.py and tests/chaos/test_chaos_dc09.py."""
import os
import re
import secrets
import socket
import subprocess
import time

ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def crc16(data: bytes) -> int:
    """CRC-16/ARC: polynomial 0x8005 reflected (0xA001), initial 0 (DC-09 5.5.1.2)."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(body: bytes, crc=None, length=None) -> bytes:
    """LF, 4 hex digits of CRC, '0' and 3 hex digits of length, body, CR.
    crc/length override the true values (to send a broken frame)."""
    c = crc16(body) if crc is None else crc
    n = len(body) if length is None else length
    return b"\n" + b"%04X0%03X" % (c, n) + body + b"\r"


def timestamp(t=None) -> str:
    """_HH:MM:SS,MM-DD-YYYY in UTC (DC-09 5.5.1.9)."""
    return time.strftime("_%H:%M:%S,%m-%d-%Y", time.gmtime(time.time() if t is None else t))


def parse_timestamp(ts: str) -> float:
    """_HH:MM:SS,MM-DD-YYYY -> Unix seconds (UTC)."""
    m = re.fullmatch(r"_(\d\d):(\d\d):(\d\d),(\d\d)-(\d\d)-(\d{4})", ts)
    assert m, f"not a DC-09 timestamp: {ts!r}"
    hh, mi, ss, mo, dd, yy = map(int, m.groups())
    import calendar
    return calendar.timegm((yy, mo, dd, hh, mi, ss, 0, 0, 0))


def aes_cbc(key: bytes, data: bytes, decrypt=False) -> bytes:
    """AES-CBC with an all-zero IV and no padding (DC-09 5.4.4)."""
    cipher = {16: "aes-128-cbc", 24: "aes-192-cbc", 32: "aes-256-cbc"}[len(key)]
    args = ["openssl", "enc", "-" + cipher, "-K", key.hex(), "-iv", "0" * 32, "-nopad"]
    if decrypt:
        args.append("-d")
    p = subprocess.run(args, input=data, capture_output=True, timeout=10)
    assert p.returncode == 0, f"openssl enc failed: {p.stderr.decode(errors='replace')}"
    return p.stdout


def message(token, seq, account, data="", receiver="R1", prefix="L0", ts=None, key=None,
            xdata="", crc=None, length=None) -> bytes:
    """One frame. data is what goes between '[' and ']' (e.g. "#1234|NQA001");
    ts None: now, "" no timestamp, else a ready "_HH:MM:SS,MM-DD-YYYY";
    key (bytes): encrypted, token with '*' and the content after '[' as hex
    of AES-CBC(pad | data ] x-data timestamp)."""
    ts = timestamp() if ts is None else ts
    content = f"{data}]{xdata}{ts}".encode("latin-1")
    head = f'"{"*" if key else ""}{token}"{seq:04d}{receiver}{prefix}#{account}['.encode()
    if key is None:
        return frame(head + content, crc, length)
    # 5.4.4.3: pad (anything but '|', '[', ']') + '|' + content, a multiple
    # of 16 bytes; 16 pad bytes when it already is one
    padlen = 16 - (len(content) + 1) % 16
    pad = bytes(ALNUM[b % len(ALNUM)] for b in secrets.token_bytes(padlen))
    ct = aes_cbc(key, pad + b"|" + content)
    return frame(head + ct.hex().upper().encode(), crc, length)


def sia(seq, account, events, **kw):
    """SIA DCS: events such as "Nri1/QA001"."""
    return message("SIA-DCS", seq, account, f"#{account}|{events}", **kw)


def cid(seq, account, qeee, group="01", zone="001", **kw):
    """ADM-CID: QEEE GG ZZZ."""
    return message("ADM-CID", seq, account, f"#{account}|{qeee} {group} {zone}", **kw)


def null(seq, account, **kw):
    return message("NULL", seq, account, "", **kw)


class Reply:
    """A receiver's reply, its CRC and length checked."""
    RE = re.compile(rb'"(\*?)(ACK|NAK|DUH)"(\d{4})(?:R([0-9A-Fa-f]+))?L([0-9A-Fa-f]+)'
                    rb'(?:#([0-9A-Fa-f]+)|A0)\[(.*)$', re.S)

    def __init__(self, raw: bytes, key=None):
        self.raw = raw
        assert raw[:1] == b"\n" and raw[-1:] == b"\r", f"not a frame: {raw!r}"
        crc, length, body = int(raw[1:5], 16), int(raw[6:9], 16), raw[9:-1]
        assert raw[5:6] == b"0" and len(body) == length, f"length field wrong: {raw!r}"
        assert crc16(body) == crc, f"CRC wrong: {raw!r}"
        m = self.RE.match(body)
        assert m, f"not an ACK, NAK or DUH: {raw!r}"
        self.encrypted = bool(m.group(1))
        self.kind = m.group(2).decode()
        self.seq = int(m.group(3))
        self.receiver = (m.group(4) or b"").decode()
        self.prefix = m.group(5).decode()
        self.account = (m.group(6) or b"").decode()
        rest = m.group(7)
        if self.encrypted:
            assert key is not None, f"an encrypted reply and no key: {raw!r}"
            plain = aes_cbc(key, bytes.fromhex(rest.decode()), decrypt=True)
            assert b"|" in plain, f"decrypted reply has no pad '|': {plain!r}"
            rest = plain.split(b"|", 1)[1]
        self.content = rest.decode("latin-1")
        m2 = re.search(r"(_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})$", self.content)
        self.ts = m2.group(1) if m2 else None
        self.time = parse_timestamp(self.ts) if self.ts else None

    def __repr__(self):
        return f"<{self.kind} seq={self.seq} acct={self.account} {self.raw!r}>"


class Tcp:
    """A panel on one persistent TCP connection."""

    def __init__(self, port, timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def reply(self, timeout=15.0, key=None):
        """The next reply frame (LF ... CR), or raise on timeout/EOF."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while b"\r" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply")
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"receiver closed the connection (buffer {self.buf!r})")
            self.buf += chunk
        i = self.buf.index(b"\r") + 1
        start = self.buf.rfind(b"\n", 0, i)
        raw, self.buf = self.buf[start:i], self.buf[i:]
        return Reply(raw, key)

    def nothing_for(self, seconds):
        """True when no byte arrives within seconds."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            return True
        self.buf += chunk
        return False

    def closed_by_peer(self, timeout):
        """True when the receiver closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def ask(self, data, timeout=15.0, key=None):
        self.send(data)
        return self.reply(timeout, key)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Udp:
    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def ask(self, data, timeout=15.0, key=None):
        self.sock.sendto(data, ("127.0.0.1", self.port))
        self.sock.settimeout(timeout)
        raw, _ = self.sock.recvfrom(4096)
        return Reply(raw, key)

    def close(self):
        self.sock.close()


def write_keys(path, lines, mode=0o640):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, mode)
