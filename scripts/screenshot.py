"""Take the README's screenshots of the web page: the service (`ragtide serve`'s app) on
this repository's docs, a question and a follow-up asked in Debian's chromium (driven by
Playwright), the streamed answers and their sources on screen; at desktop and phone width.

    .venv/bin/python scripts/screenshot.py [--out assets/page.png]   # and assets/page-phone.png
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

QUESTIONS = ("What happens when I ingest the same files again?", "And when a file changed?")


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
            rag.ingest([ROOT / "docs"], exclude=["benchmarks.md", "failures.md"])  # as make demo: the guide
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(url)
                page.wait_for_selector("#documents li")
                for n, question in enumerate(QUESTIONS, 1):
                    page.fill("#question", question)
                    page.click("#ask button")
                    page.wait_for_selector(f"#turn-{n}[data-done=true]", timeout=120_000)
                page.add_style_tag(content="#ask { position: static; }")  # a whole-page picture: the form in place
                page.screenshot(path=str(args.out), full_page=True)
                page.set_viewport_size({"width": 390, "height": 844})
                phone = args.out.with_name(args.out.stem + "-phone" + args.out.suffix)
                page.screenshot(path=str(phone), full_page=False)
                browser.close()
    print(f"{args.out}: {args.out.stat().st_size:,} bytes; {phone}: {phone.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
