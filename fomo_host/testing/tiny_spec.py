"""The tiny spec that end-to-end tests and benchmarks run: the tiny CLIP, a 30-step warm start, a few synthetic sets.

Runs of it take seconds on one CPU core, so a test can run the real CLI many times. Plugin suites may use it too::

    from fomo_host.testing.tiny_spec import tiny_spec

    (tmp_path / "spec.toml").write_text(tiny_spec(num_tasks=2, steps=3))
"""

from __future__ import annotations

from collections.abc import Sequence


def tiny_spec(
    num_tasks: int = 3,
    steps: int = 4,
    *,
    name: str = "e2e",
    adaptation: Sequence[str] = ("letters", "arrows", "relations"),
    zero_shot: Sequence[str] = ("shapes-outline",),
    validation_per_class: int | None = None,
    subset_fraction: float = 0.5,
    optimizer: str = "",
) -> str:
    """The spec as TOML text. ``optimizer``: extra lines of the ``[optimizer]`` table (``reset_per_task = false``)."""
    listed = ", ".join(f'"{item}"' for item in adaptation)
    zero = ", ".join(f'"{item}"' for item in zero_shot)
    validation = f"validation_per_class = {validation_per_class}\n" if validation_per_class is not None else ""
    extra = f"{optimizer.strip()}\n" if optimizer.strip() else ""
    return f"""[run]
name = "{name}"
seed = 0
batch_size = 32

[model]
name = "tiny-clip"

[model.warm_start]
steps = 30
lr = 2e-3
batch_size = 64
warmup_steps = 5

[[data.sources]]
name = "synthetic"
[data.sources.params]
pool_train_per_class = 12
train_per_class = 8
test_per_class = 4
{validation}retrieval_train = 48
retrieval_test = 16
adaptation = [{listed}]
zero_shot = [{zero}]

[data]
num_tasks = {num_tasks}

[budget]
steps_per_task = {steps}

[optimizer]
lr = 5e-4
{extra}
[evaluation]
subset_fraction = {subset_fraction}
"""
