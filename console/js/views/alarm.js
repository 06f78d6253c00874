// One alarm's page: who and where (the resident's card, the location), what
// happened (the live timeline, the events), and the actions, as oneself or
// for a worker.

import { h, clear, append } from "../dom.js";
import { t, word } from "../i18n.js";
import { get, seg } from "../api.js";
import { time, dateTime, since, priorityLabel, types } from "../format.js";
import { act, actionsFor, mayActAs, workers } from "../actions.js";
import { failed, loading, table, dash } from "../ui.js";
import { incidentLine, stateBadge } from "./queue.js";

const MEMBERS_SHOWN = 200;

export function residentCard(r, device) {
	if (!r && device === "telecared") {
		return h("section", { class: "card resident-card", id: "resident-card" },
			h("h2", {}, t("resident.card")), h("p", {}, t("alarm.gateway_card")));
	}
	if (!r || !r.name) {
		return h("section", { class: "card resident-card", id: "resident-card" },
			h("h2", {}, t("resident.card")),
			h("p", { class: "unknown" }, r && r.id ? t("resident.removed", { id: r.id })
				: t("alarm.unregistered", { device })));
	}
	return h("section", { class: "card resident-card", id: "resident-card", "aria-labelledby": "rc-name" },
		h("h2", { class: "sr" }, t("resident.card")),
		h("p", { class: "resident-name", id: "rc-name" }, r.name),
		h("dl", { class: "facts" },
			h("dt", {}, t("resident.address")), h("dd", { class: "address" }, dash(r.address)),
			h("dt", {}, t("resident.phone")), h("dd", { class: "phone" },
				r.phone ? h("a", { href: `tel:${r.phone.replace(/[^+\d]/g, "")}` }, r.phone) : "—"),
			h("dt", {}, t("resident.team")), h("dd", {}, dash(r.team)),
			h("dt", {}, t("resident.id")), h("dd", {}, h("code", {}, r.id))),
		h("h3", {}, t("resident.notes")),
		r.notes ? h("p", { class: "notes" }, r.notes) : h("p", { class: "muted" }, t("resident.no_notes")));
}

function locationCard(loc) {
	const body = [];
	if (loc && Number.isFinite(Number(loc.lat)) && Number.isFinite(Number(loc.lon))) {
		const lat = Number(loc.lat), lon = Number(loc.lon);
		const la = lat.toFixed(6), lo = lon.toFixed(6);
		body.push(h("dl", { class: "facts" },
			h("dt", {}, t("loc.coords")), h("dd", { class: "coords" }, `${la}, ${lo}`),
			h("dt", {}, t("loc.accuracy")), h("dd", {}, loc.acc !== undefined && loc.acc !== null
				? t("loc.metres", { n: Math.round(Number(loc.acc)) }) : t("loc.unknown_acc"))),
		h("p", { class: "links" },
			h("a", { class: "btn", href: `https://www.openstreetmap.org/?mlat=${la}&mlon=${lo}#map=17/${la}/${lo}`,
				target: "_blank", rel: "noopener noreferrer" }, t("loc.map")),
			" ",
			h("a", { class: "btn", href: `geo:${la},${lo}` }, t("loc.geo"))));
	} else {
		body.push(h("p", { class: "muted" }, t("loc.none")));
	}
	return h("section", { class: "card location-card" }, h("h2", {}, t("loc.title")), ...body);
}

function entryKey(e) {
	return `${e.at}|${e.what}|${e.actor}|${e.detail}`;
}

function timelineItem(e) {
	return h("li", { class: `tl tl-${e.what}`, dataset: { what: e.what } },
		h("time", { datetime: e.at, title: dateTime(e.at) }, time(e.at)),
		h("span", { class: "what" }, word("tl", e.what)),
		h("span", { class: "actor" }, e.actor || ""),
		e.detail ? h("span", { class: "detail" }, e.detail) : null);
}

export function alarmView(ctx, idText) {
	const id = Number(idText);
	const { user, stream } = ctx;
	let alarm = null, loadingNow = true, buffer = [];
	const seen = new Set();
	let asWorker = "";

	const head = h("div", { class: "alarm-head" });
	const actionsBar = h("div", { class: "act-bar" });
	const timeline = h("ol", { class: "timeline", id: "timeline", "aria-live": "polite", "aria-relevant": "additions" });
	const side = h("div", { class: "alarm-side" });
	const lower = h("div", { class: "alarm-lower" });
	const body = h("div", { class: "alarm-grid" }, loading());
	const el = h("section", { class: "alarm-page", dataset: { alarmPage: String(id) } },
		h("nav", { class: "crumbs", "aria-label": t("nav.crumbs") },
			h("a", { href: user.role === "installer" ? "#/devices" : "#/alarms" }, "← ",
				user.role === "installer" ? t("nav.devices") : t("nav.alarms"))),
		head, actionsBar, body);

	function renderHead() {
		const a = alarm;
		clear(head).className = `alarm-head p${Math.min(a.priority, 3)} state-${a.state}`;
		append(head,
			h("h1", {}, h("span", { class: "num" }, `#${a.alarm}`), " ", types(a.types)),
			h("div", { class: "meta" },
				h("span", { class: "badge prio" }, priorityLabel(a.priority)),
				stateBadge(a),
				a.test ? h("span", { class: "badge test" }, t("alarm.test")) : null,
				h("span", {}, t("alarm.opened_at", { time: time(a.opened_at) })),
				a.state !== "resolved" ? h("span", { class: "age" }, t("alarm.waiting"), " ",
					h("span", { dataset: { since: a.opened_at || "" } }, since(a.opened_at))) : null,
				a.level ? h("span", {}, t("alarm.level", { n: a.level })) : null,
				a.policy ? h("span", {}, t("alarm.policy", { name: a.policy })) : null,
				h("span", {}, t("alarm.device"), " ", ["installer", "admin", "dispatcher"].includes(user.role) && a.device !== "telecared"
					? h("a", { href: `#/device/${encodeURIComponent(a.device)}` }, a.device) : h("code", {}, a.device))),
			a.state === "resolved" ? h("p", { class: "resolved-line" }, t("alarm.resolved_with", {
				outcome: word("outcome", a.outcome), time: time(a.resolved_at) })) : null);
	}

	/* The "acting as" choice is made once and kept while the alarm changes
	 * under it; only the buttons follow the alarm's state. */
	let asSelect = null;
	const buttons = h("div", { class: "buttons" });
	function renderActions() {
		const actions = actionsFor(user, alarm);
		if (!actions.length) {
			clear(actionsBar);
			asSelect = null;
			return;
		}
		if (mayActAs(user) && !asSelect) {
			asSelect = h("select", { id: "act-as", name: "as", onchange: (e) => { asWorker = e.target.value; } },
				h("option", { value: "" }, user.worker ? t("act.as_self_worker", { worker: user.worker }) : t("act.as_self")));
			const sel = asSelect;
			workers().then((ws) => {
				for (const w of ws)
					if (w.id !== user.worker)
						sel.append(h("option", { value: w.id, selected: w.id === asWorker }, `${w.name} (${w.id})`));
			});
			append(clear(actionsBar), h("div", { class: "field inline" }, h("label", { for: "act-as" }, t("act.as")), asSelect));
		}
		if (!actionsBar.contains(buttons))
			actionsBar.append(buttons);
		const focused = buttons.contains(document.activeElement) ? document.activeElement.dataset.action : null;
		append(clear(buttons), actions.map((action) =>
			h("button", { type: "button", class: `btn act ${action === "ack" ? "primary" : ""}`, dataset: { action },
				"aria-keyshortcuts": { ack: "a", decline: "d", note: "n", resolve: "r" }[action],
				onclick: () => run(action) }, t(`action.${action}`))));
		const again = focused && buttons.querySelector(`[data-action="${focused}"]`);
		if (again)
			again.focus();
	}

	async function run(action) {
		const r = await act(user, alarm, action, { as: asWorker });
		if (r && r.alarm === id)
			update(r);
	}

	function update(summary) {
		alarm = { ...alarm, ...summary };
		renderHead();
		renderActions();
		if (ctx.board)
			ctx.board.apply(summary, false);
	}

	function addEntry(e) {
		const k = entryKey(e);
		if (seen.has(k))
			return;
		seen.add(k);
		const empty = timeline.querySelector(".empty");
		if (empty)
			empty.remove();
		timeline.append(timelineItem(e));
	}

	function renderBody(full) {
		append(clear(side), residentCard(full.resident, full.device), locationCard(full.loc || lastLoc(full.events)));
		if (full.incident) {
			const members = full.members || [];
			side.append(h("section", { class: "card incident-card" }, h("h2", {}, t("incident.title")),
				incidentLine(full.incident),
				full.incident.sample?.length ? h("p", { class: "muted" }, t("incident.sample"), " ",
					full.incident.sample.join(", ")) : null,
				members.length ? table([
					{ label: t("device.id"), cell: (m) => m.device },
					{ label: t("event.type"), cell: (m) => word("type", m.type) },
					{ label: t("incident.joined"), cell: (m) => time(m.joined_at) },
					{ label: t("incident.restored_at"), cell: (m) => (m.restored_at ? time(m.restored_at) : "—") },
				], members.slice(0, MEMBERS_SHOWN)) : null,
				members.length > MEMBERS_SHOWN ? h("p", { class: "muted" },
					t("list.more", { n: members.length - MEMBERS_SHOWN })) : null));
		}
		clear(timeline);
		seen.clear();
		for (const e of full.timeline || [])
			addEntry(e);
		if (!timeline.children.length)
			timeline.append(h("li", { class: "empty" }, t("timeline.empty")));
		const events = full.events || [];
		append(clear(lower), 
			h("section", { class: "card timeline-card" }, h("h2", {}, t("timeline.title")), timeline),
			h("section", { class: "card events-card" }, h("h2", {}, t("event.title")), table([
				{ label: t("event.time"), cell: (e) => time(e.received_at) },
				{ label: t("event.type"), cell: (e) => word("type", e.type) },
				{ label: t("event.id"), cell: (e) => h("code", {}, typeof e.id === "string" ? e.id : JSON.stringify(e.id)) },
				{ label: t("event.battery"), cell: (e) => (e.payload?.battery ?? "—") },
				{ label: t("event.text"), cell: (e) => dash(e.payload?.text) },
			], events.slice(-50), { empty: t("event.none") })));
		append(clear(body), side, lower);
	}

	function lastLoc(events) {
		for (const e of [...(events || [])].reverse())
			if (e.payload && e.payload.loc)
				return e.payload.loc;
		return null;
	}

	async function load() {
		loadingNow = true;
		buffer = [];
		try {
			await stream.ready();
			const full = await get(`alarms/${seg(id)}`);
			alarm = full;
			renderHead();
			renderActions();
			renderBody(full);
		} catch (e) {
			if (e.status !== 401)
				append(clear(body), failed(e, load));
		} finally {
			loadingNow = false;
		}
		for (const x of buffer.splice(0))
			onStream(x);
	}

	function onStream(x) {
		if (loadingNow) {
			buffer.push(x);
			return;
		}
		if (!alarm)
			return;
		if (x.kind === "timeline")
			addEntry(x.data.entry);
		else
			update(x.data);
	}

	const offs = [
		stream.on("timeline", (d) => d && d.alarm === id && d.entry && onStream({ kind: "timeline", data: d })),
		stream.on("alarm", (d) => d && d.alarm === id && onStream({ kind: "alarm", data: d })),
		stream.on("resync", load),
		stream.on("reset", load),
	];
	load();

	return {
		el,
		cleanup: () => offs.forEach((f) => f()),
		keys(ev) {
			if (ev.key === "Escape") {
				ctx.go(user.role === "installer" ? "devices" : "alarms");
				return true;
			}
			const action = { a: "ack", d: "decline", n: "note", r: "resolve" }[ev.key];
			if (action && alarm && actionsFor(user, alarm).includes(action)) {
				run(action);
				return true;
			}
			return false;
		},
	};
}
