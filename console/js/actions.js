// Acting on an alarm: ack, decline, note, resolve (POST /api/alarms/{id}/actions),
// from the queue and from the alarm's page alike.

import { h } from "./dom.js";
import { t, word } from "./i18n.js";
import { get, post, seg, explain } from "./api.js";
import { modal, field, formError, toast, busy } from "./ui.js";

/* SPEC 5's default [outcomes] list, used while the daemon's status does not
 * name its configured list ("outcomes"). "test" and "restored" are set by
 * the gateway itself, not chosen by a person. */
const DEFAULT_OUTCOMES = ["assisted_by_phone", "visit", "ambulance", "police", "fire", "false_alarm",
	"user_cancelled", "technical_fixed"];
const AUTOMATIC = new Set(["test", "restored", "folded"]);
let outcomes = DEFAULT_OUTCOMES;

export function setOutcomes(list) {
	if (Array.isArray(list) && list.length)
		outcomes = list.filter((o) => typeof o === "string" && !AUTOMATIC.has(o));
}

let workersCache = null;
/* The workers a dispatcher may act for, fetched once per session. */
export async function workers() {
	if (!workersCache) {
		workersCache = get("workers").then((l) => l || []).catch(() => {
			workersCache = null;
			return [];
		});
	}
	return workersCache;
}

export function forgetWorkers() {
	workersCache = null;
}

/* May this user act for someone else? (SPEC 6.1: dispatchers and admins) */
export function mayActAs(user) {
	return user.role === "dispatcher" || user.role === "admin";
}

/* The buttons a user gets for an alarm in a given state. */
export function actionsFor(user, alarm) {
	if (alarm.state === "resolved")
		return [];
	const list = [];
	if (alarm.state === "open")
		list.push("ack");
	if (alarm.state === "open" && (user.role === "worker" || user.worker || mayActAs(user)))
		list.push("decline");
	list.push("note");
	/* SPEC 2.5: a worker resolves only what they hold; dispatchers anything */
	if (user.role !== "worker" ||
	    (alarm.state === "acknowledged" && (alarm.acked_by_id ?? user.worker) === user.worker))
		list.push("resolve");
	return list;
}

async function asField(user, preset) {
	const list = await workers();
	const opts = [["", user.worker ? t("act.as_self_worker", { worker: user.worker }) : t("act.as_self")]];
	for (const w of list)
		if (w.id !== user.worker)
			opts.push([w.id, `${w.name} (${w.id})`]);
	return field(t("act.as"), { name: "as", value: preset || "" }, { tag: "select", options: opts,
		hint: t("act.as_hint") });
}

/* Ask what the action needs (a note, an outcome, for whom), then send it.
 * Resolves with the updated alarm summary, or null when cancelled/refused. */
export async function act(user, alarm, action, { as = "" } = {}) {
	const id = alarm.alarm;
	/* alarm.decline names the worker who declines ("as" is required by the
	 * command even for a worker declining for themselves) */
	if (action === "decline" && !as && user.worker)
		as = user.worker;
	const needsForm = action === "note" || action === "resolve" ||
		(action === "decline" && mayActAs(user) && !user.worker && !as);
	if (!needsForm)
		return send(id, action, { as });
	const asEl = mayActAs(user) ? await asField(user, as) : null;
	return modal({
		title: t(`act.title.${action}`, { id }),
		className: `act-${action}`,
		async build(body, close) {
			const err = formError();
			const form = h("form", { class: "form", novalidate: true });
			if (action === "resolve") {
				form.append(field(t("act.outcome"), { name: "outcome", required: true, autofocus: true },
					{ tag: "select", options: [["", t("act.outcome_pick")],
						...outcomes.map((o) => [o, word("outcome", o)])] }));
			}
			if (action === "note" || action === "resolve") {
				form.append(field(action === "note" ? t("act.note") : t("act.note_optional"),
					{ name: "note", rows: 4, maxlength: 1024, required: action === "note",
						autofocus: action === "note" }, { tag: "textarea" }));
			}
			if (asEl)
				form.append(asEl);
			const submit = h("button", { type: "submit", class: `btn primary act-${action}` }, t(`action.${action}`));
			form.append(err.el, h("div", { class: "dialog-actions" },
				h("button", { type: "button", class: "btn", onclick: () => close(null) }, t("action.cancel")),
				submit));
			form.addEventListener("change", () => err.show(""));
			form.addEventListener("submit", async (ev) => {
				ev.preventDefault();
				const fd = new FormData(form);
				const outcome = fd.get("outcome"), note = (fd.get("note") || "").trim();
				if (action === "resolve" && !outcome)
					return err.show(t("act.need_outcome"));
				if (action === "note" && !note)
					return err.show(t("act.need_note"));
				if (action === "decline" && !fd.get("as"))
					return err.show(t("act.need_worker"));
				err.show("");
				await busy(submit, async () => {
					const r = await send(id, action, { as: fd.get("as") || "", outcome, note }, err.show);
					if (r)
						close(r);
				});
			});
			body.append(form);
		},
	});
}

async function send(id, action, { as = "", outcome = null, note = "" }, showError = null) {
	const body = { action };
	if (outcome)
		body.outcome = outcome;
	if (note)
		body.note = note;
	if (as)
		body.as = as;
	try {
		const r = await post(`alarms/${seg(id)}/actions`, body);
		toast(t(`act.done.${action}`, { id }), "ok");
		return (r && r.data) || r || {};
	} catch (e) {
		if (e.status === 401)
			return null;
		const text = explain(e);
		if (showError)
			showError(text);
		else
			toast(text, "error");
		return null;
	}
}
