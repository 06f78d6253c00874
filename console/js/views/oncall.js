// Who is on duty now, and when in the next 24 hours nobody is.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import { get } from "../api.js";
import { time, hourMinute, weekdayTime, parseTime, duration } from "../format.js";
import { failed, loading, table, dash } from "../ui.js";
import { gapStrip } from "../charts.js";

export function shiftText(s) {
	if (!s)
		return "—";
	if (s.kind === "always")
		return t("shift.always");
	if (s.kind === "weekly")
		return `${(s.days || []).map((d) => t(`day.${d}`)).join(", ")} ${s.hours || ""}`;
	return t("shift.once", { from: time(s.from), to: time(s.to) });
}

export function oncallView() {
	let team = "";
	const teamSel = h("select", { id: "oncall-team", onchange: (e) => { team = e.target.value; load(); } },
		h("option", { value: "" }, t("oncall.all_teams")));
	const now = h("div", { class: "oncall-now" }, loading());
	const gaps = h("div", { class: "oncall-gaps" }, loading());
	const el = h("section", { class: "oncall" },
		h("div", { class: "view-head" }, h("h1", {}, t("oncall.title")),
			h("div", { class: "field inline" }, h("label", { for: "oncall-team" }, t("oncall.team")), teamSel)),
		h("div", { class: "cards two" },
			h("section", { class: "card" }, h("h2", {}, t("oncall.now")), now),
			h("section", { class: "card" }, h("h2", {}, t("oncall.gaps")), gaps)));

	get("workers").then((ws) => {
		const teams = [...new Set((ws || []).flatMap((w) => w.teams || []))].sort();
		for (const x of teams)
			teamSel.append(h("option", { value: x }, x));
	}).catch(() => {});

	async function load() {
		const q = team ? `&team=${encodeURIComponent(team)}` : "";
		append(clear(now), loading());
		append(clear(gaps), loading());
		const start = Date.now(), end = start + 24 * 3600000;
		try {
			const list = await get(`oncall?${q.slice(1)}`);
			append(clear(now), list.length ? table([
				{ label: t("worker.name"), cell: (w) => w.name },
				{ label: t("worker.teams"), cell: (w) => (w.teams || []).join(", ") || "—" },
				{ label: t("worker.phone"), cell: (w) => (w.phone ? h("a", { href: `tel:${w.phone.replace(/[^+\d]/g, "")}` }, w.phone) : "—") },
				{ label: t("worker.shift"), cell: (w) => (w.shifts || []).map(shiftText).join("; ") || "—" },
			], list) : h("p", { class: "warn-text", role: "alert" },
				team ? t("oncall.nobody_team", { team }) : t("oncall.nobody")));
		} catch (e) {
			if (e.status !== 401)
				append(clear(now), failed(e, load));
		}
		try {
			const list = await get(`oncall/gaps?hours=24${q}`);
			const byTeam = new Map();
			for (const g of list || []) {
				const k = g.team ?? "";
				if (!byTeam.has(k))
					byTeam.set(k, []);
				byTeam.get(k).push({ from: parseTime(g.from), to: parseTime(g.to), team: g.team,
					text: `${hourMinute(parseTime(g.from))}–${hourMinute(parseTime(g.to))}` });
			}
			clear(gaps);
			if (!byTeam.size) {
				gaps.append(h("p", { class: "ok-text" }, team ? t("oncall.no_gaps_team", { team }) : t("oncall.no_gaps")));
				return;
			}
			for (const [k, list2] of byTeam) {
				const label = k ? t("oncall.team_named", { team: k }) : t("oncall.anyone");
				gaps.append(h("h3", {}, label),
					gapStrip({ title: label, desc: list2.map((g) => g.text).join(", "), start, end, gaps: list2,
						hourLabel: hourMinute }),
					h("ul", { class: "gap-list" }, list2.map((g) => h("li", {},
						h("strong", {}, `${weekdayTime(g.from)} – ${weekdayTime(g.to)}`),
						" ", h("span", { class: "muted" }, `(${duration((g.to - g.from) / 1000)})`), g.team ? ` · ${dash(g.team)}` : ""))));
			}
		} catch (e) {
			if (e.status !== 401)
				append(clear(gaps), failed(e, load));
		}
	}
	load();
	const timer = setInterval(load, 60000);
	return { el, cleanup: () => clearInterval(timer) };
}
