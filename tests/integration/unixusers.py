"""Real Unix users and groups for the tests of the control socket's roles
(SPEC 6.1), created with useradd/groupadd and removed afterwards.

The role groups (telecare-admin, telecare-dispatch, telecare-install) have
fixed names, so tests running at the same time share them: each holds a
shared lock on LOCK while it uses them; the groups are created under the
exclusive lock when missing, recorded in MARK, and removed by the last test
out (the one that gets the exclusive lock without waiting). Groups that
existed before any test are never removed. Users get random names and are
always removed.

    with UnixIdentities() as ids:
        anna = ids.user(groups=["telecare-dispatch"])
        run(anna.cmd(["telecarectl", ...]))
"""
import fcntl
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

ROLE_GROUPS = ("telecare-admin", "telecare-dispatch", "telecare-install")
LOCK = "/run/lock/telecare-tests-unix.lock"
MARK = "/run/lock/telecare-tests-unix.groups"


def _run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


class User:
    def __init__(self, name):
        pw = pwd.getpwnam(name)
        self.name = name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid

    def cmd(self, argv, init_groups=True, gid=None, groups=None):
        """argv run as this user with setpriv: their uid and primary group
        (or gid), and their supplementary groups from the user database
        (or exactly groups, or none)."""
        base = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid if gid is None else gid}"]
        if groups is not None:
            base.append("--groups=" + ",".join(str(g) for g in groups) if groups
                        else "--clear-groups")
        elif init_groups:
            base.append("--init-groups")
        else:
            base.append("--clear-groups")
        return base + ["--"] + [str(a) for a in argv]


class UnixIdentities:
    def __init__(self):
        self.users = []
        self._lock = None

    def __enter__(self):
        if os.geteuid() != 0:
            pytest.fail("this test creates Unix users and groups: run it as root", pytrace=False)
        for tool in ("useradd", "userdel", "groupadd", "groupdel", "gpasswd", "setpriv"):
            if not shutil.which(tool):
                pytest.fail(f"not installed: {tool}", pytrace=False)
        self._lock = open(LOCK, "a+")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            created = []
            for g in ROLE_GROUPS:
                if not _group_exists(g):
                    _run(["groupadd", "--system", g])
                    created.append(g)
            if created:
                with open(MARK, "a") as f:
                    f.write("".join(g + "\n" for g in created))
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)   # downgrade: others may use them too
        return self

    def user(self, groups=(), primary=None):
        """A new user (no home, no login shell); primary group `primary` or
        the default one; supplementary `groups`."""
        name = "tct-" + uuid.uuid4().hex[:10]
        cmd = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        if primary:
            cmd += ["--no-user-group", "--gid", primary]
        if groups:
            cmd += ["--groups", ",".join(groups)]
        _run(cmd + [name])
        self.users.append(name)
        return User(name)

    def remove_from_group(self, user, group):
        _run(["gpasswd", "--delete", user.name, group])

    def add_to_group(self, user, group):
        _run(["gpasswd", "--add", user.name, group])

    def __exit__(self, *exc):
        problems = []
        for name in self.users:
            p = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=60)
            if p.returncode not in (0, 6):       # 6: no such user
                problems.append(f"userdel {name}: {p.stderr.strip()}")
            if _group_exists(name):              # the user's own group, when one was made
                subprocess.run(["groupdel", name], capture_output=True, timeout=60)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass                                  # another test still uses the groups
        else:
            if os.path.exists(MARK):
                with open(MARK) as f:
                    for g in sorted(set(f.read().split())):
                        if _group_exists(g):
                            p = subprocess.run(["groupdel", g], capture_output=True, text=True,
                                               timeout=60)
                            if p.returncode != 0:
                                problems.append(f"groupdel {g}: {p.stderr.strip()}")
                os.unlink(MARK)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
        if problems and exc[0] is None:
            raise AssertionError("; ".join(problems))
        return False


def public_dir(request, prefix):
    """A directory every user may reach (mode 0755; pytest's tmp_path is
    root's alone), removed after the test."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(d, ignore_errors=True))
    return d
