"""The web page in a real browser (Debian's chromium, driven by Playwright): the key prompt,
the empty state, upload through to "ingested", a conversation with a follow-up, sources that
open on the quoted sentence, export, delete with confirmation, a phone-width layout, and an
accessibility check with axe-core."""

from __future__ import annotations

import shutil
from pathlib import Path

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
AXE = Path(__file__).resolve().parents[1] / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
KEY = "browser-key"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("no chromium on this machine: `make test` installs Debian's chromium (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in found if v["impact"] in ("serious", "critical")]


def test_a_conversation_on_the_page_from_key_prompt_to_delete(browser, lite_dir, embedder, tmp_path):
    uri, name = str(lite_dir / "browser.db"), new_collection()
    config = ServerConfig(
        api_keys=(f"{KEY}:harbour:write",), upload_dir=tmp_path, settings=Settings.load(uri=uri, collection=name)
    )
    rag = RAG(settings=config.settings, embedder=embedder)
    try:
        with running(config, rag) as url:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True, bypass_csp=True)
            page.goto(url)
            # The service wants a key: the page asks for one instead of showing an empty list.
            page.wait_for_selector("#key-dialog[open]")
            page.fill("#key", KEY)
            page.click("#key-save")
            page.wait_for_selector("#no-documents:visible")
            assert "uploading documents" in page.inner_text("#empty")
            assert page.inner_text("#who") == "tenant harbour · write"  # the key's tenant and role

            page.fill("#question", "What is this about?")
            page.click("#ask button")
            page.wait_for_selector("#turn-1[data-done=true]")
            assert "No documents yet" in page.inner_text("#turn-1 .answer")  # not a red 503

            page.click("#new-conversation")
            page.set_input_files("#files", str(ESSAY))
            page.click("#upload button")
            page.wait_for_selector(".uploads li:has-text('ingested')", timeout=300_000)
            page.wait_for_selector("#documents li:has-text('paul_graham_essay.txt')")
            assert "chunks" in page.inner_text("#documents")

            page.fill("#question", "What computer did the author first write programs on?")
            page.press("#question", "Enter")
            page.wait_for_selector("#turn-2[data-done=true]", timeout=120_000)
            assert "IBM 1401" in page.inner_text("#turn-2 .answer")
            page.fill("#question", "Which language did he use on it?")
            page.click("#ask button")
            page.wait_for_selector("#turn-3[data-done=true]", timeout=120_000)
            assert "Fortran" in page.inner_text("#turn-3 .answer")  # the follow-up read with the first turn
            assert "searched as" in page.inner_text("#turn-3 .meta")

            citation = page.locator("#turn-3 .answer a.citation").first
            target = citation.get_attribute("href")
            citation.click()
            assert page.evaluate("location.hash") == target
            assert page.locator(f"{target}").get_attribute("open") is not None
            assert page.locator(f"{target} mark").count() >= 1  # the quoted sentence, marked
            assert page.locator("#turn-3 .sources summary").first.inner_text().startswith("[1] ")  # one numbering

            with page.expect_download() as download:
                page.click("#export")
            exported = Path(download.value.path()).read_text()
            assert "Which language did he use on it?" in exported and "paul_graham_essay.txt" in exported

            if AXE.exists():
                assert serious_violations(page) == []
            page.screenshot(path=str(tmp_path / "desktop.png"), full_page=True)

            page.set_viewport_size(PHONE)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
            page.set_viewport_size({"width": 1200, "height": 900})

            page.once("dialog", lambda dialog: dialog.dismiss())  # "Delete ...?" answered no: kept
            page.click("#documents li:has-text('paul_graham_essay.txt') button")
            assert page.locator("#documents li:has-text('paul_graham_essay.txt')").count() == 1
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("#documents li:has-text('paul_graham_essay.txt') button")
            page.wait_for_selector("#documents li:has-text('paul_graham_essay.txt')", state="detached")
            page.wait_for_selector("#no-documents:visible")
    finally:
        rag.close()
        drop(uri, name)


def test_the_empty_page_passes_axe_at_phone_width(browser, lite_dir, embedder, tmp_path):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make test` installs it with npm (make axe)")
    uri, name = str(lite_dir / "browser-empty.db"), new_collection()
    config = ServerConfig(upload_dir=tmp_path, settings=Settings.load(uri=uri, collection=name))
    rag = RAG(settings=config.settings, embedder=embedder)
    try:
        with running(config, rag) as url:
            page = browser.new_page(viewport=PHONE, bypass_csp=True)  # to inject axe-core
            page.goto(url)
            page.wait_for_selector("#no-documents:visible")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert serious_violations(page) == []
    finally:
        rag.close()
        drop(uri, name)
