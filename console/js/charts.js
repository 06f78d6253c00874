// Charts as inline SVG, drawn here: grouped bars (shares per priority) and
// stacked bars (alarms per day and priority). Each chart has a title and a
// description for screen readers, and the page shows the same numbers in a
// table; colours come from CSS classes so both themes apply.

import { svg } from "./dom.js";

const W = 640, H = 260;
const M = { top: 20, right: 12, bottom: 42, left: 44 };

function frame(title, desc) {
	const id = `c${Math.random().toString(36).slice(2, 8)}`;
	return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
		"aria-labelledby": `${id}t ${id}d`, preserveAspectRatio: "xMidYMid meet" },
	svg("title", { id: `${id}t` }, title), svg("desc", { id: `${id}d` }, desc));
}

function niceMax(v) {
	if (v <= 0)
		return 1;
	const p = 10 ** Math.floor(Math.log10(v));
	for (const m of [1, 2, 2.5, 5, 10])
		if (m * p >= v)
			return m * p;
	return 10 * p;
}

function yAxis(root, max, ticks, label) {
	const ih = H - M.top - M.bottom;
	for (let i = 0; i <= ticks; i++) {
		const v = (max * i) / ticks, y = M.top + ih - (ih * i) / ticks;
		root.append(svg("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }),
			svg("text", { x: M.left - 6, y: y + 4, class: "tick", "text-anchor": "end" }, label(v)));
	}
}

/* groups: [{label, values: [number per series]}], series: [{name, cls}] */
export function groupedBars({ title, desc, groups, series, max = null, label = String }) {
	const root = frame(title, desc);
	const top = max ?? niceMax(Math.max(0, ...groups.flatMap((g) => g.values.map(Number).filter(Number.isFinite))));
	yAxis(root, top, 4, label);
	const iw = W - M.left - M.right, ih = H - M.top - M.bottom;
	const gw = iw / Math.max(1, groups.length), bw = Math.min(48, (gw * 0.7) / series.length);
	groups.forEach((g, gi) => {
		const x0 = M.left + gi * gw + (gw - bw * series.length) / 2;
		g.values.forEach((v, si) => {
			const val = Number.isFinite(Number(v)) ? Number(v) : 0;
			const bh = (ih * Math.min(val, top)) / top;
			const x = x0 + si * bw, y = M.top + ih - bh;
			root.append(svg("rect", { x: x + 1, y, width: bw - 2, height: bh, class: `bar ${series[si].cls}` },
				svg("title", {}, `${g.label}, ${series[si].name}: ${label(val)}`)));
			root.append(svg("text", { x: x + bw / 2, y: y - 4, class: "bar-label", "text-anchor": "middle" },
				label(val)));
		});
		root.append(svg("text", { x: M.left + gi * gw + gw / 2, y: H - M.bottom + 16, class: "tick",
			"text-anchor": "middle" }, g.label));
	});
	legend(root, series);
	return root;
}

/* columns: [{label, values: [number per series]}] stacked bottom-up */
export function stackedBars({ title, desc, columns, series, label = String }) {
	const root = frame(title, desc);
	const totals = columns.map((c) => c.values.reduce((s, v) => s + (Number(v) || 0), 0));
	const top = niceMax(Math.max(0, ...totals));
	yAxis(root, top, 4, label);
	const iw = W - M.left - M.right, ih = H - M.top - M.bottom;
	const cw = iw / Math.max(1, columns.length), bw = Math.max(2, Math.min(36, cw * 0.75));
	const every = Math.ceil(columns.length / 10);
	columns.forEach((c, ci) => {
		const x = M.left + ci * cw + (cw - bw) / 2;
		let y = M.top + ih;
		c.values.forEach((v, si) => {
			const bh = (ih * (Number(v) || 0)) / top;
			if (bh <= 0)
				return;
			y -= bh;
			root.append(svg("rect", { x, y, width: bw, height: bh, class: `bar ${series[si].cls}` },
				svg("title", {}, `${c.label}, ${series[si].name}: ${label(Number(v))}`)));
		});
		if (ci % every === 0)
			root.append(svg("text", { x: x + bw / 2, y: H - M.bottom + 16, class: "tick",
				"text-anchor": "middle" }, c.label));
	});
	legend(root, series);
	return root;
}

function legend(root, series) {
	let x = M.left;
	for (const s of series) {
		root.append(svg("rect", { x, y: H - 16, width: 12, height: 12, class: `bar ${s.cls}` }),
			svg("text", { x: x + 16, y: H - 6, class: "legend" }, s.name));
		x += 24 + s.name.length * 7.5;
	}
}

/* A day as a strip: [{from, to}] gaps in red over a green window. */
export function gapStrip({ title, desc, start, end, gaps, hourLabel }) {
	const h = 56, root = svg("svg", { viewBox: `0 0 ${W} ${h}`, class: "chart strip", role: "img",
		"aria-label": `${title}. ${desc}` });
	const x = (ms) => M.left + ((W - M.left - M.right) * (ms - start)) / (end - start);
	root.append(svg("rect", { x: M.left, y: 8, width: W - M.left - M.right, height: 22, class: "covered" }));
	for (const g of gaps) {
		const a = Math.max(start, g.from), b = Math.min(end, g.to);
		if (b > a)
			root.append(svg("rect", { x: x(a), y: 8, width: Math.max(2, x(b) - x(a)), height: 22, class: "gap" },
				svg("title", {}, g.text)));
	}
	const hour = 3600000;
	for (let t = Math.ceil(start / hour) * hour; t <= end; t += hour) {
		const d = new Date(t);
		if (d.getHours() % 3 !== 0)
			continue;
		root.append(svg("line", { x1: x(t), x2: x(t), y1: 30, y2: 36, class: "grid" }),
			svg("text", { x: x(t), y: 50, class: "tick", "text-anchor": "middle" }, hourLabel(t)));
	}
	return root;
}
