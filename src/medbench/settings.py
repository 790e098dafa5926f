"""Where medbench reads and writes, and every environment variable it reads: the only reader of env and `.env`.

`Settings.from_env` takes the MEDBENCH_* folders and the bucket from the process environment, falling
back to `<root>/.env`. The Google Cloud variables are read the same way but when they are used (so a
`.env` can point at an emulator and a changed credential counts at once); TF_CONFIG is read from the
process environment only, since TensorFlow reads it there itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from medbench.errors import ConfigError, shown

ENV_FILE = ".env"
ROOT_ENV = "MEDBENCH_ROOT"


def _read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file (KEY=VALUE lines, # comments, optional quotes); a line of another shape is an error,
    as a mistyped line would otherwise be dropped without a word."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: is not UTF-8 text ({error}); expected KEY=VALUE lines in UTF-8") from None
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot be read ({error.strerror or error}); expected a readable .env file"
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line or not line.partition("=")[0].strip():
            raise ConfigError(
                f"{path}, line {number}: {line[:80]!r} is not KEY=VALUE; expected KEY=VALUE or a # comment"
            )
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def project_root(start: str | Path | None = None) -> Path:
    """MEDBENCH_ROOT when set, else the nearest folder at or above `start` (default: the working
    directory) holding the medbench checkout (pyproject.toml beside src/medbench), else `start`.

    A notebook runs with its own folder as working directory, so this finds the repository's
    data/, models/ and logs/ from `notebooks/` too.
    """
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "medbench").is_dir():
            return folder
    return here


@dataclass(frozen=True)
class Settings:
    """Project folders and the bucket. Relative paths are resolved against `root`."""

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

    def variable(self, key: str) -> str | None:
        """An environment variable, else its value in `<root>/.env`; read now, so later changes count."""
        return os.environ.get(key) or _read_env_file(self.root / ENV_FILE).get(key) or None

    @property
    def gcs_emulator_host(self) -> str | None:
        """STORAGE_EMULATOR_HOST: a storage emulator to use instead of Google's API (anonymous)."""
        return self.variable("STORAGE_EMULATOR_HOST")

    @property
    def gcs_credentials_file(self) -> str | None:
        """GOOGLE_APPLICATION_CREDENTIALS: a service-account key file."""
        return self.variable("GOOGLE_APPLICATION_CREDENTIALS")

    @property
    def gcp_project(self) -> str | None:
        """GOOGLE_CLOUD_PROJECT: the project of the storage client."""
        return self.variable("GOOGLE_CLOUD_PROJECT")

    @property
    def tf_config(self) -> str | None:
        """TF_CONFIG: the multi-worker cluster and this worker's task (JSON), from the process environment."""
        return os.environ.get("TF_CONFIG") or None

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> Settings:
        """Read the environment, falling back to `<root>/.env` (root: argument, MEDBENCH_ROOT or '.')."""
        given = Path(root if root is not None else os.environ.get(ROOT_ENV, "."))
        try:
            base = given.resolve()
            is_file = base.exists() and not base.is_dir()
        except (OSError, RuntimeError) as error:  # a loop of links, a name too long
            raise ConfigError(
                f"{ROOT_ENV}={shown(str(given))}: cannot be used as the project folder ({error}); expected a folder"
            ) from None
        if is_file:
            raise ConfigError(f"{ROOT_ENV}={shown(str(base))}: is a file; expected the project folder")
        env: Mapping[str, str] = {**_read_env_file(base / ENV_FILE), **os.environ}

        def folder(key: str, default: str) -> Path:
            path = Path(env.get(key) or default).expanduser()
            path = path if path.is_absolute() else base / path
            try:
                exists, is_dir, is_link = path.exists(), path.is_dir(), path.is_symlink()
            except OSError as error:  # a name too long, a component that cannot be searched
                raise ConfigError(
                    f"{key}={shown(str(path))}: cannot be used as a folder ({error.strerror or error}); "
                    "expected a folder path"
                ) from None
            if exists and not is_dir:
                raise ConfigError(
                    f"{key}={shown(str(path))}: is a file; expected a folder (medbench creates it when missing)"
                )
            if is_link and not exists:
                raise ConfigError(
                    f"{key}={shown(str(path))}: is a link that leads nowhere (dangling, or a loop of links); "
                    "expected a folder, or a link to one"
                )
            return path

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

    @classmethod
    def for_project(cls, start: str | Path | None = None) -> Settings:
        """`from_env` rooted at `project_root(start)`: the checkout's folders, from a notebook too."""
        return cls.from_env(project_root(start))
