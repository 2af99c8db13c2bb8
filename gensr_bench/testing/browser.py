"""Headless Chromium for tests of the generated leaderboard site."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

#: How to get what :func:`headless_chromium` needs (CI installs it in ``.ci/run``).
CHROMIUM_HELP = (
    "install Debian's browser and driver with `apt-get install -y chromium chromium-driver` "
    "(as root, or with sudo) and selenium with `pip install -e '.[dev]'`"
)


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A selenium WebDriver for headless Chromium, quit when the block ends.

    Uses the ``chromium`` and ``chromedriver`` found on PATH, given explicitly, so selenium
    never looks for (or downloads) a browser or driver. The browser's console is captured:
    read it with ``driver.get_log("browser")``. Raises RuntimeError saying how to install
    them when either is missing.
    """
    import shutil

    driver_path = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if driver_path is None or browser is None:
        raise RuntimeError(
            f"headless Chromium is not available (chromium: {browser or 'not found'}, "
            f"chromedriver: {driver_path or 'not found'}); {CHROMIUM_HELP}"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise RuntimeError(f"selenium is not installed; {CHROMIUM_HELP}") from exc
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
