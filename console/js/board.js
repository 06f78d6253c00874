// The alarms that need attention, kept live: GET /api/alarms?state=open,
// then every `alarm` event from the stream. Events that arrive while the
// list is loading are applied after it, in order, so the newest state wins.

import { get } from "./api.js";
import { parseTime } from "./format.js";

export class Board {
	constructor(stream) {
		this.stream = stream;
		this.alarms = new Map();
		this.listeners = new Set();
		this.loading = false;
		this.loaded = false;
		this.buffer = [];
		this.error = null;
		this.fresh = new Set();       // ids that arrived live, for a gentle highlight
		this.offs = [
			stream.on("alarm", (a) => this.apply(a, true)),
			stream.on("reset", () => this.load()),
			stream.on("resync", () => this.load()),
		];
	}

	subscribe(fn) {
		this.listeners.add(fn);
		return () => this.listeners.delete(fn);
	}

	notify(changed) {
		for (const fn of [...this.listeners])
			fn(changed);
	}

	async load() {
		this.loading = true;
		this.buffer = [];
		try {
			await this.stream.ready();
			const list = await get("alarms?state=open");
			this.alarms = new Map();
			for (const a of list || [])
				if (a.state !== "resolved" && !a.test)
					this.alarms.set(a.alarm, a);
			this.error = null;
		} catch (e) {
			this.error = e;
		} finally {
			this.loading = false;
			this.loaded = true;
		}
		for (const a of this.buffer.splice(0))
			this.apply(a, true, false);
		this.notify(null);
	}

	apply(a, live, notify = true) {
		if (!a || typeof a.alarm !== "number")
			return;
		if (this.loading) {
			this.buffer.push(a);
			return;
		}
		const had = this.alarms.has(a.alarm);
		if (a.state === "resolved" || a.test) {
			this.alarms.delete(a.alarm);
			this.fresh.delete(a.alarm);
		} else {
			this.alarms.set(a.alarm, a);
			if (live && !had) {
				this.fresh.add(a.alarm);
				setTimeout(() => this.fresh.delete(a.alarm), 15000);
			}
		}
		if (notify)
			this.notify(a.alarm);
	}

	get(id) {
		return this.alarms.get(id);
	}

	/* By priority (1 first), then age (the longest waiting first). */
	sorted() {
		return [...this.alarms.values()].sort((x, y) =>
			(x.priority - y.priority) ||
			((parseTime(x.opened_at) ?? 0) - (parseTime(y.opened_at) ?? 0)) ||
			(x.alarm - y.alarm));
	}

	/* Urgent alarms nobody has taken yet: the title, the icon and the sound. */
	urgentOpen() {
		let n = 0;
		for (const a of this.alarms.values())
			if (a.priority === 1 && a.state === "open")
				n++;
		return n;
	}

	destroy() {
		for (const off of this.offs)
			off();
		this.listeners.clear();
	}
}
