// The gateway's health: broker link, store, mass incidents, outbox queues,
// the event loop's worst gap. GET /api/status every few seconds while shown,
// and the stream's `status` events between.

import { h, clear, append } from "../dom.js";
import { t, word } from "../i18n.js";
import { get } from "../api.js";
import { time, duration, number } from "../format.js";
import { failed, loading, table, dash } from "../ui.js";
import { incidentLine } from "./queue.js";

function tile(title, ok, ...body) {
	const wide = title === t("health.outbox");
	return h("section", { class: ["card", "tile", ok === true && "ok", ok === false && "bad", wide && "wide"] },
		h("h2", {}, h("span", { class: "dot", "aria-hidden": "true" }), title,
			ok === true ? h("span", { class: "sr" }, ` (${t("health.ok")})`)
				: ok === false ? h("span", { class: "sr" }, ` (${t("health.problem")})`) : null),
		...body);
}

function facts(pairs) {
	return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function healthView(ctx) {
	const grid = h("div", { class: "health-grid" }, loading());
	const el = h("section", { class: "health" }, h("div", { class: "view-head" }, h("h1", {}, t("health.title"))), grid);

	function render(s) {
		if (!s || !s.mqtt)
			return;
		const ob = s.outbox || {};
		const loop = s.loop || {};
		const queued = ob.queued || {};
		const shed = ob.shed || {};
		const incidents = ctx.board ? [...ctx.board.alarms.values()].filter((a) => a.incident) : [];
		const nIncidents = typeof s.incidents === "number" ? s.incidents
			: Array.isArray(s.incidents) ? s.incidents.length : incidents.length;
		const loopOk = loop.worst_ms === undefined ? null : loop.worst_ms < 100;
		append(clear(grid), 
			tile(t("health.broker"), s.mqtt.connected,
				h("p", { class: "big" }, s.mqtt.connected ? t("health.connected") : t("health.disconnected")),
				facts([[t("health.address"), `${dash(s.mqtt.host)}:${dash(s.mqtt.port)}`],
					[t("health.client_id"), dash(s.mqtt.client_id)]])),
			tile(t("health.store"), s.store ? s.store.ok : null,
				h("p", { class: "big" }, s.store?.ok === false ? t("health.store_failing") : t("health.store_ok")),
				s.store?.error ? h("p", { class: "error-text" }, s.store.error) : null,
				facts([[t("health.pending"), number(s.store?.pending)], [t("health.path"), h("code", {}, dash(s.store?.path))]])),
			tile(t("health.incidents"), nIncidents ? false : true,
				h("p", { class: "big" }, t("health.incident_count", { n: nIncidents })),
				incidents.length ? h("ul", { class: "plain" }, incidents.map((a) => h("li", {},
					h("a", { href: `#/alarms/${a.alarm}` }, `#${a.alarm}`), " ", incidentLine(a.incident)))) : null),
			tile(t("health.outbox"), Object.values(shed).some((n) => n > 0) ? false : null,
				table([
					{ label: t("health.queue"), cell: (k) => word("outq", k) },
					{ label: t("health.queued"), cell: (k) => number(queued[k]), cls: "num" },
					{ label: t("health.shed"), cell: (k) => number(shed[k] ?? 0), cls: "num" },
				], Object.keys(queued)),
				facts([[t("health.inflight"), `${number(ob.inflight)} / ${number(ob.window)}`],
					ob.webhooks ? [t("health.webhooks"), t("health.webhooks_value", {
						running: ob.webhooks.running, queued: ob.webhooks.queued })] : null,
					[t("health.receipts_shed"), number(s.counts?.receipts_shed)]])),
			tile(t("health.loop"), loopOk,
				h("p", { class: "big" }, t("health.worst", { ms: number(loop.worst_ms) })),
				facts([[t("health.worst_at"), loop.worst_at ? time(loop.worst_at) : "—"],
					[t("health.over_10"), number(loop.over_10ms)], [t("health.over_100"), number(loop.over_100ms)]])),
			tile(t("health.counts"), null, facts([
				[t("health.received"), number(s.counts?.events_received)],
				[t("health.stored"), number(s.counts?.events_stored)],
				[t("health.duplicate"), number(s.counts?.events_duplicate)],
				[t("health.rejected"), number(s.counts?.events_rejected)],
				[t("health.flood"), number(s.counts?.events_flood_dropped)],
				[t("health.alarms_open"), number(s.counts?.alarms_open)],
				[t("health.devices"), number(s.counts?.devices)],
				[t("health.residents"), number(s.counts?.residents)],
				[t("health.version"), `${dash(s.version)} · ${t("health.uptime", { d: duration(s.uptime_s) })}`],
			])));
	}

	async function poll() {
		try {
			const s = await get("status");
			ctx.setStatus(s);
		} catch (e) {
			if (e.status !== 401 && !ctx.status)
				append(clear(grid), failed(e, poll));
		}
	}
	const offs = [ctx.onStatus(render), ctx.board ? ctx.board.subscribe(() => render(ctx.status)) : () => {}];
	if (ctx.status)
		render(ctx.status);
	poll();
	const timer = setInterval(poll, 5000);
	return { el, cleanup: () => { clearInterval(timer); offs.forEach((f) => f()); } };
}
