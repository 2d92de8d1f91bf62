"""Screenshot a rendered page in headless Chromium: `python docs/screenshot.py PAGE[#FRAGMENT] PNG`.

`make screenshots` runs it on the current demo's report and sample browser, so
docs/report-demo.png and docs/browser-demo.png show what the code renders today. A report is
shot whole; a browser page (which says when its data is drawn) as one 1280x900 screen.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> int:
    page_path, _, fragment = sys.argv[1].partition("#")
    report, png = Path(page_path).resolve(), Path(sys.argv[2])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("screenshot: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri() + (f"#{fragment}" if fragment else ""))
        browsing = page.locator("#task-list").count() > 0
        if browsing:
            page.wait_for_selector("body[data-ready]", timeout=60_000)
        page.screenshot(path=str(png), full_page=not browsing)
        browser.close()
    print(f"{report} -> {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
