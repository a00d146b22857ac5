"""Score a checkpoint: `python -m pose_lab.evaluate ckpt=PATH data.split=standard`.

Prints PCKh@0.5 and PCK@0.2 (per joint and pooled) for the regression output and for the heatmap output
(argmax with sub-pixel refinement), and the joint heatmaps' mean peak and median value (a peaked map has a high
peak over a low median; a loss that lifts the background shows as a median near the peak). Writes
`metrics.json` plus the predictions as (N,14,3) arrays (x, y in original pixels, visibility probability) in
image order with the image numbers, so anyone can score them independently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from pose_lab import skeleton
from pose_lab.checkpoint import checkpoint_fingerprint, checkpoint_path, load_module
from pose_lab.errors import exit_on_user_error
from pose_lab.evaluation_record import INFERENCE_SETTINGS, OUTPUTS
from pose_lab.jsonfile import write_json
from pose_lab.metrics import PCK_PROTOCOLS, inversion_hits, pck_hits
from pose_lab.models.flip_test import FlipAveraged


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# Each level reduces a (B, K, h*w) tensor of flattened maps to (B, K).
HEATMAP_LEVELS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "peak": lambda flat: flat.amax(dim=-1),
    "median": lambda flat: flat.median(dim=-1).values,
}


def heatmap_levels(heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each (B, K, h, w) map's largest and median value, as (B, K) tensors."""
    flat = heatmaps.float().flatten(2)
    return {name: reduce(flat) for name, reduce in HEATMAP_LEVELS.items()}


@torch.inference_mode()
def predict_subset(cfg: DictConfig) -> dict[str, Any]:
    """Run the checkpoint over one subset; returns predictions per output, ground truth and image numbers."""
    module, ckpt_cfg = load_module(checkpoint_path(cfg.ckpt))
    if cfg.flip_test:
        module.net = FlipAveraged(module.net)
    if cfg.heatmap_refine:
        module.heatmap_codec = module.heatmap_codec.with_refine(cfg.heatmap_refine)
    cfg = OmegaConf.merge(cfg, {"codec": ckpt_cfg.codec, "data": {"input_size": ckpt_cfg.data.input_size}})
    datamodule = instantiate(cfg.data, augment=None)
    datamodule.setup()
    device = _device(cfg.device)
    module.to(device)
    collected: dict[str, list[torch.Tensor]] = {
        name: [] for name in (*OUTPUTS, "visibility", "truth", "number", *HEATMAP_LEVELS)
    }
    for batch in tqdm(datamodule.dataloader(cfg.subset), desc=f"evaluate {cfg.subset}", unit="batch"):
        output = module(batch["image"].to(device))
        decoded = module.decode(output, batch["to_original"].to(device))
        for name in OUTPUTS:
            collected[name].append(decoded[name].cpu())
        collected["visibility"].append(output.visibility.float().cpu())
        for name, values in heatmap_levels(output.joint_heatmaps).items():
            collected[name].append(values.cpu())
        collected["truth"].append(batch["keypoints"])
        collected["number"].append(batch["number"])
    return {name: torch.cat(parts) for name, parts in collected.items()}


def score(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Per-joint and pooled accuracy for every PCK protocol, in percent."""
    table = {}
    for protocol, (normaliser, alpha) in PCK_PROTOCOLS.items():
        hits = pck_hits(predicted, truth, normaliser, alpha).double()
        inverted = inversion_hits(predicted, truth, normaliser, alpha).double()
        table[protocol] = {
            "mean": 100 * hits.mean().item(),
            "per_joint": dict(zip(skeleton.JOINT_NAMES, (100 * hits.mean(dim=0)).tolist())),
            # Of all joints, the misses that sit on the mirror partner's truth: what left/right confusion costs.
            "left_right_inversions": 100 * inverted.mean().item(),
        }
    return table


def format_table(scores: dict[str, dict[str, dict[str, Any]]]) -> str:
    columns = [(output, protocol) for output in scores for protocol in PCK_PROTOCOLS]
    header = f"{'joint':<16}" + "".join(f"{output[:4] + ' ' + protocol:>18}" for output, protocol in columns)
    rows = [header, "-" * len(header)]
    for joint in skeleton.JOINT_NAMES:
        rows.append(f"{joint:<16}" + "".join(f"{scores[o][p]['per_joint'][joint]:>18.1f}" for o, p in columns))
    rows.append("-" * len(header))
    rows.append(f"{'mean':<16}" + "".join(f"{scores[o][p]['mean']:>18.1f}" for o, p in columns))
    rows.append(f"{'l/r inversions':<16}"
                + "".join(f"{scores[o][p]['left_right_inversions']:>18.1f}" for o, p in columns))
    return "\n".join(rows)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score cfg.ckpt (null: the shipped checkpoint) on cfg.subset; writes metrics.json and the predictions."""
    begin = time.perf_counter()
    result = predict_subset(cfg)
    scores = {output: score(result[output], result["truth"]) for output in OUTPUTS}
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for output in OUTPUTS:
        array = torch.cat([result[output], result["visibility"]], dim=-1).numpy().astype(np.float32)
        np.save(out_dir / f"predictions_{output}.npy", array)
    np.save(out_dir / "image_numbers.npy", result["number"].numpy())
    checkpoint = checkpoint_path(cfg.ckpt)
    summary = {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_fingerprint(checkpoint),
        "split": OmegaConf.to_container(cfg.data, resolve=True)["split"],
        "subset": cfg.subset,
        **{key: cfg[key] for key in INFERENCE_SETTINGS},
        "num_images": len(result["number"]),
        "scores": scores,
        "joint_heatmaps": {name: result[name].mean().item() for name in HEATMAP_LEVELS},
        # Loading the checkpoint and the images included: what a user waits for.
        "seconds": time.perf_counter() - begin,
    }
    write_json(out_dir / "metrics.json", summary)
    print(format_table(scores))
    levels = summary["joint_heatmaps"]
    print(f"\njoint heatmaps: mean peak {levels['peak']:.3f}, mean median {levels['median']:.3f}")
    print(f"scored {summary['num_images']} images in {summary['seconds']:.0f} s")
    print(f"\nwrote {out_dir / 'metrics.json'} and predictions_{{{','.join(OUTPUTS)}}}.npy (N,14,3: x, y, visibility)")
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
