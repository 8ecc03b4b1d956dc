"""mkdocs hooks of deepal's site.

``deepal.__all__`` adds every strategy's name from the registry (``*STRATEGIES``), which a
static reading of the sources cannot expand; the strategies have their own reference page, so
that one message is dropped rather than failing the strict build.
"""

from __future__ import annotations

import logging
from typing import Any


class _DropUnpackedAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Unsupported item in deepal.__all__: STRATEGIES" not in record.getMessage()


def on_startup(**kwargs: Any) -> None:
    for name in ("griffe", "mkdocs.plugins.griffe", "mkdocs.plugins.mkdocstrings_handlers"):
        logging.getLogger(name).addFilter(_DropUnpackedAll())
