"""The console in a real browser against the real daemon (issue 12, SPEC 8):
what a dispatcher, an installer and a care worker do with it, in English and
in Polish. Each test also saves screenshots of the screens it passes through
to docs/screenshots/."""
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import PASSWORD, PREFIX, control, panic

ALARM = "[data-alarm='{}']"


def alarm_card(b, alarm):
    return b.element(ALARM.format(alarm), f"alarm {alarm} on the queue")


def test_dispatcher_logs_in_and_the_queue_is_live(site, browser, mqtt):
    b = browser()
    b.open()
    b.element("input[name=username]", "the login form")
    b.shot("login")
    # a wrong password is said in the user's language, and the form stays
    b.find("input[name=username]").send_keys("anna")
    b.find("input[name=password]").send_keys("not her password")
    b.find("form.login-form button[type=submit]").click()
    b.text_in("#login-error", "Wrong user name or password")
    # the daemon slows the next try down (429, Retry-After): the form says how long
    b.find("input[name=password]").send_keys(PASSWORD["anna"])
    b.find("form.login-form button[type=submit]").click()
    b.text_in("#login-error", "Too many failed attempts. Try again in")
    assert not b.find("form.login-form button[type=submit]").is_enabled()
    b.text_in("#login-error", "You can try again now", timeout=90)
    b.login("anna")
    b.element(".alarm-list", "the queue")
    assert "Alarms" in b.find("main h1").text
    # the console asks once for sound (a click is the gesture browsers want)
    b.click("#sound-enable")
    b.gone("#sound-enable", "the sound question to go")
    b.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-sound") == "on",
           "the audio context to run")
    # the page is not reloaded from here on: a marker on window survives
    b.driver.execute_script("window.__noReload = 42")

    alarm = panic(mqtt, "pendant-17", loc={"lat": 50.0614, "lon": 19.9366, "acc": 25})
    card = alarm_card(b, alarm)
    assert "Anna Kowalska" in card.text and "Słowackiego" in card.text
    assert card.get_attribute("data-priority") == "1"
    for action in ("ack", "note", "resolve"):
        assert card.find_elements(By.CSS_SELECTOR, f"[data-action={action}]"), action
    # the title and the icon count urgent alarms nobody has taken
    b.wait(lambda d: d.title.startswith("(1) "), "the title to count one urgent alarm")
    assert b.driver.execute_script("return document.getElementById('favicon').href").startswith(
        "data:image/svg+xml")
    assert b.find("body").get_attribute("data-alerting") == "true"

    # a second, less urgent alarm goes below it (priority, then age)
    second = panic(mqtt, "pendant-18", type_="inactivity")
    alarm_card(b, second)
    ids = [el.get_attribute("data-alarm") for el in b.finds(".alarm-list [data-alarm]")]
    assert ids.index(str(alarm)) < ids.index(str(second)), ids
    assert b.driver.execute_script("return window.__noReload") == 42
    b.shot("queue")

    # keyboard: the help overlay, then j/k to move
    b.find("body").send_keys("?")
    b.element("dialog.help[open]", "the shortcuts overlay")
    b.shot("shortcuts")
    b.find("dialog.help").send_keys(Keys.ESCAPE)
    b.gone("dialog.help[open]")
    b.find("body").send_keys("j")
    b.wait(lambda d: d.switch_to.active_element.get_attribute("data-alarm") == str(second),
           "j to select the next alarm")
    b.driver.switch_to.active_element.send_keys("k")
    b.wait(lambda d: d.switch_to.active_element.get_attribute("data-alarm") == str(alarm),
           "k to select the previous alarm")
    # a acknowledges the selected alarm: the pendant hears "help is coming"
    mark = mqtt.mark(f"{PREFIX}/dev/pendant-17/alarm")
    b.driver.switch_to.active_element.send_keys("a")
    mqtt.wait_for(f"{PREFIX}/dev/pendant-17/alarm", lambda m: m.json()["state"] == "acknowledged",
                  after=mark)
    b.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-alerting") == "false",
           "the tone to stop once the urgent alarm is taken")


def test_acknowledging_on_the_queue_tells_the_device_and_resolving_clears_it(site, browser, mqtt):
    b = browser()
    b.login("anna")
    alarm = panic(mqtt, "pendant-17")
    card = alarm_card(b, alarm)
    mark = mqtt.mark(f"{PREFIX}/dev/pendant-17/alarm")
    card.find_element(By.CSS_SELECTOR, "[data-action=ack]").click()
    got = mqtt.wait_for(f"{PREFIX}/dev/pendant-17/alarm",
                        lambda m: m.json()["state"] == "acknowledged", after=mark)
    assert got.json()["alarm"] == alarm
    # the card says who took it, and the urgent count (title, sound) drops
    b.wait(lambda d: d.find_element(By.CSS_SELECTOR, ALARM.format(alarm)).get_attribute("data-state")
           == "acknowledged", "the card to show the acknowledgement")
    b.wait(lambda d: not d.title.startswith("("), "the title to drop the urgent count")
    assert b.find("body").get_attribute("data-alerting") == "false"

    # resolve with an outcome: a dialog asks for it
    alarm_card(b, alarm).find_element(By.CSS_SELECTOR, "[data-action=resolve]").click()
    dlg = b.element("dialog.act-resolve[open]", "the resolve dialog")
    submit = dlg.find_element(By.CSS_SELECTOR, "button[type=submit]")
    submit.click()   # no outcome chosen: refused in the dialog, nothing sent
    b.text_in("dialog.act-resolve .form-error", "Choose an outcome")
    Select(dlg.find_element(By.NAME, "outcome")).select_by_value("visit")
    dlg.find_element(By.NAME, "note").send_keys("Fell in the kitchen, unhurt; daughter informed.")
    b.shot("resolve")
    mark = mqtt.mark(f"{PREFIX}/alarms/{alarm}")
    submit.click()
    b.gone(ALARM.format(alarm), f"alarm {alarm} to leave the queue")
    # the board topic is cleared: the alarm no longer needs anyone
    mqtt.wait_for(f"{PREFIX}/alarms/{alarm}", lambda m: m.payload == b"", after=mark)
    shown = control(site.d, "alarm.show", {"id": alarm})
    assert shown["state"] == "resolved" and shown["outcome"] == "visit"
    assert any(e["what"] == "resolved" and e["actor"] == "user anna" for e in shown["timeline"])
    b.text_in(".empty-queue", "No alarms need attention")


def test_the_alarm_page_shows_the_resident_and_a_live_timeline(site, browser, mqtt):
    b = browser()
    b.login("anna")
    alarm = panic(mqtt, "pendant-17", type_="fall", loc={"lat": 50.0614, "lon": 19.9366, "acc": 25})
    alarm_card(b, alarm).find_element(By.CSS_SELECTOR, "a.open").click()
    card = b.element("#resident-card", "the resident's card")
    for text in ("Anna Kowalska", "ul. Słowackiego 12/3, Kraków", "+48 600 000 017",
                 "Key safe left of the door, code 1234"):
        assert text in card.text, (text, card.text)
    loc = b.find(".location-card")
    assert "50.061400, 19.936600" in loc.text and "25" in loc.text
    osm = loc.find_element(By.PARTIAL_LINK_TEXT, "OpenStreetMap").get_attribute("href")
    assert osm.startswith("https://www.openstreetmap.org/?mlat=50.061400&mlon=19.936600")
    b.element("#timeline [data-what=opened]", "the timeline's first row")
    b.element("#timeline [data-what=alerted]", "the alert to Jan in the timeline")

    # the timeline is live: Jan, on his phone app (MQTT), adds a note
    mqtt.publish(f"{PREFIX}/worker/w-jan/action", {"alarm": alarm, "action": "note",
                                                   "note": "On my way, 10 minutes."})
    b.text_in("#timeline [data-what=note]", "On my way, 10 minutes.")
    # a note from here, acting for Jan (SPEC 6.1: a dispatcher acts for a worker)
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#act-as option[value=w-jan]"), "the workers in 'acting as'")
    Select(b.find("#act-as")).select_by_value("w-jan")
    b.find(".act-bar [data-action=note]").click()
    dlg = b.element("dialog.act-note[open]", "the note dialog")
    assert Select(dlg.find_element(By.NAME, "as")).first_selected_option.get_attribute("value") == "w-jan"
    dlg.find_element(By.NAME, "note").send_keys("Called the daughter.")
    dlg.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.text_in("#timeline [data-what=note]", "Called the daughter.")
    rows = [el.text for el in b.finds("#timeline [data-what=note]")]
    assert any("w-jan (by user anna)" in r for r in rows), rows
    b.shot("alarm")


def test_installer_imports_a_csv_and_tests_a_device(site, browser, mqtt):
    b = browser()
    b.login("ian")
    # an installer has no alarm queue; their home is the devices
    b.element(".devices", "the devices screen")
    assert not b.finds(".main-nav [data-nav=alarms]")
    b.shot("devices")
    b.go("devices/import")
    text = b.element("#import-text")
    text.send_keys("id,resident,kind,heartbeat\n"
                   "pendant-30,r-17,pendant,15m\n"
                   "pendant-31,r-99,pendant,\n"
                   "bad id!,r-18,,\n")
    b.click("#import-submit")
    b.element("#import-errors .bad-line", "the bad lines")
    lines = {el.get_attribute("data-line"): el.text for el in b.finds("#import-errors .bad-line")}
    assert set(lines) == {"3", "4"}, lines
    assert "r-99" in lines["3"] and "bad id!" in lines["4"]
    assert b.find("#import-errors").text.startswith("Nothing was imported")
    b.shot("import-errors")
    devices = {d["id"] for d in control(site.d, "device.list")}
    assert "pendant-30" not in devices   # all or nothing

    text.clear()
    text.send_keys("id,resident,kind,heartbeat\npendant-30,r-17,pendant,15m\npendant-31,r-18,pendant,\n")
    b.click("#import-submit")
    b.text_in("#import-result", "2 devices imported")
    devices = {d["id"]: d for d in control(site.d, "device.list")}
    assert devices["pendant-30"]["resident"] == "r-17" and devices["pendant-30"]["heartbeat_ms"] == 900000
    b.shot("import")

    # the device test: its stages light up as the pressed button goes through
    b.find("#import-result a[href='#/device/pendant-30']").click()
    b.click("#test-start")
    b.element("[data-stage=waiting][data-state=done]", "the test to be waiting")
    b.text_in(".verdict", "press the button")
    for stage in ("received", "stored", "receipt_sent", "alerted"):
        assert b.find(f"[data-stage={stage}]").get_attribute("data-state") == "pending"
    receipt, _ = mqtt.event("pendant-30", {"id": "test-1", "type": "panic"})
    assert receipt["status"] == "stored"
    for stage in ("received", "stored", "receipt_sent", "alerted"):
        b.element(f"[data-stage={stage}][data-state=done]", f"the test stage {stage}")
    b.text_in(".verdict", "Test passed")
    b.shot("device-test")
    # a test alarm never reaches the on-duty worker nor the board
    assert control(site.d, "alarm.show", {"id": receipt["alarm"]})["outcome"] == "test"


def test_a_worker_on_a_phone_sees_their_alarms_and_acknowledges(site, browser, mqtt):
    mine = panic(mqtt, "pendant-17")                       # north: alerts Jan
    other = panic(mqtt, "pendant-18", type_="fall")        # south: alerts Zuzanna only
    b = browser(360, 740)
    b.login("jan")
    card = alarm_card(b, mine)
    assert not b.finds(ALARM.format(other)), "Jan must not see an alarm that did not alert him"
    assert "My alarms" in b.find("main h1").text
    # large touch targets, and nothing wider than the phone
    ack = card.find_element(By.CSS_SELECTOR, "[data-action=ack]")
    assert ack.size["height"] >= 44 and ack.size["width"] >= 88, ack.size
    width = b.driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide on a 360 px phone"
    assert not card.find_elements(By.CSS_SELECTOR, "[data-action=resolve]"), \
        "a worker resolves only what they hold"
    b.shot("worker-phone")
    mark = mqtt.mark(f"{PREFIX}/dev/pendant-17/alarm")
    ack.click()
    got = mqtt.wait_for(f"{PREFIX}/dev/pendant-17/alarm",
                        lambda m: m.json()["state"] == "acknowledged", after=mark)
    assert got.json()["by"] == "Jan Nowak"
    # now he holds it: he may resolve it
    b.element(f"{ALARM.format(mine)} [data-action=resolve]", "resolve for the worker who holds it")
    # a new alarm that alerts him arrives live; one for the south team does not
    third = panic(mqtt, "pendant-17", type_="fall", eid="again-1")
    assert third == mine   # the same device's open alarm: it joins
    fourth = panic(mqtt, "pendant-18", type_="panic")
    time.sleep(1)
    assert not b.finds(ALARM.format(fourth))
    b.shot("worker-phone-acknowledged")
    # the alarm page fits the phone too
    b.go(f"alarms/{mine}")
    b.element("#resident-card")
    width = b.driver.execute_script("return document.documentElement.scrollWidth")
    wide = b.driver.execute_script(
        "return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 361)"
        ".slice(0, 5).map(e => e.tagName + '.' + e.className)")
    assert width <= 360, f"the alarm page is {width} px wide on a 360 px phone: {wide}"
    b.shot("worker-phone-alarm")
    b.go("me")
    b.text_in(".me", "always")


def test_polish_labels(site, browser, mqtt):
    alarm = panic(mqtt, "pendant-17")
    b = browser(lang="pl")
    b.open()
    b.element("input[name=username]")
    assert b.driver.execute_script("return document.documentElement.lang") == "pl"
    assert b.find("form.login-form button[type=submit]").text == "Zaloguj"
    assert "Nazwa użytkownika" in b.find("form.login-form").text
    b.shot("login-pl")
    b.login("anna")
    card = alarm_card(b, alarm)
    nav = b.find(".main-nav").text
    for word in ("Alarmy", "Dyżury", "Raport", "Podopieczni", "Urządzenia"):
        assert word in nav, (word, nav)
    labels = {el.get_attribute("data-action"): el.text for el in card.find_elements(By.CSS_SELECTOR, "[data-action]")}
    assert labels["ack"] == "Potwierdź" and labels["resolve"] == "Rozwiąż" and labels["note"] == "Notatka"
    assert labels.get("decline") == "Odrzuć"
    assert "Pilny" in card.text and "Przycisk SOS" in card.text
    b.wait(lambda d: "Konsola teleopieki" in d.title, "the Polish title")
    b.shot("queue-pl")
    card.find_element(By.CSS_SELECTOR, "[data-action=resolve]").click()
    dlg = b.element("dialog.act-resolve[open]")
    options = [o.text for o in Select(dlg.find_element(By.NAME, "outcome")).options]
    assert "Wizyta" in options and "Fałszywy alarm" in options, options
    dlg.send_keys(Keys.ESCAPE)
    b.gone("dialog[open]")
    # switched to English, and remembered after a reload
    b.menu()
    Select(b.find("#lang")).select_by_value("en")
    b.text_in(ALARM.format(alarm), "Acknowledge")
    b.driver.refresh()
    b.text_in(ALARM.format(alarm), "Acknowledge")
    assert b.driver.execute_script("return document.documentElement.lang") == "en"


def test_the_other_screens_render(site, browser, mqtt):
    """On duty and its gaps, the gateway's health, the report's charts, the
    residents, workers and users: each loads from the real API without an
    error and is photographed."""
    alarm = panic(mqtt, "pendant-17")
    control(site.d, "worker.add", {"id": "w-ewa", "name": "Ewa Zielińska", "team": "east"})
    control(site.d, "shift.add", {"worker": "w-ewa", "days": "daily", "hours": "08:00-16:00"})
    b = browser()
    b.login("boss")
    b.click("#sound-enable + .btn")        # "Not now": asked once, remembered
    b.gone(".banner.ask")
    alarm_card(b, alarm).find_element(By.CSS_SELECTOR, "[data-action=ack]").click()
    b.wait(lambda d: d.find_element(By.CSS_SELECTOR, ALARM.format(alarm)).get_attribute("data-state")
           == "acknowledged", "the acknowledgement")
    b.go("oncall")
    b.text_in(".oncall-now", "Jan Nowak")
    b.text_in(".oncall-gaps .ok-text", "Someone is on duty for the whole of the next 24 hours")
    # team east has eight hours a day of cover: its gaps are drawn
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#oncall-team option[value=east]"), "the teams")
    Select(b.find("#oncall-team")).select_by_value("east")
    b.element(".oncall-gaps svg.strip rect.gap", "team east's gaps on the strip")
    assert b.finds(".oncall-gaps .gap-list li")
    b.shot("oncall")
    b.go("health")
    b.text_in(".health-grid", "Connected")
    b.text_in(".health-grid", "Worst gap")
    b.shot("health")
    b.go("report")
    b.element("svg.chart", "the report's chart")
    b.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2, "both charts")
    assert b.finds("svg.chart rect.bar.p1"), "alarms per day drawn"
    b.shot("report")
    b.go("residents")
    b.text_in(".residents table", "Józef Wiśniewski")
    b.shot("residents")
    b.go("workers")
    b.text_in(".workers table", "Zuzanna Lis")
    # an admin adds a worker and a night shift for her
    b.click("details.add:has(#worker-add) > summary")
    form = b.element("#worker-add")
    form.find_element(By.NAME, "id").send_keys("w-ola")
    form.find_element(By.NAME, "name").send_keys("Aleksandra Wójcik")
    form.find_element(By.NAME, "team").send_keys("north,night")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.element("[data-worker='w-ola']", "the new worker")
    b.click("details.add:has(#shift-add) > summary")
    form = b.element("#shift-add")
    b.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#shift-worker option[value='w-ola']"), "her in the list")
    Select(form.find_element(By.NAME, "worker")).select_by_value("w-ola")
    Select(form.find_element(By.NAME, "days")).select_by_value("mon-fri")
    form.find_element(By.NAME, "hours").send_keys("22:00-06:00")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.text_in("[data-worker='w-ola']", "22:00-06:00")
    shifts = control(site.d, "worker.show", {"id": "w-ola"})["shifts"]
    assert [(s["kind"], s["hours"]) for s in shifts] == [("weekly", "22:00-06:00")], shifts
    b.shot("workers")
    b.go("users")
    b.text_in(".users table", "anna")
    # an admin adds a user here, and the new user can log in
    b.find("#user-add").find_element(By.XPATH, "..").find_element(By.TAG_NAME, "summary").click()
    form = b.find("#user-add")
    form.find_element(By.NAME, "name").send_keys("ola")
    Select(form.find_element(By.NAME, "role")).select_by_value("dispatcher")
    form.find_element(By.NAME, "password").send_keys("ola-night-shift")
    form.find_element(By.NAME, "password2").send_keys("ola-night-shift")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.text_in(".users table", "ola")
    assert any(u["name"] == "ola" and u["role"] == "dispatcher" for u in control(site.d, "user.list"))
    b.shot("users")
    # the light theme, for the day shift
    b.menu()
    b.click("#theme-toggle")
    b.wait(lambda d: d.execute_script("return document.documentElement.dataset.theme") == "light",
           "the light theme")
    b.go("alarms")
    alarm_card(b, alarm)
    b.shot("queue-light")
