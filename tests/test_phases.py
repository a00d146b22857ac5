"""Phase freezing: frozen groups keep their weights and BatchNorm statistics; trained groups move."""

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from pose_lab.phases import PARAMETER_GROUPS, TrainOnly


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


@pytest.mark.parametrize("groups", [["backbone", "heatmap_branch"], ["regression_branch"]])
def test_only_named_groups_change(train_cfg, groups: list[str]) -> None:
    cfg = train_cfg()
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    module = instantiate(cfg.model)
    before = _snapshot(module.net)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[TrainOnly(groups)])
    trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
    after = module.net.state_dict()
    for group in PARAMETER_GROUPS:
        keys = [k for k in before if k.startswith(group + ".") and before[k].is_floating_point()]
        stats = [k for k in keys if k.endswith(("running_mean", "running_var"))]
        assert stats, f"{group} has no BatchNorm statistics to check"
        changed = [k for k in keys if not torch.equal(before[k], after[k])]
        if group in groups:
            assert any(k.endswith("weight") for k in changed), f"{group} was meant to train"
            assert any(k in stats for k in changed), f"{group}'s BatchNorm statistics should update"
        else:
            assert changed == [], f"frozen {group} changed: {changed[:3]}"


def test_frozen_parameters_are_left_out_of_the_optimizer(train_cfg) -> None:
    module = instantiate(train_cfg().model)
    TrainOnly(["regression_branch"]).setup(None, module, "fit")
    optimizer = module.configure_optimizers()
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in module.net.regression_branch.parameters()}


@pytest.mark.parametrize(
    ("groups", "trained"),
    [
        (["backbone", "heatmap_branch"], {"heatmaps": True, "regression": False}),
        (["regression_branch"], {"heatmaps": False, "regression": True}),
        (list(PARAMETER_GROUPS), {"heatmaps": True, "regression": True}),
    ],
)
def test_training_steps_skip_frozen_branches_without_changing_gradients(
    train_cfg, groups: list[str], trained: dict[str, bool]
) -> None:
    cfg = train_cfg()
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    batch = next(iter(datamodule.train_dataloader()))
    module = instantiate(cfg.model)
    TrainOnly(groups).setup(None, module, "fit")
    for group in TrainOnly(groups).frozen_groups(module.net):
        group.eval()
    assert module.trained_outputs() == trained

    def gradients(**branches: bool) -> dict[str, torch.Tensor]:
        module.zero_grad(set_to_none=True)
        module.loss(module(batch["image"], **branches), batch)["total"].backward()
        return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}

    skipped, full = gradients(**trained), gradients()
    assert skipped.keys() == full.keys() and skipped
    for name in full:
        torch.testing.assert_close(skipped[name], full[name], rtol=1e-5, atol=1e-7, msg=name)
    terms = module.loss(module(batch["image"], **trained), batch)
    assert ("heatmap" in terms) == trained["heatmaps"]
    assert ("coordinate" in terms) == ("visibility" in terms) == trained["regression"]


def test_unknown_or_empty_groups_raise() -> None:
    with pytest.raises(ValueError, match="subset"):
        TrainOnly(["decoder"])
    with pytest.raises(ValueError, match="subset"):
        TrainOnly([])
