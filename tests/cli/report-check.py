#!/usr/bin/python3
"""Check a night report as Chromium rendered it (tests/cli/t0900-nightly.sh).

    report-check.py dom DOM.html PROFILES RUNS FAILED   # the DOM chromium --dump-dom printed
    report-check.py png SHOT.png                         # the screenshot is not blank

dom: every profile has its section with two plots (an <svg> each, with
drawn points), a frontier table with rows; the commands table has RUNS rows
and the failures table FAILED rows.  Prints what it found; exit 1 on a
mismatch.
"""
import sys
from html.parser import HTMLParser


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []          # (tag, attrs) of open elements
        self.sections = {}       # profile -> {"plots": [...], "front_rows": n}
        self.table_rows = {}     # table id -> rows in its tbody
        self.cur_section = None
        self.cur_plot = None
        self.cur_table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "section" and cls == "profile":
            self.cur_section = a.get("data-profile")
            self.sections[self.cur_section] = {"plots": [], "front_rows": 0}
        if tag == "figure" and cls == "plot" and self.cur_section:
            self.cur_plot = {"kind": a.get("data-kind"), "svg": 0, "marks": 0}
            self.sections[self.cur_section]["plots"].append(self.cur_plot)
        if tag == "svg" and self.cur_plot is not None:
            self.cur_plot["svg"] += 1
        if self.cur_plot is not None and tag in ("path", "use", "circle", "polyline"):
            self.cur_plot["marks"] += 1
        if tag == "table":
            self.cur_table = a.get("id") or cls
            self.table_rows.setdefault(self.cur_table, 0)
        if tag == "tr" and self.cur_table and "tbody" in [t for t, _ in self.stack]:
            self.table_rows[self.cur_table] += 1
            if self.cur_table == "frontier" and self.cur_section:
                self.sections[self.cur_section]["front_rows"] += 1
        if tag not in ("br", "meta", "img", "hr", "input", "link"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag == "figure":
            self.cur_plot = None
        if tag == "section":
            self.cur_section = None
        if tag == "table":
            self.cur_table = None


def check_dom(path, profiles, runs, failed):
    d = Dom()
    d.feed(open(path, encoding="utf-8").read())
    bad = []
    for p in profiles.split(","):
        s = d.sections.get(p)
        if s is None:
            bad.append(f"profile {p}: no section")
            continue
        kinds = sorted(x["kind"] for x in s["plots"])
        if kinds != ["kld-bpw", "kld-decode"]:
            bad.append(f"profile {p}: plots {kinds}")
        for x in s["plots"]:
            if x["svg"] != 1 or x["marks"] < 5:
                bad.append(f"profile {p}: plot {x['kind']}: {x['svg']} svg, {x['marks']} marks")
        if s["front_rows"] < 1:
            bad.append(f"profile {p}: empty frontier table")
    if sorted(d.sections) != sorted(profiles.split(",")):
        bad.append(f"sections {sorted(d.sections)}")
    if d.table_rows.get("commands") != int(runs):
        bad.append(f"commands table: {d.table_rows.get('commands')} rows, want {runs}")
    if d.table_rows.get("failures") != int(failed):
        bad.append(f"failures table: {d.table_rows.get('failures')} rows, want {failed}")
    print(f"sections {sorted(d.sections)}, tables {d.table_rows}")
    for b in bad:
        print("bad:", b)
    return not bad


def check_png(path):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    w, h = im.size
    px = list(im.getdata())
    colours = len(set(px))
    inked = sum(1 for p in px if sum(p) < 600) / len(px)
    print(f"{w}x{h}, {colours} colours, {inked:.1%} of pixels inked")
    return w >= 400 and h >= 400 and colours >= 16 and inked >= 0.01


if __name__ == "__main__":
    if sys.argv[1] == "dom":
        ok = check_dom(*sys.argv[2:6])
    else:
        ok = check_png(sys.argv[2])
    sys.exit(0 if ok else 1)
