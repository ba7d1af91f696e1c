"""Registers the merge schedules and the merge operators they combine weights with; torch loads when one is built."""

from fomo_host.api import MergeOperatorRegister, MergerRegister, NoParams, hookimpl

from .params import (
    AllMergeParams,
    BreadcrumbsParams,
    DareParams,
    FinetunedMergeParams,
    GeneralMergeParams,
    InterpolationParams,
    MagMaxParams,
    ModelStockParams,
    RunningMergeParams,
    SlerpParams,
    TaskArithmeticParams,
    TiesParams,
)


@hookimpl
def register_mergers(register: MergerRegister) -> None:
    register(
        name="none",
        factory="fomo_merging.schedules:NoMerge",
        params=NoParams,
        description="No merging: train the next task from, and deploy, the latest fine-tuned model.",
        default=True,
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


@hookimpl
def register_merge_operators(register: MergeOperatorRegister) -> None:
    register(
        name="interpolation",
        factory="fomo_merging.operators:Interpolation",
        params=InterpolationParams,
        description="Interpolation (model soup; WiSE-FT with two models): sum_i w_i theta_i with the schedule's weights.",
    )
    register(
        name="slerp",
        factory="fomo_merging.operators:Slerp",
        params=SlerpParams,
        description="SLERP: spherical interpolation of two task vectors per tensor (linear when nearly collinear).",
    )
    register(
        name="task-arithmetic",
        factory="fomo_merging.operators:TaskArithmetic",
        params=TaskArithmeticParams,
        description="Task arithmetic (Ilharco et al., 2023): theta_0 + lambda sum_i tau_i.",
    )
    register(
        name="ties",
        factory="fomo_merging.operators:Ties",
        params=TiesParams,
        description=(
            "TIES (Yadav et al., 2023): trim each task vector to its largest entries, elect a sign per entry, average the agreeing ones."
        ),
    )
    register(
        name="dare",
        factory="fomo_merging.operators:Dare",
        params=DareParams,
        description=(
            "DARE (Yu et al., 2024): drop task-vector entries with probability p, rescale by 1/(1-p), combine linearly or TIES-style."
        ),
    )
    register(
        name="breadcrumbs",
        factory="fomo_merging.operators:Breadcrumbs",
        params=BreadcrumbsParams,
        description="Model Breadcrumbs (Davari & Belilovsky, 2024): drop the largest and the smallest |tau| per tensor, then combine.",
    )
    register(
        name="magmax",
        factory="fomo_merging.operators:MagMax",
        params=MagMaxParams,
        description="MagMax (Marczak et al., 2024): per entry the task-vector value of largest magnitude; theta_0 + lambda tau.",
    )
    register(
        name="model-stock",
        factory="fomo_merging.operators:ModelStock",
        params=ModelStockParams,
        description=(
            "Model Stock (Jang et al., 2024): the mean of the fine-tuned models pulled toward theta_0 by their task vectors' angles."
        ),
    )
