"""Where medbench reads and writes: folders and options taken from the environment (and `.env`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_FILE = ".env"


def _read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file (KEY=VALUE lines, # comments, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    """Project folders. Relative paths are resolved against `root`."""

    root: Path
    data_dir: Path
    models_dir: Path
    logs_dir: Path
    weights_dir: Path
    cache_dir: Path | None = None
    gcs_bucket: str | None = None
    gcs_prefix: str = ""

    @property
    def cache_root(self) -> Path:
        """Where preprocessing caches live (`<data dir>/cache` unless MEDBENCH_CACHE_DIR says otherwise)."""
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"

    @property
    def outbox_dir(self) -> Path:
        """Uploads waiting for the bucket; under logs/ so it survives a container restart."""
        return self.logs_dir / "outbox"

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> Settings:
        """Read MEDBENCH_* variables from the process environment, falling back to `<root>/.env`."""
        base = Path(root if root is not None else os.environ.get("MEDBENCH_ROOT", ".")).resolve()
        env = {**_read_env_file(base / ENV_FILE), **os.environ}

        def folder(key: str, default: str) -> Path:
            path = Path(env.get(key) or default).expanduser()
            return path if path.is_absolute() else base / path

        return cls(
            root=base,
            data_dir=folder("MEDBENCH_DATA_DIR", "data"),
            models_dir=folder("MEDBENCH_MODELS_DIR", "models"),
            logs_dir=folder("MEDBENCH_LOGS_DIR", "logs"),
            weights_dir=folder("MEDBENCH_WEIGHTS_DIR", str(Path("~/.keras/models").expanduser())),
            cache_dir=folder("MEDBENCH_CACHE_DIR", "") if env.get("MEDBENCH_CACHE_DIR") else None,
            gcs_bucket=env.get("MEDBENCH_GCS_BUCKET") or None,
            gcs_prefix=(env.get("MEDBENCH_GCS_PREFIX") or "").strip("/"),
        )
