"""The production service (issue 5): the systemd unit, its sandbox, the
sysusers and tmpfiles files, `cmake --install`, the man pages.

- The unit passes `systemd-analyze verify` (with the man pages it names on
  MANPATH) and `systemd-analyze security --offline=yes` with an exposure of
  at most 2.0, has the settings the issue asks for, and agrees with the
  daemon's compiled-in paths.
- The sysusers and tmpfiles files, applied to a scratch root, make the user,
  group, directories and modes they promise.
- `cmake --install` puts everything in its Debian place and never overwrites
  an administrator's /etc/telecare/telecared.conf.
- The man pages render without warnings and name every option, command and
  configuration key the programs accept.
- The daemon runs, and the whole alarm path works, with the unit's sandbox
  applied as far as a test without systemd as PID 1 can (see
  test_daemon_runs_in_the_units_sandbox).

Needs systemd (systemd-analyze, systemd-sysusers, systemd-tmpfiles; not
running), util-linux (setpriv), strace and man-db: `scripts/deps.sh test`.
Nothing is installed by the tests.
"""
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import (BUILD, MSG_TIMEOUT, PREFIX, REPO, START_TIMEOUT, TELECARECTL, TELECARED,
                      Daemon, run_ctl, tail, wait_until)
from unixusers import ROLE_GROUPS, UnixIdentities

UNIT = Path(REPO, "systemd", "telecared.service")
SYSUSERS = Path(REPO, "systemd", "telecare.sysusers")
TMPFILES = Path(REPO, "systemd", "telecare.tmpfiles")
MAN = {"telecarectl.1": 1, "telecared.conf.5": 5, "telecared.8": 8}
MAN_DIR = Path(REPO, "man")
MAX_EXPOSURE = 2.0


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (scripts/deps.sh test)", pytrace=False)


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def unit_settings(text):
    """[Service] and [Unit] keys as {key: [values]} (a key may repeat)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def unit_for_test(tmp_path):
    """The unit with ExecStart= naming the built binary (verify wants it to
    exist), and a MANPATH with the man pages it names."""
    text = UNIT.read_text()
    n = text.count("ExecStart=/usr/sbin/telecared ")
    assert n == 1, "ExecStart=/usr/sbin/telecared ... expected once in the unit"
    d = tmp_path / "unit"
    d.mkdir()
    unit = d / "telecared.service"
    unit.write_text(text.replace("ExecStart=/usr/sbin/telecared ", f"ExecStart={TELECARED} "))
    man = tmp_path / "man"
    for page, section in MAN.items():
        (man / f"man{section}").mkdir(parents=True, exist_ok=True)
        shutil.copy(MAN_DIR / page, man / f"man{section}" / page)
    return unit, man


# --------------------------------------------------------------------------
# the unit


def test_unit_verifies(tmp_path):
    need("systemd-analyze", "man")
    unit, man = unit_for_test(tmp_path)
    env = dict(os.environ, MANPATH=str(man), SYSTEMD_LOG_LEVEL="notice")
    p = run(["systemd-analyze", "verify", str(unit)], env=env)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        f"systemd-analyze verify: {p.returncode}\n{p.stdout}{p.stderr}"


def test_unit_exposure(tmp_path):
    need("systemd-analyze")
    unit, _ = unit_for_test(tmp_path)
    p = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)])
    m = re.search(r"Overall exposure level for telecared\.service: (\d+(?:\.\d+)?)", p.stdout)
    assert m, f"no exposure level in systemd-analyze security's output:\n{p.stdout}{p.stderr}"
    exposure = float(m.group(1))
    weak = [line for line in p.stdout.splitlines() if line.startswith("\u2717")]
    assert exposure <= MAX_EXPOSURE, \
        f"exposure {exposure} > {MAX_EXPOSURE}; not covered:\n" + "\n".join(weak)
    # and the same verdict through systemd-analyze's own threshold
    p = run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
             f"--threshold={int(MAX_EXPOSURE * 10)}", str(unit)])
    assert p.returncode == 0, f"systemd-analyze security --threshold failed:\n{p.stderr}"


def test_unit_settings():
    s = unit_settings(UNIT.read_text())

    def one(key):
        assert key in s, f"the unit has no {key}="
        assert len(s[key]) == 1, f"{key}= given {len(s[key])} times"
        return s[key][0]

    expect = {
        "Type": "notify", "Restart": "on-failure", "User": "telecare", "Group": "telecare",
        "StateDirectory": "telecare", "RuntimeDirectory": "telecare",
        "ConfigurationDirectory": "telecare", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet": "",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
        "ProtectHostname": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
        "ProtectProc": "invisible", "ProcSubset": "pid", "DevicePolicy": "closed",
    }
    wrong = {k: s.get(k) for k, v in expect.items() if s.get(k) != [v]}
    assert not wrong, f"unit settings differ from the issue's: {wrong}"
    assert "@system-service" in s.get("SystemCallFilter", []), s.get("SystemCallFilter")
    assert re.fullmatch(r"\d+(ms|s|min)", one("WatchdogSec")), one("WatchdogSec")
    assert re.search(r"kill -HUP \$MAINPID", one("ExecReload")), one("ExecReload")
    assert not s.get("IPAddressAllow") and not s.get("IPAddressDeny"), \
        "the broker may be on another host: no IP allow list in the shipped unit"

    # the unit's directories are the daemon's compiled-in defaults
    p = run([TELECARED, "--help"])
    m = re.search(r"default (\S+);", p.stdout)
    assert m, p.stdout
    exec_start = one("ExecStart").split()
    assert exec_start[0] == "/usr/sbin/telecared"
    assert exec_start[1:] == ["-c", m.group(1)], (exec_start, m.group(1))
    assert m.group(1).startswith("/etc/" + one("ConfigurationDirectory") + "/")
    p = run([TELECARECTL, "--help"])
    m = re.search(r"else (/\S+)\)", p.stdout)
    assert m and m.group(1).startswith("/run/" + one("RuntimeDirectory") + "/"), p.stdout
    conf = Path(REPO, "config", "telecared.conf").read_text()
    m = re.search(r"(?m)^path = (\S+)", conf)
    assert m and m.group(1).startswith("/var/lib/" + one("StateDirectory") + "/"), m


def test_sysusers_and_tmpfiles(tmp_path):
    """Applied to a scratch root: the system user and group, the state
    directory, and the secrets' modes in /etc/telecare."""
    need("systemd-sysusers", "systemd-tmpfiles")
    root = tmp_path / "root"
    for d in ("etc", "usr/lib/sysusers.d", "usr/lib/tmpfiles.d"):
        (root / d).mkdir(parents=True)
    shutil.copy(SYSUSERS, root / "usr/lib/sysusers.d/telecare.conf")
    shutil.copy(TMPFILES, root / "usr/lib/tmpfiles.d/telecare.conf")
    p = run(["systemd-sysusers", f"--root={root}", "telecare.conf"])
    assert p.returncode == 0, p.stderr
    users = {l.split(":")[0]: l.split(":") for l in (root / "etc/passwd").read_text().splitlines()}
    groups = {l.split(":")[0]: l.split(":") for l in (root / "etc/group").read_text().splitlines()}
    assert "telecare" in users and "telecare" in groups, (users, groups)
    u = users["telecare"]
    uid, gid = int(u[2]), int(u[3])
    assert gid == int(groups["telecare"][2]), "the user's primary group is telecare"
    assert 0 < uid < 1000, f"a system user, not uid {uid}"
    assert u[5] == "/var/lib/telecare" and u[6].endswith("nologin"), u
    # the control socket's roles (SPEC 6.1): system groups, no members yet
    for g in ROLE_GROUPS:
        assert g in groups, f"sysusers makes no group {g}: {sorted(groups)}"
        assert 0 < int(groups[g][2]) < 1000, f"{g} is not a system group: {groups[g]}"
        assert groups[g][3] == "", groups[g]

    # a secret left world-readable is put right
    (root / "etc/telecare").mkdir()
    pw = root / "etc/telecare/mqtt-password"
    pw.write_text("s3cret\n")
    os.chmod(pw, 0o644)
    p = run(["systemd-tmpfiles", f"--root={root}", "--create", "telecare.conf"])
    assert p.returncode == 0, p.stderr

    def mode(path):
        st = os.stat(root / path)
        return (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid)

    assert mode("var/lib/telecare") == (oct(0o750), uid, gid)
    assert mode("etc/telecare") == (oct(0o755), 0, 0)
    assert mode("etc/telecare/mqtt-password") == (oct(0o640), 0, gid)
    assert mode("etc/telecare/tls") == (oct(0o750), 0, gid)
    assert not (root / "etc/telecare/tls/client.key").exists(), "'z' creates nothing"


# --------------------------------------------------------------------------
# cmake --install


def test_install_layout(tmp_path):
    cache = Path(BUILD, "CMakeCache.txt")
    assert cache.exists(), f"no CMake build in {BUILD}"
    need("cmake")
    stage = tmp_path / "stage"

    def install(prefix):
        p = run(["cmake", "--install", BUILD, "--prefix", prefix], timeout=120,
                env=dict(os.environ, DESTDIR=str(stage)))
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    install("/usr")
    usr = stage / "usr"
    expect = {
        "sbin/telecared": 0o755, "bin/telecarectl": 0o755,
        "share/man/man1/telecarectl.1": 0o644, "share/man/man5/telecared.conf.5": 0o644,
        "share/man/man8/telecared.8": 0o644,
        "lib/systemd/system/telecared.service": 0o644,
        "lib/sysusers.d/telecare.conf": 0o644, "lib/tmpfiles.d/telecare.conf": 0o644,
        "share/doc/telecare/examples/telecared.conf": 0o644,
        "share/doc/telecare/examples/mosquitto.conf": 0o644,
        "share/doc/telecare/examples/mosquitto.acl": 0o644,
        "share/telecare/broker-credentials.sh": 0o755,
        "share/telecare/make-test-ca.sh": 0o755,
    }
    missing = [f for f in expect if not (usr / f).is_file()]
    assert not missing, (f"not installed: {missing} (is include(cmake/install.cmake) in "
                         f"CMakeLists.txt, and {BUILD} configured since?)")
    modes = {f: oct(os.stat(usr / f).st_mode & 0o777) for f in expect}
    assert modes == {f: oct(m) for f, m in expect.items()}, modes
    for page, section in MAN.items():
        assert (usr / f"share/man/man{section}" / page).read_bytes() == \
            (MAN_DIR / page).read_bytes()
    assert (usr / "lib/sysusers.d/telecare.conf").read_bytes() == SYSUSERS.read_bytes()
    assert (usr / "lib/tmpfiles.d/telecare.conf").read_bytes() == TMPFILES.read_bytes()
    unit = (usr / "lib/systemd/system/telecared.service").read_text()
    assert unit == UNIT.read_text(), "with prefix /usr the unit is the source's"

    conf = stage / "etc/telecare/telecared.conf"
    example = Path(REPO, "config/telecared.conf").read_bytes()
    assert conf.read_bytes() == example
    assert (usr / "share/doc/telecare/examples/telecared.conf").read_bytes() == example

    # an administrator's configuration survives a reinstall
    conf.write_text("[alarms]\nunknown_devices = log\n")
    out = install("/usr")
    assert conf.read_text() == "[alarms]\nunknown_devices = log\n", "install overwrote /etc"
    assert "Keeping" in out, out

    # another prefix: the unit names the binary there
    install("/opt/telecare")
    unit = (stage / "opt/telecare/lib/systemd/system/telecared.service").read_text()
    assert "ExecStart=/opt/telecare/sbin/telecared -c /etc/telecare/telecared.conf\n" in unit


# --------------------------------------------------------------------------
# man pages


@pytest.mark.parametrize("page", sorted(MAN))
def test_man_page_renders_without_warnings(page):
    need("man")
    src = (MAN_DIR / page).read_text()
    bad = sorted({repr(c) for c in src if ord(c) < 32 and c != "\n"})
    assert not bad, f"{page} has control characters {bad} (a Python '\\f' gone wrong?)"
    p = run(["man", "--warnings", "-l", str(MAN_DIR / page)],
            env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8"))
    assert p.returncode == 0 and not p.stderr.strip(), f"man --warnings -l {page}:\n{p.stderr}"
    assert len(p.stdout.splitlines()) > 40, p.stdout


def roff_words(page):
    """The page's text with font escapes and hyphen escapes removed."""
    text = (MAN_DIR / page).read_text()
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-").replace("\\e", "\\")
    return text


def test_man_pages_name_everything_the_programs_accept():
    """Complete: every option of telecared --help, every command and option
    of telecarectl --help and every section and key config.c accepts is in
    the matching page."""
    missing = []

    page = roff_words("telecared.8")
    for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", run([TELECARED, "--help"]).stdout):
        if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", page):
            missing.append(f"telecared.8: {opt}")

    page = roff_words("telecarectl.1")
    help_text = run([TELECARECTL, "--help"]).stdout
    commands = help_text.split("commands:", 1)[1].split("\n\n", 1)[0]
    for line in commands.strip().splitlines():
        words = line.split()
        cmd = " ".join(w for w in words[:2] if re.fullmatch(r"[a-z]+", w))
        if not re.search(rf'(?m)^\.(?:B|BI|BR|RB|IB)\s+"?{re.escape(cmd)}\b', page):
            missing.append(f"telecarectl.1: command '{cmd}'")
        for opt in re.findall(r"--[a-z][\w-]*", line):
            if opt not in page:
                missing.append(f"telecarectl.1: {cmd} {opt}")
    for opt in re.findall(r"(?m)^  (--?[a-z][\w-]*)", help_text.split("options", 1)[1]):
        if opt not in page:
            missing.append(f"telecarectl.1: {opt}")

    page = roff_words("telecared.conf.5")
    source = "".join(Path(REPO, "daemon", f).read_text() for f in ("config.c", "config_dc09.c"))
    sections = set(re.findall(r'strcmp\(section, "([a-z_]+)"\)', source))
    sections |= {s + " NAME" for s in re.findall(r'strncmp\(section, "([a-z_]+) ", \d+\)', source)}
    keys = set(re.findall(r'strcmp\(name, "([a-z_]+)"\)', source))
    assert "mqtt" in sections and "host" in keys, "config.c changed shape: update this test"
    for s in sorted(sections):
        if not re.search(rf"(?m)^\.SH \[{re.escape(s)}\]$", page):
            missing.append(f"telecared.conf.5: section [{s}]")
    for k in sorted(keys):
        if not re.search(rf"(?m)^\.(?:B|BI|BR|RB|IB)\s.*(?<![\w-]){re.escape(k)}(?![\w-])", page):
            missing.append(f"telecared.conf.5: key {k}")
    assert not missing, "not documented:\n" + "\n".join(missing)


# --------------------------------------------------------------------------
# the sandbox


class NotifySocket:
    """systemd's notify socket, stood in for by the test."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)      # the daemon runs as another user
        self.sock.settimeout(0.2)
        self.lines = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.lines += [x for x in data.decode("utf-8", "replace").split("\n") if x]

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class Webhooks(http.server.ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1: every POST body, parsed."""

    def __init__(self):
        self.posts = []
        received = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def close(self):
        self.shutdown()
        self.server_close()


def syscall_groups():
    """{"@group": set of names}, from systemd-analyze's own tables."""
    p = run(["systemd-analyze", "syscall-filter", "--no-pager"])
    groups, cur = {}, None
    for line in p.stdout.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), set())
        elif line.startswith("    ") and cur is not None:
            item = line.strip()
            if item and not item.startswith("#"):
                cur.add(item)
        else:
            cur = None      # a blank line or a top-level comment ends a group
    assert "@system-service" in groups, p.stdout[:2000]

    def expand(name, seen=()):
        out = set()
        for x in groups[name]:
            if x.startswith("@"):
                if x not in seen:
                    out |= expand(x, seen + (name,))
            else:
                out.add(x)
        return out
    return expand


def unit_syscall_allowlist():
    """What the unit's SystemCallFilter= lines allow."""
    expand = syscall_groups()
    allowed = None
    for value in unit_settings(UNIT.read_text()).get("SystemCallFilter", []):
        deny = value.startswith("~")
        names = set()
        for item in value.lstrip("~").split():
            names |= expand(item) if item.startswith("@") else {item}
        if allowed is None:
            assert not deny, "the unit's first SystemCallFilter= is an allow list"
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def sanitized(binary):
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__ubsan_handle" in data


TRACE_LINE = re.compile(r"^(\d+) +(?:<\.\.\. (\w+) resumed>|(\w+)\((.*))")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
# Read by libraries that work on without them when the sandbox hides them.
TOLERATED = {
    # sd-event spreads its timers' wake-ups by an offset taken from the boot
    # id (initialize_perturb() in sd-event.c); if it cannot be read
    # (ProcSubset=pid hides /proc/sys), the offset stays 0
    "/proc/sys/kernel/random/boot_id",
}
PRIVATE_DEVICES = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                   "/dev/tty", "/dev/ptmx"}


def sandbox_findings(trace, pid, writable, binary):
    """Everything in the strace log of the daemon (from its execve on) that
    the unit's sandbox would refuse."""
    findings = []
    allowed = unit_syscall_allowlist()
    check_syscalls = not sanitized(binary)
    started = False
    used = set()
    for line in trace.splitlines():
        if not started:
            # strace pads a short pid: "9193  execve(...)"
            started = (line.split(None, 1)[0] == str(pid) and
                       line.split(None, 1)[1].startswith(f"execve(\"{binary}\"") and
                       line.endswith("= 0"))
            continue
        m = TRACE_LINE.match(line)
        if not m:
            continue
        name = m.group(2) or m.group(3)
        args = m.group(4) or ""
        used.add(name)
        if name == "socket":
            fam = args.split(",")[0]
            if fam not in ("AF_UNIX", "AF_LOCAL", "AF_INET", "AF_INET6"):
                findings.append(f"RestrictAddressFamilies: {line}")
        if name in ("mmap", "mprotect", "pkey_mprotect"):
            prot = re.search(r"PROT_[A-Z_|]+", args)
            prot = prot.group(0) if prot else ""
            if "PROT_EXEC" in prot and (name != "mmap" or "PROT_WRITE" in prot):
                findings.append(f"MemoryDenyWriteExecute: {line}")
        paths = re.findall(r'"(/[^"]*)"', args)
        writing = (name in ("openat", "open", "creat") and any(f in args for f in WRITE_FLAGS)) \
            or name in ("mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat",
                        "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod",
                        "fchmodat", "truncate", "mknod", "mknodat") \
            or (name == "bind" and "AF_UNIX" in args)
        for p in paths:
            if p in TOLERATED and not writing:
                continue
            if p.startswith("/dev/") and p not in PRIVATE_DEVICES and \
                    not p.startswith(("/dev/shm/", "/dev/pts/")) and name != "execve":
                findings.append(f"PrivateDevices: {line}")
            if p.startswith(("/home/", "/root/", "/run/user/")) or p in ("/home", "/root"):
                findings.append(f"ProtectHome: {line}")
            if p.startswith("/proc/") and not re.match(rf"/proc/(self|thread-self|{pid}|\d+/task)(/|$)", p):
                findings.append(f"ProcSubset=pid: {line}")
            if writing and not any(p == w or p.startswith(w + "/") for w in writable) \
                    and p not in PRIVATE_DEVICES:
                findings.append(f"ProtectSystem=strict: {line}")
    assert started, f"no execve of {binary} in the trace"
    if check_syscalls:
        for name in sorted(used - allowed):
            findings.append(f"SystemCallFilter: {name}() is not allowed by the unit")
    return findings, used


def test_daemon_runs_in_the_units_sandbox(broker, mqtt, tmp_path, request):
    """The real daemon with what the unit sets up that a test can apply
    without systemd as PID 1, and the whole alarm path through it: the broker
    found by name (localhost: nsswitch, /etc/hosts), panic -> stored receipt,
    board, alarm state, an on-duty worker's MQTT alert and webhook (libcurl).

    Applied for real: a non-root user and group with no supplementary groups
    (User=, Group=; nobody:nogroup stands in for telecare), no new privileges
    (NoNewPrivileges=), empty bounding, inheritable and ambient capability
    sets (CapabilityBoundingSet=, AmbientCapabilities=), UMask=0027, a root
    working directory, a minimal environment, the state and runtime
    directories owned by that user (StateDirectory=, RuntimeDirectory=, mode
    0750; the runtime directory 0755 as RuntimeDirectoryMode= says), the
    configuration root-owned and group-readable (ConfigurationDirectory=),
    sd_notify READY=1/WATCHDOG=1/STOPPING=1 to a notify socket, ExecReload=
    as that user (RELOADING=1, READY=1), the control socket's 0666 with the
    caller's groups deciding (a real user in telecare-admin may, a real user
    in no telecare group is refused), and an admin's `telecarectl backup` of
    the live database (telecarectl reads it itself: the backup needs the
    daemon's group too, so the directory and file modes must let it).

    Checked from an strace of the daemon, from its execve to its exit:
    every system call is in the unit's SystemCallFilter= (@system-service
    without @privileged and @resources, expanded by systemd-analyze itself;
    skipped for a sanitizer build, whose runtime is not what the unit runs);
    sockets only of RestrictAddressFamilies=; no writable+executable or
    made-executable memory (MemoryDenyWriteExecute=); writes only under the
    state and runtime directories (ProtectSystem=strict); no device but
    those PrivateDevices= leaves; nothing under /home, /root, /run/user
    (ProtectHome=); in /proc only its own process (ProcSubset=pid).

    Only systemd-analyze can check (test_unit_exposure): the mount, user,
    IPC and network namespaces, ProtectKernel*/ProtectClock/ProtectHostname,
    RestrictNamespaces/Realtime/SUIDSGID, LockPersonality, DevicePolicy,
    SystemCallArchitectures and the seccomp filter's enforcement itself.
    """
    need("setpriv", "strace")
    assert os.geteuid() == 0, "this test starts the daemon as another user: run it as root"
    uid, gid = 65534, 65534                 # nobody, nogroup
    base = Path(tempfile.mkdtemp(prefix="telecare-sandbox-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    os.chmod(base, 0o755)
    state, runtime, etc = base / "lib", base / "run", base / "etc"
    unit = unit_settings(UNIT.read_text())
    runtime_mode = int(unit["RuntimeDirectoryMode"][0], 8)
    for d, owner, mode in ((state, uid, 0o750), (runtime, uid, runtime_mode), (etc, 0, 0o750)):
        d.mkdir(mode=mode)
        os.chmod(d, mode)
        os.chown(d, owner, gid)
    ids = UnixIdentities().__enter__()
    request.addfinalizer(lambda: ids.__exit__(None, None, None))
    admin = ids.user(groups=["telecare-admin"])
    outsider = ids.user()
    # the build directory may not be reachable for that user: copies
    telecared, telecarectl = str(base / "telecared"), str(base / "telecarectl")
    shutil.copy2(TELECARED, telecared)
    shutil.copy2(TELECARECTL, telecarectl)
    webhooks = Webhooks()
    request.addfinalizer(webhooks.close)
    notify = NotifySocket(base / "notify")
    request.addfinalizer(notify.close)

    d = Daemon(tmp_path, broker, {"store": {"path": str(state / "telecare.db")},
                                  "control": {"socket": str(runtime / "control.sock")},
                                  "mqtt": {"client_id": "telecared-sandbox", "host": "localhost"}},
               name="sandboxed")
    d.db, d.socket = state / "telecare.db", runtime / "control.sock"
    conf = etc / "telecared.conf"
    shutil.copy(d.conf, conf)
    os.chown(conf, 0, gid)
    os.chmod(conf, 0o640)
    trace_file = tmp_path / "strace.log"
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])
    request.node._telecare_logs.append(("sandboxed telecared", d.log))

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": str(state), "USER": "nobody", "LOGNAME": "nobody",
           "SHELL": "/usr/sbin/nologin", "NOTIFY_SOCKET": notify.path,
           "WATCHDOG_USEC": "2000000"}
    if sanitized(TELECARED):
        # LeakSanitizer cannot work under ptrace; the other tests look for leaks
        env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                     "detect_leaks=0"]))
        if os.environ.get("UBSAN_OPTIONS"):
            env["UBSAN_OPTIONS"] = os.environ["UBSAN_OPTIONS"]
    logf = open(d.log, "ab")
    request.addfinalizer(logf.close)
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-s", "256", "-o", str(trace_file), "--",
         "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
         "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--",
         telecared, "-c", str(conf)],
        stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env, cwd="/", umask=0o027)

    def stop():
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    request.addfinalizer(stop)

    def alive():
        if proc.poll() is not None:
            raise AssertionError(f"the sandboxed daemon exited with {proc.returncode}:\n"
                                 f"{tail(d.log)}")

    wait_until(lambda: "READY=1" in notify.lines, START_TIMEOUT * 2, "READY=1", alive=alive)
    status = d.ctl_json("status")
    pid = status["pid"]
    st = open(f"/proc/{pid}/status").read()
    assert re.search(rf"(?m)^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", st), st
    assert re.search(rf"(?m)^Gid:\s+{gid}\s+{gid}\s+{gid}\s+{gid}$", st), st
    assert re.search(r"(?m)^Groups:\s*$", st), st
    assert re.search(r"(?m)^NoNewPrivs:\s+1$", st), st
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert re.search(rf"(?m)^{caps}:\s+0+$", st), f"{caps} not empty:\n{st}"
    wait_until(lambda: status_connected(d), START_TIMEOUT * 2, "the broker connection",
               alive=alive)

    # the control socket: 0666, the daemon's user; the caller's groups decide
    sock_st = os.stat(d.socket)
    assert (oct(sock_st.st_mode & 0o777), sock_st.st_uid, sock_st.st_gid) == \
        (oct(0o666), uid, gid)
    # an admin who can also read the database (backup below): the daemon's group
    member = admin.cmd([], gid=gid)[:-1]
    stranger = outsider.cmd([])[:-1]
    p = run(member + [telecarectl, "--socket", str(d.socket), "status"])
    assert p.returncode == 0, f"a member of telecare-admin cannot use telecarectl: {p.stderr}"
    p = run(stranger + [telecarectl, "--socket", str(d.socket), "status"])
    assert p.returncode == 1 and "permission denied" in p.stderr, (p.returncode, p.stderr)

    # the whole alarm path
    d.add_resident("r1", "Anna Kowalska")
    d.add_device("p1", "r1")
    rc, _, err = d.ctl("worker", "add", "w1", "--name", "Jan", "--webhook", webhooks.url)
    assert rc == 0, err
    rc, _, err = d.ctl("shift", "add", "w1", "--always")
    assert rc == 0, err
    r, _ = mqtt.event("p1", {"id": "e-1", "type": "panic", "battery": 80})
    assert r["status"] == "stored", r
    alarm = r["alarm"]
    mqtt.wait_for(f"{PREFIX}/dev/p1/alarm", lambda m: m.json() == {"alarm": alarm, "state": "open"})
    mqtt.wait_for(f"{PREFIX}/alarms/{alarm}", lambda m: m.json()["device"] == "p1")
    mqtt.wait_for(f"{PREFIX}/worker/w1/alert", lambda m: m.json()["alarm"] == alarm)
    wait_until(lambda: any(x.get("alarm") == alarm for x in webhooks.posts), MSG_TIMEOUT,
               "the webhook POST", alive=alive)
    # a console user: the password is hashed in a child process (fork, pipe,
    # wait4 must pass the unit's system call filter too)
    p = subprocess.run(member + [telecarectl, "--socket", str(d.socket), "user", "add", "anna",
                                 "--role", "dispatcher"], input="correct horse battery\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"user add in the sandbox: {p.stdout}{p.stderr}"
    rc, out, err = d.ctl("user", "list", json_out=True)
    assert rc == 0 and [u["name"] for u in json.loads(out)] == ["anna"], (rc, out, err)
    r, _ = mqtt.event("p1", {"id": "e-1", "type": "panic", "battery": 80})
    assert r["status"] == "duplicate", r
    wait_until(lambda: any(x.startswith("WATCHDOG=1") for x in notify.lines), 10,
               "a watchdog ping", alive=alive)

    # a member of the group backs up the live database (telecarectl reads it
    # itself: the state directory's 0750 and UMask=0027 must allow that)
    backups = base / "backups"
    backups.mkdir()
    os.chown(backups, admin.uid, admin.gid)
    p = run(member + [telecarectl, "--socket", str(d.socket), "backup",
                      str(backups / "copy.db")])
    assert p.returncode == 0, f"a member of the group cannot back up: {p.stdout}{p.stderr}"
    con = sqlite3.connect(f"file:{backups / 'copy.db'}?mode=ro", uri=True)
    try:
        copied = con.execute("SELECT eid, type FROM events WHERE device_id = 'p1'").fetchall()
        assert copied == [('"e-1"', "panic")], copied
    finally:
        con.close()
    p = run(stranger + [telecarectl, "--socket", str(d.socket), "backup",
                        str(backups / "other.db")])
    assert p.returncode != 0 and not (backups / "other.db").exists(), (p.returncode, p.stderr)

    # files the daemon made: UMask=0027, its user and group
    for f in ("telecare.db", "telecare.db-wal", "telecare.db-shm"):
        fst = os.stat(state / f)
        assert (oct(fst.st_mode & 0o777), fst.st_uid, fst.st_gid) == (oct(0o640), uid, gid), f

    # the unit's ExecReload=, run as the service user the way systemd would
    reload_cmd = unit["ExecReload"][0].replace("$MAINPID", str(pid))
    readies = notify.lines.count("READY=1")
    p = run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
             "--bounding-set=-all", "--"] + reload_cmd.split())
    assert p.returncode == 0, f"ExecReload failed: {p.stderr}"
    wait_until(lambda: "RELOADING=1" in notify.lines and notify.lines.count("READY=1") > readies,
               10, "RELOADING=1 and READY=1 after ExecReload", alive=alive)
    wait_until(lambda: "configuration reloaded" in tail(d.log), 10, "the reload in the log",
               alive=alive)

    # SIGTERM to the daemon (not to strace): a clean stop
    os.kill(pid, signal.SIGTERM)
    rc = proc.wait(30)
    assert rc == 0, f"exit status {rc} after SIGTERM:\n{tail(d.log)}"
    assert "STOPPING=1" in notify.lines, notify.lines

    findings, used = sandbox_findings(trace_file.read_text(), pid,
                                      [str(state), str(runtime)], telecared)
    assert not findings, "the unit's sandbox would refuse:\n" + "\n".join(findings[:60])
    assert {"socket", "connect", "epoll_wait"} <= used, sorted(used)


def status_connected(d):
    rc, out, _ = run_ctl(d.socket, "status", json_out=True, timeout=10)
    return rc == 0 and json.loads(out)["mqtt"]["connected"]
