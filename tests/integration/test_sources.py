"""Sources (issue 4): zigbee2mqtt, ChirpStack v4 and The Things Stack v3
messages on a real broker become the right events for registered devices, and
unmapped messages otherwise. Sample messages follow each format's public
documentation."""
import json
import socket

import pytest

from conftest import wait_until

SOURCES = """
[source zigbee]
format = zigbee2mqtt
rule = action=emergency -> panic
rule = action=single -> panic
rule = smoke=true -> smoke
rule = tamper=true -> tamper
rule = battery_low=true -> low_battery

[source lora]
format = chirpstack
rule = button_event.status=short press -> panic

[source things]
format = ttn
rule = alarm=true -> fall
"""

DEVEUI = "24E124535B312345"          # as printed on a Milesight label: upper case


def control(d, cmd, **args):
    """One raw control request (telecarectl's source flags are exercised in
    test_installer.py; here the daemon's behaviour is under test)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(d.socket))
    f = s.makefile("rwb")
    try:
        f.write((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())
        f.flush()
        return json.loads(f.readline())
    finally:
        f.close()
        s.close()


@pytest.fixture
def d(daemon):
    d = daemon(extra_lines=SOURCES)
    d.add_resident("r-1", "Anna Kowalska")
    for dev, src, addr in (("sos-1", "zigbee", "living room/sos button"),
                           ("smoke-1", "zigbee", "kitchen/smoke"),
                           ("ws101-1", "lora", DEVEUI),
                           ("fall-1", "things", "fall-detector-7")):
        ans = control(d, "device.add", id=dev, resident="r-1", source=src, address=addr)
        assert ans["ok"], ans
    return d


def events_of(d, dev):
    return d.ctl_json("events", "--device", dev)


def open_types(d, dev):
    return [a["types"] for a in d.ctl_json("alarm", "list", "--open") if a["device"] == dev]


def unmapped(d):
    ans = control(d, "source.unmapped")
    assert ans["ok"], ans
    return {(u["source"], u["address"]): u for u in ans["data"]}


def test_zigbee2mqtt_button_smoke_availability_and_unmapped(d, mqtt):
    # HEIMAN HS1EB sends single/double/hold; "single" is mapped to panic
    mqtt.publish("zigbee2mqtt/living room/sos button", {"action": "single", "battery": 87,
                                                         "linkquality": 120})
    wait_until(lambda: open_types(d, "sos-1") == [["panic"]], 10, "a panic alarm for sos-1")
    ev = events_of(d, "sos-1")[-1]
    assert ev["type"] == "panic" and ev["payload"]["battery"] == 87
    assert ev["payload"]["linkquality"] == 120 and "rssi" not in ev["payload"]
    assert d.ctl_json("device", "show", "sos-1")["battery"] == 87

    # one message, two rules: smoke and tamper
    mqtt.publish("zigbee2mqtt/kitchen/smoke", {"smoke": True, "tamper": True, "battery_low": False})
    wait_until(lambda: sorted(t for ts in open_types(d, "smoke-1") for t in ts) == ["smoke", "tamper"],
               10, "smoke and tamper alarms")

    # availability, JSON and legacy plain text
    mqtt.publish("zigbee2mqtt/living room/sos button/availability", {"state": "offline"})
    wait_until(lambda: ["connection_lost"] in open_types(d, "sos-1"), 10, "connection_lost")
    mqtt.publish("zigbee2mqtt/living room/sos button/availability", "online")
    wait_until(lambda: ["connection_lost"] not in open_types(d, "sos-1"), 10, "connection restored")

    # no rule matches "double"; an unregistered lamp; the bridge's own topics
    mqtt.publish("zigbee2mqtt/living room/sos button", {"action": "double"})
    mqtt.publish("zigbee2mqtt/hall/lamp", {"state": "ON", "brightness": 200})
    mqtt.publish("zigbee2mqtt/bridge/state", {"state": "online"})
    wait_until(lambda: {("zigbee", "living room/sos button"), ("zigbee", "hall/lamp")}
               <= set(unmapped(d)), 10, "two unmapped addresses")
    u = unmapped(d)
    assert u[("zigbee", "living room/sos button")]["reason"] == "no rule matched"
    assert u[("zigbee", "hall/lamp")]["reason"] == "no device registered for this address"
    assert not any(a and a.startswith("bridge") for _, a in u)


def test_zigbee2mqtt_retained_state_is_not_a_new_event(d, mqtt, daemon):
    mqtt.publish("zigbee2mqtt/kitchen/smoke", {"smoke": True}, retain=True)
    wait_until(lambda: open_types(d, "smoke-1") == [["smoke"]], 10, "the live smoke alarm")
    n = len(events_of(d, "smoke-1"))
    d.kill9()
    d.start()                      # resubscribing replays the retained state
    mqtt.publish("zigbee2mqtt/living room/sos button", {"action": "single"})
    wait_until(lambda: len(events_of(d, "sos-1")) == 1, 10, "a later live event")
    assert len(events_of(d, "smoke-1")) == n
    mqtt.publish("zigbee2mqtt/kitchen/smoke", b"", retain=True)   # clean up the broker


def chirpstack_uplink(dedup, status="short press", rssi=(-87, -101)):
    return {
        "deduplicationId": dedup,
        "time": "2026-11-22T10:15:00.123456Z",
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "applicationId":
                       "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "teleopieka",
                       "deviceProfileName": "WS101", "deviceName": "ws101-flat-12",
                       "devEui": DEVEUI.lower()},
        "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": 7, "fPort": 85, "confirmed": False,
        "data": "/wEA", "object": {"button_event": {"status": status}, "battery": 90},
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": r, "snr": 9.0} for r in rssi],
        "txInfo": {"frequency": 868100000},
    }


def test_chirpstack_uplink_dedup_and_unmapped(d, mqtt):
    topic = f"application/17c82e96-be03-4f38-aef3-f83d48582d97/device/{DEVEUI.lower()}/event/up"
    up = chirpstack_uplink("3ad91ee2-4c7e-4a57-b7ab-2a9a0f2d6a46")
    mqtt.publish(topic, up)
    wait_until(lambda: open_types(d, "ws101-1") == [["panic"]], 10, "a panic from the WS101")
    ev = events_of(d, "ws101-1")[-1]
    assert ev["id"] == up["deduplicationId"]
    assert ev["payload"]["battery"] == 90 and ev["payload"]["rssi"] == -87   # the best gateway
    mqtt.publish(topic, up)                                   # the same uplink again
    mqtt.publish(topic, chirpstack_uplink("9b0f", status="double press"))
    mqtt.publish("application/17c82e96-be03-4f38-aef3-f83d48582d97/device/"
                 f"{DEVEUI.lower()}/event/join", {"deviceInfo": {"devEui": DEVEUI.lower()}})
    wait_until(lambda: ("lora", DEVEUI.lower()) in unmapped(d), 10, "the unmapped double press")
    assert [e["id"] for e in events_of(d, "ws101-1")] == [up["deduplicationId"]]
    assert d.ctl_json("device", "show", "ws101-1")["address"] == DEVEUI.lower()


def test_ttn_uplink_missing_means_zero(d, mqtt):
    topic = "v3/teleopieka@ttn/devices/fall-detector-7/up"
    up = {
        "end_device_ids": {"device_id": "fall-detector-7",
                           "application_ids": {"application_id": "teleopieka"},
                           "dev_eui": "70B3D57ED005B2D1"},
        "received_at": "2026-11-22T10:15:00.123456789Z",
        # f_cnt 0 is omitted by The Things Stack
        "uplink_message": {"f_port": 1, "decoded_payload": {"alarm": True, "battery": 64},
                           "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -97},
                                           {"gateway_ids": {"gateway_id": "gw-2"}, "rssi": -81}],
                           "received_at": "2026-11-22T10:15:00.100Z"},
    }
    mqtt.publish(topic, up)
    wait_until(lambda: open_types(d, "fall-1") == [["fall"]], 10, "a fall alarm from TTN")
    ev = events_of(d, "fall-1")[-1]
    assert ev["id"].startswith("ttn-0-")
    assert ev["payload"]["battery"] == 64 and ev["payload"]["rssi"] == -81
    # an uplink whose decoded payload omits "alarm" (false): no event, kept as unmapped
    quiet = json.loads(json.dumps(up))
    quiet["uplink_message"]["f_cnt"] = 1
    quiet["uplink_message"]["decoded_payload"] = {"battery": 63}
    mqtt.publish(topic, quiet)
    wait_until(lambda: ("things", "fall-detector-7") in unmapped(d), 10, "the unmapped uplink")
    assert len(events_of(d, "fall-1")) == 1


def test_device_add_checks_source_and_address(d):
    bad = control(d, "device.add", id="x-1", resident="r-1", source="nope", address="a")
    assert not bad["ok"] and "no [source nope]" in bad["error"]
    bad = control(d, "device.add", id="x-1", resident="r-1", source="zigbee")
    assert not bad["ok"] and "together" in bad["error"]
    bad = control(d, "device.add", id="x-1", resident="r-1", source="zigbee", address="kitchen/smoke")
    assert not bad["ok"] and "already device smoke-1" in bad["error"]
    same = control(d, "device.add", id="x-2", resident="r-1", source="lora", address=DEVEUI)
    assert not same["ok"] and "already device ws101-1" in same["error"]   # case-insensitive DevEUI
