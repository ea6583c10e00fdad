"""Headless Chromium through Selenium, for the report's benches and its browser test.

The system Chromium and its driver (Debian: `apt install chromium chromium-driver`; .ci/run
installs them) are driven by Selenium (`pip install keras_music[test]`). `chromium_problem()`
says why no browser can run here (tests skip with it); `headless_chromium()` starts one.

    with headless_chromium() as browser:
        seconds = load_seconds(browser, page, "return window.reportReady !== undefined")
        errors = console_errors(browser)
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

BINARIES = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) executables on PATH, or None."""
    browser = next((shutil.which(name) for name in BINARIES if shutil.which(name)), None)
    driver = next((shutil.which(name) for name in DRIVERS if shutil.which(name)), None)
    return (browser, driver) if browser and driver else None


def chromium_problem() -> str | None:
    """Why a headless Chromium cannot be driven here (a skip reason), or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if chromium_paths() is None:
        return "no chromium + chromedriver on PATH (Debian: apt install chromium chromium-driver; .ci/run does)"
    return None


@contextlib.contextmanager
def headless_chromium(width: int = 1400, height: int = 900) -> Iterator:
    """A Selenium WebDriver on a headless Chromium that keeps the page's console messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError(chromium_problem())
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 "--allow-file-access-from-files", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(paths[1]))
    try:
        yield driver
    finally:
        driver.quit()


def load_seconds(driver, page: Path | str, ready_script: str, timeout: float = 120.0) -> float:
    """Seconds from asking for `page` until `ready_script` (JavaScript returning a truthy value) holds,
    polled every 10 ms: the load time a person waits for the page to be usable."""
    url = page if "://" in str(page) else Path(page).resolve().as_uri()
    start = time.perf_counter()
    driver.get(url)
    while not driver.execute_script(ready_script):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{url} was not ready after {timeout:.0f} s ({ready_script})")
        time.sleep(0.01)
    return time.perf_counter() - start


def console_errors(driver) -> list[str]:
    """The page's console messages at level SEVERE (errors) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
