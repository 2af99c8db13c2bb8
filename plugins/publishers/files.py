"""The ``files`` publisher: the leaderboard site stays as files in ``--out``, nothing is sent.

``gensr-bench leaderboard build --out DIR`` always renders the site into ``DIR``; this publisher
(the default) checks that the site there is complete and reports where to open it. The folder
works from disk (``file://``) and can be copied to any static web host as it is. Publishers that
upload somewhere (a ``gh-pages`` branch, a bucket) are third-party plugins implementing the same
hook; they receive the same folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gensr_bench import Publisher, hookimpl
from gensr_bench.errors import ConfigError


class FilesPublisher(Publisher):
    """Keep the site as files in the --out folder (open index.html; no upload)."""

    name = "files"
    version = "1"

    def publish(self, site_dir: Path, options: Mapping[str, Any]) -> str:
        if options:
            raise ConfigError(
                f"publisher 'files' takes no options, got {', '.join(sorted(options))}; "
                "the site is written to --out"
            )
        index = Path(site_dir) / "index.html"
        if not index.is_file():
            raise ConfigError(
                f"{site_dir} holds no index.html: the site was not built there; run "
                "`gensr-bench leaderboard build --out DIR` again"
            )
        return f"{index.resolve().as_uri()} (static files in {site_dir}; no server needed)"


@hookimpl
def gensr_register_publishers() -> list[type[Publisher]]:
    return [FilesPublisher]
