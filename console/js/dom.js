// Building the page without innerHTML: every string from the server goes in
// as text, so nothing a device or a user typed can become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function put(el, attrs) {
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k.startsWith("on") && typeof v === "function")
			el.addEventListener(k.slice(2), v);
		else if (k === "class")
			el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
		else if (k === "dataset")
			Object.assign(el.dataset, v);
		else if (k === "value" && "value" in el)
			el.value = v;
		else if (k === "checked" || k === "selected")
			el[k] = Boolean(v);
		else
			el.setAttribute(k, v === true ? "" : String(v));
	}
}

function add(el, children) {
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false)
			continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
}

/* h("button", {class: "btn", onclick: fn}, "Text", child, ...) */
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	put(el, attrs);
	add(el, children);
	return el;
}

export function svg(tag, attrs, ...children) {
	const el = document.createElementNS(SVG_NS, tag);
	put(el, attrs);
	add(el, children);
	return el;
}

/* el.append() that skips null, false and undefined (as h() does) */
export function append(el, ...children) {
	add(el, children);
	return el;
}

export function clear(el) {
	el.replaceChildren();
	return el;
}

export function $(sel, root = document) {
	return root.querySelector(sel);
}

export function $$(sel, root = document) {
	return [...root.querySelectorAll(sel)];
}

/* Is the user typing? Then single-key shortcuts must stay out of the way. */
export function typing(target) {
	if (!(target instanceof Element))
		return false;
	return target.closest("input, textarea, select, [contenteditable='true']") !== null;
}
