"""Screenshot a rendered report in headless Chromium: `python docs/screenshot.py REPORT PNG`.

`make screenshots` runs it on the current demo's report, so docs/report-demo.png shows what the
code renders today.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> int:
    report, png = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("screenshot: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    print(f"{report} -> {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
