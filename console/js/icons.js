// A few line icons drawn as inline SVG (no icon font, no emoji: a kiosk
// without an emoji font would show empty boxes). currentColor follows the theme.

import { svg } from "./dom.js";

const PATHS = {
	bell: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0",
	bellOff: "M6 16V11a6 6 0 0 1 9.5-4.9M18 11v5l2 2H7M10 20a2 2 0 0 0 4 0M3 3l18 18",
	sun: "M12 7a5 5 0 1 0 0 10 5 5 0 0 0 0-10zM12 1v3M12 20v3M1 12h3M20 12h3M4.2 4.2l2.1 2.1M17.7 17.7l2.1 2.1M4.2 19.8l2.1-2.1M17.7 6.3l2.1-2.1",
	moon: "M20 14.5A8.5 8.5 0 0 1 9.5 4a8.5 8.5 0 1 0 10.5 10.5z",
};

export function icon(name) {
	return svg("svg", { class: "icon", viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true",
		focusable: "false", fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round",
		"stroke-linejoin": "round" }, svg("path", { d: PATHS[name] }));
}
