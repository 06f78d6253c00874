"""Webhook URLs are checked when a worker is added (issue 11), with
libcurl's URL parser: http or https, a host, no spaces or control
characters. A refused worker is not added, and the reason is given at
once instead of a failed delivery at alert time."""
import pytest


@pytest.fixture
def d(daemon):
    return daemon()


@pytest.mark.parametrize("url, why", [
    ("http://", "webhook \"http://\" is not a usable http:// or https:// URL"),
    ("https://", "is not a usable"),
    ("http://exa mple.org/hook", "contains a space"),
    ("http://example.org/hook\r\nX-Injected: 1", "contains a control character"),
    ("http://example.org/\x7f", "contains a control character"),
    ("ftp://example.org/hook", "its scheme is ftp, not http or https"),
    ("file:///etc/passwd", "not http or https"),
    ("example.org/hook", "is not a usable"),
])
def test_bad_webhook_refused(d, url, why):
    rc, out, err = d.ctl("worker", "add", "w-1", "--name", "Jan", "--webhook", url)
    assert rc == 1, (rc, out, err)
    assert why in err and "worker w-1" in err, err
    assert d.ctl_json("worker", "list") == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/alert", "https://hooks.example.org/a?b=c",
                                 "HTTPS://Example.org/X", "http://[::1]:9/x"])
def test_good_webhook_accepted(d, url):
    rc, out, err = d.ctl("worker", "add", "w-1", "--name", "Jan", "--webhook", url)
    assert rc == 0, err
    assert d.ctl_json("worker", "show", "w-1")["webhook"] == url
