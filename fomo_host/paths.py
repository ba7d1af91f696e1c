"""Path parameters as people write them in specs: ``~`` and environment variables expanded."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, ValidationInfo

from .spec import checks_files

UNSET_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def expand_path(value: object, info: ValidationInfo) -> object:
    """``~`` and ``$VAR`` / ``${VAR}`` expanded from the environment; an unset variable is an error (except schema-only)."""
    if not isinstance(value, str | Path):
        return value
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = UNSET_VARIABLE.search(expanded)
    if unset and checks_files(info):
        raise ValueError(f"environment variable {unset.group(1)} in {str(value)!r} is not set; export it or give the path with --set")
    return Path(expanded)


UserPath = Annotated[Path, BeforeValidator(expand_path)]
"""A path parameter: ``~`` and environment variables (``${FOMO_DATA}/dtd``) are expanded when the spec is validated."""
