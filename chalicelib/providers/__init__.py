"""Provider clients: one streaming request per model, measured (DESIGN §4).

Import cost is kept low (no httpx until ``run_model`` is called), so the catalog and
``app.py`` may import ``ModelTarget`` freely.
"""

from .engine import ModelTarget, RunSettings, run_model

__all__ = ["ModelTarget", "RunSettings", "run_model"]
