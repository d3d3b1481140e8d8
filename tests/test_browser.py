"""The web page in a real browser (Debian's chromium, driven by Playwright): upload a
document, ask, watch the answer stream in with its cited source, delete the document."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from conftest import ESSAY, drop, new_collection  # noqa: E402
from ragtide import RAG  # noqa: E402
from ragtide.server import ServerConfig  # noqa: E402
from ragtide.settings import Settings  # noqa: E402
from server_fixture import CHROMIUM_FLAGS, running  # noqa: E402

pytestmark = pytest.mark.model  # the real embedding model: not in the fast tier

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEY = "browser-key"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("no chromium on this machine: `make test` installs Debian's chromium (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def test_upload_ask_stream_cite_delete(browser, lite_dir, embedder, tmp_path):
    uri, name = str(lite_dir / "browser.db"), new_collection()
    config = ServerConfig(api_keys=(KEY,), upload_dir=tmp_path, settings=Settings.load(uri=uri, collection=name))
    rag = RAG(settings=config.settings, embedder=embedder)
    try:
        with running(config, rag) as url:
            page = browser.new_page()
            page.goto(url)
            page.fill("#key", KEY)
            page.dispatch_event("#key", "change")
            page.set_input_files("#files", str(ESSAY))
            page.click("#upload button")
            page.wait_for_selector("#job[data-status=done]", timeout=300_000)
            page.wait_for_selector("#documents li:has-text('paul_graham_essay.txt')")

            page.fill("#question", "What computer did the author first write programs on?")
            page.click("#ask button")
            page.wait_for_selector("#answer[data-done=true]", timeout=120_000)
            assert "IBM 1401" in page.inner_text("#answer")
            citation = page.locator("#answer a.citation").first
            target = citation.get_attribute("href")
            assert page.locator(f"{target} .where").inner_text().endswith("paul_graham_essay.txt")
            citation.click()
            assert page.evaluate("location.hash") == target
            assert "retrieval" in page.inner_text("#meta")

            page.click("#documents li:has-text('paul_graham_essay.txt') button")
            page.wait_for_selector("#documents li:has-text('paul_graham_essay.txt')", state="detached")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    finally:
        rag.close()
        drop(uri, name)
