"""Fixtures of the crash and fault drills: the integration suite's real broker
and daemon (see chaoslib.py), a tmpfs the drill mounts, and the report.

    /usr/bin/python3 -m pytest -q -s tests/chaos        (or tests/chaos/run.sh)
"""
import os
import subprocess

import pytest

import chaoslib as cl


@pytest.fixture
def broker(tmp_path, request):
    b = cl.Broker(tmp_path)
    # as config/mosquitto.conf ships it: without TCP_NODELAY every receipt waits
    # ~40 ms for a delayed ACK (Nagle), which would hide what the drills measure
    extra = os.environ.get("CHAOS_BROKER_EXTRA", "set_tcp_nodelay true")
    if extra:
        b.conf.write_text(b.conf.read_text() + extra.replace("\\n", "\n") + "\n")
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])
    request.node._telecare_logs.append(("mosquitto", b.log))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def daemon(tmp_path, broker, request):
    """Factory like the integration suite's: daemon(overrides, extra_lines=...)."""
    made = []
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])

    def make(overrides=None, start=True, name=None, extra_lines="", db_path=None):
        d = cl.Daemon(tmp_path, broker, overrides, name=name or f"telecared{len(made) or ''}",
                      extra_lines=extra_lines)
        if db_path is not None:
            # the store somewhere else (the tmpfs drill): rewrite the config
            d.db = db_path
            text = d.conf.read_text().replace(f"path = {d.dir / 'telecare.db'}",
                                              f"path = {db_path}")
            d.conf.write_text(text)
        made.append(d)
        request.node._telecare_logs.append((d.name, d.log))
        if start:
            d.start()
        return d

    yield make
    problems = []
    for d in made:
        problems += d.cleanup()
    if problems:
        pytest.fail("; ".join(problems) + "\n" + "\n".join(
            f"--- {d.name} log ---\n{cl.tail(d.log)}" for d in made), pytrace=False)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) -> a directory on a fresh tmpfs of that size, unmounted in
    teardown whatever happens. A mount that fails fails the drill: the drill
    needs root (or CAP_SYS_ADMIN); skipping would prove nothing."""
    mounted = []

    def mount(size):
        d = tmp_path / f"tmpfs{len(mounted)}"
        d.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs of {size} on {d} (rc {p.returncode}: "
                        f"{p.stderr.strip()}); the disk-full drill needs root or CAP_SYS_ADMIN "
                        f"(EPERM means the sandbox forbids mounts)", pytrace=False)
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        p = subprocess.run(["umount", str(d)], capture_output=True, text=True)
        if p.returncode != 0:
            subprocess.run(["umount", "-l", str(d)], capture_output=True, text=True)


def pytest_collection_modifyitems(config, items):
    missing = [p for p in (cl.TELECARED, cl.TELECARECTL) if not os.access(p, os.X_OK)]
    if missing and items:
        raise pytest.UsageError(f"not built: {', '.join(missing)} (build, or set TELECARE_BUILD)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    drill = getattr(getattr(item, "function", None), "chaos_drill", item.name)
    entry = cl.REPORT["drills"].setdefault(drill, {})
    if rep.when == "call" or (rep.when == "setup" and rep.failed):
        entry["test"] = item.nodeid
        entry["outcome"] = rep.outcome
        entry["duration_s"] = round(rep.duration, 1)
        if rep.failed:
            entry["failure"] = str(rep.longrepr.reprcrash.message)[:2000] \
                if hasattr(rep.longrepr, "reprcrash") else str(rep.longrepr)[-2000:]
    if rep.failed and rep.when in ("setup", "call", "teardown"):
        for name, path in getattr(item, "_telecare_logs", []):
            rep.sections.append((f"{name} log ({path})", cl.tail(path)))
        entry["outcome"] = "failed"
        if rep.when == "teardown":
            entry["teardown_failure"] = str(rep.longrepr)[-2000:]


def pytest_sessionfinish(session, exitstatus):
    cl.REPORT["exitstatus"] = int(exitstatus)
    cl.write_report()
