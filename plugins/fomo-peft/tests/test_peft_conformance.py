"""Every adapter method passes the method conformance suite; only the adapted layers' weights change."""

from __future__ import annotations

import re

from fomo_host.testing import MethodConformance

WEIGHTS = {"attn": r"attn\.in_proj_weight|attn\.out_proj\.weight", "c_fc": r"mlp\.c_fc\.weight", "c_proj": r"mlp\.c_proj\.weight"}
TOWERS = {"image": r"visual\.transformer", "text": r"transformer", "both": r"(?:visual\.)?transformer"}


def adapted(towers: str, blocks: str, targets: list[str]) -> re.Pattern[str]:
    """The full weights an adapter may change: the targets' weights in the chosen blocks of the chosen towers."""
    return re.compile(rf"^{TOWERS[towers]}\.resblocks\.(?:{blocks})\.(?:{'|'.join(WEIGHTS[t] for t in targets)})$")


class TestLoRA(MethodConformance):
    method_name = "lora"
    params = {"rank": 4, "targets": ["attn", "c_fc"], "blocks": [0, 2]}
    invalid_params = {"rank": 0}

    def claims_to_train(self, name: str) -> bool:
        return bool(adapted("both", "0|2", ["attn", "c_fc"]).match(name))


class TestLoRAMergedAfterEachTask(MethodConformance):
    method_name = "lora"
    params = {"rank": 4, "targets": ["c_proj"], "towers": "text", "dropout": 0.1, "merge_at_task_end": True}
    invalid_params = {"targets": ["attn"]}  # dropout cannot act on an attention adapter

    def claims_to_train(self, name: str) -> bool:
        return bool(adapted("text", r"\d+", ["c_proj"]).match(name))


class TestDoRA(MethodConformance):
    method_name = "dora"
    params = {"rank": 4, "targets": ["attn", "c_proj"], "towers": "image"}
    invalid_params = {"towers": "audio"}

    def claims_to_train(self, name: str) -> bool:
        return bool(adapted("image", r"\d+", ["attn", "c_proj"]).match(name))


class TestVeRA(MethodConformance):
    method_name = "vera"
    params = {"rank": 16, "targets": ["c_fc", "c_proj"], "merge_at_task_end": True}
    invalid_params = {"targets": ["attn"]}

    def claims_to_train(self, name: str) -> bool:
        return bool(adapted("both", r"\d+", ["c_fc", "c_proj"]).match(name))
