"""Registers the merge schedules; each takes a merge operator and its params. torch loads when a merger is built."""

from fomo_host.api import MergerRegister, NoParams, hookimpl

from .params import AllMergeParams, FinetunedMergeParams, GeneralMergeParams, RunningMergeParams


@hookimpl
def register_mergers(register: MergerRegister) -> None:
    register(
        name="none",
        factory="fomo_merging.schedules:NoMerge",
        params=NoParams,
        description="No merging: train the next task from, and deploy, the latest fine-tuned model.",
    )
    register(
        name="ema",
        factory="fomo_merging.schedules:EMAMerge",
        params=RunningMergeParams,
        description="EMA-merge (Roth et al., 2024): train from and deploy m_t = merge(m_{t-1}, ft_t), m_{-1} = theta_0.",
    )
    register(
        name="zero-shot",
        factory="fomo_merging.schedules:ZeroShotMerge",
        params=RunningMergeParams,
        description="ZS-merge (Roth et al., 2024): train every task from theta_0; deploy the running merge of all task models.",
    )
    register(
        name="finetuned",
        factory="fomo_merging.schedules:FinetunedMerge",
        params=FinetunedMergeParams,
        description="FT-merge (Roth et al., 2024): train from and deploy merge(theta_0, ft_t) of the latest fine-tuned model.",
    )
    register(
        name="offline",
        factory="fomo_merging.schedules:OfflineMerge",
        params=AllMergeParams,
        description="Offline merge (Roth et al., 2024): train every task from theta_0; deploy one merge of all task checkpoints so far.",
    )
    register(
        name="general",
        factory="fomo_merging.schedules:GeneralMerge",
        params=GeneralMergeParams,
        description=(
            "The general schedule (Dziadzio et al., 2024): initialisation in {base, latest, running, all} x deployment in "
            "{latest, running, all}."
        ),
    )
