"""Build bench/gpu_bundle/: what bench/gpu_check.sh needs on a GPU machine with no network.

That machine has python3.12 with torch (CUDA), pytorch-lightning and torchmetrics, so it has their
dependencies too (numpy: PRESENT below); it lacks mlflow, optuna, hydra-core and omegaconf. This script, run where PyPI is reachable, puts in the bundle:

  wheels.tar.xz      the rest of the closure as Python 3.12 manylinux x86_64 wheels: mlflow-skinny (not
                     mlflow: no server, UI, pyarrow or scikit-learn) with SQLAlchemy + alembic for the
                     SQLite store, optuna, hydra-core, omegaconf, pandas 2 (mlflow.pytorch imports it),
                     psutil and nvidia-ml-py (MLflow's CPU and GPU system metrics); setuptools, wheel
                     and packaging only to build sweeplab itself. antlr4-python3-runtime 4.9.3 has no
                     wheel on PyPI: built here. The wheels are stored uncompressed inside and the tar
                     is xz-compressed: 21 MiB instead of 34 MiB of wheels. No matplotlib: the sweep
                     skips its Optuna plots.
  requirements.txt   what gpu_check.sh installs from them (pip --no-index, with dependencies);
  python-version     the Python the wheels are for (gpu_check.sh compares);
  fashion-mnist/     the four Fashion-MNIST IDX files, xz-compressed (25 MiB instead of 29 MiB of .gz);
                     gpu_check.sh unpacks them when /usr/share/datasets/fashion-mnist is missing.

It checks that the requirements resolve from the wheels alone (pip --dry-run --no-index, with numpy
1.26.4 and then the newest numpy standing in for the GPU machine's own) and prints the sizes. The
bundle must stay under 60 MiB: the device machine receives at most 64 MiB with the working tree.
Downloads are kept in ~/.cache/sweeplab/ between runs.

    .venv/bin/python bench/gpu_bundle.py [--python-version 3.12] [--out bench/gpu_bundle]
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")
CACHE = Path.home() / ".cache" / "sweeplab"
LIMIT_MIB = 60
# Pinned as constraints.txt pins them (the versions the test suite runs with).
WANTED = ["mlflow-skinny==3.17.2", "hydra-core==1.3.8", "omegaconf==2.3.1", "optuna==5.0.0",
          "SQLAlchemy==2.1.9", "alembic==1.20.1", "psutil==7.2.2", "nvidia-ml-py",
          # Not constraints.txt's 3.1.1, which needs numpy >= 2.0.2: pandas 2 runs on numpy 1.26 too,
          # and the GPU machine's numpy (whatever its torch came with) is not known here.
          "pandas>=2.2,<3"]
BUILD = ["setuptools>=69", "wheel"]      # pyproject's build-system, for `pip install -e .` offline
SDIST_ONLY = ["antlr4-python3-runtime==4.9.3"]   # hydra-core and omegaconf pin it; PyPI has no wheel
# On the GPU machine already (torchmetrics requires it), and 16 MB: the one package left out. Smaller
# ones that torch or Lightning bring too (PyYAML, packaging, tqdm, typing-extensions) are bundled
# anyway; pip leaves them out when the machine's own satisfy the requirements.
PRESENT = {"numpy"}
NUMPY_OLDEST = "numpy==1.26.4"   # the check resolves against this numpy too
# glibc 2.28 at least: torch 2.11's own wheels need it, so the GPU machine has it; no newer, so that
# a package with wheels for several glibcs (cryptography) gives the one that runs on most machines.
PLATFORMS = [f"manylinux_2_{v}_x86_64" for v in (28, 27, 24, 17, 12, 5)] + ["manylinux2014_x86_64", "linux_x86_64"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        noise = re.compile(r"Location '.*' is ignored|^\s*$")
        err = "\n".join(line for line in done.stderr.splitlines() if not noise.search(line))
        sys.exit(f"gpu_bundle: pip {' '.join(args[:2])} failed:\n{err[-3000:]}")
    return done


def target_args(python_version: str) -> list[str]:
    abi = "cp" + python_version.replace(".", "")
    return ["--python-version", python_version, "--implementation", "cp", "--abi", abi,
            *[a for p in PLATFORMS for a in ("--platform", p)], "--only-binary=:all:"]


def resolve(requirements: list[str], python_version: str, links: list[Path]) -> list[tuple[str, str]]:
    """(name, version) of every package pip would install for `requirements` on the target Python."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip("install", "--dry-run", "--quiet", "--ignore-installed", "--report", str(report),
            "--target", str(Path(tmp) / "t"), *target_args(python_version),
            *[a for d in links for a in ("--find-links", str(d))], *requirements)
        items = json.loads(report.read_text())["install"]
    return [(i["metadata"]["name"], i["metadata"]["version"]) for i in items]


def wheel_name(path: Path) -> str:
    return norm(path.name.split("-")[0])


def runs_there(path: Path, version: str) -> bool:
    """The wheel is of `version` and for one of PLATFORMS (the cache may hold others)."""
    from packaging.utils import parse_wheel_filename

    _, found, _, tags = parse_wheel_filename(path.name)
    return str(found) == version and any(t.platform in {*PLATFORMS, "any"} for t in tags)


def pack(wheels: list[Path], archive: Path) -> None:
    """wheels/*.whl in an xz tar, each wheel re-zipped without compression first (xz then compresses
    the files themselves, a third better than zip's deflate). RECORD hashes the files, not the zip,
    so the wheels stay valid."""
    with tempfile.TemporaryDirectory() as tmp:
        stored = []
        for wheel in wheels:
            target = Path(tmp) / wheel.name
            with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as sink:
                for info in source.infolist():
                    data = source.read(info)
                    info.compress_type = zipfile.ZIP_STORED
                    sink.writestr(info, data)
            stored.append(target)
        part = archive.with_suffix(".part")
        with tarfile.open(part, "w:xz", preset=9) as tar:
            for path in sorted(stored):
                tar.add(path, arcname=f"wheels/{path.name}")
        part.rename(archive)


def packed_names(archive: Path) -> list[str]:
    if not archive.exists():
        return []
    with tarfile.open(archive, "r:xz") as tar:
        return sorted(Path(m.name).name for m in tar.getmembers() if m.name.endswith(".whl"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "gpu_bundle"))
    args = parser.parse_args()
    out, version = Path(args.out), args.python_version
    target = target_args(version)
    out.mkdir(parents=True, exist_ok=True)
    # Everything downloaded stays in the cache; the bundle gets the packed copy only.
    wheels = CACHE / f"gpu-wheels-py{version}"
    present = CACHE / f"gpu-present-py{version}"
    for folder in (wheels, present):
        folder.mkdir(parents=True, exist_ok=True)

    if not list(wheels.glob("antlr4_python3_runtime-*.whl")):
        print(f"gpu_bundle: building {', '.join(SDIST_ONLY)} (no wheel on PyPI)", flush=True)
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), *SDIST_ONLY)
    print(f"gpu_bundle: resolving {', '.join(WANTED)} for Python {version}", flush=True)
    closure = resolve(WANTED, version, [wheels])
    # pip builds sweeplab in an isolated environment that sees none of the machine's packages.
    build = resolve(BUILD, version, [wheels])
    bundled = sorted({(n, v) for n, v in closure if norm(n) not in PRESENT} | set(build))
    pip("download", "--quiet", "--no-deps", "--dest", str(wheels), *target,
        *[f"{n}=={v}" for n, v in bundled if not norm(n).startswith("antlr4")])
    chosen = [fits[0] for n, v in bundled
              if (fits := [p for p in sorted(wheels.glob("*.whl")) if wheel_name(p) == norm(n) and runs_there(p, v)])]
    missing = {norm(n) for n, _ in bundled} - {wheel_name(p) for p in chosen}
    if missing:
        sys.exit(f"gpu_bundle: no wheel downloaded for {', '.join(sorted(missing))}")
    pinned = {norm(n): f"{n}=={v}" for n, v in closure}
    (out / "requirements.txt").write_text(
        "# gpu_check.sh: pip install --no-index --find-links WHEELS -r requirements.txt (WHEELS: wheels.tar.xz)\n"
        + "".join(pinned[norm(re.split(r"[<>=!~;\[ ]", r)[0])] + "\n" for r in WANTED))
    (out / "python-version").write_text(version + "\n")

    print("gpu_bundle: checking that the requirements resolve from the bundle's wheels alone", flush=True)
    newest = [f"{n}=={v}" for n, v in closure if norm(n) in PRESENT]
    for numpy in (NUMPY_OLDEST, *newest):   # the machine's numpy stands in a folder of its own
        stand_in = present / numpy.replace("==", "-")
        pip("download", "--quiet", "--no-deps", "--dest", str(stand_in), *target, numpy)
        with tempfile.TemporaryDirectory() as tmp:
            only = Path(tmp) / "wheels"
            only.mkdir()
            for path in chosen:
                shutil.copy(path, only)
            check = pip("install", "--dry-run", "--no-index", "--ignore-installed", "--find-links", str(only),
                        "--find-links", str(stand_in), "--target", str(Path(tmp) / "t"), *target,
                        "-r", str(out / "requirements.txt"), check=False)
            build_check = pip("install", "--dry-run", "--no-index", "--ignore-installed", "--find-links",
                              str(only), "--target", str(Path(tmp) / "t"), *target, *BUILD, check=False)
        if check.returncode or build_check.returncode:
            sys.exit(f"gpu_bundle: with {numpy}, the bundle does not resolve offline:\n"
                     f"{(check.stderr + build_check.stderr)[-3000:]}")
        would = [line for line in check.stdout.splitlines() if line.startswith("Would install")]
        print(f"gpu_bundle: offline resolution OK with {numpy} standing in for the machine's own: "
              + (would[0] if would else "nothing to install"))

    archive = out / "wheels.tar.xz"
    if packed_names(archive) != [p.name for p in chosen]:
        print(f"gpu_bundle: packing {len(chosen)} wheels into {archive.name} (xz -9, about a minute)", flush=True)
        pack(chosen, archive)

    data = out / "fashion-mnist"
    sources = sorted(FASHION.glob("*-ubyte.gz"))
    if len(sources) != 4:
        sys.exit(f"gpu_bundle: Fashion-MNIST is missing from {FASHION} (make data)")
    if sorted(p.name for p in data.glob("*.xz")) != sorted(p.name[:-3] + ".xz" for p in sources):
        print("gpu_bundle: compressing Fashion-MNIST (xz -9, about a minute)", flush=True)
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        for source in sources:
            part = data / (source.name[:-3] + ".xz.part")
            part.write_bytes(lzma.compress(gzip.decompress(source.read_bytes()), preset=9))
            part.rename(data / (source.name[:-3] + ".xz"))
    for stale in set(out.iterdir()) - {archive, data, out / "requirements.txt", out / "python-version"}:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()

    wheel_bytes = sum(p.stat().st_size for p in chosen)
    data_bytes = sum(p.stat().st_size for p in data.glob("*.xz"))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"gpu_bundle: {len(chosen)} wheels ({wheel_bytes / 2**20:.1f} MiB as wheels) in {archive.name} "
          f"{archive.stat().st_size / 2**20:.1f} MiB; Fashion-MNIST {data_bytes / 2**20:.1f} MiB; "
          f"total {total / 2**20:.1f} MiB in {out}")
    for path in sorted(chosen, key=lambda p: -p.stat().st_size)[:6]:
        print(f"  {path.stat().st_size / 2**20:6.2f} MiB  {path.name}")
    if total > LIMIT_MIB * 2**20:
        sys.exit(f"gpu_bundle: {total / 2**20:.1f} MiB is over the {LIMIT_MIB} MiB budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
