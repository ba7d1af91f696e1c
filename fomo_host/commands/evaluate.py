"""``fomo-host evaluate``: evaluate exported weights on a spec's evaluation sets, beside the run's recorded scores."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..process import is_main_process
from .common import load_host, read_spec


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="evaluate exported weights on a spec's adaptation and zero-shot sets (full test sets)")
    parser.add_argument(
        "weights", metavar="WEIGHTS", help="what fomo-host export wrote (a .safetensors file or folder), or a run's weights file"
    )
    parser.add_argument(
        "--spec", required=True, metavar="SPEC", help="the spec whose model and evaluation sets to use (e.g. RUN_DIR/spec.toml)"
    )
    parser.add_argument(
        "--set", action="append", metavar="KEY.PATH=VALUE", help="override a spec value (TOML syntax), e.g. evaluation.batch_size=256"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(handler=command_evaluate)


def command_evaluate(args: argparse.Namespace) -> int:
    from ..export import read_exported
    from ..progress import Reporter
    from ..running import evaluate_exported

    host = load_host()
    spec = read_spec(args, host)
    exported = read_exported(Path(args.weights))
    result = evaluate_exported(host, spec, exported, Reporter(enabled=is_main_process() and not args.quiet))
    recorded = exported.recorded
    comparable = recorded is not None and recorded.get("subset_fraction", 1.0) >= 1.0
    if args.json:
        print(json.dumps({**result, "weights": str(exported.path), "recorded": recorded}, indent=2, sort_keys=True, default=_nan_to_none))
        return 0
    print(f"evaluated {exported.describe()} on the full test sets of {args.spec}")
    rows: list[tuple[str, str, float, Any]] = []
    groups = result["groups"]
    for name, score in result["scores"].items():
        group = "adaptation" if name in groups["adaptation"] else "zero-shot"
        rows.append((name, group, score, (recorded or {}).get("scores", {}).get(name)))
    rows += [(key, "", result[key], (recorded or {}).get(key)) for key in ("A_KA", "A_ZS", "GM")]
    width = max(len(row[0]) for row in rows)
    print(f"{'dataset':<{width}}  {'set':<10}  {'score':>7}" + ("  recorded" if recorded else ""))
    for name, group, score, before in rows:
        line = f"{name:<{width}}  {group:<10}  {score:7.4f}"
        if recorded:
            line += f"  {before:8.4f}" if isinstance(before, float) and not math.isnan(before) else f"  {'-':>8}"
        print(line)
    if recorded is not None and not comparable:
        fraction = recorded["subset_fraction"]
        print(f"note: the run evaluated these weights on a {fraction:g} share of each test set; this evaluation used all of it")
    return 0


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value
