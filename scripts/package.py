"""Finish what `chalice package` wrote, so `aws cloudformation deploy` can take it.

    python scripts/package.py STAGE OUTDIR      (run by `make package`, after chalice)

1. Pins the template's `Stage` parameter to STAGE (its only allowed value and its default).
   `.chalice/resources.json` serves every stage and names its resources with `${Stage}`,
   while `.chalice/policy-<stage>.json` names that one stage's functions and log groups:
   pinned, a dev package cannot be deployed as prod by a wrong parameter.
2. Strips the packages the Lambda Python runtime already provides (boto3, botocore,
   s3transfer, jmespath, dateutil, urllib3, six: pynamodb pulls in botocore, ~16 MB zipped)
   and every `__pycache__` from `deployment.zip`. On Lambda, /var/task (the bundle) comes
   before the runtime's packages on sys.path, so what is left out is found in the runtime.
3. Checks that the stripped bundle imports: unzipped to a temporary directory, a Python
   without site-packages (`-I -S`) imports `app` and the lazily imported modules with only
   the bundle and a stand-in for the runtime's packages on its path (this interpreter's
   boto3/botocore/...; Lambda's own are older releases of the same packages).
4. Prints the bundle's size and fails above the 15 MB budget.

Lives outside `chalicelib`, so it never ships to Lambda.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BUDGET_BYTES = 15_000_000  # zipped

# Import names the Lambda Python runtime provides, and their distributions' dist-info names.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
_RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "urllib3", "six")
_RUNTIME_DIST_INFO = re.compile(r"^(%s)-[^/]+\.(dist-info|data)$" % "|".join(_RUNTIME_DISTS))

# `app` imports the REST API's modules; these load on first use in the tick, the runner and
# the WebSocket handlers, so they are imported explicitly.
_IMPORT_CHECK = """
import sys
bundle, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [bundle, runtime]
import app
from chalicelib import dispatch, keys, runner, tables, tick, websocket
import boto3, botocore, httpx, pydantic_core, pynamodb
assert app.app.app_name == "benchmark-scheduler", app.app.app_name
for module, root in ((app, bundle), (pynamodb, bundle), (httpx, bundle), (pydantic_core, bundle),
                     (boto3, runtime), (botocore, runtime)):
    assert module.__file__.startswith(root + "/"), (module.__name__, module.__file__)
boto3.session.Session(region_name="us-east-1").client("dynamodb")  # botocore data loads
print("import app: ok (boto3 %s, botocore %s from the runtime stand-in)"
      % (boto3.__version__, botocore.__version__))
"""


def is_runtime_provided(name: str) -> bool:
    """Whether a zip entry belongs to a package the Lambda runtime provides, or is bytecode."""
    parts = name.split("/")
    top = parts[0]
    if "__pycache__" in parts or name.endswith(".pyc"):
        return True
    return (
        top in RUNTIME_MODULES and len(parts) > 1
        or top in {m + ".py" for m in RUNTIME_MODULES}
        or bool(_RUNTIME_DIST_INFO.match(top))
    )


def pin_stage(template_path: Path, stage: str) -> None:
    template = json.loads(template_path.read_text())
    parameter = template.get("Parameters", {}).get("Stage")
    if parameter is None:
        raise SystemExit(f"{template_path}: no Stage parameter (was --merge-template given?)")
    if stage not in parameter.get("AllowedValues", []):
        raise SystemExit(
            f"stage {stage!r} is not deployable: .chalice/resources.json allows "
            f"{parameter.get('AllowedValues')} (local and test are for the dev stack and tests)"
        )
    parameter["AllowedValues"] = [stage]
    parameter["Default"] = stage
    template_path.write_text(json.dumps(template, indent=2) + "\n")


def strip_bundle(zip_path: Path) -> tuple[int, int]:
    """Rewrite the zip without the runtime's packages; (entries removed, entries kept)."""
    stripped = zip_path.with_suffix(".stripped.zip")
    removed = kept = 0
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(
        stripped, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9
    ) as target:
        for info in source.infolist():
            if is_runtime_provided(info.filename):
                removed += 1
                continue
            kept += 1
            target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(stripped, zip_path)
    return removed, kept


def _runtime_standin(directory: Path) -> None:
    """Symlinks to this interpreter's copies of the packages the Lambda runtime provides."""
    for module in RUNTIME_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{module} is not installed here: cannot stand in for the Lambda runtime")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (directory / source.name).symlink_to(source)


def check_imports(zip_path: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="bundle-check-") as tmp:
        bundle, runtime = Path(tmp, "task"), Path(tmp, "runtime")
        runtime.mkdir()
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(bundle)
        _runtime_standin(runtime)
        env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"}
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", _IMPORT_CHECK, str(bundle), str(runtime)],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
        )
    if result.returncode != 0:
        raise SystemExit(f"the stripped bundle does not import:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def unzipped_bytes(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    stage, outdir = argv[0], Path(argv[1])
    template, bundle = outdir / "sam.json", outdir / "deployment.zip"
    pin_stage(template, stage)
    before = bundle.stat().st_size
    removed, kept = strip_bundle(bundle)
    print(check_imports(bundle))
    size = bundle.stat().st_size
    print(
        f"bundle: {bundle} {size / 1e6:.2f} MB zipped ({unzipped_bytes(bundle) / 1e6:.1f} MB unzipped, "
        f"{kept} files), budget {BUDGET_BYTES / 1e6:.0f} MB; stripped {removed} files "
        f"({(before - size) / 1e6:.1f} MB) the Lambda runtime provides"
    )
    print(f"template: {template} (stage {stage})")
    if size > BUDGET_BYTES:
        print(f"bundle is over budget by {(size - BUDGET_BYTES) / 1e6:.2f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
