// The urgent-alarm sound, generated with WebAudio (no audio files).
//
// Browsers start audio only after the user has interacted with the page.
// The console asks once whether to play sound; the answer is remembered.
// After a reload the audio context may again wait for a gesture: the first
// click or key press anywhere resumes it, and until then the page says the
// sound is held back, so a silent console never looks like a quiet night.

const KEY = "tc.sound";
let ctx = null;
let alerting = false;
let timer = null;
const listeners = new Set();

export function preference() {
	const v = localStorage.getItem(KEY);
	return v === "on" || v === "off" ? v : null;
}

function changed() {
	document.body.dataset.sound = state();
	document.body.dataset.alerting = String(alerting);
	for (const fn of listeners)
		fn(state());
}

/* off | blocked (wanted but the browser waits for a gesture) | on */
export function state() {
	if (preference() !== "on")
		return "off";
	return ctx && ctx.state === "running" ? "on" : "blocked";
}

export function isAlerting() {
	return alerting;
}

export function onChange(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

function context() {
	if (!ctx) {
		const AC = window.AudioContext || window.webkitAudioContext;
		if (!AC)
			return null;
		ctx = new AC();
		ctx.onstatechange = changed;
	}
	return ctx;
}

/* Call from a click or key handler. */
export async function enable() {
	localStorage.setItem(KEY, "on");
	const c = context();
	if (c && c.state !== "running") {
		try {
			await c.resume();
		} catch {
			/* stays blocked; the banner says so */
		}
	}
	changed();
	if (alerting)
		loop();
}

export function disable() {
	localStorage.setItem(KEY, "off");
	stopLoop();
	changed();
}

/* Wanted on a previous visit: resume at the first gesture. */
export function init() {
	if (preference() === "on") {
		context();
		const resume = () => {
			if (preference() === "on" && ctx && ctx.state !== "running")
				ctx.resume().then(changed, changed);
		};
		window.addEventListener("pointerdown", resume, { capture: true });
		window.addEventListener("keydown", resume, { capture: true });
		resume();
	}
	changed();
}

function beep(at, freq, len) {
	const osc = ctx.createOscillator();
	const gain = ctx.createGain();
	osc.type = "sine";
	osc.frequency.setValueAtTime(freq, at);
	gain.gain.setValueAtTime(0.0001, at);
	gain.gain.exponentialRampToValueAtTime(0.35, at + 0.02);
	gain.gain.exponentialRampToValueAtTime(0.0001, at + len);
	osc.connect(gain).connect(ctx.destination);
	osc.start(at);
	osc.stop(at + len + 0.05);
}

/* Two falling tones, then a pause: unmistakable, not shrill. */
function phrase() {
	if (!ctx || ctx.state !== "running")
		return;
	const t0 = ctx.currentTime + 0.05;
	beep(t0, 880, 0.22);
	beep(t0 + 0.28, 660, 0.22);
	beep(t0 + 0.56, 880, 0.22);
	beep(t0 + 0.84, 660, 0.3);
}

function loop() {
	if (timer)
		return;
	phrase();
	timer = setInterval(phrase, 2500);
}

function stopLoop() {
	clearInterval(timer);
	timer = null;
}

/* True while an urgent alarm waits for someone to take it. */
export function setAlerting(on) {
	if (on === alerting)
		return;
	alerting = on;
	if (on && preference() === "on")
		loop();
	else
		stopLoop();
	changed();
}

/* A short sample, so the dispatcher knows what it sounds like. */
export function sample() {
	if (ctx && ctx.state === "running")
		phrase();
}
