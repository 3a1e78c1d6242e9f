"""The Lambda bundle, built for the runtime the template names — not for this interpreter.

- `install_dependencies`: `requirements.txt` installed by pip for CPython 3.13 on
  manylinux2014 aarch64 (binary wheels only), whatever Python and machine run it.
- `assemble`: Chalice's zip (the app, `chalicelib`, Chalice's own runtime) plus those
  dependencies, less what the Lambda Python runtime already provides (boto3, botocore, ...:
  on Lambda /var/task comes first on sys.path, so what is left out is found in the runtime)
  and less bytecode and console scripts.
- `foreign_compiled_files`: every compiled file whose platform or ABI is not the target's
  (an `.so` names its ABI and platform; its ELF header names its machine; a wheel's `WHEEL`
  file names its tags).
- `host_overlay`: the same releases of the bundle's compiled distributions, for this
  machine, so that the pure-Python rest of the bundle can be imported and run here.

Lives outside `chalicelib`, so it never ships to Lambda.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PYTHON_VERSION = "3.13"
ABI = "cp313"
PLATFORM = "manylinux2014_aarch64"
MACHINE = "aarch64"
_ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}

BUDGET_BYTES = 15_000_000  # zipped

# Import names the Lambda Python runtime provides, and their distributions' dist-info names.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
_RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "python_dateutil", "urllib3", "six")
_RUNTIME_DIST_INFO = re.compile(r"^(%s)-[^/]+\.(dist-info|data)$" % "|".join(_RUNTIME_DISTS))


def pip_target_args(platform_tag: str) -> list[str]:
    return [
        "--platform", platform_tag, "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--abi", ABI, "--only-binary=:all:",
    ]


def install_dependencies(requirements: Path, target: Path) -> None:
    """pip, cross-installing for the Lambda runtime (PyPI or pip's cache)."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *pip_target_args(PLATFORM), "--target", str(target), "-r", str(requirements)],
        check=True,
    )


def is_left_out(name: str) -> bool:
    """Whether a bundle entry is one the runtime provides, bytecode, or a console script."""
    parts = name.split("/")
    top = parts[0]
    if "__pycache__" in parts or name.endswith(".pyc"):
        return True
    return (
        top in RUNTIME_MODULES and len(parts) > 1
        or top in {m + ".py" for m in RUNTIME_MODULES}
        or bool(_RUNTIME_DIST_INFO.match(top))
        or top == "bin"
    )


def assemble(chalice_zip: Path, dependencies: Path, output: Path) -> tuple[int, int]:
    """Chalice's zip + the dependencies, minus what is left out; (entries kept, left out)."""
    kept = left_out = 0
    seen: set[str] = set()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        with zipfile.ZipFile(chalice_zip) as source:
            for info in source.infolist():
                if is_left_out(info.filename):
                    left_out += 1
                    continue
                bundle.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                seen.add(info.filename)
                kept += 1
        for path in sorted(dependencies.rglob("*")):
            name = path.relative_to(dependencies).as_posix()
            if path.is_dir() or name in seen:
                continue
            if is_left_out(name):
                left_out += 1
                continue
            bundle.write(path, name)
            kept += 1
    return kept, left_out


# --- what the bundle holds -------------------------------------------------------------------


def _elf_machine(data: bytes) -> str | None:
    if data[:4] != b"\x7fELF":
        return None
    return _ELF_MACHINES.get(int.from_bytes(data[18:20], "little"), f"e_machine {int.from_bytes(data[18:20], 'little')}")


def foreign_compiled_files(zip_path: Path) -> list[str]:
    """Compiled entries built for anything but CPython 3.13 on aarch64 Linux (empty: none)."""
    problems = []
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            base = name.rsplit("/", 1)[-1]
            if base.endswith((".so", ".pyd", ".dylib")) or ".so." in base:
                tagged = re.search(r"\.cpython-(\d+)-(\w+)-linux-gnu\.so$", base)
                if base.endswith((".pyd", ".dylib")) or tagged and tagged.groups() != (ABI[2:], MACHINE):
                    problems.append(f"{name}: not built for CPython {PYTHON_VERSION} on {MACHINE} Linux")
                machine = _elf_machine(archive.read(name)[:64])
                if machine != MACHINE:
                    problems.append(f"{name}: ELF for {machine}")
            elif name.endswith(".dist-info/WHEEL"):
                for line in archive.read(name).decode().splitlines():
                    if line.startswith("Tag: "):
                        problems += _foreign_tag(name, line[5:].strip())
    return problems


def _foreign_tag(name: str, tag: str) -> list[str]:
    python, abi, plat = tag.split("-")
    if plat == "any":
        return [] if abi in ("none", "abi3", ABI) else [f"{name}: {tag}"]
    ok_python = python in (ABI, "cp3", "py3") or (abi == "abi3" and python.startswith("cp3"))
    ok_abi = abi in (ABI, "abi3", "none")
    ok_platform = plat.endswith(MACHINE) and plat.startswith(("manylinux", "linux"))
    return [] if ok_python and ok_abi and ok_platform else [f"{name}: {tag}"]


def compiled_distributions(zip_path: Path) -> dict[str, str]:
    """Distributions in the bundle that are not pure Python: name → version."""
    found = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if name.endswith(".dist-info/WHEEL"):
                text = archive.read(name).decode()
                if "Root-Is-Purelib: false" in text:
                    dist, version = name.split("/")[0][: -len(".dist-info")].rsplit("-", 1)
                    found[dist] = version
    return found


def host_overlay(zip_path: Path, target: Path) -> dict[str, str]:
    """The bundle's compiled distributions for CPython 3.13 on this machine, in `target`
    (empty when this machine is the target's): a Python that puts `target` before the
    bundle on its path imports them instead of the aarch64 ones it cannot load."""
    wanted = compiled_distributions(zip_path)
    if platform.machine() == MACHINE or not wanted:
        return {}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         *pip_target_args(f"manylinux2014_{platform.machine()}"), "--target", str(target),
         *(f"{name}=={version}" for name, version in wanted.items())],
        check=True,
    )
    return wanted


def unzipped_bytes(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


# --- running the bundle here -------------------------------------------------------------------

# `app` imports the REST API's modules; these load on first use in the tick, the runner and
# the WebSocket handlers, so they are imported explicitly.
IMPORT_CHECK = """
import sys
import app
from chalicelib import dispatch, keys, runner, tables, tick, websocket
import boto3, botocore, httpx, pydantic_core, pynamodb
bundle, runtime = sys.path[1], sys.path[2]
assert app.app.app_name == "benchmark-scheduler", app.app.app_name
for module, root in ((app, bundle), (pynamodb, bundle), (httpx, bundle), (boto3, runtime), (botocore, runtime)):
    assert module.__file__.startswith(root + "/"), (module.__name__, module.__file__)
boto3.session.Session(region_name="us-east-1").client("dynamodb")  # botocore's data loads
print("import app: ok under Python %d.%d (boto3 %s, botocore %s from the runtime stand-in)"
      % (sys.version_info[0], sys.version_info[1], boto3.__version__, botocore.__version__))
"""


def find_python() -> str | None:
    """A CPython 3.13 on this machine: `$PYTHON313`, `python3.13` on PATH, or pyenv's."""
    candidates = [os.environ.get("PYTHON313"), shutil.which("python3.13"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            return candidate
    return None


def run_in_bundle(python: str, paths: list[Path], code: str, env: dict[str, str],
                  timeout: float = 300) -> subprocess.CompletedProcess:
    """`code` under `python -I -S`: no site-packages, only `paths` (overlay, bundle, runtime)
    ahead of the standard library, as Lambda puts /var/task ahead of its runtime's packages."""
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    return subprocess.run([python, "-I", "-S", "-B", "-c", prelude + code], env=env,
                          capture_output=True, text=True, timeout=timeout)


def runtime_standin(directory: Path) -> Path:
    """Symlinks to this interpreter's copies of the packages the Lambda runtime provides."""
    directory.mkdir(parents=True, exist_ok=True)
    for module in RUNTIME_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{module} is not installed here: cannot stand in for the Lambda runtime")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (directory / source.name).symlink_to(source)
    return directory


def check_imports(zip_path: Path, python: str, workdir: Path) -> str:
    """Unzip the bundle and import it under `python` with a stand-in for the runtime."""
    bundle_dir, overlay = workdir / "task", workdir / "overlay"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(bundle_dir)
    host_overlay(zip_path, overlay)
    runtime = runtime_standin(workdir / "runtime")
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"}
    result = run_in_bundle(python, [overlay, bundle_dir, runtime], IMPORT_CHECK, env)
    if result.returncode != 0:
        raise SystemExit(f"the bundle does not import:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()
