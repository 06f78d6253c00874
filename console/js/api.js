// The only way the console talks to telecared: JSON over fetch, the CSRF
// header on every change, errors as ApiError carrying the server's text.

import { t } from "./i18n.js";

export class ApiError extends Error {
	constructor(status, message, { data = null, retryAfter = null, ours = false } = {}) {
		super(message);
		this.status = status;
		this.data = data;
		this.retryAfter = retryAfter;
		this.ours = ours;        // the text is the console's (translated), not the server's
	}
}

let onUnauthorized = () => {};

/* fn(error) runs when a request finds the session gone (401). */
export function setUnauthorizedHandler(fn) {
	onUnauthorized = fn;
}

export async function api(method, path, body, { contentType = "application/json", quiet401 = false } = {}) {
	const headers = { Accept: "application/json" };
	let payload;
	if (method !== "GET") {
		headers["X-Requested-With"] = "telecare";
		if (body !== undefined) {
			headers["Content-Type"] = contentType;
			payload = contentType === "application/json" ? JSON.stringify(body) : body;
		}
	}
	let r;
	try {
		r = await fetch(`api/${path}`, { method, headers, body: payload, credentials: "same-origin",
			cache: "no-store" });
	} catch (e) {
		throw new ApiError(0, t("error.network"), { ours: true });
	}
	if (r.status === 204)
		return null;
	const text = await r.text();
	let data = null;
	if (text) {
		try {
			data = JSON.parse(text);
		} catch {
			data = null;
		}
	}
	if (r.ok)
		return data;
	const retry = Number(r.headers.get("Retry-After"));
	const message = data && typeof data.error === "string" ? data.error
		: t("error.http", { status: r.status });
	const err = new ApiError(r.status, message, {
		data, retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
		ours: !(data && typeof data.error === "string"),
	});
	if (r.status === 401 && !quiet401)
		onUnauthorized(err);
	throw err;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body === undefined ? {} : body, opts);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

/* encodeURIComponent for one path segment */
export const seg = (s) => encodeURIComponent(String(s));

/* What to tell the user about a failed request, in their language where the
 * words are ours; the server's own text verbatim (it names the ids). */
export function explain(err) {
	if (!(err instanceof ApiError))
		return t("error.unexpected", { message: String(err && err.message || err) });
	if (err.ours)
		return err.message;
	const head = {
		400: "error.400", 401: "error.401", 403: "error.403", 404: "error.404",
		409: "error.409", 429: "error.429", 503: "error.503",
	}[err.status];
	return head ? `${t(head)}: ${err.message}` : err.message;
}
