// The console's shell: session, header and navigation by role, the live
// stream and board, banners, title and icon, keyboard shortcuts, routing.

import { h, clear, typing, append } from "./dom.js";
import { t, setLanguage, detectLanguage, language, LANGUAGES, onLanguage } from "./i18n.js";
import { get, del, setUnauthorizedHandler } from "./api.js";
import { Stream } from "./stream.js";
import { since } from "./format.js";
import { icon } from "./icons.js";
import { Board } from "./board.js";
import * as sound from "./sound.js";
import { setOutcomes, forgetWorkers } from "./actions.js";
import { modal, toast } from "./ui.js";
import { loginView } from "./views/login.js";
import { queueView } from "./views/queue.js";
import { alarmView } from "./views/alarm.js";
import { oncallView } from "./views/oncall.js";
import { healthView } from "./views/health.js";
import { reportView } from "./views/report.js";
import { residentsView, residentView } from "./views/residents.js";
import { devicesView } from "./views/devices.js";
import { deviceView } from "./views/device.js";
import { workersView } from "./views/workers.js";
import { usersView } from "./views/users.js";
import { meView } from "./views/me.js";

const ALL = ["admin", "dispatcher", "installer", "worker"];
const DESK = ["admin", "dispatcher"];
const INSTALL = ["admin", "dispatcher", "installer"];

/* path pattern, view, roles, and for the navigation its label and key (g+key) */
const ROUTES = [
	{ path: /^alarms$/, view: queueView, roles: ["admin", "dispatcher", "worker"], nav: "alarms", key: "a" },
	{ path: /^alarms\/(\d+)$/, view: alarmView, roles: ALL },
	{ path: /^oncall$/, view: oncallView, roles: DESK, nav: "oncall", key: "o" },
	{ path: /^health$/, view: healthView, roles: DESK, nav: "health", key: "h" },
	{ path: /^report$/, view: reportView, roles: DESK, nav: "report", key: "r" },
	{ path: /^residents$/, view: residentsView, roles: INSTALL, nav: "residents", key: "p" },
	{ path: /^residents\/([^/]+)$/, view: residentView, roles: INSTALL },
	{ path: /^devices(?:\/(import|unknown|unmapped))?$/, view: devicesView, roles: INSTALL, nav: "devices", key: "d" },
	{ path: /^device\/([^/]+)$/, view: deviceView, roles: INSTALL },
	{ path: /^workers$/, view: workersView, roles: DESK, nav: "workers", key: "w" },
	{ path: /^users$/, view: usersView, roles: ["admin"], nav: "users", key: "u" },
	{ path: /^me$/, view: meView, roles: ["worker"], nav: "me", key: "m" },
];

const ctx = {
	user: null,
	stream: null,
	board: null,
	status: null,
	statusListeners: new Set(),
	go(path) {
		location.hash = `#/${path}`;
	},
	onStatus(fn) {
		this.statusListeners.add(fn);
		return () => this.statusListeners.delete(fn);
	},
	/* GET /api/status gives everything; the stream's `status` events only
	 * what changed (mqtt.connected, store.ok/error, incidents): merge. */
	setStatus(patch) {
		const next = { ...(this.status || {}) };
		for (const [k, v] of Object.entries(patch || {}))
			next[k] = v && typeof v === "object" && !Array.isArray(v) && next[k] && typeof next[k] === "object"
				? { ...next[k], ...v } : v;
		this.status = next;
		for (const fn of this.statusListeners)
			fn(this.status);
		renderBanners();
	},
	seesAlarms() {
		return ["admin", "dispatcher", "worker"].includes(this.user?.role);
	},
};

let current = null;     // the mounted view: {el, cleanup, keys}
let chord = null;       // "g" pressed, waiting for the next key
let endedMessage = null;
const app = () => document.getElementById("app");

/* ---- theme ---- */

function applyTheme(theme = localStorage.getItem("tc.theme") || "dark") {
	document.documentElement.dataset.theme = theme === "light" ? "light" : "dark";
}

function toggleTheme() {
	const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
	localStorage.setItem("tc.theme", next);
	applyTheme(next);
	renderHeader();
}

/* ---- title and icon: the count of urgent alarms nobody has taken ---- */

function favicon(n) {
	const bg = n ? "#c62828" : "#2a5d9f";
	const mark = n
		? `<text x="32" y="45" font-size="${n > 9 ? 30 : 38}" font-family="sans-serif" font-weight="700" text-anchor="middle" fill="#fff">${n > 99 ? "99+" : n}</text>`
		: `<path d="M32 50 15 33a10 10 0 0 1 17-12 10 10 0 0 1 17 12z" fill="#fff"/>`;
	const svgText = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="${bg}"/>${mark}</svg>`;
	let link = document.getElementById("favicon");
	if (!link) {
		link = h("link", { id: "favicon", rel: "icon", type: "image/svg+xml" });
		document.head.append(link);
	}
	link.href = `data:image/svg+xml,${encodeURIComponent(svgText)}`;
}

function updateTitle() {
	const n = ctx.board ? ctx.board.urgentOpen() : 0;
	document.title = n ? `(${n}) ${t("app.title")}` : t("app.title");
	document.body.dataset.urgent = String(n);
	favicon(n);
	sound.setAlerting(n > 0 && ctx.seesAlarms());
}

/* ---- header, navigation, banners ---- */

function allowed(route) {
	return ctx.user && route.roles.includes(ctx.user.role);
}

function homePath() {
	return ctx.user && ctx.user.role === "installer" ? "devices" : "alarms";
}

function renderHeader() {
	const header = document.getElementById("top");
	if (!header || !ctx.user)
		return;
	const here = (location.hash.replace(/^#\/?/, "").split("/")[0]) || homePath();
	const navItems = ROUTES.filter((r) => r.nav && allowed(r)).map((r) => {
		const active = here === r.nav || (r.nav === "alarms" && here === "alarms") ||
			(r.nav === "devices" && here === "device") || (r.nav === "residents" && here === "residents");
		return h("li", {}, h("a", { href: `#/${r.nav}`, class: active ? "active" : null,
			"aria-current": active ? "page" : null, dataset: { nav: r.nav } }, t(`nav.${r.nav}`),
		r.nav === "alarms" ? h("span", { class: "nav-count", id: "nav-count" }) : null));
	});
	const langSel = h("select", { id: "lang", "aria-label": t("settings.language"),
		onchange: (e) => switchLanguage(e.target.value) },
	LANGUAGES.map((l) => h("option", { value: l, selected: l === language() }, t(`lang.${l}`))));
	const soundState = sound.state();
	const soundBtn = ctx.seesAlarms() ? h("button", { type: "button", class: "btn icon", id: "sound-toggle",
		"aria-pressed": String(sound.preference() === "on"), "aria-label": t("sound.toggle"),
		title: t(`sound.${soundState}`),
		onclick: () => (sound.preference() === "on" ? sound.disable() : sound.enable().then(sound.sample)),
	}, icon(soundState === "off" ? "bellOff" : "bell"), h("span", { class: "label" }, t(`sound.${soundState}`))) : null;
	const wasOpen = header.querySelector("details.menu")?.open;
	const menu = h("details", { class: "menu", id: "user-menu", open: wasOpen },
		h("summary", { class: "btn", "aria-label": t("menu.label", { name: ctx.user.name }) },
			h("span", { class: "who" }, h("span", { class: "name" }, ctx.user.name),
				h("span", { class: "role" }, t(`role.${ctx.user.role}`))), h("span", { class: "caret", "aria-hidden": "true" })),
		h("div", { class: "menu-body" },
			h("div", { class: "field" }, h("label", { for: "lang" }, t("settings.language")), langSel),
			h("button", { type: "button", class: "btn", id: "theme-toggle", onclick: toggleTheme },
				icon(document.documentElement.dataset.theme === "light" ? "moon" : "sun"),
				t(document.documentElement.dataset.theme === "light" ? "settings.dark" : "settings.light")),
			h("button", { type: "button", class: "btn", onclick: () => { menu.open = false; showHelp(); } },
				h("kbd", {}, "?"), t("help.title")),
			h("button", { type: "button", class: "btn", id: "logout", onclick: logout }, t("action.logout"))));
	append(clear(header),
		h("a", { class: "brand", href: `#/${homePath()}` }, h("span", { class: "logo", "aria-hidden": "true" }),
			h("span", {}, t("app.name"))),
		h("div", { class: "tools" }, h("span", { class: "live", id: "live", role: "status" }), soundBtn, menu),
		h("nav", { "aria-label": t("nav.label"), class: "main-nav" }, h("ul", {}, navItems)));
	renderLive();
	renderNavCount();
}

function renderNavCount() {
	const el = document.getElementById("nav-count");
	if (!el || !ctx.board)
		return;
	const n = ctx.board.alarms.size;
	el.textContent = n ? String(n) : "";
	el.hidden = !n;
	el.classList.toggle("urgent", ctx.board.urgentOpen() > 0);
}

function renderLive() {
	const el = document.getElementById("live");
	if (!el || !ctx.stream)
		return;
	const s = ctx.stream.state;
	el.className = `live ${s}`;
	el.textContent = t(`stream.${s}`);
}

function renderBanners() {
	const box = document.getElementById("banners");
	if (!box)
		return;
	const items = [];
	const st = ctx.stream?.state;
	if (st === "connecting" || st === "down")
		items.push(["warn", t("banner.stream")]);
	if (ctx.status?.mqtt && ctx.status.mqtt.connected === false)
		items.push(["bad", t("banner.broker")]);
	if (ctx.status?.store && ctx.status.store.ok === false)
		items.push(["bad", t("banner.store", { error: ctx.status.store.error || "?" })]);
	if (ctx.seesAlarms() && sound.preference() === null) {
		items.push(["ask", t("sound.ask"), h("span", { class: "banner-actions" },
			h("button", { type: "button", class: "btn primary", id: "sound-enable",
				onclick: () => sound.enable().then(() => { sound.sample(); renderBanners(); }) }, t("sound.enable")),
			h("button", { type: "button", class: "btn", onclick: () => { sound.disable(); renderBanners(); } },
				t("sound.not_now")))]);
	} else if (ctx.seesAlarms() && sound.isAlerting() && sound.state() === "blocked") {
		items.push(["warn", t("sound.blocked"), h("button", { type: "button", class: "btn primary",
			onclick: () => sound.enable() }, t("sound.enable"))]);
	}
	append(clear(box), ...items.map(([kind, text, extra]) =>
		h("div", { class: `banner ${kind}`, role: kind === "bad" ? "alert" : "status" }, h("span", {}, text), extra)));
}

/* ---- help ---- */

function showHelp() {
	if (document.querySelector("dialog[open]"))
		return;
	const keys = [
		["?", "help.keys.help"], ["j / ↓", "help.keys.next"], ["k / ↑", "help.keys.prev"],
		["Enter / o", "help.keys.open"], ["a", "help.keys.ack"], ["d", "help.keys.decline"],
		["n", "help.keys.note"], ["r", "help.keys.resolve"], ["Esc", "help.keys.back"],
		...ROUTES.filter((r) => r.nav && allowed(r)).map((r) => [`g ${r.key}`, `nav.${r.nav}`]),
	];
	modal({
		title: t("help.title"),
		className: "help",
		build(body, close) {
			body.append(h("p", {}, t("help.intro")),
				h("dl", { class: "keys" }, keys.map(([k, label]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, t(label))])),
				h("div", { class: "dialog-actions" },
					h("button", { type: "button", class: "btn primary", onclick: () => close() }, t("action.close"))));
		},
	});
}

/* ---- keyboard ---- */

function onKey(ev) {
	const menu = document.getElementById("user-menu");
	if (ev.key === "Escape" && menu && menu.open) {
		menu.open = false;
		menu.querySelector("summary").focus();
		return;
	}
	if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target) || document.querySelector("dialog[open]"))
		return;
	if (chord) {
		clearTimeout(chord);
		chord = null;
		const r = ROUTES.find((x) => x.nav && x.key === ev.key && allowed(x));
		if (r) {
			ev.preventDefault();
			ctx.go(r.nav);
		}
		return;
	}
	if (ev.key === "?") {
		ev.preventDefault();
		showHelp();
		return;
	}
	if (ev.key === "g" && ctx.user) {
		chord = setTimeout(() => { chord = null; }, 1500);
		return;
	}
	if (current && current.keys && current.keys(ev))
		ev.preventDefault();
}

/* ---- routing ---- */

async function route() {
	if (!ctx.user)
		return;
	const path = location.hash.replace(/^#\/?/, "");
	if (!path) {
		ctx.go(homePath());
		return;
	}
	let match = null, r = null;
	for (const x of ROUTES) {
		match = x.path.exec(path);
		if (match) {
			r = x;
			break;
		}
	}
	if (!r || !allowed(r)) {
		if (r)
			toast(t("error.not_for_role"), "error");
		ctx.go(homePath());
		return;
	}
	if (current && current.cleanup)
		current.cleanup();
	current = null;
	const main = document.getElementById("main");
	clear(main);
	const params = match.slice(1).map((x) => (x === undefined ? x : decodeURIComponent(x)));
	const view = r.view(ctx, ...params);
	current = view;
	main.append(view.el);
	main.dataset.view = r.nav || path.split("/")[0];
	renderHeader();
	const focusTarget = main.querySelector("h1");
	if (focusTarget && document.activeElement && !main.contains(document.activeElement)) {
		focusTarget.setAttribute("tabindex", "-1");
		focusTarget.focus({ preventScroll: true });
	}
}

/* ---- session ---- */

function showLogin(message = null) {
	ctx.user = null;
	if (current && current.cleanup)
		current.cleanup();
	current = null;
	document.title = t("app.title");
	favicon(0);
	const root = clear(app());
	root.append(loginView({
		message,
		onLogin: (user) => startShell(user),
		switchLanguage,
	}));
}

function sessionEnded() {
	if (!ctx.user)
		return;
	stopShell();
	endedMessage = t("login.session_ended");
	showLogin(endedMessage);
}

function stopShell() {
	if (ctx.stream)
		ctx.stream.stop();
	if (ctx.board)
		ctx.board.destroy();
	ctx.stream = null;
	ctx.board = null;
	ctx.status = null;
	sound.setAlerting(false);
	forgetWorkers();
}

async function startShell(user) {
	ctx.user = user;
	document.body.dataset.role = user.role;
	const root = clear(app());
	root.append(
		h("a", { class: "skip", href: "#main", onclick: (e) => { e.preventDefault(); document.getElementById("main").focus(); } },
			t("app.skip")),
		h("header", { id: "top", class: "top" }),
		h("div", { id: "banners", class: "banners" }),
		h("main", { id: "main", tabindex: "-1" }),
		h("div", { id: "toasts", class: "toasts", "aria-live": "polite" }));
	ctx.stream = new Stream();
	ctx.stream.on("state", () => {
		renderLive();
		renderBanners();
	});
	ctx.stream.on("status", (s) => ctx.setStatus(s));
	if (ctx.seesAlarms()) {
		ctx.board = new Board(ctx.stream);
		ctx.board.subscribe(() => {
			updateTitle();
			renderNavCount();
		});
	}
	ctx.stream.start();
	if (ctx.board)
		ctx.board.load();
	renderHeader();
	renderBanners();
	updateTitle();
	if (DESK.includes(user.role)) {
		get("status").then((s) => {
			setOutcomes(s && s.outcomes);
			ctx.setStatus(s);
		}).catch(() => {});
	}
	await route();
}

async function logout() {
	try {
		await del("session");
	} catch {
		/* the session is gone either way */
	}
	stopShell();
	location.hash = "";
	showLogin();
}

async function switchLanguage(l) {
	await setLanguage(l, { remember: true });
}

onLanguage(() => {
	if (ctx.user) {
		renderHeader();
		renderBanners();
		updateTitle();
		route();
	} else {
		showLogin(endedMessage);
	}
});

/* ---- start ---- */

async function boot() {
	applyTheme();
	sound.init();
	sound.onChange(() => {
		renderBanners();
		const btn = document.getElementById("sound-toggle");
		if (btn)
			renderHeader();
	});
	try {
		await setLanguage(detectLanguage());
	} catch (e) {
		console.error(e);
	}
	setUnauthorizedHandler(sessionEnded);
	window.addEventListener("hashchange", route);
	document.addEventListener("keydown", onKey);
	document.addEventListener("click", (e) => {
		const m = document.getElementById("user-menu");
		if (m && m.open && !m.contains(e.target))
			m.open = false;
	});
	setInterval(tickAges, 1000);
	try {
		const s = await get("session", { quiet401: true });
		await startShell(s.user);
	} catch (e) {
		showLogin(e.status === 401 ? null : e.message);
	}
}

/* Every element with data-since shows how long ago that was, live. */
function tickAges() {
	const now = Date.now();
	for (const el of document.querySelectorAll("[data-since]"))
		el.textContent = since(el.dataset.since, now);
}

boot();
