// Workers and their shifts: dispatchers read them, admins add and remove.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import { get, post, del, seg, explain } from "../api.js";
import { failed, loading, table, field, formError, toast, confirmDialog, dash, busy } from "../ui.js";
import { shiftText } from "./oncall.js";
import { forgetWorkers } from "../actions.js";

const DAY_CHOICES = ["daily", "mon-fri", "sat,sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export function workersView(ctx) {
	const admin = ctx.user.role === "admin";
	let workerSelect = null;
	const out = h("div", {}, loading());
	const el = h("section", { class: "workers" },
		h("div", { class: "view-head" }, h("h1", {}, t("workers.title"))),
		admin ? h("div", { class: "cards two" }, workerForm(), shiftForm()) : null,
		out);

	function workerForm() {
		const err = formError();
		const submit = h("button", { type: "submit", class: "btn primary" }, t("workers.add"));
		const form = h("form", { class: "form", id: "worker-add" },
			field(t("worker.id"), { name: "id", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", maxlength: 64 }, { hint: t("hint.id") }),
			field(t("worker.name"), { name: "name", required: true, maxlength: 1024 }),
			field(t("worker.teams"), { name: "team", maxlength: 256 }, { hint: t("hint.teams") }),
			field(t("worker.phone"), { name: "phone", type: "tel", maxlength: 1024 }),
			field(t("worker.webhook"), { name: "webhook", type: "url", maxlength: 1024 }, { hint: t("hint.webhook") }),
			err.el, h("div", { class: "form-actions" }, submit));
		form.addEventListener("submit", (ev) => {
			ev.preventDefault();
			if (!form.reportValidity())
				return;
			const body = {};
			for (const [k, v] of new FormData(form))
				if (String(v).trim())
					body[k] = String(v).trim();
			busy(submit, async () => {
				try {
					await post("workers", body);
					toast(t("workers.added", { id: body.id }), "ok");
					form.reset();
					err.show("");
					forgetWorkers();
					load();
				} catch (e) {
					err.show(explain(e));
				}
			});
		});
		return h("details", { class: "card add" }, h("summary", {}, t("workers.add")), form);
	}

	function shiftForm() {
		const err = formError();
		const submit = h("button", { type: "submit", class: "btn primary" }, t("shifts.add"));
		workerSelect = h("select", { name: "worker", id: "shift-worker", required: true });
		const kind = h("select", { name: "kind", id: "shift-kind" },
			["weekly", "always", "once"].map((k) => h("option", { value: k }, t(`shift.kind.${k}`))));
		const weekly = h("div", { class: "sub" },
			field(t("shift.days"), { name: "days" }, { tag: "select", options: DAY_CHOICES.map((d) => [d, t(`days.${d.replace(",", "_")}`)]) }),
			field(t("shift.hours"), { name: "hours", placeholder: "22:00-06:00", pattern: "\\d{2}:\\d{2}-\\d{2}:\\d{2}" }, { hint: t("hint.hours") }));
		const once = h("div", { class: "sub", hidden: true },
			field(t("shift.from"), { name: "from", type: "datetime-local" }),
			field(t("shift.to"), { name: "to", type: "datetime-local" }));
		kind.addEventListener("change", () => {
			weekly.hidden = kind.value !== "weekly";
			once.hidden = kind.value !== "once";
		});
		const form = h("form", { class: "form", id: "shift-add" },
			h("div", { class: "field" }, h("label", { for: "shift-worker" }, t("shift.worker")), workerSelect),
			h("div", { class: "field" }, h("label", { for: "shift-kind" }, t("shift.kind")), kind),
			weekly, once, err.el, h("div", { class: "form-actions" }, submit));
		form.addEventListener("submit", (ev) => {
			ev.preventDefault();
			const fd = new FormData(form);
			const body = { worker: fd.get("worker") };
			if (kind.value === "always") {
				body.always = true;
			} else if (kind.value === "weekly") {
				body.days = fd.get("days");
				body.hours = String(fd.get("hours") || "").trim();
				if (!/^\d{2}:\d{2}-\d{2}:\d{2}$/.test(body.hours))
					return err.show(t("shifts.bad_hours"));
			} else {
				const from = Date.parse(fd.get("from")), to = Date.parse(fd.get("to"));
				if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from)
					return err.show(t("shifts.bad_range"));
				body.from = new Date(from).toISOString();
				body.to = new Date(to).toISOString();
			}
			busy(submit, async () => {
				try {
					await post("shifts", body);
					toast(t("shifts.added"), "ok");
					err.show("");
					load();
				} catch (e) {
					err.show(explain(e));
				}
			});
		});
		return h("details", { class: "card add" }, h("summary", {}, t("shifts.add")), form);
	}

	async function removeWorker(w) {
		if (!await confirmDialog(t("workers.remove_title"), t("workers.remove_text", { name: w.name, id: w.id }), t("action.remove"), true))
			return;
		try {
			await del(`workers/${seg(w.id)}`);
			toast(t("workers.removed", { id: w.id }), "ok");
			forgetWorkers();
		} catch (e) {
			toast(explain(e), "error");
		}
		load();   /* either way: show what is true now */
	}

	async function removeShift(s) {
		if (!await confirmDialog(t("shifts.remove_title"), shiftText(s), t("action.remove"), true))
			return;
		try {
			await del(`shifts/${seg(s.id)}`);
			toast(t("shifts.removed"), "ok");
		} catch (e) {
			toast(explain(e), "error");
		}
		load();   /* either way: show what is true now */
	}

	async function load() {
		try {
			const [ws, ss, duty] = await Promise.all([get("workers"), get("shifts"), get("oncall").catch(() => null)]);
			const onDuty = new Set((duty || []).map((w) => w.id));
			const byWorker = new Map();
			for (const s of ss || []) {
				if (!byWorker.has(s.worker))
					byWorker.set(s.worker, []);
				byWorker.get(s.worker).push(s);
			}
			if (workerSelect) {
				const keep = workerSelect.value;
				append(clear(workerSelect), ...(ws || []).map((w) => h("option", { value: w.id, selected: w.id === keep }, `${w.name} (${w.id})`)));
			}
			append(clear(out), table([
				{ label: t("worker.name"), cell: (w) => [w.name, " ", h("code", {}, w.id)] },
				{ label: t("worker.teams"), cell: (w) => (w.teams || []).join(", ") || "—" },
				{ label: t("worker.phone"), cell: (w) => dash(w.phone) },
				{ label: t("worker.on_duty"), cell: (w) => (duty === null ? "—" : onDuty.has(w.id)
					? h("span", { class: "badge ok" }, t("worker.yes")) : h("span", { class: "muted" }, t("worker.no"))) },
				{ label: t("worker.shifts"), cell: (w) => h("ul", { class: "plain" }, (byWorker.get(w.id) || []).map((s) =>
					h("li", {}, shiftText(s), admin ? [" ", h("button", { type: "button", class: "btn small link",
						"aria-label": `${t("action.remove")}: ${shiftText(s)}`, onclick: () => removeShift(s) }, t("action.remove"))] : null))) },
				...(admin ? [{ label: h("span", { class: "sr" }, t("list.actions")), cell: (w) =>
					h("button", { type: "button", class: "btn danger small", onclick: () => removeWorker(w) }, t("action.remove")) }] : []),
			], ws || [], { empty: t("workers.none"), rowAttrs: (w) => ({ dataset: { worker: w.id } }) }));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	}
	load();
	return { el };
}
