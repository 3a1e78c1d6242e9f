"""The app's logic, one module per concern.

Every Lambda of the app imports `app.py`, and `app.py` names every module here, so the
submodules load on first use, not on import: `from chalicelib import alerts` binds a module
that executes the first time one of its attributes is read. Each function then pays only
for what its handler touches (the tick never loads the alert rules or the exporters; a
WebSocket `$connect` never loads pydantic's request models), and `import app` stays cheap.

The standard library's `importlib.util.LazyLoader` does the same but, before Python 3.12,
lets a second thread see a half-executed module; tests race threads through these modules,
so loading here holds one re-entrant lock (one lock for all: no two loads can deadlock).
"""
from __future__ import annotations

import importlib.util
import sys
import threading
import types

_loading = threading.RLock()
_executing: set[str] = set()


class _Deferred(types.ModuleType):
    """A submodule not yet executed: the first missing attribute executes it, then reads.

    Another thread's read waits on the lock until the module is whole; a read from the
    module's own execution (an import cycle) sees it partial, as a cyclic import would."""

    def __getattr__(self, attr: str) -> object:
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        with _loading:
            if type(self) is _Deferred and spec.name not in _executing:
                _executing.add(spec.name)
                before = dict(self.__dict__)
                try:
                    spec.loader.exec_module(self)
                except BaseException:  # back to unloaded: the next read tries again and fails alike
                    self.__dict__.clear()
                    self.__dict__.update(before)
                    raise
                finally:
                    _executing.discard(spec.name)
                self.__class__ = types.ModuleType  # type: ignore[assignment]
        return object.__getattribute__(self, attr)


def __getattr__(name: str) -> types.ModuleType:
    """`chalicelib.<name>` as a deferred module (PEP 562; `from chalicelib import x` asks here)."""
    full = f"{__name__}.{name}"
    with _loading:
        if full in sys.modules:
            return sys.modules[full]
        spec = importlib.util.find_spec(full) if not name.startswith("__") else None
        if spec is None or spec.loader is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _Deferred
        sys.modules[full] = module
        globals()[name] = module
        return module
