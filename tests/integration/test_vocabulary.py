"""The timeline's vocabulary (issue 10): docs/CONTROL.md lists exactly the
words the daemon writes (its tl_names table in daemon/life.c)."""
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def code_words():
    src = open(os.path.join(REPO, "daemon", "life.c"), encoding="utf-8").read()
    table = re.search(r"tl_names\[TL__COUNT\]\s*=\s*\{(.*?)\};", src, re.S).group(1)
    return set(re.findall(r'\[TL_\w+\]\s*=\s*"([a-z_]+)"', table))


def doc_words():
    doc = open(os.path.join(REPO, "docs", "CONTROL.md"), encoding="utf-8").read()
    section = doc[doc.index("timeline entry"):doc.index("## Commands")]
    return set(re.findall(r"^\s*\| `([a-z_]+)` \|", section, re.M))


def test_the_documented_timeline_words_are_the_daemons():
    code, doc = code_words(), doc_words()
    assert len(code) >= 17, code
    assert code == doc, f"only in code: {sorted(code - doc)}; only in docs: {sorted(doc - code)}"
