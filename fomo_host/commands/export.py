"""``fomo-host export``: a run's deployed weights as a plain open_clip model (adapters folded in), in safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="write a run's deployed weights as a plain open_clip state dict (safetensors), loadable without fomo-host"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument(
        "--task",
        type=int,
        metavar="N",
        help="the weights deployed after task N (1-based; 0 = the base model); default: the last evaluated task",
    )
    parser.add_argument("--release", type=int, metavar="N", help="release N of a run kept current (see fomo-host releases)")
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE|DIR",
        help="FILE.safetensors: one file for open_clip.create_model(ARCH, pretrained=FILE); "
        "DIR: open_clip's folder layout (weights + open_clip_config.json) for create_model('local-dir:DIR')",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing export")
    parser.set_defaults(handler=command_export)


def command_export(args: argparse.Namespace) -> int:
    from ..errors import FomoError
    from ..export import export_run

    if args.task is not None and args.task < 0:
        raise FomoError(f"--task {args.task}: tasks count from 1 (0 is the base model)")
    if args.release is not None:
        from ..releases import print_release_export

        if args.task is not None:
            raise FomoError("give either --task or --release, not both")
        return print_release_export(Path(args.run_dir), args.release, Path(args.out), args.force)
    result = export_run(Path(args.run_dir), Path(args.out), args.task, args.force)
    meta = result.metadata
    what = "the base model" if result.tasks_done == 0 else f"the weights deployed after task {result.tasks_done}/{meta['num_tasks']}"
    merger = "" if meta.get("merger") == "none" else f" + {meta['merger']}"
    print(f"exported {what} of {args.run_dir} ({meta['architecture']}, {meta['method']}{merger}) to {result.weights}")
    if result.config is not None:
        print(f"open_clip config: {result.config}")
    if result.load_hint is not None:
        print(f"load it with: import open_clip; {result.load_hint}")
    if result.note is not None:
        print(f"note: {result.note}")
    return 0
