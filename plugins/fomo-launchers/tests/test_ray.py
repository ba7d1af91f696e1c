"""The ray launcher: the conformance suite against a local Ray cluster this module starts once."""

from __future__ import annotations

from typing import Any

import pytest
import ray
from fomo_launchers.ray_launcher import RayParams
from pydantic import ValidationError

from fomo_host.api import LauncherConformance
from fomo_host.testing import toy_environment


@pytest.fixture(scope="module")
def ray_cluster() -> str:
    """One local Ray for the whole module (its start-up takes seconds): the sweep connects to it by address."""
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.mark.slow
class TestRayLauncher(LauncherConformance):
    launcher_name = "ray"
    params = {"cpus_per_run": 1}
    invalid_params = {"gpus_per_run": 2.5}

    @pytest.fixture(autouse=True)
    def _cluster(self, ray_cluster: str) -> None:
        self.address = ray_cluster

    def launcher_params(self) -> dict[str, Any]:
        # the cluster's workers start the suite's runs, which use the host's toy components (FOMO_PLUGIN_MODULES)
        return {**self.params, "address": self.address, "runtime_env": {"env_vars": toy_environment()}}


def test_a_cluster_address_excludes_local_sizes():
    with pytest.raises(ValidationError, match="num_cpus and num_gpus size a local Ray instance"):
        RayParams(address="auto", num_cpus=4)
