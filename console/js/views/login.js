// The login screen (SPEC 8 test hook: inputs named username and password).

import { h } from "../dom.js";
import { t, language, LANGUAGES } from "../i18n.js";
import { post, explain } from "../api.js";

export function loginView({ message, onLogin, switchLanguage }) {
	const err = h("p", { class: "form-error", id: "login-error", role: "alert", hidden: !message }, message || "");
	const user = h("input", { name: "username", id: "username", autocomplete: "username", required: true,
		autocapitalize: "none", spellcheck: "false", autofocus: true });
	const pass = h("input", { name: "password", id: "password", type: "password",
		autocomplete: "current-password", required: true });
	const submit = h("button", { type: "submit", class: "btn primary wide" }, t("login.submit"));
	let wait = null;

	function show(text) {
		err.hidden = !text;
		err.textContent = text || "";
	}

	/* 429: count the wait down, then let them try again. */
	function holdOff(seconds) {
		clearInterval(wait);
		let left = Math.ceil(seconds);
		submit.disabled = true;
		const tick = () => {
			if (left <= 0) {
				clearInterval(wait);
				submit.disabled = false;
				show(t("login.try_again_now"));
				return;
			}
			show(t("login.too_many", { n: left }));
			left--;
		};
		tick();
		wait = setInterval(tick, 1000);
	}

	const form = h("form", { class: "login-form", novalidate: true },
		h("div", { class: "field" }, h("label", { for: "username" }, t("login.username")), user),
		h("div", { class: "field" }, h("label", { for: "password" }, t("login.password")), pass),
		err, submit);
	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		if (!user.value.trim() || !pass.value) {
			show(t("login.missing"));
			(user.value.trim() ? pass : user).focus();
			return;
		}
		submit.disabled = true;
		submit.setAttribute("aria-busy", "true");
		try {
			const r = await post("session", { username: user.value.trim(), password: pass.value },
				{ quiet401: true });
			clearInterval(wait);
			onLogin(r.user);
			return;
		} catch (e) {
			pass.value = "";
			if (e.status === 401) {
				show(t("login.wrong"));
				pass.focus();
			} else if (e.status === 429) {
				holdOff(e.retryAfter || 1);
				return;
			} else {
				show(explain(e));
			}
		} finally {
			submit.removeAttribute("aria-busy");
		}
		submit.disabled = false;
	});

	return h("div", { class: "login-page" },
		h("main", { class: "login-card", id: "main" },
			h("div", { class: "brand big" }, h("span", { class: "logo", "aria-hidden": "true" }), h("span", {}, t("app.name"))),
			h("h1", {}, t("login.title")),
			form,
			h("div", { class: "login-lang" },
				h("label", { for: "login-lang" }, t("settings.language")),
				h("select", { id: "login-lang", onchange: (e) => switchLanguage(e.target.value) },
					LANGUAGES.map((l) => h("option", { value: l, selected: l === language() }, t(`lang.${l}`)))))));
}
