"""The web preview in a real headless Chromium (Debian's package), driven by playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from streamer.service.config import serve_config
from streamer.service.http import ApiServer
from tests.streamer.test_serve import serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")]


@pytest.fixture
def api() -> Iterator[ApiServer]:
    config = serve_config({
        "http": {"port": 0}, "model": {"device": "cpu"}, "preview_fps": 10,
        "streams": [{"id": "cam1", "model": {"model": "dcp"},
                     "input": "lavfi:testsrc2=size=320x180:rate=25,realtime"}],
    })
    with serving(config) as server:
        yield server


def test_the_page_shows_live_pictures_a_slider_and_counters(api: ApiServer) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{api.port}/")
        page.wait_for_selector("a[href='/streams/cam1/view']", timeout=15_000)
        page.click("a[href='/streams/cam1/view']")
        page.wait_for_function("Number(document.getElementById('view').dataset.frames) >= 2",
                               timeout=20_000)
        first = page.evaluate("document.getElementById('view').toDataURL()")
        page.wait_for_function("Number(document.getElementById('view').dataset.frames) >= 5",
                               timeout=20_000)
        later = page.evaluate("document.getElementById('view').toDataURL()")
        assert later != first  # the picture is live: testsrc2 moves
        size = page.evaluate("[document.getElementById('view').width, "
                             "document.getElementById('view').height]")
        assert size == [320, 180]  # one half of the input | enhanced preview
        # The slider at 0 shows the enhanced half, at 100 the input: the same picture both ways
        # within one script run (no new picture can arrive in between).
        enhanced, original = page.evaluate("""() => {
            const slider = document.getElementById('compare');
            const canvas = document.getElementById('view');
            const shot = value => {
                slider.value = value;
                slider.dispatchEvent(new Event('input'));
                return canvas.toDataURL();
            };
            return [shot(0), shot(100)];
        }""")
        assert enhanced != original
        page.wait_for_function(
            "Number(document.querySelector('dd[data-key=\"frames out\"]')?.textContent) > 10",
            timeout=20_000)
        assert page.text_content("dd[data-key='state']") == "up"
        browser.close()
