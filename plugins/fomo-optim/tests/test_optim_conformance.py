"""GaLore passes the method conformance suite (every weight trains)."""

from __future__ import annotations

from fomo_host.testing import MethodConformance


class TestGaLore(MethodConformance):
    method_name = "galore"
    # the tiny model's block matrices are 64 to 288 wide; rank 8 projects all of them
    params = {"rank": 8, "update_proj_gap": 2, "scale": 0.5}
    invalid_params = {"proj_type": "diagonal"}


class TestGaLoreWithOptimizerStateKept(MethodConformance):
    method_name = "galore"
    params = {"rank": 16, "update_proj_gap": 4, "proj_type": "right"}
    optimizer = {"lr": 1e-3, "reset_per_task": False}
    invalid_params = {"rank": 0}
