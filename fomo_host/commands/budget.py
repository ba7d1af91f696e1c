"""``fomo-host budget``: each method's GFLOPs per step, memory multiplier, MAF and steps per task under a spec's budget."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import SpecError
from ..spec import ComponentRef
from ..spec_loading import load_spec
from .common import add_spec_arguments, load_host


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "budget",
        help="measure methods' GFLOPs per step and memory multiplier on the spec's model and batch; steps per task under its budget",
    )
    add_spec_arguments(parser)
    parser.add_argument(
        "--methods",
        metavar="A,B,...",
        help="methods to compare (default: the spec's); the spec's method keeps its params, the others use their defaults",
    )
    parser.add_argument("--json", action="store_true", help="print the budgets as JSON")
    parser.set_defaults(handler=command_budget)


def methods_to_measure(spec_method: ComponentRef, listed: str | None) -> list[ComponentRef]:
    if not listed:
        return [spec_method]
    names = [name.strip() for name in listed.split(",") if name.strip()]
    if not names:
        raise SpecError("--methods: give method names separated by commas")
    return [spec_method if name == spec_method.name else ComponentRef(name=name) for name in dict.fromkeys(names)]


def command_budget(args: argparse.Namespace) -> int:
    from ..engine.budget import reference_method, reference_optimizer, resolve_budgets, training_device
    from ..engine.runtime import resolve_precision
    from ..engine.setup import default_cache_dir

    host = load_host(quiet=args.json)
    spec = load_spec(Path(args.spec), list(args.set or []))
    methods = methods_to_measure(spec.method, args.methods)
    budgets = list(zip(methods, resolve_budgets(host, spec, default_cache_dir(), methods), strict=True))
    if args.json:
        rows = [{"method": method.name, "params": method.params, **budget.as_record()} for method, budget in budgets]
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    given = budgets[0][1].given
    value = getattr(spec.budget, given)
    architecture = spec.model.params.get("architecture")
    model = spec.model.name + (f" {architecture}" if architecture else "")
    precision = resolve_precision(spec.run.precision, training_device(spec))
    title = f"compute per task: {model}, batch {spec.run.batch_size}, precision {precision}, optimizer {spec.optimizer.name}"
    table = Table(title=f"{title}, budget.{given} = {value:,}")
    columns = ("method", "GFLOPs/step", "end-of-task GFLOPs", "memory multiplier", "MAF/step", "steps/task", "samples/task", "MAF/task")
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, budget in budgets:
        table.add_row(
            method.name,
            f"{budget.step_gflops:,.2f}",
            f"{budget.end_task_gflops:,.2f}",
            f"{budget.memory_multiplier:.3f}",
            f"{budget.maf_per_step:,.2f}",
            f"{budget.steps_per_task:,}",
            f"{budget.samples_per_task:,}",
            f"{budget.maf_per_task:,.6g}",
        )
    console = Console()
    console.print(table)
    measure = budgets[0][1].memory_measure
    console.print(
        f"memory multiplier: peak training memory / that of {reference_method(host.registry).name} with "
        f"{reference_optimizer(host.registry).name} "
        f"({measure} measure, see budget.memory_measure); "
        "MAF/step = (GFLOPs/step + end-of-task GFLOPs / steps) x memory multiplier"
    )
    return 0
