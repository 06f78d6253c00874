// A worker's own shifts (SPEC 6.1: workers read their own shifts).

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import { get } from "../api.js";
import { failed, loading } from "../ui.js";
import { shiftText } from "./oncall.js";

export function meView(ctx) {
	const out = h("div", {}, loading());
	const el = h("section", { class: "me" }, h("div", { class: "view-head" }, h("h1", {}, t("me.title"))), out);
	(async function load() {
		try {
			const list = ((await get("shifts")) || []).filter((s) => !ctx.user.worker || s.worker === ctx.user.worker);
			append(clear(out), list.length
				? h("ul", { class: "shift-list" }, list.map((s) => h("li", { class: "card" }, shiftText(s))))
				: h("p", { class: "muted" }, t("me.none")));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	})();
	return { el };
}
