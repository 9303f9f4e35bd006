#!/usr/bin/python3
"""Checks a Sluice run report page (report.html) in headless Chromium.

usage: check_report_html.py HTML PNG [--allow-empty CHART_ID ...]

Renders HTML to the screenshot PNG and dumps its DOM, then fails (exit 1, one
line per problem) when
  - the page logs anything to the console (it has no script, so any message is
    an error: a script that slipped in, a resource it tried to load, ...);
  - the DOM holds a <script>, or an element that loads something (src, href);
  - a chart's <svg> is missing or draws no data mark (an SVG shape of class
    series, bar or reference; axes and grid lines do not count); a chart in
    --allow-empty may say "no data" instead (a run without rejects, say);
  - the screenshot is blank (too few non-white pixels).
Chromium runs with --no-sandbox (CI runs as root).
"""
import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from html.parser import HTMLParser

CHARTS = ["chart-throughput", "chart-stages", "chart-latency", "chart-predictions", "chart-rejects"]
DRAWN = {"rect", "polyline", "line", "circle", "path", "polygon"}
# Classes of the marks that show data (axes and grid lines do not count).
DATA_MARKS = {"series", "bar", "reference"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run"]


class DomScan(HTMLParser):
    """Counts the data marks drawn in each chart and notes scripts and loaders."""

    def __init__(self):
        super().__init__()
        self.stack = []  # open chart ids, as (tag depth, id)
        self.depth = 0
        self.drawn = {}
        self.nodata = set()
        self.problems = []
        self._in_nodata = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.depth += 1
        if tag == "script":
            self.problems.append("the page holds a <script> element")
        for key in ("src", "href"):
            if key in a:
                self.problems.append(f"<{tag}> loads '{a[key]}'")
        if tag == "svg" and a.get("id", "").startswith("chart-"):
            self.stack.append((self.depth, a["id"]))
            self.drawn.setdefault(a["id"], 0)
        elif self.stack and tag in DRAWN and DATA_MARKS & set(a.get("class", "").split()):
            self.drawn[self.stack[-1][1]] += 1
        if self.stack and tag == "text" and "nodata" in a.get("class", "").split():
            self._in_nodata = self.stack[-1][1]
        if tag in ("meta", "br", "hr", "img", "input", "link"):
            # Void elements have no end tag in the dumped DOM.
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1][0] == self.depth and tag == "svg":
            self.stack.pop()
        if tag == "text":
            self._in_nodata = None
        self.depth -= 1

    def handle_data(self, data):
        if self._in_nodata and data.strip() == "no data":
            self.nodata.add(self._in_nodata)


def read_png(path):
    """(width, height, channels, rows of bytes) of an 8-bit RGB(A)/gray PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (bit depth {depth}, color type {color}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        prev = line
    return width, height, channels, rows


def non_white_pixels(rows, channels):
    colour = min(channels, 3)
    n = 0
    for line in rows:
        if line.count(255) == len(line):
            continue
        for i in range(0, len(line), channels):
            if any(v < 240 for v in line[i:i + colour]):
                n += 1
    return n


def chromium(args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html")
    parser.add_argument("png")
    parser.add_argument("--allow-empty", action="append", default=[], metavar="CHART_ID")
    parser.add_argument("--min-pixels", type=int, default=20000, help="non-white pixels a real page has")
    args = parser.parse_args()
    url = "file://" + os.path.abspath(args.html)
    problems = []

    dom = chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", url])
    if dom.returncode != 0 or "<html" not in dom.stdout:
        problems.append(f"chromium --dump-dom failed (exit {dom.returncode}): {dom.stderr.strip()[-300:]}")
    for line in dom.stderr.splitlines():
        if re.search(r":CONSOLE[:(]", line):
            problems.append("console: " + line.split("] ", 1)[-1])

    scan = DomScan()
    scan.feed(dom.stdout)
    problems += scan.problems
    for chart in CHARTS:
        if chart not in scan.drawn:
            problems.append(f"chart {chart}: no <svg id=\"{chart}\"> in the page")
        elif scan.drawn[chart] == 0 and not (chart in args.allow_empty and chart in scan.nodata):
            problems.append(f"chart {chart}: nothing drawn" + (" (no data)" if chart in scan.nodata else ""))

    shot = chromium(["--window-size=1280,4000", f"--screenshot={os.path.abspath(args.png)}", url])
    if shot.returncode != 0 or not os.path.exists(args.png):
        problems.append(f"chromium --screenshot failed (exit {shot.returncode}): {shot.stderr.strip()[-300:]}")
    else:
        width, height, channels, rows = read_png(args.png)
        inked = non_white_pixels(rows, channels)
        print(f"{args.png}: {width}x{height}, {inked} non-white pixels; "
              f"charts drawn: {', '.join(f'{c} {scan.drawn.get(c, 0)}' for c in CHARTS)}")
        if inked < args.min_pixels:
            problems.append(f"screenshot {args.png} is blank: {inked} non-white pixels (< {args.min_pixels})")

    for p in problems:
        print(f"check_report_html: {args.html}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
