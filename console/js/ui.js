// Small shared pieces: toasts, dialogs, form fields, tables, states.

import { h, clear, append } from "./dom.js";
import { t } from "./i18n.js";
import { explain } from "./api.js";

/* A message that goes away by itself; errors stay until dismissed. */
export function toast(text, kind = "info") {
	const box = document.getElementById("toasts");
	if (!box)
		return;
	const close = h("button", { type: "button", class: "toast-close", "aria-label": t("action.dismiss"),
		onclick: () => el.remove() }, "×");
	const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
		h("span", {}, text), close);
	box.append(el);
	if (kind !== "error")
		setTimeout(() => el.remove(), 6000);
}

export function toastError(err) {
	toast(explain(err), "error");
}

/* A modal <dialog>; build(body, close) fills it. Resolves with what close
 * was given (undefined when cancelled with Esc or the cancel button). */
export function modal({ title, build, className = "" }) {
	return new Promise((resolve) => {
		const heading = h("h2", { id: "dialog-title" }, title);
		const body = h("div", { class: "dialog-body" });
		const dlg = h("dialog", { class: `dialog ${className}`, "aria-labelledby": "dialog-title" }, heading, body);
		let result;
		const close = (value) => {
			result = value;
			dlg.close();
		};
		dlg.addEventListener("close", () => {
			dlg.remove();
			resolve(result);
		});
		build(body, close);
		document.body.append(dlg);
		dlg.showModal();
		const first = dlg.querySelector("[autofocus], input, select, textarea, button.primary, button");
		if (first)
			first.focus();
	});
}

export function confirmDialog(title, text, okLabel, danger = false) {
	return modal({
		title,
		build(body, close) {
			body.append(h("p", {}, text), h("div", { class: "dialog-actions" },
				h("button", { type: "button", class: "btn", onclick: () => close(false) }, t("action.cancel")),
				h("button", { type: "button", class: danger ? "btn danger" : "btn primary", autofocus: true,
					onclick: () => close(true) }, okLabel)));
		},
	}).then(Boolean);
}

let fieldSeq = 0;
/* A labelled input: field(label, {name: "id", required: true}) */
export function field(label, attrs = {}, { hint = null, tag = "input", options = null } = {}) {
	const id = attrs.id || `f${++fieldSeq}`;
	let control;
	if (tag === "select") {
		control = h("select", { ...attrs, id }, (options || []).map(([v, text]) =>
			h("option", { value: v, selected: String(attrs.value ?? "") === String(v) }, text)));
	} else if (tag === "textarea") {
		control = h("textarea", { ...attrs, id });
	} else {
		control = h("input", { type: "text", ...attrs, id });
	}
	const hintEl = hint ? h("small", { class: "hint", id: `${id}-hint` }, hint) : null;
	if (hintEl)
		control.setAttribute("aria-describedby", `${id}-hint`);
	return h("div", { class: "field" }, h("label", { for: id }, label,
		attrs.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null), control, hintEl);
}

/* An error line inside a form, announced to screen readers. */
export function formError() {
	const el = h("p", { class: "form-error", role: "alert", hidden: true });
	return {
		el,
		show(text) {
			el.hidden = !text;
			el.textContent = text || "";
		},
	};
}

/* rows: array; cols: [{label, cell: (row) => node|string, cls}] */
export function table(cols, rows, { caption = null, empty = t("list.empty"), rowAttrs = null } = {}) {
	if (!rows.length)
		return h("p", { class: "empty" }, empty);
	return h("div", { class: "table-wrap" }, h("table", { class: "data" },
		caption ? h("caption", {}, caption) : null,
		h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", class: c.cls }, c.label)))),
		h("tbody", {}, rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
			cols.map((c, i) => (i === 0 ? h("th", { scope: "row", class: c.cls }, c.cell(r))
				: h("td", { class: c.cls }, c.cell(r)))))))));
}

export function loading() {
	return h("p", { class: "loading", role: "status" }, t("list.loading"));
}

export function failed(err, retry) {
	return h("div", { class: "failed", role: "alert" }, h("p", {}, explain(err)),
		retry ? h("button", { type: "button", class: "btn", onclick: retry }, t("action.retry")) : null);
}

/* Fill container from an async loader, showing loading and errors. */
export async function fill(container, load, render) {
	append(clear(container), loading());
	try {
		const data = await load();
		append(clear(container), render(data));
	} catch (e) {
		if (e && e.status === 401)
			return;
		append(clear(container), failed(e, () => fill(container, load, render)));
	}
}

export function dash(v) {
	return v === null || v === undefined || v === "" ? "—" : String(v);
}

/* A submit button that shows it is busy and cannot be pressed twice. */
export async function busy(button, fn) {
	if (button.disabled)
		return undefined;
	button.disabled = true;
	button.setAttribute("aria-busy", "true");
	try {
		return await fn();
	} finally {
		button.disabled = false;
		button.removeAttribute("aria-busy");
	}
}
