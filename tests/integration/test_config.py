"""telecared --check-config (SPEC 5): 0 for a valid file; non-zero with
`FILE:LINE: message` on stderr for a bad one."""
import re
import subprocess

import pytest

from conftest import TELECARED

GOOD = """\
# a full configuration
[mqtt]
host = 127.0.0.1
port = 1883
client_id = telecared
topic_prefix = telecare
keepalive = 30
max_payload = 4096

[store]
path = {tmp}/telecare.db

[control]
socket = {tmp}/control.sock

[alarms]
unknown_devices = log

[priorities]
inactivity = 1

[outcomes]
list = assisted_by_phone, visit, ambulance, police, fire, false_alarm, user_cancelled, technical_fixed, restored, test
"""


def check(path, timeout=15):
    p = subprocess.run([TELECARED, "--check-config", "-c", str(path)], capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_good_config(tmp_path):
    conf = tmp_path / "good.conf"
    conf.write_text(GOOD.format(tmp=tmp_path))
    rc, out, err = check(conf)
    assert rc == 0, f"valid file refused: {err}"
    assert not (tmp_path / "telecare.db").exists(), "--check-config must not open the store"


def test_minimal_config(tmp_path):
    conf = tmp_path / "min.conf"
    conf.write_text("[mqtt]\nhost = 127.0.0.1\n")
    rc, out, err = check(conf)
    assert rc == 0, err


def test_option_order(tmp_path):
    conf = tmp_path / "good.conf"
    conf.write_text(GOOD.format(tmp=tmp_path))
    p = subprocess.run([TELECARED, "-c", str(conf), "--check-config"], capture_output=True,
                       text=True, timeout=15, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr


# (name, line to put on line 3 of the file, section it lives in)
BAD = [
    ("port_not_a_number", "port = many", "mqtt"),
    ("port_out_of_range", "port = 70000", "mqtt"),
    ("max_payload_zero", "max_payload = 0", "mqtt"),
    ("max_payload_garbage", "max_payload = lots", "mqtt"),
    ("keepalive_garbage", "keepalive = x", "mqtt"),
    ("unknown_devices_value", "unknown_devices = sometimes", "alarms"),
    ("priority_of_unknown_type", "explode = 1", "priorities"),
    ("priority_zero", "panic = 0", "priorities"),
    ("priority_not_a_number", "panic = urgent", "priorities"),
    ("not_ini", "this line is not ini", "mqtt"),
]


@pytest.mark.parametrize("name,line,section", BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_file_and_line(tmp_path, name, line, section):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"# line 1\n[{section}]\n{line}\n\n[store]\npath = {tmp_path}/x.db\n")
    rc, out, err = check(conf)
    assert rc != 0, f"{line!r} accepted"
    assert re.search(rf"(^|: ){re.escape(str(conf))}:3: \S", err, re.M), \
        f"expected '{conf}:3: message' on stderr, got: {err!r}"


def test_missing_file(tmp_path):
    rc, out, err = check(tmp_path / "nope.conf")
    assert rc != 0
    assert "nope.conf" in err, err


def test_bad_config_refuses_to_start(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[mqtt]\nport = many\n")
    p = subprocess.run([TELECARED, "-c", str(conf)], capture_output=True, text=True,
                       timeout=15, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert f"{conf}:2:" in p.stderr, p.stderr
