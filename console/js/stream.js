// The live feed: GET /api/stream as Server-Sent Events.
//
// EventSource reconnects by itself after a dropped connection and sends
// Last-Event-ID, so the daemon replays what was missed. It gives up only
// when an answer is not a stream (a 401 after the session ended, the daemon
// restarted): then we ask whether the session lives, open a new stream
// and, having lost the resume point, tell everyone to reload ("resync").

import { get } from "./api.js";

const TYPES = ["alarm", "timeline", "status", "test", "reset"];

export class Stream {
	constructor() {
		this.handlers = new Map();
		this.es = null;
		this.state = "closed";      // closed | connecting | live | down
		this.timer = null;
		this.retry = 1000;
		this.waiters = [];
		this.stopped = true;
	}

	on(type, fn) {
		if (!this.handlers.has(type))
			this.handlers.set(type, new Set());
		this.handlers.get(type).add(fn);
		return () => this.handlers.get(type).delete(fn);
	}

	emit(type, data) {
		for (const fn of [...(this.handlers.get(type) || [])]) {
			try {
				fn(data);
			} catch (e) {
				console.error(`stream ${type} handler`, e);
			}
		}
	}

	setState(s) {
		if (this.state === s)
			return;
		this.state = s;
		document.body.dataset.stream = s;
		this.emit("state", s);
		if (s === "live") {
			for (const w of this.waiters.splice(0))
				w();
		}
	}

	/* Resolves once the stream is open (or after a while regardless: a list
	 * is better loaded late-and-live than never). */
	ready(timeout = 4000) {
		if (this.state === "live")
			return Promise.resolve();
		return new Promise((resolve) => {
			this.waiters.push(resolve);
			setTimeout(resolve, timeout);
		});
	}

	start() {
		this.stopped = false;
		this.open(false);
	}

	open(resync) {
		clearTimeout(this.timer);
		if (this.es)
			this.es.close();
		this.setState("connecting");
		const es = new EventSource("api/stream");
		this.es = es;
		es.onopen = () => {
			this.retry = 1000;
			this.setState("live");
			if (resync) {
				resync = false;
				this.emit("resync", {});
			}
		};
		es.onerror = () => {
			if (this.es !== es)
				return;
			if (es.readyState === EventSource.CLOSED) {
				this.setState("down");
				this.timer = setTimeout(() => this.revive(), this.retry);
				this.retry = Math.min(this.retry * 2, 30000);
			} else {
				this.setState("connecting");
			}
		};
		for (const type of TYPES) {
			es.addEventListener(type, (ev) => {
				let data;
				try {
					data = JSON.parse(ev.data);
				} catch {
					console.warn("stream: not JSON", type, ev.data);
					return;
				}
				this.emit(type, data);
			});
		}
	}

	async revive() {
		if (this.stopped)
			return;
		try {
			await get("session");       // a 401 here shows the login screen
		} catch (e) {
			if (e.status === 401)
				return;
			this.timer = setTimeout(() => this.revive(), this.retry);
			this.retry = Math.min(this.retry * 2, 30000);
			return;
		}
		if (!this.stopped)
			this.open(true);
	}

	stop() {
		this.stopped = true;
		clearTimeout(this.timer);
		if (this.es)
			this.es.close();
		this.es = null;
		this.setState("closed");
	}
}
