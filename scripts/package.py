"""`make package`: the SAM template and the bundle `make deploy` ships, for one stage.

    python -m scripts.package STAGE OUTDIR [REGION]

1. Stages the project in OUTDIR/stage: the app, `chalicelib`, `.chalice/config.json` with
   one IAM policy file per function (`scripts/access.py`), an empty requirements file (the
   dependencies are built below, for the target), and the merge template
   (`scripts/merge_template.py`: generated tables, env and settings + `.chalice/resources.json`).
2. Runs `chalice package` there: OUTDIR/sam.json and Chalice's zip.
3. Installs `requirements.txt` for CPython 3.13 on aarch64 (`scripts/bundle.py`) and
   assembles OUTDIR/deployment.zip from both, less what the Lambda runtime provides.
4. Checks the bundle: every compiled file is for the target; it imports under a CPython
   3.13 here (its compiled parts swapped for this machine's build of the same releases),
   when one is found; its size is within the budget.

Lives outside `chalicelib`, so it never ships to Lambda.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts import bundle, merge_template

ROOT = merge_template.ROOT


def stage_project(stage: str, staged: Path) -> None:
    template = merge_template.merge_template(stage)  # refuses a stage it cannot deploy
    shutil.rmtree(staged, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "chalicelib", staged / "chalicelib", ignore=ignore)
    shutil.copy2(ROOT / "app.py", staged / "app.py")
    (staged / "requirements.txt").write_text("# built by scripts/bundle.py for the Lambda runtime\n")
    chalice_dir = staged / ".chalice"
    chalice_dir.mkdir()
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for function, document in merge_template.policy_documents().items():
        filename = f"policy-{stage}-{function}.json"
        (chalice_dir / filename).write_text(json.dumps(document, indent=2) + "\n")
        config["lambda_functions"][function]["iam_policy_file"] = filename
    config["stages"][stage]["autogen_policy"] = False
    (chalice_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (chalice_dir / "merge.json").write_text(json.dumps(template, indent=2) + "\n")


def chalice_package(stage: str, staged: Path, outdir: Path, region: str) -> None:
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "AWS_DEFAULT_REGION": region}
    subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", ".chalice/merge.json", str(outdir)],
        cwd=staged, env=env, check=True,
    )


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    stage, outdir = argv[0], Path(argv[1]).resolve()
    region = argv[2] if len(argv) == 3 else "us-east-1"  # chalice only picks the partition
    outdir.mkdir(parents=True, exist_ok=True)
    for name in ("sam.json", "deployment.zip", "packaged.json"):
        (outdir / name).unlink(missing_ok=True)
    staged = outdir / "stage"
    stage_project(stage, staged)
    chalice_out = outdir / "chalice"
    shutil.rmtree(chalice_out, ignore_errors=True)
    chalice_package(stage, staged, chalice_out, region)
    shutil.move(chalice_out / "sam.json", outdir / "sam.json")

    dependencies = outdir / "dependencies"
    bundle.install_dependencies(ROOT / "requirements.txt", dependencies)
    zip_path = outdir / "deployment.zip"
    kept, left_out = bundle.assemble(chalice_out / "deployment.zip", dependencies, zip_path)

    foreign = bundle.foreign_compiled_files(zip_path)
    if foreign:
        print("compiled files not built for the Lambda runtime:\n  " + "\n  ".join(foreign), file=sys.stderr)
        return 1
    print(f"compiled files: all CPython {bundle.PYTHON_VERSION} on {bundle.MACHINE} Linux")
    python = bundle.find_python()
    if python is None:
        print("import check skipped: no CPython 3.13 here (set PYTHON313)", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory(prefix="bundle-check-") as tmp:
            print(bundle.check_imports(zip_path, python, Path(tmp)))
    size = zip_path.stat().st_size
    print(
        f"bundle: {zip_path} {size / 1e6:.2f} MB zipped ({bundle.unzipped_bytes(zip_path) / 1e6:.1f} MB "
        f"unzipped, {kept} files), budget {bundle.BUDGET_BYTES / 1e6:.0f} MB; left out {left_out} files "
        f"the Lambda runtime provides (or bytecode)"
    )
    print(f"template: {outdir / 'sam.json'} (stage {stage}, {merge_template.RUNTIME} on {merge_template.ARCHITECTURE})")
    if size > bundle.BUDGET_BYTES:
        print(f"bundle is over budget by {(size - bundle.BUDGET_BYTES) / 1e6:.2f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
