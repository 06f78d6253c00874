// The report: per priority, how many alarms and the share answered within
// 60 s and 180 s; per day, alarms by priority. Charts and the same numbers
// as tables.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import { get } from "../api.js";
import { percent, duration, number, day, priorityLabel, dateTime } from "../format.js";
import { failed, loading, table } from "../ui.js";
import { groupedBars, stackedBars } from "../charts.js";

const RANGES = [7, 30, 90];

export function reportView() {
	let days = 30;
	const out = h("div", { class: "report-body" }, loading());
	const sel = h("select", { id: "report-range", onchange: (e) => { days = Number(e.target.value); load(); } },
		RANGES.map((d) => h("option", { value: d, selected: d === days }, t("report.last_days", { n: d }))));
	const el = h("section", { class: "report" },
		h("div", { class: "view-head" }, h("h1", {}, t("report.title")),
			h("div", { class: "field inline" }, h("label", { for: "report-range" }, t("report.range")), sel)),
		out);

	function render(r) {
		const pr = (r.priorities || []).slice().sort((a, b) => a.priority - b.priority);
		const parts = [h("p", { class: "muted" }, t("report.span", { from: dateTime(r.from), to: dateTime(r.to) }))];
		parts.push(h("section", { class: "card" }, h("h2", {}, t("report.answered")),
			pr.length ? groupedBars({
				title: t("report.answered"), desc: t("report.answered_desc"),
				groups: pr.map((p) => ({ label: priorityLabel(p.priority), values: [p.within_60s, p.within_180s] })),
				series: [{ name: t("report.within_60"), cls: "s60" }, { name: t("report.within_180"), cls: "s180" }],
				max: 1, label: percent,
			}) : null,
			table([
				{ label: t("report.priority"), cell: (p) => priorityLabel(p.priority) },
				{ label: t("report.alarms"), cell: (p) => number(p.alarms), cls: "num" },
				{ label: t("report.acknowledged"), cell: (p) => number(p.acknowledged), cls: "num" },
				{ label: t("report.within_60"), cell: (p) => percent(p.within_60s), cls: "num" },
				{ label: t("report.within_180"), cell: (p) => percent(p.within_180s), cls: "num" },
				{ label: t("report.median"), cell: (p) => duration(p.median_ack_s), cls: "num" },
				{ label: t("report.p90"), cell: (p) => duration(p.p90_ack_s), cls: "num" },
			], pr, { empty: t("report.none") })));
		if (Array.isArray(r.days)) {
			const dayList = [...new Set(r.days.map((d) => d.day))].sort();
			const prios = [...new Set(r.days.map((d) => d.priority))].sort((a, b) => a - b);
			const cell = new Map(r.days.map((d) => [`${d.day}|${d.priority}`, d]));
			parts.push(h("section", { class: "card" }, h("h2", {}, t("report.per_day")),
				dayList.length ? stackedBars({
					title: t("report.per_day"), desc: t("report.per_day_desc"),
					columns: dayList.map((d) => ({ label: day(d), values: prios.map((p) => cell.get(`${d}|${p}`)?.alarms || 0) })),
					series: prios.map((p) => ({ name: priorityLabel(p), cls: `p${Math.min(p, 3)}` })),
					label: (v) => number(Math.round(v)),
				}) : null,
				h("details", {}, h("summary", {}, t("report.as_table")), table([
					{ label: t("report.day"), cell: (d) => day(d) },
					...prios.map((p) => ({ label: priorityLabel(p), cls: "num",
						cell: (d) => {
							const c = cell.get(`${d}|${p}`);
							return c ? `${number(c.alarms)} (${percent(c.within_60s)} / ${percent(c.within_180s)})` : "0";
						} })),
				], dayList, { empty: t("report.none") }), h("p", { class: "muted" }, t("report.cell_hint")))));
		} else {
			parts.push(h("p", { class: "muted" }, t("report.no_days")));
		}
		append(clear(out), ...parts);
	}

	async function load() {
		append(clear(out), loading());
		const to = new Date(), from = new Date(to.getTime() - days * 86400000);
		try {
			render(await get(`report?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`));
		} catch (e) {
			if (e.status !== 401)
				append(clear(out), failed(e, load));
		}
	}
	load();
	return { el };
}
