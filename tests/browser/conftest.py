"""Fixtures for the console's browser tests: a real headless Chromium
(Debian chromium + chromium-driver, python3-selenium) driving the console
served by the real telecared, against a real mosquitto and a real SQLite
file. The broker and daemon fixtures are tests/integration/conftest.py's.

    TELECARE_BUILD=$PWD/build /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/browser

Screenshots of each screen go to docs/screenshots/ (committed, shown in the
README)."""
import importlib.util
import os
import re
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "telecare_integration_conftest", os.path.join(_here, "..", "integration", "conftest.py"))
integ = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(integ)

# The integration suite's fixtures and hooks, reused as they are.
broker = integ.broker
mqtt_factory = integ.mqtt_factory
mqtt = integ.mqtt
daemon = integ.daemon
pytest_collection_modifyitems = integ.pytest_collection_modifyitems
pytest_runtest_makereport = integ.pytest_runtest_makereport

PREFIX = integ.PREFIX
REPO = integ.REPO
free_port = integ.free_port
wait_until = integ.wait_until

CHROMIUM = os.environ.get("TELECARE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TELECARE_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = os.path.join(REPO, "docs", "screenshots")
WAIT = 15.0

PASSWORD = {"anna": "anna-night-shift", "ian": "ian-installs", "jan": "jan-on-call",
            "boss": "boss-admin-pass", "sue": "sue-on-call"}




def control(d, cmd, args=None):
    """One request on the daemon's control socket (as root: admin)."""
    return d.request(cmd, args)


class Site:
    def __init__(self, d, port):
        self.d = d
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"


def pytest_configure(config):
    config.addinivalue_line("markers", "site(section={key: value}): more daemon configuration")


@pytest.fixture
def site(daemon, request):
    """telecared with HTTP on a free port serving this checkout's console/,
    a care centre's worth of people: residents in teams north and south, a
    worker on duty in each team, and a console user of every role. A test
    marked @pytest.mark.site(alarms={...}) adds configuration."""
    port = free_port()
    cfg = {"http": {"listen": f"127.0.0.1:{port}", "root": os.path.join(REPO, "console")},
           "policy urgent": {"priorities": "1", "step": "on_duty:@team wait 10m"},
           "policy high": {"priorities": "2", "step": "on_duty:@team wait 10m"}}
    marker = request.node.get_closest_marker("site")
    for section, keys in (marker.kwargs if marker else {}).items():
        cfg.setdefault(section, {}).update(keys)
    d = daemon(cfg)
    control(d, "resident.add", {"id": "r-17", "name": "Anna Kowalska", "address": "ul. Słowackiego 12/3, Kraków",
                                "phone": "+48 600 000 017", "team": "north",
                                "notes": "Key safe left of the door, code 1234. Diabetic."})
    control(d, "resident.add", {"id": "r-18", "name": "Józef Wiśniewski", "address": "ul. Długa 5, Kraków",
                                "phone": "+48 600 000 018", "team": "south"})
    control(d, "device.add", {"id": "pendant-17", "resident": "r-17", "kind": "pendant"})
    control(d, "device.add", {"id": "pendant-18", "resident": "r-18", "kind": "pendant"})
    for wid, name, team in (("w-jan", "Jan Nowak", "north"), ("w-sue", "Zuzanna Lis", "south")):
        control(d, "worker.add", {"id": wid, "name": name, "team": team, "phone": "+48 600 100 200"})
        control(d, "shift.add", {"worker": wid, "always": True})
    for name, role, worker in (("anna", "dispatcher", None), ("ian", "installer", None),
                               ("jan", "worker", "w-jan"), ("sue", "worker", "w-sue"),
                               ("boss", "admin", None)):
        args = {"name": name, "role": role, "password": PASSWORD[name]}
        if worker:
            args["worker"] = worker
        control(d, "user.add", args)
    return Site(d, port)


class Browser:
    """One Chromium with its own profile; helpers that wait, never sleep."""

    def __init__(self, driver, site):
        self.driver = driver
        self.site = site
        self.expected = []    # patterns of console errors a test provokes on purpose

    # -- waiting
    def wait(self, cond, what, timeout=WAIT):
        def safe(drv):
            try:
                return cond(drv)
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(safe)
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"page {self.driver.current_url!r}:\n{self.text()[:3000]}") from None

    def find(self, css, root=None):
        return (root or self.driver).find_element(By.CSS_SELECTOR, css)

    def finds(self, css, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, css)

    def element(self, css, what=None, visible=True):
        def cond(drv):
            for el in drv.find_elements(By.CSS_SELECTOR, css):
                if not visible or el.is_displayed():
                    return el
            return False
        return self.wait(cond, what or css)

    def gone(self, css, what=None):
        self.wait(lambda drv: not drv.find_elements(By.CSS_SELECTOR, css), what or f"{css} to go")

    def text_in(self, css, text, what=None, timeout=WAIT):
        return self.wait(lambda drv: any(text in el.text for el in drv.find_elements(By.CSS_SELECTOR, css)),
                         what or f"{text!r} in {css}", timeout)

    def text(self):
        try:
            return self.find("body").text
        except Exception:
            return ""

    # -- doing
    def open(self, path=""):
        self.driver.get(self.site.url + path)

    def go(self, route):
        self.driver.execute_script("location.hash = arguments[0]", "#/" + route)

    def login(self, user, password=None):
        self.open()
        name = self.element("input[name=username]", "the login form")
        name.clear()
        name.send_keys(user)
        pw = self.find("input[name=password]")
        pw.clear()
        pw.send_keys(password or PASSWORD[user])
        self.find("form.login-form button[type=submit]").click()
        self.element("#user-menu", f"{user} to be logged in")

    def menu(self):
        """Open the user's menu (language, theme, shortcuts, log out)."""
        m = self.element("#user-menu")
        if m.get_attribute("open") is None:
            m.find_element(By.TAG_NAME, "summary").click()
        self.element("#user-menu[open] .menu-body")

    def click(self, css):
        el = self.element(css)
        el.click()
        return el

    def clear_toasts(self):
        self.driver.execute_script("document.querySelectorAll('.toast').forEach(t => t.remove())")

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        # passing notices ("Alarm 1 acknowledged.") would cover the screen's corner
        self.clear_toasts()
        self.driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))

    def errors(self):
        """The browser's console errors: a JavaScript exception, a CSP
        violation, a missing file. Chromium also logs every API answer of
        4xx (the session probe before login, a refused import the test
        provokes): the console shows those to the user, so they are not
        errors of the page."""
        out = []
        for e in self.driver.get_log("browser"):
            if e["level"] != "SEVERE":
                continue
            msg = e["message"]
            if re.search(r"/api/\S* - Failed to load resource: the server responded with a status of 4\d\d", msg):
                continue
            if any(re.search(p, msg) for p in self.expected):
                continue
            out.append(msg)
        return out


@pytest.fixture
def browser(site, tmp_path, request):
    """browser(width=1366, height=900, lang="en") -> Browser. Each one is a
    fresh Chromium profile; all are closed at the end, pass or fail, and none
    may have logged a JavaScript or CSP error."""
    made = []

    def make(width=1366, height=900, lang="en"):
        profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
                  f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--lang={lang}",
                  "--force-device-scale-factor=1"):
            o.add_argument(a)
        o.add_experimental_option("prefs", {"intl.accept_languages": lang})
        if width < 500:
            # headless Chromium keeps windows at least 500 px wide: a phone
            # is emulated (its viewport, touch, and a phone's user agent)
            o.add_experimental_option("mobileEmulation", {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0, "touch": True},
                "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                             "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"})
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        drv.set_page_load_timeout(30)
        b = Browser(drv, site)
        made.append(b)
        return b

    yield make
    problems = []
    for b in made:
        try:
            errs = b.errors()
            if errs:
                problems.append("browser console errors:\n" + "\n".join(errs))
        finally:
            b.driver.quit()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def panic(mqtt, device="pendant-17", eid=None, type_="panic", **extra):
    """A device event over MQTT; returns the alarm its receipt names."""
    payload = {"id": eid or f"e-{time.monotonic_ns()}", "type": type_, **extra}
    receipt, _ = mqtt.event(device, payload)
    assert receipt["status"] == "stored", receipt
    return receipt["alarm"]
