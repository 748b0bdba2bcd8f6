"""Open a peftbench report.html in headless Chromium at a given window width and say what a reader sees.

    python scripts/report_in_browser.py runs/demo-classification/report.html [--width 1280]

Prints the window width, the page's scroll width, whether it fits (no horizontal scroll), how many images
loaded, how many rows the quality table has, whether the verdict is on the page and how many per-step curve
figures there are; exits 1 when the page scrolls sideways or an image fails to load. The tests use
`probe_report` on a report of tiny runs, and `open_report` (selenium driving Debian's chromium through
its chromium-driver) to pick the interactive plot's axes and sort the tables.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
PROBE = (
    "<script>window.addEventListener('load',()=>{const b=document.body.dataset;"
    "b.images=[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;"
    "b.allImages=document.images.length;"
    "b.rows=document.querySelectorAll('#quality tr').length;"
    "b.scrollWidth=document.documentElement.scrollWidth;"
    "b.fits=document.documentElement.scrollWidth<=window.innerWidth;"
    "b.width=window.innerWidth;"
    "b.verdict=!!document.getElementById('verdict');"
    "b.stepCurves=[...document.images].filter(i=>/per logging step|per step/i.test(i.alt)).length;"
    "});</script>"
)
FIELDS = ("images", "all-images", "rows", "scroll-width", "fits", "width", "verdict", "step-curves")


def probe_report(html: Path, width: int = 1280) -> dict[str, str]:
    """What headless Chromium measures on the page at `width` px (values as the DOM holds them)."""
    if CHROMIUM is None:
        raise RuntimeError("needs Debian's chromium (scripts/setup.sh installs it)")
    head, tail = html.read_text().rsplit("</body>", 1)  # the inline JavaScript holds "</body>" too
    page = head + PROBE + "</body>" + tail
    with tempfile.TemporaryDirectory() as folder:
        probed = Path(folder) / "report.html"
        probed.write_text(page)
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--window-size={width},2000",
                "--virtual-time-budget=5000",
                "--dump-dom",
                probed.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    body = re.search(r"<body[^>]*>", dom)
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(0) if body else ""))
    return {field: attributes.get(field, "") for field in FIELDS}


@contextlib.contextmanager
def open_report(html: Path, width: int = 1280):
    """A selenium driver on the report in headless Chromium, the window `width` px wide. The browser and
    its driver are the installed ones, named explicitly: selenium never downloads either."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if CHROMIUM is None or CHROMEDRIVER is None:
        raise RuntimeError("needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(html.resolve().as_uri())
        yield driver
    finally:
        driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--width", type=int, default=1280)
    arguments = parser.parse_args()
    status = 0
    for report in arguments.reports:
        seen = probe_report(report, arguments.width)
        print(json.dumps({"report": str(report), **seen}))
        if seen["fits"] != "true" or seen["images"] != seen["all-images"]:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
