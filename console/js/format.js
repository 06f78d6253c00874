// Times, durations and numbers in the user's language. The daemon sends
// RFC 3339 UTC; people read their local time.

import { language, t, word } from "./i18n.js";

const cache = new Map();
function fmt(kind, opts) {
	const key = `${language()}|${kind}`;
	if (!cache.has(key))
		cache.set(key, new Intl.DateTimeFormat(language(), { hourCycle: "h23", ...opts }));
	return cache.get(key);
}

export function parseTime(iso) {
	if (!iso)
		return null;
	const ms = Date.parse(iso);
	return Number.isFinite(ms) ? ms : null;
}

/* 22:15:03 today, otherwise 21.11, 22:15 (or Nov 21, 10:15 PM in English) */
export function time(iso) {
	const ms = parseTime(iso);
	if (ms === null)
		return "—";
	const d = new Date(ms), now = new Date();
	if (d.toDateString() === now.toDateString())
		return fmt("hms", { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d);
	return fmt("dhm", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(d);
}

export function dateTime(iso) {
	const ms = parseTime(iso);
	if (ms === null)
		return "—";
	return fmt("full", { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
		minute: "2-digit", second: "2-digit" }).format(new Date(ms));
}

export function day(isoDay) {
	const ms = parseTime(`${isoDay}T12:00:00Z`);
	if (ms === null)
		return isoDay;
	return fmt("day", { day: "numeric", month: "short" }).format(new Date(ms));
}

/* "Tue 14:00": within the coming week */
export function weekdayTime(ms) {
	return fmt("wdhm", { weekday: "short", hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
}

export function hourMinute(ms) {
	return fmt("hm", { hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
}

/* 45 s, 3 min 05 s, 1 h 02 min, 3 d 4 h */
export function duration(seconds) {
	if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds)))
		return "—";
	let s = Math.max(0, Math.round(Number(seconds)));
	const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
	const mm = Math.floor((s % 3600) / 60), ss = s % 60;
	const two = (n) => String(n).padStart(2, "0");
	if (d)
		return `${d} ${t("unit.d")} ${hh} ${t("unit.h")}`;
	if (hh)
		return `${hh} ${t("unit.h")} ${two(mm)} ${t("unit.min")}`;
	if (mm)
		return `${mm} ${t("unit.min")} ${two(ss)} ${t("unit.s")}`;
	return `${ss} ${t("unit.s")}`;
}

export function since(iso, now = Date.now()) {
	const ms = parseTime(iso);
	return ms === null ? "—" : duration((now - ms) / 1000);
}

export function percent(x) {
	if (x === null || x === undefined || !Number.isFinite(Number(x)))
		return "—";
	return new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 0 }).format(x);
}

export function number(x) {
	if (x === null || x === undefined)
		return "—";
	return new Intl.NumberFormat(language(), { maximumFractionDigits: 1 }).format(x);
}

export function priorityLabel(p) {
	return [1, 2, 3].includes(p) ? t(`priority.${p}`) : t("priority.n", { n: p });
}

export function types(list) {
	return (list || []).map((x) => word("type", x)).join(", ");
}

/* "15m", "90s", "1h", "2d", "500ms" or plain seconds, as the daemon reads them */
export function parseDuration(text) {
	const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(String(text));
	if (!m)
		return null;
	const mult = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 }[m[2] || "s"];
	return Math.round(Number(m[1]) * mult);
}
