// Strings come from i18n/{lang}.json; nothing the user reads is written in
// the code. A value may be a plain string with {placeholders} or, for
// counts, an object of plural forms ("one", "few", "many", "other") chosen
// by Intl.PluralRules (Polish needs three).

export const LANGUAGES = ["pl", "en"];
const KEY = "tc.lang";

let lang = "en";
let strings = {};
let fallback = {};
let plural = new Intl.PluralRules("en");
const listeners = new Set();

export function detectLanguage() {
	const saved = localStorage.getItem(KEY);
	if (LANGUAGES.includes(saved))
		return saved;
	for (const l of navigator.languages || [navigator.language || "en"]) {
		const base = String(l).toLowerCase().split("-")[0];
		if (LANGUAGES.includes(base))
			return base;
	}
	return "en";
}

async function fetchCatalog(l) {
	const r = await fetch(`i18n/${l}.json`, { cache: "no-cache" });
	if (!r.ok)
		throw new Error(`i18n/${l}.json: ${r.status}`);
	return r.json();
}

export async function setLanguage(l, { remember = false } = {}) {
	if (!LANGUAGES.includes(l))
		l = "en";
	const [cat, en] = await Promise.all([fetchCatalog(l),
		l === "en" ? null : (Object.keys(fallback).length ? fallback : fetchCatalog("en"))]);
	strings = cat;
	fallback = l === "en" ? cat : en;
	lang = l;
	plural = new Intl.PluralRules(l);
	document.documentElement.lang = l;
	if (remember)
		localStorage.setItem(KEY, l);
	for (const fn of listeners)
		fn(l);
}

export function language() {
	return lang;
}

export function onLanguage(fn) {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

export function has(key) {
	return key in strings || key in fallback;
}

/* t("queue.count", {n: 3}) */
export function t(key, vars = {}) {
	let s = key in strings ? strings[key] : fallback[key];
	if (s === undefined)
		return key;
	if (typeof s === "object")
		s = s[plural.select(Number(vars.n ?? 0))] ?? s.other;
	return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

/* A word from a vocabulary (alarm types, outcomes, timeline words): the
 * catalog's label when there is one, the word itself otherwise, so a type
 * or outcome added in the daemon's configuration still shows. */
export function word(group, value) {
	if (value === null || value === undefined)
		return "";
	const key = `${group}.${value}`;
	return has(key) ? t(key) : String(value).replace(/_/g, " ");
}
