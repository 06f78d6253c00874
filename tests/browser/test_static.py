"""The console's files, read as they ship: the catalogs agree with each
other and with the code, the code keeps to the CSP (no inline script or
style, no eval, no innerHTML), nothing is fetched from elsewhere, and every
colour pair of both themes meets WCAG AA. No browser needed; no daemon."""
import json
import os
import re

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONSOLE = os.path.join(REPO, "console")


def read(rel):
    with open(os.path.join(CONSOLE, rel), encoding="utf-8") as f:
        return f.read()


def shipped(ext):
    out = []
    for root, dirs, files in os.walk(CONSOLE):
        dirs[:] = [d for d in dirs if d != "dev"]      # the development mock is not shipped
        out += [os.path.relpath(os.path.join(root, f), CONSOLE) for f in files if f.endswith(ext)]
    assert out, f"no {ext} files under console/"
    return sorted(out)


def code(src):
    """JavaScript without its comments (they may name what the code avoids)."""
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return "\n".join(line for line in src.splitlines() if not line.strip().startswith("//"))


def catalogs():
    return {lang: json.loads(read(f"i18n/{lang}.json")) for lang in ("en", "pl")}


def placeholders(value):
    texts = value.values() if isinstance(value, dict) else [value]
    return {frozenset(re.findall(r"\{(\w+)\}", t)) for t in texts}


def test_the_catalogs_have_the_same_keys_and_placeholders():
    cat = catalogs()
    assert set(cat["en"]) == set(cat["pl"]), set(cat["en"]) ^ set(cat["pl"])
    for key, en in cat["en"].items():
        pl = cat["pl"][key]
        assert placeholders(en) | placeholders(pl) == placeholders(en), key
        assert placeholders(pl) == placeholders(en), (key, en, pl)
        if isinstance(pl, dict):
            # Polish counts need one (1), few (2-4) and many (5+)
            assert {"one", "few", "many", "other"} <= set(pl), key
        assert isinstance(en, (str, dict)) and (en != "" and pl != ""), key


def test_every_key_the_code_uses_is_in_both_catalogs():
    cat = catalogs()
    used, prefixes = set(), set()
    for rel in shipped(".js"):
        src = code(read(rel))
        used |= set(re.findall(r'\bt\(\s*"([a-z0-9_.-]+)"', src))
        prefixes |= set(re.findall(r'\bt\(\s*`([a-z0-9_.-]+)\.\$\{', src))
        prefixes |= set(re.findall(r'\bword\(\s*"([a-z]+)"', src))
        # keys handed around as data: ["?", "help.keys.help"], [k, "devices.tab_list"]
        used |= {k for k in re.findall(r'"([a-z]+\.[a-z0-9_.-]+)"', src) if k.split(".")[0] in
                 {"help", "devices", "nav", "error"} and not k.endswith(".js")}
    missing = sorted(k for k in used if k not in cat["en"] or k not in cat["pl"])
    assert not missing, missing
    for p in prefixes:
        assert any(k.startswith(p + ".") for k in cat["en"]), f"no keys {p}.* for a computed lookup"
    # every vocabulary word the daemon sends has a label in both languages
    vocab = {
        "tl": ["opened", "joined", "cancelled", "alerted", "queued", "delivered", "delivery_failed",
               "step_empty", "declined", "acknowledged", "note", "refused", "reopened", "resolved",
               "folded", "restored", "adopted"],
        "outcome": ["assisted_by_phone", "visit", "ambulance", "police", "fire", "false_alarm",
                    "user_cancelled", "technical_fixed", "restored", "test"],
        "type": ["panic", "fall", "smoke", "co", "gas", "heat", "medical", "inactivity", "wander",
                 "door", "bed_exit", "chair_exit", "band_removed", "flood", "temperature",
                 "low_battery", "tamper", "power_loss", "connection_lost", "storage_failed",
                 "nobody_to_alert"],
        "state": ["open", "acknowledged", "resolved"],
        "action": ["ack", "decline", "note", "resolve"],
        "role": ["admin", "dispatcher", "installer", "worker"],
        "test.stage": ["waiting", "received", "stored", "receipt_sent", "alerted"],
        "outq": ["urgent", "high", "board", "result", "receipt", "low"],
    }
    for group, words in vocab.items():
        for w in words:
            for lang in ("en", "pl"):
                assert f"{group}.{w}" in cat[lang], f"{lang}: {group}.{w}"


def test_the_timeline_words_match_the_daemons_documentation():
    doc = open(os.path.join(REPO, "docs", "CONTROL.md"), encoding="utf-8").read()
    words = set(re.findall(r"^\s*\|\s*`([a-z_]+)`\s*\|", doc.split("what` is")[1].split("## Commands")[0],
                           re.M))
    assert len(words) > 10, words
    cat = catalogs()
    assert not [w for w in words if f"tl.{w}" not in cat["pl"]], words


def test_the_code_keeps_to_the_content_security_policy():
    for rel in shipped(".html"):
        html = read(rel)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.I), f"{rel}: inline <script>"
        assert not re.search(r"\son\w+\s*=", html, re.I), f"{rel}: an inline event handler"
        assert not re.search(r"\sstyle\s*=", html, re.I), f"{rel}: an inline style"
        assert "<style" not in html.lower(), f"{rel}: a <style> element"
    for rel in shipped(".js"):
        src = code(read(rel))
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                    "new Function", 'setAttribute("style"', ".style.", "javascript:"):
            assert bad not in src, f"{rel}: {bad}"


def test_nothing_is_fetched_from_another_site():
    for rel in shipped(".js") + shipped(".css") + shipped(".html"):
        src = read(rel)
        for url in re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'`)]*", src, re.I):
            # links a person may follow (the map) and namespaces are not fetches
            assert url.startswith(("https://www.openstreetmap.org/", "http://www.w3.org/2000/svg")), \
                f"{rel}: {url}"
        assert "@import" not in src and "@font-face" not in src, rel


def luminance(hexcolour):
    def lin(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hexcolour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(a, b):
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def theme(css, selector):
    m = re.search(selector + r"\s*\{([^}]*)\}", css)
    assert m, selector
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", m.group(1)))


# (foreground, background) as the stylesheet pairs them
TEXT_PAIRS = [("text", "bg"), ("text", "surface"), ("text", "surface-2"), ("muted", "bg"),
              ("muted", "surface"), ("muted", "surface-2"), ("link", "bg"), ("link", "surface"),
              ("btn-text", "btn"), ("btn-text", "btn-hover"), ("primary-text", "primary"),
              ("primary-text", "primary-hover"), ("danger-text", "danger"), ("bad", "bad-bg"),
              ("ok", "ok-bg"), ("p3", "p3-bg"), ("warn", "warn-bg"), ("text", "warn-bg"),
              ("text", "bad-bg"), ("text", "p1-bg"), ("muted", "p1-bg"), ("bad", "p1-bg"),
              ("#ffffff", "p1-solid"), ("#ffffff", "p2-solid"), ("#ffffff", "p3-solid"),
              ("bad", "surface"), ("ok", "surface"), ("warn", "surface")]
UI_PAIRS = [("focus", "bg"), ("focus", "surface"), ("control-border", "surface"),
            ("control-border", "surface-2"), ("control-border", "bg"), ("chart-60", "surface"),
            ("chart-180", "surface")]


@pytest.mark.parametrize("name,selector", [("dark", r':root,\s*\[data-theme="dark"\]'),
                                           ("light", r'\[data-theme="light"\]')])
def test_both_themes_meet_wcag_aa(name, selector):
    v = theme(read("css/app.css"), selector)
    low = []
    for fg, bg in TEXT_PAIRS:
        r = contrast(fg if fg.startswith("#") else v[fg], v[bg])
        if r < 4.5:
            low.append(f"{fg} on {bg}: {r:.2f}")
    for fg, bg in UI_PAIRS:
        r = contrast(v[fg], v[bg])
        if r < 3:
            low.append(f"{fg} against {bg}: {r:.2f} (controls and graphics need 3:1)")
    assert not low, f"{name} theme: " + "; ".join(low)
