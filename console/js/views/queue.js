// The live queue (SPEC 8): every alarm that needs attention, by priority
// then age, kept live from the stream. Test hooks: each alarm is an element
// with data-alarm="{id}", its buttons carry data-action.

import { h, clear, append } from "../dom.js";
import { t, word } from "../i18n.js";
import { since, time, priorityLabel, types } from "../format.js";
import { act, actionsFor } from "../actions.js";
import { failed } from "../ui.js";

export function incidentLine(inc) {
	if (!inc)
		return null;
	const teams = Object.entries(inc.teams || {}).sort((a, b) => b[1] - a[1]);
	return h("div", { class: "incident" },
		h("span", { class: "incident-count" }, t("incident.devices", { n: inc.devices })),
		inc.restored ? h("span", { class: "incident-restored" }, " · ", t("incident.restored", { n: inc.restored })) : null,
		teams.length ? h("ul", { class: "chips", "aria-label": t("incident.teams") },
			teams.map(([team, n]) => h("li", { class: "chip" }, `${team === "" ? t("incident.no_team") : team}: ${n}`))) : null);
}

export function residentLine(a) {
	if (a.incident)
		return h("span", { class: "who" }, a.incident.class === "unknown" ? t("incident.unknown")
			: t("alarm.gateway_incident"));
	if (a.device === "telecared")
		return h("span", { class: "who" }, t("alarm.gateway"));
	if (!a.resident)
		return h("span", { class: "who unknown" }, t("alarm.unregistered", { device: a.device }));
	return [h("span", { class: "who" }, a.resident.name || a.resident.id),
		a.resident.address ? h("span", { class: "addr" }, a.resident.address) : null];
}

export function stateBadge(a) {
	const text = a.state === "acknowledged" && a.acked_by
		? t("state.acknowledged_by", { name: a.acked_by }) : word("state", a.state);
	return h("span", { class: `badge state-${a.state}` }, text);
}

export function queueView(ctx) {
	const { board, user } = ctx;
	let selected = null;
	const list = h("ol", { class: "alarm-list", "aria-label": t("queue.list") });
	const summary = h("p", { class: "queue-summary", role: "status" });
	const el = h("section", { class: `queue role-${user.role}` },
		h("div", { class: "view-head" }, h("h1", {}, user.role === "worker" ? t("queue.title_worker") : t("queue.title")),
			summary),
		list);

	function card(a) {
		const actions = actionsFor(user, a);
		const li = h("li", {
			class: ["alarm", `p${Math.min(a.priority, 3)}`, `state-${a.state}`, board.fresh.has(a.alarm) && "fresh",
				a.alarm === selected && "selected"],
			dataset: { alarm: String(a.alarm), state: a.state, priority: String(a.priority) },
			tabindex: a.alarm === selected ? "0" : "-1",
			"aria-label": [`${priorityLabel(a.priority)}: ${types(a.types)}`,
				a.resident?.name || (a.incident ? t("alarm.gateway_incident") : a.device),
				a.state === "acknowledged" && a.acked_by ? t("state.acknowledged_by", { name: a.acked_by })
					: word("state", a.state)].join(", "),
			onfocusin: () => select(a.alarm, false),
		},
		h("div", { class: "prio", title: priorityLabel(a.priority) }, h("span", { class: "n" }, String(a.priority)),
			h("span", { class: "label" }, priorityLabel(a.priority))),
		h("div", { class: "body" },
			h("a", { class: "open", href: `#/alarms/${a.alarm}` },
				h("span", { class: "types" }, types(a.types)), " ", residentLine(a)),
			h("div", { class: "meta" }, stateBadge(a),
				h("span", { class: "age", title: time(a.opened_at) },
					h("span", { class: "sr" }, t("alarm.waiting"), " "),
					h("span", { dataset: { since: a.opened_at || "" } }, since(a.opened_at))),
				a.level ? h("span", { class: "level" }, t("alarm.level", { n: a.level })) : null,
				a.resident?.team ? h("span", { class: "team" }, a.resident.team) : null,
				h("span", { class: "id" }, `#${a.alarm} · ${a.device}`)),
			incidentLine(a.incident)),
		h("div", { class: "actions" }, actions.map((action) =>
			h("button", { type: "button", class: `btn act ${action === "ack" ? "primary" : ""}`,
				dataset: { action }, onclick: () => run(a, action),
				"aria-label": `${t(`action.${action}`)} #${a.alarm}` }, t(`action.${action}`)))));
		return li;
	}

	async function run(a, action) {
		const r = await act(user, a, action);
		if (r && r.alarm)
			board.apply(r, false);
	}

	function select(id, focus = true) {
		if (selected === id && !focus)
			return;
		selected = id;
		for (const li of list.children) {
			const on = li.dataset.alarm === String(id);
			li.classList.toggle("selected", on);
			li.tabIndex = on ? 0 : -1;
			if (on && focus) {
				li.focus();
				li.scrollIntoView({ block: "nearest" });
			}
		}
	}

	function render() {
		const focusedAction = document.activeElement?.dataset?.action;
		const hadFocus = list.contains(document.activeElement);
		const alarms = board.sorted();
		if (selected !== null && !board.get(selected))
			selected = null;
		if (selected === null && alarms.length)
			selected = alarms[0].alarm;
		append(clear(list), ...alarms.map(card));
		const urgent = board.urgentOpen();
		summary.textContent = alarms.length
			? `${t("queue.count", { n: alarms.length })}${urgent ? ` · ${t("queue.urgent", { n: urgent })}` : ""}`
			: "";
		if (!board.loaded) {
			append(clear(list), h("li", { class: "loading" }, t("list.loading")));
		} else if (board.error) {
			append(clear(list), h("li", {}, failed(board.error, () => board.load())));
		} else if (!alarms.length) {
			list.append(h("li", { class: "empty-queue" }, h("span", { class: "calm", "aria-hidden": "true" }, "✓"),
				user.role === "worker" ? t("queue.empty_worker") : t("queue.empty")));
		}
		if (hadFocus && selected !== null) {
			const li = list.querySelector(`[data-alarm="${selected}"]`);
			const target = (focusedAction && li?.querySelector(`[data-action="${focusedAction}"]`)) || li;
			if (target)
				target.focus({ preventScroll: true });
		}
	}

	function move(step) {
		const ids = board.sorted().map((a) => a.alarm);
		if (!ids.length)
			return;
		const i = Math.max(0, ids.indexOf(selected));
		select(ids[Math.min(ids.length - 1, Math.max(0, i + step))]);
	}

	const off = board.subscribe(render);
	render();

	return {
		el,
		cleanup: off,
		keys(ev) {
			const a = selected !== null ? board.get(selected) : null;
			switch (ev.key) {
			case "j": case "ArrowDown":
				move(1);
				return true;
			case "k": case "ArrowUp":
				move(-1);
				return true;
			case "Enter": case "o":
				if (a && (ev.key === "o" || ev.target === document.body || ev.target.matches?.("li.alarm"))) {
					ctx.go(`alarms/${a.alarm}`);
					return true;
				}
				return false;
			case "a": case "d": case "n": case "r": {
				const action = { a: "ack", d: "decline", n: "note", r: "resolve" }[ev.key];
				if (a && actionsFor(user, a).includes(action)) {
					run(a, action);
					return true;
				}
				return false;
			}
			default:
				return false;
			}
		},
	};
}
