"""Headless Chromium for the browser tests: Debian's chromium, driven by playwright, with the
network cut off (only this machine's own server, if one is named, stays reachable)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def launch(playwright, *, local_server: bool = False):
    """A Chromium that can resolve no host (``local_server``: none but 127.0.0.1)."""
    rules = "MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if local_server else "")
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            # no host but this machine: a page that needs the network shows it here
            f"--host-resolver-rules={rules}",
        ],
    )
