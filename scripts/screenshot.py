"""Take the README's screenshot of the web page: `ragtide serve` on this repository's docs,
a question asked in Debian's chromium (driven by Playwright), the streamed answer and its
sources on screen.

    .venv/bin/python scripts/screenshot.py [--out assets/page.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What happens when I ingest the same files again?"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "page.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("no chromium: `make browser` installs Debian's")
    ragtide = [sys.executable, "-m", "ragtide.cli"]
    with tempfile.TemporaryDirectory() as work:
        uri = str(Path(work) / "docs.db")
        subprocess.run([*ragtide, "ingest", str(ROOT / "docs"), "--uri", uri], check=True)
        port = _free_port()
        server = subprocess.Popen([*ragtide, "serve", "--uri", uri, "--port", str(port)], env={**os.environ})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                sys.exit("ragtide serve did not become ready")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(url)
                page.fill("#question", QUESTION)
                page.click("#ask button")
                page.wait_for_selector("#answer[data-done=true]", timeout=120_000)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
