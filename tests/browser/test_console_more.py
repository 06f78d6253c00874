"""More of the console against the real daemon: an installer's residents,
devices and unregistered devices; a mass incident on the queue; what the
console does when the broker goes away and when the daemon restarts."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import control, panic

ALARM = "[data-alarm='{}']"


def test_installer_manages_residents_and_devices(site, browser, mqtt):
    b = browser()
    b.login("ian")
    b.go("residents")
    b.text_in(".residents table", "Anna Kowalska")
    b.click("details.add > summary")
    form = b.element("#resident-add")
    for name, value in (("id", "r-40"), ("name", "Helena Mazur"), ("address", "os. Centrum 7/12"),
                        ("phone", "+48 600 000 040"), ("team", "north"),
                        ("notes", "Key safe: 4321. Hard of hearing: call twice.")):
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.element("[data-resident='r-40']", "the new resident in the list")
    got = control(site.d, "resident.show", {"id": "r-40"})
    assert got["name"] == "Helena Mazur" and got["notes"].startswith("Key safe: 4321")

    # a device for her, supervised every 15 minutes
    b.go("devices")
    b.click("details.add > summary")
    form = b.element("#device-add")
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#device-add select[name=resident] option[value='r-40']"),
           "the residents in the form")
    form.find_element(By.NAME, "id").send_keys("wrist-40")
    Select(form.find_element(By.NAME, "resident")).select_by_value("r-40")
    form.find_element(By.NAME, "kind").send_keys("wristband")
    form.find_element(By.NAME, "heartbeat").send_keys("fortnight")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.text_in("#device-add .form-error", '"fortnight" is not a duration')
    form.find_element(By.NAME, "heartbeat").clear()
    form.find_element(By.NAME, "heartbeat").send_keys("15m")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.element("[data-device='wrist-40']", "the new device in the list")
    dev = {d["id"]: d for d in control(site.d, "device.list")}["wrist-40"]
    assert dev["resident"] == "r-40" and dev["heartbeat_ms"] == 900000 and dev["kind"] == "wristband"

    # a resident with a device cannot be removed: the daemon's reason is shown
    b.go("residents")
    row = b.element("[data-resident='r-40']")
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    b.element("dialog[open] .btn.danger").click()
    b.text_in(".toast.error", "r-40")
    # the device can, then the resident; each removal is confirmed, not an error
    b.clear_toasts()
    b.go("devices")
    b.element("[data-device='wrist-40'] button.danger").click()
    b.element("dialog[open] .btn.danger").click()
    b.text_in(".toast", "wrist-40")
    assert not b.finds(".toast.error"), b.find(".toast.error").text
    b.text_in(".toast.ok", "Device wrist-40 removed")
    b.gone("[data-device='wrist-40']")
    b.go("residents")
    b.element("[data-resident='r-40'] button.danger").click()
    b.element("dialog[open] .btn.danger").click()
    b.text_in(".toast", "r-40")
    assert not b.finds(".toast.error"), b.find(".toast.error").text
    b.gone("[data-resident='r-40']")
    assert "wrist-40" not in {d["id"] for d in control(site.d, "device.list")}

    # a pendant nobody registered speaks: it is listed, and adopted with its events
    receipt, _ = mqtt.event("stray-7", {"id": "s-1", "type": "heartbeat"})
    assert receipt["status"] == "stored"
    b.go("devices/unknown")
    row = b.element("[data-device='stray-7']", "the unregistered device")
    assert "Heartbeat" in row.text
    b.shot("unknown")
    row.find_element(By.CSS_SELECTOR, "button").click()
    dlg = b.element("dialog[open]")
    b.wait(lambda d: dlg.find_elements(By.CSS_SELECTOR, "select[name=resident] option[value='r-18']"),
           "the residents in the dialog")
    Select(dlg.find_element(By.NAME, "resident")).select_by_value("r-18")
    dlg.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.gone("[data-device='stray-7']")
    assert {d["id"]: d for d in control(site.d, "device.list")}["stray-7"]["resident"] == "r-18"


@pytest.mark.site(alarms={"mass_devices": "3", "mass_window": "2m", "mass_hold": "500ms"})
def test_a_mass_incident_is_one_line_with_its_device_count(site, browser, mqtt):
    for i in range(6):
        control(site.d, "device.add", {"id": f"base-{i}", "resident": "r-17" if i < 4 else "r-18"})
    b = browser()
    b.login("anna")
    b.element(".alarm-list")
    for i in range(6):
        receipt, _ = mqtt.event(f"base-{i}", {"id": "pl-1", "type": "power_loss"})
        assert receipt["status"] == "stored"
    inc = b.element(".alarm .incident", "the mass incident on the queue")
    b.wait(lambda d: "6 devices" in d.find_element(By.CSS_SELECTOR, ".alarm .incident").text,
           "the incident to count six devices")
    card = inc.find_element(By.XPATH, "ancestor::li[@data-alarm]")
    assert "Mass incident" in card.text and "Power loss" in card.text
    assert "north: 4" in inc.text and "south: 2" in inc.text, inc.text
    # one line, not six: the folded per-device alarms are not on the queue
    assert len(b.finds(".alarm-list [data-alarm]")) == 1
    b.shot("incident")
    card.find_element(By.CSS_SELECTOR, "a.open").click()
    b.text_in(".incident-card", "6 devices")
    b.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".incident-card tbody tr")) == 6, "its members")
    b.go("health")
    b.text_in(".health-grid", "1 incident")


def test_the_console_shows_a_lost_broker_and_survives_a_daemon_restart(site, browser, mqtt, broker):
    alarm = panic(mqtt, "pendant-17")
    b = browser()
    b.login("anna")
    b.element(ALARM.format(alarm))
    b.element("body[data-stream=live]", "the live stream")
    # SPEC 2.7: consoles must show a gateway cut off from its broker
    broker.stop()
    b.text_in(".banner.bad", "lost its link to the MQTT broker", timeout=30)
    b.shot("broker-lost")
    broker.start()
    b.gone(".banner.bad", "the broker banner to go once the link is back")

    # a crash and restart ends every session: the console says so and asks
    # to log in (the browser notes the stream cut off and refused meanwhile)
    b.expected.append(r"/api/(stream|session) - Failed to load resource: net::ERR_")
    site.d.restart()
    b.text_in("#login-error", "Your session has ended", timeout=30)
    b.login("anna")
    b.element(ALARM.format(alarm), "the alarm again after the restart")
    b.element("body[data-stream=live]", "the live stream again")
    # and it is live again: a new alarm arrives without a reload
    second = panic(mqtt, "pendant-18", type_="fall")
    b.element(ALARM.format(second))
