// The installer's devices: the list and adding one, the CSV import, devices
// nobody registered (and adopting them), and what sources sent that became
// no event.

import { h, clear, append } from "../dom.js";
import { t, word } from "../i18n.js";
import { get, post, del, seg, explain, ApiError } from "../api.js";
import { time, parseDuration, number } from "../format.js";
import { failed, loading, table, field, formError, toast, confirmDialog, dash, busy, modal } from "../ui.js";
import { mayEdit } from "./residents.js";

const TABS = [["", "devices.tab_list"], ["import", "devices.tab_import"], ["unknown", "devices.tab_unknown"],
	["unmapped", "devices.tab_unmapped"]];

export function devicesView(ctx, tab = "") {
	tab = tab || "";
	const { user } = ctx;
	const panel = h("div", { class: "tab-panel", role: "tabpanel", id: `devices-${tab || "list"}` });
	const el = h("section", { class: "devices" },
		h("div", { class: "view-head" }, h("h1", {}, t("devices.title"))),
		h("nav", { class: "tabs", "aria-label": t("devices.tabs") }, TABS.filter(([k]) => (k !== "import" && k !== "unmapped") || mayEdit(user))
			.map(([k, label]) => h("a", { href: k ? `#/devices/${k}` : "#/devices", class: k === tab ? "active" : null,
				"aria-current": k === tab ? "page" : null }, t(label)))),
		panel);
	({ "": listTab, import: importTab, unknown: unknownTab, unmapped: unmappedTab })[tab](panel, user);
	return { el };
}

async function residentOptions() {
	const rs = (await get("residents").catch(() => [])) || [];
	rs.sort((a, b) => String(a.name).localeCompare(String(b.name)));
	return [["", t("devices.pick_resident")], ...rs.map((r) => [r.id, `${r.name} (${r.id})`])];
}

function deviceFields(options, { withId = true } = {}) {
	return [
		withId ? field(t("device.id"), { name: "id", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}", maxlength: 64 },
			{ hint: t("hint.id") }) : null,
		field(t("device.resident"), { name: "resident", required: true }, { tag: "select", options }),
		field(t("device.kind"), { name: "kind", maxlength: 64, list: "device-kinds" }, { hint: t("hint.kind") }),
		field(t("device.heartbeat"), { name: "heartbeat", maxlength: 16, placeholder: "15m" }, { hint: t("hint.heartbeat") }),
		field(t("device.source"), { name: "source", maxlength: 64 }, { hint: t("hint.source") }),
		field(t("device.address"), { name: "address", maxlength: 256 }),
		h("datalist", { id: "device-kinds" }, ["pendant", "wristband", "fall_detector", "smoke_detector", "co_detector",
			"door_sensor", "base_unit"].map((k) => h("option", { value: k }))),
	];
}

/* The form's values as the API wants them; a bad heartbeat is an error. */
function deviceBody(form) {
	const body = {};
	for (const [k, v] of new FormData(form)) {
		const s = String(v).trim();
		if (!s)
			continue;
		if (k === "heartbeat") {
			const ms = parseDuration(s);
			if (ms === null || ms <= 0)
				throw new ApiError(400, t("devices.bad_heartbeat", { value: s }), { ours: true });
			body.heartbeat_ms = ms;
		} else {
			body[k] = s;
		}
	}
	return body;
}

function listTab(panel, user) {
	let all = [];
	const filter = h("input", { type: "search", id: "device-filter", placeholder: t("list.filter_hint"), oninput: () => render() });
	const out = h("div", {}, loading());
	panel.append(h("div", { class: "field inline" }, h("label", { for: "device-filter" }, t("list.filter")), filter));
	if (mayEdit(user))
		panel.append(addForm());
	panel.append(out);

	function addForm() {
		const err = formError();
		const submit = h("button", { type: "submit", class: "btn primary" }, t("devices.add"));
		const form = h("form", { class: "form grid", id: "device-add" }, err.el);
		residentOptions().then((opts) => {
			form.prepend(...deviceFields(opts));
			form.append(h("div", { class: "form-actions" }, submit));
		});
		form.addEventListener("submit", (ev) => {
			ev.preventDefault();
			if (!form.reportValidity())
				return;
			busy(submit, async () => {
				try {
					const body = deviceBody(form);
					await post("devices", body);
					toast(t("devices.added", { id: body.id }), "ok");
					form.reset();
					err.show("");
					load();
				} catch (e) {
					err.show(explain(e));
				}
			});
		});
		return h("details", { class: "card add" }, h("summary", {}, t("devices.add")), form);
	}

	function render() {
		const q = filter.value.trim().toLowerCase();
		const rows = q ? all.filter((d) => [d.id, d.resident, d.kind, d.source, d.address]
			.some((x) => x && String(x).toLowerCase().includes(q))) : all;
		append(clear(out), table([
			{ label: t("device.id"), cell: (d) => h("a", { href: `#/device/${encodeURIComponent(d.id)}` }, d.id) },
			{ label: t("device.resident"), cell: (d) => h("a", { href: `#/residents/${encodeURIComponent(d.resident)}` }, d.resident) },
			{ label: t("device.kind"), cell: (d) => dash(d.kind) },
			{ label: t("device.supervision"), cell: (d) => supervision(d) },
			{ label: t("device.battery"), cell: (d) => (d.battery === null || d.battery === undefined ? "—" : `${d.battery}%`), cls: "num" },
			{ label: t("device.last_seen"), cell: (d) => time(d.last_seen) },
			...(mayEdit(user) ? [{ label: h("span", { class: "sr" }, t("list.actions")), cell: (d) => h("span", { class: "row-actions" },
				h("a", { class: "btn small", href: `#/device/${encodeURIComponent(d.id)}`, dataset: { test: d.id } }, t("devices.test")),
				h("button", { type: "button", class: "btn danger small", "aria-label": `${t("action.remove")} ${d.id}`,
					onclick: () => remove(d) }, t("action.remove"))) }] : []),
		], rows, { empty: q ? t("list.no_match") : t("devices.none"), rowAttrs: (d) => ({ dataset: { device: d.id } }) }),
		h("p", { class: "muted" }, t("list.count", { n: rows.length })));
	}

	async function remove(d) {
		if (!await confirmDialog(t("devices.remove_title"), t("devices.remove_text", { id: d.id }), t("action.remove"), true))
			return;
		try {
			await del(`devices/${seg(d.id)}`);
			toast(t("devices.removed", { id: d.id }), "ok");
		} catch (e) {
			toast(explain(e), "error");
		}
		load();   /* either way: show what is true now */
	}

	async function load() {
		try {
			all = (await get("devices")) || [];
			all.sort((a, b) => a.id.localeCompare(b.id));
			render();
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	}
	load();
}

export function supervision(d) {
	if (!d.supervision || d.supervision === "none")
		return h("span", { class: "muted" }, t("supervision.none"));
	return h("span", { class: `badge sup-${d.supervision}` }, word("supervision", d.supervision));
}

/* POST /api/devices/import with text/csv: added devices, or the bad lines. */
function importTab(panel) {
	const err = h("div", { class: "import-errors", id: "import-errors", role: "alert", hidden: true });
	const result = h("div", { class: "import-result", id: "import-result", role: "status" });
	const file = h("input", { type: "file", id: "import-file", name: "file", accept: ".csv,text/csv" });
	const text = h("textarea", { id: "import-text", name: "csv", rows: 7, spellcheck: "false",
		placeholder: "id,resident,kind,heartbeat\npendant-0042,r-17,pendant,15m" });
	const submit = h("button", { type: "submit", class: "btn primary", id: "import-submit" }, t("import.submit"));
	file.addEventListener("change", async () => {
		const f = file.files && file.files[0];
		if (f)
			text.value = await f.text();
	});
	const form = h("form", { class: "form", id: "import-form" },
		h("p", {}, t("import.intro")),
		h("pre", { class: "example" }, "id,resident,kind,heartbeat,source,address\npendant-0042,r-17,pendant,15m,,\nsos-3,r-18,,,zigbee,flat 12/sos"),
		h("div", { class: "field" }, h("label", { for: "import-file" }, t("import.file")), file),
		h("div", { class: "field" }, h("label", { for: "import-text" }, t("import.text")), text),
		err, h("div", { class: "form-actions" }, submit), result);
	form.addEventListener("submit", (ev) => {
		ev.preventDefault();
		err.hidden = true;
		clear(result);
		if (!text.value.trim()) {
			showErrors(t("import.empty"));
			return;
		}
		busy(submit, async () => {
			try {
				const r = await post("devices/import", text.value, { contentType: "text/csv" });
				append(result, h("p", { class: "ok-text" }, t("import.added", { n: r.added })),
					r.devices?.length ? h("ul", { class: "chips" }, r.devices.map((d) =>
						h("li", { class: "chip" }, h("a", { href: `#/device/${encodeURIComponent(d)}` }, d)))) : null);
				toast(t("import.added", { n: r.added }), "ok");
			} catch (e) {
				showErrors(/\bline \d+:/.test(e.message || "") ? null : explain(e), e);
			}
		});
	});

	/* The daemon names the bad lines: "nothing imported: 2 bad lines: line 3:
	 * ...; line 4: ...". One list item per line, in the daemon's words. */
	function showErrors(message, e) {
		clear(err);
		err.hidden = false;
		if (message) {
			err.append(h("p", {}, message));
			return;
		}
		const parts = String(e.message).split(/(?=\bline \d+:)/);
		const head = /\bline \d+:/.test(parts[0]) ? "" : parts.shift().replace(/[:;\s]+$/, "");
		const lines = parts.map((l) => l.replace(/[;\s]+$/, "").trim()).filter(Boolean);
		append(err, h("p", {}, h("strong", {}, t("import.refused"))),
			head ? h("p", { class: "muted" }, head) : null,
			h("ul", {}, lines.map((l) => h("li", { class: "bad-line", dataset: { line: (/line (\d+)/.exec(l) || [])[1] || "" } }, l))));
		err.scrollIntoView({ block: "center" });
	}
	panel.append(h("section", { class: "card" }, form));
}

function unknownTab(panel, user) {
	const out = h("div", {}, loading());
	panel.append(h("p", { class: "muted" }, t("unknown.intro")), out);
	async function load() {
		try {
			const list = (await get("devices/unknown")) || [];
			append(clear(out), table([
				{ label: t("device.id"), cell: (u) => h("code", {}, u.device) },
				{ label: t("unknown.events"), cell: (u) => number(u.events), cls: "num" },
				{ label: t("unknown.first"), cell: (u) => time(u.first_seen) },
				{ label: t("unknown.last"), cell: (u) => time(u.last_seen) },
				{ label: t("unknown.last_type"), cell: (u) => word("type", u.last_type) },
				...(mayEdit(user) ? [{ label: h("span", { class: "sr" }, t("list.actions")),
					cell: (u) => h("button", { type: "button", class: "btn small", onclick: () => adopt(u.device) }, t("unknown.adopt")) }] : []),
			], list, { empty: t("unknown.none"), rowAttrs: (u) => ({ dataset: { device: u.device } }) }));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	}
	async function adopt(id) {
		const opts = await residentOptions();
		const done = await modal({
			title: t("unknown.adopt_title", { id }),
			build(body, close) {
				const err = formError();
				const submit = h("button", { type: "submit", class: "btn primary" }, t("unknown.adopt"));
				const form = h("form", { class: "form" }, ...deviceFields(opts, { withId: false }), err.el,
					h("div", { class: "dialog-actions" },
						h("button", { type: "button", class: "btn", onclick: () => close(false) }, t("action.cancel")), submit));
				form.addEventListener("submit", (ev) => {
					ev.preventDefault();
					if (!form.reportValidity())
						return;
					busy(submit, async () => {
						try {
							await post(`devices/${seg(id)}/adopt`, deviceBody(form));
							close(true);
						} catch (e) {
							err.show(explain(e));
						}
					});
				});
				body.append(h("p", {}, t("unknown.adopt_text")), form);
			},
		});
		if (done) {
			toast(t("unknown.adopted", { id }), "ok");
			load();
		}
	}
	load();
}

function unmappedTab(panel) {
	const out = h("div", {}, loading());
	panel.append(h("p", { class: "muted" }, t("unmapped.intro")), out);
	(async function load() {
		try {
			const list = (await get("sources/unmapped")) || [];
			append(clear(out), table([
				{ label: t("device.source"), cell: (u) => u.source },
				{ label: t("device.address"), cell: (u) => h("code", {}, dash(u.address)) },
				{ label: t("unmapped.messages"), cell: (u) => number(u.messages), cls: "num" },
				{ label: t("unknown.last"), cell: (u) => time(u.last_seen) },
				{ label: t("unmapped.reason"), cell: (u) => dash(u.reason) },
				{ label: t("unmapped.payload"), cell: (u) => h("code", { class: "payload" },
					u.last_payload === null || u.last_payload === undefined ? "—" : JSON.stringify(u.last_payload).slice(0, 200)) },
			], list, { empty: t("unmapped.none") }));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	})();
}
