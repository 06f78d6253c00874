// One device: its facts, last events, and the device test with its live
// stages (POST /api/devices/{id}/test, then the stream's `test` events):
// waiting -> received -> stored -> receipt_sent -> alerted.

import { h, clear, append } from "../dom.js";
import { t, word } from "../i18n.js";
import { get, post, seg, explain } from "../api.js";
import { time, duration } from "../format.js";
import { failed, loading, table, dash, busy } from "../ui.js";
import { mayEdit } from "./residents.js";
import { supervision } from "./devices.js";

const STAGES = ["waiting", "received", "stored", "receipt_sent", "alerted"];

export function deviceView(ctx, id) {
	const { user, stream } = ctx;
	const info = h("div", {}, loading());
	const testBox = h("section", { class: "card device-test", id: "device-test", "aria-labelledby": "test-h" });
	const el = h("section", { class: "device" },
		h("nav", { class: "crumbs", "aria-label": t("nav.crumbs") }, h("a", { href: "#/devices" }, "← ", t("nav.devices"))),
		h("h1", {}, t("device.title", { id })),
		h("div", { class: "cards two" }, info, mayEdit(user) ? testBox : null));

	/* ---- the device ---- */
	async function load() {
		try {
			const d = await get(`devices/${seg(id)}`);
			append(clear(info), h("section", { class: "card" },
				h("dl", { class: "facts" },
					h("dt", {}, t("device.resident")), h("dd", {}, h("a", { href: `#/residents/${encodeURIComponent(d.resident)}` }, d.resident)),
					h("dt", {}, t("device.kind")), h("dd", {}, dash(d.kind)),
					h("dt", {}, t("device.heartbeat")), h("dd", {}, dash(d.heartbeat)),
					h("dt", {}, t("device.supervision")), h("dd", {}, supervision(d)),
					h("dt", {}, t("device.battery")), h("dd", {}, d.battery === null || d.battery === undefined ? "—" : `${d.battery}%`),
					h("dt", {}, t("device.rssi")), h("dd", {}, d.rssi === null || d.rssi === undefined ? "—" : `${d.rssi} dBm`),
					h("dt", {}, t("device.last_seen")), h("dd", {}, time(d.last_seen)),
					d.source ? [h("dt", {}, t("device.source")), h("dd", {}, `${d.source} · ${dash(d.address)}`)] : null),
				h("h2", {}, t("event.last")),
				table([
					{ label: t("event.time"), cell: (e) => time(e.received_at) },
					{ label: t("event.type"), cell: (e) => word("type", e.type) },
					{ label: t("event.alarm"), cell: (e) => (e.alarm ? h("a", { href: `#/alarms/${e.alarm}` }, `#${e.alarm}`) : "—") },
					{ label: t("event.battery"), cell: (e) => (e.payload?.battery ?? "—") },
				], (d.events || []).slice().reverse(), { empty: t("event.none") })));
		} catch (e) {
			if (e.status !== 401)
				append(clear(info), failed(e, load));
		}
	}
	load();

	/* ---- the test ---- */
	let reached = -1, started = 0, tick = null, alarmId = null;
	const stagesList = h("ol", { class: "stages", id: "test-stages" });
	const verdict = h("p", { class: "verdict", role: "status" });
	const startBtn = h("button", { type: "button", class: "btn primary", id: "test-start" }, t("test.start"));
	const elapsed = h("span", { class: "elapsed" });

	function renderStages(details = {}) {
		append(clear(stagesList), ...STAGES.map((s, i) => h("li", {
			class: `stage ${i <= reached ? "done" : i === reached + 1 && started ? "current" : "pending"}`,
			dataset: { stage: s, state: i <= reached ? "done" : "pending" },
		}, h("span", { class: "mark", "aria-hidden": "true" }, i <= reached ? "✓" : String(i + 1)),
		h("span", { class: "name" }, t(`test.stage.${s}`)),
		h("span", { class: "sr" }, i <= reached ? ` (${t("test.done")})` : ""),
		details[s] ? h("span", { class: "when" }, details[s]) : null)));
	}
	const when = {};

	function onTest(d) {
		if (!d || d.device !== id || !started)
			return;
		const i = STAGES.indexOf(d.stage);
		if (i < 0)
			return;
		reached = Math.max(reached, i);
		when[d.stage] = [time(d.at), d.detail].filter(Boolean).join(" · ");
		if (d.alarm)
			alarmId = d.alarm;
		renderStages(when);
		if (d.stage === "alerted")
			finish(true);
	}

	function finish(ok) {
		clearInterval(tick);
		started = 0;
		startBtn.disabled = false;
		startBtn.textContent = t("test.again");
		append(clear(verdict), ok ? t("test.passed") : t("test.failed"),
			alarmId ? [" ", h("a", { href: `#/alarms/${alarmId}` }, t("test.see_alarm", { id: alarmId }))] : null);
		verdict.className = `verdict ${ok ? "ok-text" : "error-text"}`;
	}

	startBtn.addEventListener("click", () => busy(startBtn, async () => {
		reached = -1;
		alarmId = null;
		for (const k of Object.keys(when))
			delete when[k];
		clear(verdict);
		verdict.className = "verdict";
		started = Date.now();
		renderStages();
		try {
			await stream.ready();
			const r = await post(`devices/${seg(id)}/test`);
			onTest({ ...r, device: id, stage: r.stage || "waiting" });
			verdict.textContent = t("test.press");
			clearInterval(tick);
			tick = setInterval(() => { elapsed.textContent = duration((Date.now() - started) / 1000); }, 1000);
		} catch (e) {
			started = 0;
			renderStages();
			verdict.className = "verdict error-text";
			verdict.textContent = explain(e);
		}
	}).then(() => { if (started) startBtn.disabled = true; }));

	const off = stream.on("test", onTest);
	renderStages();
	testBox.append(h("h2", { id: "test-h" }, t("test.title")), h("p", { class: "muted" }, t("test.intro")),
		h("div", { class: "test-controls" }, startBtn, elapsed), stagesList, verdict);

	return { el, cleanup: () => { off(); clearInterval(tick); } };
}
