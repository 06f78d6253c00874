// Console users (admin only): list, add, change a password, remove.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import { get, post, put, del, seg, explain } from "../api.js";
import { time } from "../format.js";
import { failed, loading, table, field, formError, toast, confirmDialog, dash, busy, modal } from "../ui.js";

const ROLES = ["dispatcher", "installer", "worker", "admin"];

function passwordFields() {
	return [
		field(t("users.password"), { name: "password", type: "password", required: true, minlength: 8, maxlength: 1024,
			autocomplete: "new-password" }, { hint: t("hint.password") }),
		field(t("users.password_again"), { name: "password2", type: "password", required: true, minlength: 8,
			maxlength: 1024, autocomplete: "new-password" }),
	];
}

function checkPasswords(fd) {
	const p = String(fd.get("password") || ""), p2 = String(fd.get("password2") || "");
	if (new TextEncoder().encode(p).length < 8)
		return t("users.too_short");
	if (p !== p2)
		return t("users.mismatch");
	return null;
}

export function usersView(ctx) {
	const out = h("div", {}, loading());
	const el = h("section", { class: "users" }, h("div", { class: "view-head" }, h("h1", {}, t("users.title"))), addForm(), out);

	function addForm() {
		const err = formError();
		const submit = h("button", { type: "submit", class: "btn primary" }, t("users.add"));
		const form = h("form", { class: "form grid", id: "user-add", autocomplete: "off" },
			field(t("users.name"), { name: "name", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", maxlength: 64,
				autocomplete: "off" }, { hint: t("hint.id") }),
			field(t("users.role"), { name: "role", required: true }, { tag: "select",
				options: ROLES.map((r) => [r, t(`role.${r}`)]) }),
			field(t("users.worker"), { name: "worker", maxlength: 64, list: "worker-ids" }, { hint: t("hint.user_worker") }),
			...passwordFields(),
			h("datalist", { id: "worker-ids" }),
			err.el, h("div", { class: "form-actions" }, submit));
		get("workers").then((ws) => {
			const dl = form.querySelector("#worker-ids");
			for (const w of ws || [])
				dl.append(h("option", { value: w.id }, w.name));
		}).catch(() => {});
		form.addEventListener("submit", (ev) => {
			ev.preventDefault();
			if (!form.reportValidity())
				return;
			const fd = new FormData(form);
			const bad = checkPasswords(fd);
			if (bad)
				return err.show(bad);
			const body = { name: String(fd.get("name")).trim(), role: fd.get("role"), password: fd.get("password") };
			if (String(fd.get("worker") || "").trim())
				body.worker = String(fd.get("worker")).trim();
			busy(submit, async () => {
				try {
					await post("users", body);
					toast(t("users.added", { name: body.name }), "ok");
					form.reset();
					err.show("");
					load();
				} catch (e) {
					err.show(explain(e));
				}
			});
		});
		return h("details", { class: "card add" }, h("summary", {}, t("users.add")), form);
	}

	async function passwd(u) {
		const done = await modal({
			title: t("users.passwd_title", { name: u.name }),
			build(body, close) {
				const err = formError();
				const submit = h("button", { type: "submit", class: "btn primary" }, t("users.passwd"));
				const form = h("form", { class: "form" }, ...passwordFields(), err.el, h("div", { class: "dialog-actions" },
					h("button", { type: "button", class: "btn", onclick: () => close(false) }, t("action.cancel")), submit));
				form.addEventListener("submit", (ev) => {
					ev.preventDefault();
					const fd = new FormData(form);
					const bad = checkPasswords(fd);
					if (bad)
						return err.show(bad);
					busy(submit, async () => {
						try {
							await put(`users/${seg(u.name)}/password`, { password: fd.get("password") });
							close(true);
						} catch (e) {
							err.show(explain(e));
						}
					});
				});
				body.append(h("p", {}, t("users.passwd_text")), form);
			},
		});
		if (done)
			toast(t("users.passwd_done", { name: u.name }), "ok");
	}

	async function remove(u) {
		if (!await confirmDialog(t("users.remove_title"), t("users.remove_text", { name: u.name }), t("action.remove"), true))
			return;
		try {
			await del(`users/${seg(u.name)}`);
			toast(t("users.removed", { name: u.name }), "ok");
		} catch (e) {
			toast(explain(e), "error");
		}
		load();   /* either way: show what is true now */
	}

	async function load() {
		try {
			const list = (await get("users")) || [];
			append(clear(out), table([
				{ label: t("users.name"), cell: (u) => [u.name, u.name === ctx.user.name ? h("span", { class: "muted" }, ` (${t("users.you")})`) : null] },
				{ label: t("users.role"), cell: (u) => t(`role.${u.role}`) },
				{ label: t("users.worker"), cell: (u) => dash(u.worker) },
				{ label: t("users.created"), cell: (u) => time(u.created_at) },
				{ label: t("users.changed"), cell: (u) => time(u.changed_at) },
				{ label: h("span", { class: "sr" }, t("list.actions")), cell: (u) => h("span", { class: "row-actions" },
					h("button", { type: "button", class: "btn small", onclick: () => passwd(u) }, t("users.passwd")),
					h("button", { type: "button", class: "btn danger small", onclick: () => remove(u) }, t("action.remove"))) },
			], list, { empty: t("users.none"), rowAttrs: (u) => ({ dataset: { user: u.name } }) }));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	}
	load();
	return { el };
}
