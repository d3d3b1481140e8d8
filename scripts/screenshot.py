"""Take the README's screenshot of the web page: the service (`ragtide serve`'s app) on
this repository's docs, a question asked in Debian's chromium (driven by Playwright), the
streamed answer and its sources on screen.

    .venv/bin/python scripts/screenshot.py [--out assets/page.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from ragtide import RAG
from ragtide.server import ServerConfig
from ragtide.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from server_fixture import CHROMIUM_FLAGS, running  # noqa: E402

QUESTION = "What happens when I ingest the same files again?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "page.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("no chromium: `make browser` installs Debian's")
    with tempfile.TemporaryDirectory() as work:
        config = ServerConfig(upload_dir=Path(work) / "uploads", settings=Settings.load(uri=f"{work}/docs.db"))
        with RAG(settings=config.settings) as rag, running(config, rag) as url:
            rag.ingest([ROOT / "docs"])
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(url)
                page.fill("#question", QUESTION)
                page.click("#ask button")
                page.wait_for_selector("#answer[data-done=true]", timeout=120_000)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
