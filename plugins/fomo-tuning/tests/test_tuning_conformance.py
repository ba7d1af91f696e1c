"""Every tuning method passes the method conformance suite."""

from __future__ import annotations

import pytest

from fomo_host.testing import MethodConformance


def is_layer_norm(name: str) -> bool:
    return any(part.startswith("ln_") for part in name.split("."))


def is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in {"bias", "in_proj_bias"}


@pytest.mark.representative  # its two-process run is the method kind's in the default test run
class TestFineTune(MethodConformance):
    method_name = "finetune"


class TestLockedImage(MethodConformance):
    method_name = "locked-image"
    params = {"train_logit_scale": False}
    invalid_params = {"train_logit_scale": "sometimes"}

    def claims_to_train(self, name: str) -> bool:
        return not name.startswith("visual.") and name != "logit_scale"


class TestLockedText(MethodConformance):
    method_name = "locked-text"
    invalid_params = {"train_logit_scale": "sometimes"}

    def claims_to_train(self, name: str) -> bool:
        return name.startswith("visual.") or name == "logit_scale"


class TestBitFit(MethodConformance):
    method_name = "bitfit"
    invalid_params = {"train_logit_scale": "sometimes"}

    def claims_to_train(self, name: str) -> bool:
        return is_bias(name)


class TestLNFit(MethodConformance):
    method_name = "lnfit"
    params = {"train_logit_scale": True}
    invalid_params = {"train_logit_scale": "sometimes"}

    def claims_to_train(self, name: str) -> bool:
        return is_layer_norm(name) or name == "logit_scale"
