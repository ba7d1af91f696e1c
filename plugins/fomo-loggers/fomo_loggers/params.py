"""The loggers' settings, as spec keys (``run.loggers.N.params``); each says what would stop its logger on this machine.

A tracker's own environment variables remain its fallbacks: a setting left unset here is read by the
tracker library as it always does (``WANDB_PROJECT``, ``MLFLOW_TRACKING_URI``, ...), and checked the same way.
Nothing here imports a tracker library: validating a spec stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, field_validator

from fomo_host.api import LoggerParams

WANDB_MODES = ("online", "offline", "disabled")
"""The modes ``wandb.init`` takes (``dryrun`` is W&B's old spelling of offline, and still accepted from WANDB_MODE)."""
DEFAULT_PROJECT = "fomo-host"
DEFAULT_EXPERIMENT = "fomo-host"
DEFAULT_MLFLOW_STORE = "sqlite:///mlflow.db"
DATABASE_SCHEMES = {"sqlite", "postgresql", "mysql", "mssql"}


def relative_folder(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"{value!r} is not a folder inside the run directory: give a relative path without '..'")
    return value


class CSVParams(LoggerParams):
    """Settings of the ``csv`` logger."""

    directory: str = Field(default="logs", description="folder of the CSV files, inside the run directory")
    steps: bool = Field(default=True, description="write steps.csv (loss and lr every run.log_every_steps steps)")

    @field_validator("directory")
    @classmethod
    def _inside_the_run(cls, value: str) -> str:
        return relative_folder(value)


class TensorBoardParams(LoggerParams):
    """Settings of the ``tensorboard`` logger."""

    directory: str = Field(default="tensorboard", description="folder of the event files, inside the run directory")
    flush_secs: int = Field(default=120, ge=1, description="how often SummaryWriter writes pending events to disk, in seconds")

    @field_validator("directory")
    @classmethod
    def _inside_the_run(cls, value: str) -> str:
        return relative_folder(value)

    def problems(self) -> list[str]:
        if importlib.util.find_spec("tensorboard") is None:
            return ["needs the tensorboard package: pip install tensorboard"]
        return []


class WandbParams(LoggerParams):
    """Settings of the ``wandb`` logger; unset ones fall back to W&B's environment variables."""

    project: str | None = Field(default=None, min_length=1, description=f"W&B project; unset: WANDB_PROJECT, else {DEFAULT_PROJECT!r}")
    entity: str | None = Field(default=None, min_length=1, description="W&B entity (user or team); unset: WANDB_ENTITY, else your default")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        default=None, description="online, offline (log locally for a later `wandb sync`) or disabled; unset: WANDB_MODE, else online"
    )

    def effective_mode(self) -> str:
        mode = self.mode or os.environ.get("WANDB_MODE", "").strip().lower() or "online"
        return "offline" if mode == "dryrun" else mode

    def problems(self) -> list[str]:
        if importlib.util.find_spec("wandb") is None:
            return ["needs the wandb package: pip install 'fomo-loggers[wandb]'"]
        mode = self.effective_mode()
        if mode not in WANDB_MODES:
            return [
                f"params.mode is unset and WANDB_MODE={os.environ.get('WANDB_MODE')!r} is not a W&B mode; "
                f"use one of {', '.join(WANDB_MODES)}"
            ]
        if mode == "online" and not os.environ.get("WANDB_API_KEY") and not _netrc_has_wandb():
            return [
                "params.mode is online and W&B is not logged in: run `wandb login`, set WANDB_API_KEY, "
                "or set params.mode = 'offline' (or WANDB_MODE=offline) to log locally"
            ]
        return []


def _netrc_has_wandb() -> bool:
    import netrc

    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        hosts = netrc.netrc(str(path)).hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


class MLflowParams(LoggerParams):
    """Settings of the ``mlflow`` logger; unset ones fall back to MLflow's environment variables."""

    tracking_uri: str | None = Field(
        default=None,
        min_length=1,
        description="a tracking server (http://...), a database (sqlite:///FILE, postgresql://...) or a file store (file:DIR); "
        f"unset: MLFLOW_TRACKING_URI, else MLflow's default {DEFAULT_MLFLOW_STORE}",
    )
    experiment: str | None = Field(
        default=None, min_length=1, description=f"MLflow experiment; unset: MLFLOW_EXPERIMENT_NAME, else {DEFAULT_EXPERIMENT!r}"
    )

    def effective_uri(self) -> str:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "").strip() or DEFAULT_MLFLOW_STORE

    def setting(self) -> str:
        """How a problem names where the URI came from."""
        if self.tracking_uri:
            return f"params.tracking_uri {self.tracking_uri!r}"
        if os.environ.get("MLFLOW_TRACKING_URI", "").strip():
            return f"MLFLOW_TRACKING_URI={os.environ['MLFLOW_TRACKING_URI'].strip()!r} (params.tracking_uri is unset)"
        return f"MLflow's default store {DEFAULT_MLFLOW_STORE} (params.tracking_uri and MLFLOW_TRACKING_URI are unset)"

    def problems(self) -> list[str]:
        if importlib.util.find_spec("mlflow") is None:
            return ["needs MLflow: pip install 'fomo-loggers[mlflow]'"]
        uri = self.effective_uri()
        scheme = urlparse(uri).scheme.split("+", 1)[0] if "://" in uri or uri.startswith("file:") else ""
        if scheme in DATABASE_SCHEMES and importlib.util.find_spec("sqlalchemy") is None:
            return [
                f"{self.setting()} needs the full mlflow package (pip install mlflow); or set params.tracking_uri to a "
                "tracking server (http://...) or a file store (file:DIR)"
            ]
        if (
            scheme in ("", "file")
            and mlflow_major() >= 3
            and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() not in ("true", "1")
        ):
            return [
                f"{self.setting()} is a file store, which MLflow {mlflow_major()} refuses unless MLFLOW_ALLOW_FILE_STORE=true; "
                "set it, or use a tracking server (http://...) or a database (sqlite:///FILE)"
            ]
        folder = store_folder(uri, scheme)
        if folder is not None:
            blocked = unwritable(folder)
            if blocked:
                return [f"{self.setting()}: MLflow cannot write its store there: {blocked}"]
        return []


def mlflow_major() -> int:
    """The major version of the installed MLflow client (0 when neither ``mlflow`` nor ``mlflow-skinny`` is installed)."""
    from importlib import metadata

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return int(metadata.version(distribution).split(".")[0])
        except (metadata.PackageNotFoundError, ValueError):
            continue
    return 0


def store_folder(uri: str, scheme: str) -> Path | None:
    """The local folder an MLflow store writes into (a file store's folder, a SQLite file's folder); None for a server."""
    if scheme in ("", "file"):
        path = unquote(urlparse(uri).path) if scheme == "file" else uri
        return Path(path).expanduser()
    if scheme == "sqlite":
        database = uri.split(":///", 1)[1] if ":///" in uri else ""
        return Path(database).expanduser().parent if database and database != ":memory:" else None
    return None


def unwritable(folder: Path) -> str:
    """Why files cannot be created in ``folder`` (created if missing, as MLflow does), or empty when they can."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return ""
