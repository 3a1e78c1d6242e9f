"""Logs reach CloudWatch: Lambda's runtime leaves the root logger at WARNING, and the
app's INFO lines (the tick's summary, failed dispatches) must still get through."""
from __future__ import annotations

import logging

import pytest


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lambda_root():
    """The root logger as Lambda's Python runtime sets it up: one handler, level WARNING."""
    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_info_lines_of_the_package_reach_the_runtimes_handler(lambda_root, monkeypatch):
    import app  # noqa: F401 - importing the app configures logging
    from chalicelib import logs

    monkeypatch.delenv("LOG_LEVEL", raising=False)
    logs.configure()
    logging.getLogger("chalicelib.tick").info("tick: %s", {"due": 1})
    logging.getLogger("chalicelib.tick").debug("not this one")
    assert [r.getMessage() for r in lambda_root.records] == ["tick: {'due': 1}"]


def test_a_failed_dispatch_is_logged_with_its_exception(lambda_root, aws, monkeypatch):
    from chalicelib import dispatch, logs

    logs.configure()

    class Refusing:
        def invoke(self, **_):
            raise RuntimeError("TooManyRequestsException: Rate exceeded")

    monkeypatch.setattr(dispatch, "lambda_client", lambda: Refusing())
    assert dispatch.invoke_runner("job-1") is False
    (record,) = lambda_root.records
    assert "job-1" in record.getMessage() and "Rate exceeded" in record.getMessage()
    assert record.exc_info is not None
