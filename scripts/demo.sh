#!/bin/bash
# Build telecared and run it on its embedded defaults: a loopback mosquitto on
# 127.0.0.1:1883 (started here unless one already listens there), the database
# /var/lib/telecare/telecare.db and the control socket /run/telecare/control.sock.
# Then a short demo: register a resident, her pendant and a care worker on
# duty; she presses the SOS button and falls; watch the receipt, the worker's
# alert, his acknowledgement reach the pendant, and the case being closed.
# The console is served on http://127.0.0.1:8080/ (its files installed in
# /usr/share/telecare/console, the default [http] root) with a dispatcher
# login the demo creates and prints; a last alarm is left open there.
#
# With a terminal the gateway keeps running until Ctrl-C; without one (CI,
# a pipe) the demo stops everything it started and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (it creates /var/lib/telecare and /run/telecare)"; exit 2; }

scripts/deps.sh build
# Debian's prefix: the console is looked for in /usr/share/telecare/console
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DTELECARE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
CTL="$ROOT/build/telecarectl"
WORK=$(mktemp -d /tmp/telecare-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "a loopback MQTT broker on 127.0.0.1:1883"
if mosquitto_sub -h 127.0.0.1 -p 1883 -t '$SYS/#' -C 1 -W 1 >/dev/null 2>&1; then
	echo "one is already running there; using it"
else
	printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$WORK/mosquitto.conf"
	mosquitto -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" & pids+=($!)
	sleep 0.5
	echo "started mosquitto (pid ${pids[-1]})"
fi

step "the console's files, where the embedded defaults look for them"
mkdir -p /usr/share/telecare/console
cp -r "$ROOT"/console/. /usr/share/telecare/console/ 2>/dev/null || echo "(no console/ in this tree)"
rm -rf /usr/share/telecare/console/dev

step "telecared on its embedded defaults (no configuration file)"
mkdir -p /var/lib/telecare /run/telecare
"$ROOT/build/telecared" 2>"$WORK/telecared.log" & pids+=($!)
for _ in $(seq 50); do "$CTL" status >/dev/null 2>&1 && break; sleep 0.1; done
if ! "$CTL" status >/dev/null 2>&1; then
	echo "telecared did not come up; its log:"
	cat "$WORK/telecared.log"
	exit 1
fi
show "$CTL" status

step "watch what the gateway publishes (telecare/#)"
mosquitto_sub -h 127.0.0.1 -p 1883 -v -t 'telecare/#' > "$WORK/mqtt.log" & pids+=($!)
sleep 0.3

step "an installer registers a resident and her pendant"
"$CTL" device remove pendant-demo >/dev/null 2>&1 || true   # from an earlier demo
"$CTL" resident remove r-demo >/dev/null 2>&1 || true
"$CTL" worker remove w-demo >/dev/null 2>&1 || true
show "$CTL" resident add r-demo --name "Anna Kowalska" --address "ul. Słowackiego 12/3" \
	--phone "+48 600 000 000" --team north --notes "key safe 1234; diabetic"
show "$CTL" device add pendant-demo --resident r-demo --kind pendant --heartbeat 15m

step "a care worker of the north team is on duty"
show "$CTL" worker add w-demo --name "Jan Wiśniewski" --team north --phone "+48 600 000 111"
show "$CTL" shift add w-demo --always
show "$CTL" oncall

step "Anna presses the SOS button: the pendant publishes a panic event"
ID="e-$(date +%s)"
show mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t telecare/dev/pendant-demo/event \
	-m "{\"id\":\"$ID\",\"type\":\"panic\",\"battery\":87}"
sleep 0.5
step "then she falls: the same alarm grows, it does not multiply"
show mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t telecare/dev/pendant-demo/event \
	-m "{\"id\":\"$ID-2\",\"type\":\"fall\",\"loc\":{\"lat\":52.2297,\"lon\":21.0122,\"acc\":15}}"
step "the pendant did not hear the receipt and resends: a duplicate, stored once"
show mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t telecare/dev/pendant-demo/event \
	-m "{\"id\":\"$ID\",\"type\":\"panic\",\"battery\":87}"
step "and a broken message gets a clear rejection"
show mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t telecare/dev/pendant-demo/event \
	-m '{"id":"e-x","type":"panic","battery":"full"}'
sleep 1

ALARM=$("$CTL" --json alarm list --open | /usr/bin/python3 -c \
	'import json,sys; print(next(a["alarm"] for a in json.load(sys.stdin) if a["device"]=="pendant-demo"))')
step "Jan's phone got the alert; he takes the alarm (an MQTT action)"
show mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t telecare/worker/w-demo/action \
	-m "{\"alarm\":$ALARM,\"action\":\"ack\"}"
sleep 1

step "what went over MQTT (receipts, the alert, the device's alarm state, the board)"
grep -v '/event ' "$WORK/mqtt.log" | grep -E 'pendant-demo|alarms/|worker/|gateway' | cut -c1-200 || true

step "the dispatcher's view"
show "$CTL" alarm list --open

step "Jan has been; the case is closed"
show "$CTL" alarm resolve "$ALARM" --as w-demo --outcome visit --note "helped up, unhurt"
show "$CTL" events --device pendant-demo --limit 5

step "a dispatcher's login for the console"
PASS=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-14)
"$CTL" user remove dispatcher >/dev/null 2>&1 || true
printf '%s\n' "$PASS" | "$CTL" user add dispatcher --role dispatcher
step "one more alarm, left open for the console: Anna falls again"
show mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t telecare/dev/pendant-demo/event \
	-m "{\"id\":\"$ID-3\",\"type\":\"fall\",\"loc\":{\"lat\":52.2297,\"lon\":21.0122,\"acc\":15}}"
sleep 0.5
show "$CTL" alarm list --open

step "the gateway's log"
cat "$WORK/telecared.log"

URL=http://127.0.0.1:8080/
printf '\n\033[1mThe console: %s   user: dispatcher   password: %s\033[0m\n' "$URL" "$PASS"
if [ -t 0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null; then
	xdg-open "$URL" >/dev/null 2>&1 || true
fi

if [ -t 0 ]; then
	step "telecared keeps running; try: build/telecarectl status  (Ctrl-C stops the demo)"
	tail -f "$WORK/telecared.log" & pids+=($!)
	wait "${pids[1]}" || true
else
	step "done (no terminal: stopping what the demo started)"
fi
