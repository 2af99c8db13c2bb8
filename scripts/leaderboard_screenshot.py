"""Save a screenshot of a built leaderboard site's index page (headless Chromium).

    gensr-bench leaderboard build --out site
    python scripts/leaderboard_screenshot.py site docs/leaderboard.png

Needs Debian's ``chromium`` and ``chromium-driver`` and the dev extra ``selenium`` (see
``gensr_bench.testing.headless_chromium``). Fails when the page logs a console error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gensr_bench.testing import headless_chromium


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="folder written by `leaderboard build --out`")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1200, help="of the visible page, in px")
    args = parser.parse_args(argv)
    index = args.site / "index.html"
    if not index.is_file():
        parser.error(f"{index} does not exist; build the site first")
    with headless_chromium(args.width, args.height) as driver:
        driver.get(index.resolve().as_uri())
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        if errors:
            print(f"the page logged errors: {errors}", file=sys.stderr)
            return 1
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    print(f"wrote {args.out} ({args.width}x{args.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
