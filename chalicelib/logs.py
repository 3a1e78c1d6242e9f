"""The app's logging, configured once per process by `app.py` (every Lambda imports it).

Lambda's Python runtime leaves the root logger at WARNING, so without this every INFO line
of `chalicelib` (the tick's summary, a dispatch that failed) would be dropped. The level of
the package's loggers is the setting `LOG_LEVEL` (default INFO); the handler stays the
runtime's, which writes to CloudWatch.
"""
from __future__ import annotations

import logging
import os

PACKAGE_LOGGERS = ("chalicelib", "benchmark-scheduler")  # the package and Chalice's `app.log`


def configure() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    for name in PACKAGE_LOGGERS:
        logging.getLogger(name).setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
