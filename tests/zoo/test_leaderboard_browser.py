"""The leaderboard page as a browser shows it: headless Chromium renders ``progan-zoo leaderboard --html``;
the DOM has the tables in sorted order and the screenshot has the sample grids where the images are.

Marked ``browser`` (not in the default run): ``python -m pytest -m browser``. Needs Debian's
``chromium`` package (``apt-get install -y chromium``); skipped where /usr/bin/chromium is missing.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from progan_zoo.zoo import registry as R

import zoocli
from conftest import with_results

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")]
WINDOW = (1280, 1800)

# Written into the page copy that the DOM dump reads: where each sample image landed and whether it loaded.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('img')].map(i => {
    const r = i.getBoundingClientRect();
    return {src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
            rect: [r.left, r.top, r.width, r.height]};
  });
  document.body.setAttribute('data-probe', JSON.stringify({imgs: imgs, dpr: window.devicePixelRatio}));
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
           "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=5000",
           *args]
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def table_models(dom: str) -> list[list[str]]:
    """The model column of every table, in page order."""
    out = []
    for table in re.findall(r"<table>(.*?)</table>", dom, re.S):
        out.append([html.unescape(m) for m in re.findall(r"<td class=\"l\">([^<]*)</td>", table)[0::2]])
    return out


def test_leaderboard_page_in_headless_chromium(tmp_path, tiny_model, isolated):
    reg = isolated / "registry.json"
    for name, swd, fid in (("a", 30.0, 9.0), ("b", 10.0, 20.0), ("c", 20.0, 5.0)):
        R.add_entry(reg, name, {"folder": str(with_results(tiny_model, tmp_path / name, swd, fid))})
    site = tmp_path / "site"
    assert zoocli.main(["leaderboard", "--html", str(site), "--no-hub"]) == 0
    page = site / "index.html"
    probe_page = site / "probe.html"
    probe_page.write_text(page.read_text().replace("</body>", PROBE + "</body>"))

    # The DOM after Chromium loaded the page and its images.
    dump = chromium("--dump-dom", probe_page.as_uri())
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = dump.stdout
    assert "<h1>progan-zoo leaderboard</h1>" in dom
    tables = table_models(dom)
    assert ["b", "c", "a"] in tables                     # sorted by swd_avg, lower first
    assert any("mnist-32" in t for t in tables)          # the shipped model has its own table
    probe = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    imgs = {i["src"]: i for i in probe["imgs"]}
    assert {"samples/a.png", "samples/b.png", "samples/c.png", "samples/mnist-32.png"} <= set(imgs)
    for img in imgs.values():
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img      # the file loaded and decoded

    # The picture: each sample image is drawn, not blank, where the DOM says it is.
    shot = tmp_path / "shot.png"
    run = chromium(f"--screenshot={shot}", page.as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    for src, img in imgs.items():
        left, top, width, height = (int(round(v)) for v in img["rect"])
        if top + height > WINDOW[1]:
            continue                                       # below the fold of the screenshot
        crop = pixels[top + 2: top + height - 2, left + 2: left + width - 2]
        source = np.asarray(Image.open(site / src).convert("RGB"), dtype=np.float32)
        assert crop.size and crop.std() > 10, f"{src}: blank where the image should be"
        # The same picture, scaled: its mean brightness matches the file's.
        assert abs(crop.mean() - source.mean()) < 25, (src, crop.mean(), source.mean())
    # Outside the images the page is mostly white paper with text.
    assert np.median(pixels) > 240
