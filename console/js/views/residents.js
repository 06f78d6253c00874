// Residents: the list (filterable), adding and removing (installers and
// admins), and one resident's page with their devices and open alarms.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import { get, post, del, seg, explain } from "../api.js";
import { time, types, priorityLabel } from "../format.js";
import { failed, loading, table, field, formError, toast, confirmDialog, dash, busy } from "../ui.js";
import { residentCard } from "./alarm.js";
import { stateBadge } from "./queue.js";

export const mayEdit = (user) => user.role === "installer" || user.role === "admin";

export function residentsView(ctx) {
	const { user } = ctx;
	let all = [];
	const filter = h("input", { type: "search", id: "resident-filter", placeholder: t("list.filter_hint"),
		oninput: () => render() });
	const out = h("div", {}, loading());
	const el = h("section", { class: "residents" },
		h("div", { class: "view-head" }, h("h1", {}, t("residents.title")),
			h("div", { class: "field inline" }, h("label", { for: "resident-filter" }, t("list.filter")), filter)),
		mayEdit(user) ? addForm() : null,
		out);

	function addForm() {
		const err = formError();
		const submit = h("button", { type: "submit", class: "btn primary" }, t("residents.add"));
		const form = h("form", { class: "form grid", id: "resident-add" },
			field(t("resident.id"), { name: "id", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", maxlength: 64 },
				{ hint: t("hint.id") }),
			field(t("resident.name"), { name: "name", required: true, maxlength: 1024 }),
			field(t("resident.address"), { name: "address", maxlength: 1024 }),
			field(t("resident.phone"), { name: "phone", type: "tel", maxlength: 1024 }),
			field(t("resident.team"), { name: "team", maxlength: 64 }),
			field(t("resident.notes"), { name: "notes", rows: 3, maxlength: 1024 }, { tag: "textarea", hint: t("hint.notes") }),
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
					await post("residents", body);
					toast(t("residents.added", { id: body.id }), "ok");
					form.reset();
					err.show("");
					load();
				} catch (e) {
					err.show(explain(e));
				}
			});
		});
		return h("details", { class: "card add" }, h("summary", {}, t("residents.add")), form);
	}

	function render() {
		const q = filter.value.trim().toLowerCase();
		const rows = q ? all.filter((r) => [r.id, r.name, r.address, r.phone, r.team]
			.some((x) => x && String(x).toLowerCase().includes(q))) : all;
		append(clear(out), table([
			{ label: t("resident.name"), cell: (r) => h("a", { href: `#/residents/${encodeURIComponent(r.id)}` }, r.name || r.id) },
			{ label: t("resident.id"), cell: (r) => h("code", {}, r.id) },
			{ label: t("resident.address"), cell: (r) => dash(r.address) },
			{ label: t("resident.phone"), cell: (r) => dash(r.phone) },
			{ label: t("resident.team"), cell: (r) => dash(r.team) },
			...(mayEdit(user) ? [{ label: h("span", { class: "sr" }, t("list.actions")), cell: (r) =>
				h("button", { type: "button", class: "btn danger small", "aria-label": `${t("action.remove")} ${r.id}`,
					onclick: () => remove(r) }, t("action.remove")) }] : []),
		], rows, { empty: q ? t("list.no_match") : t("residents.none"), rowAttrs: (r) => ({ dataset: { resident: r.id } }) }),
		h("p", { class: "muted" }, t("list.count", { n: rows.length })));
	}

	async function remove(r) {
		if (!await confirmDialog(t("residents.remove_title"), t("residents.remove_text", { name: r.name, id: r.id }),
			t("action.remove"), true))
			return;
		try {
			await del(`residents/${seg(r.id)}`);
			toast(t("residents.removed", { id: r.id }), "ok");
		} catch (e) {
			toast(explain(e), "error");
		}
		load();   /* either way: show what is true now */
	}

	async function load() {
		try {
			all = (await get("residents")) || [];
			all.sort((a, b) => String(a.name).localeCompare(String(b.name)));
			render();
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	}
	load();
	return { el };
}

export function residentView(ctx, id) {
	const out = h("div", {}, loading());
	const el = h("section", { class: "resident" },
		h("nav", { class: "crumbs", "aria-label": t("nav.crumbs") }, h("a", { href: "#/residents" }, "← ", t("nav.residents"))),
		h("h1", {}, t("residents.one", { id })), out);
	(async function load() {
		try {
			const r = await get(`residents/${seg(id)}`);
			el.querySelector("h1").textContent = r.name || r.id;
			append(clear(out), h("div", { class: "cards two" },
				residentCard(r, null),
				h("section", { class: "card" }, h("h2", {}, t("devices.title")),
					(r.devices || []).length ? h("ul", { class: "plain" }, r.devices.map((d) =>
						h("li", {}, h("a", { href: `#/device/${encodeURIComponent(d)}` }, d))))
						: h("p", { class: "muted" }, t("devices.none")),
					h("h2", {}, t("residents.open_alarms")),
					table([
						{ label: "#", cell: (a) => h("a", { href: `#/alarms/${a.alarm}` }, `#${a.alarm}`) },
						{ label: t("event.type"), cell: (a) => types(a.types) },
						{ label: t("report.priority"), cell: (a) => priorityLabel(a.priority) },
						{ label: t("alarm.state"), cell: (a) => stateBadge(a) },
						{ label: t("alarm.opened"), cell: (a) => time(a.opened_at) },
					], r.alarms || [], { empty: t("residents.no_alarms") }))));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	})();
	return { el };
}
