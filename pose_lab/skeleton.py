"""The LSP skeleton: joint names, left/right partners, limbs and PCK normaliser pairs.

This is the only module that knows joint indices; everything else asks it by name.
Order follows LSP's joints.mat (Johnson & Everingham, BMVC 2010).
"""

from __future__ import annotations

JOINT_NAMES: tuple[str, ...] = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "neck",
    "head_top",
)
NUM_JOINTS: int = len(JOINT_NAMES)


def joint_index(name: str) -> int:
    """Index of a joint by name; raises with the valid names on a typo."""
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown joint {name!r}; LSP joints are: {', '.join(JOINT_NAMES)}") from None


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_") :]
    if name.startswith("right_"):
        return "left_" + name[len("right_") :]
    return name


# FLIP_PARTNERS[j] is the joint that j becomes when the image is mirrored (itself for neck and head).
FLIP_PARTNERS: tuple[int, ...] = tuple(joint_index(_mirror_name(n)) for n in JOINT_NAMES)

LIMBS: tuple[tuple[int, int], ...] = tuple(
    (joint_index(a), joint_index(b))
    for a, b in (
        ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"),
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("right_hip", "left_hip"),
        ("right_wrist", "right_elbow"),
        ("right_elbow", "right_shoulder"),
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_shoulder", "left_shoulder"),
        ("right_shoulder", "right_hip"),
        ("left_shoulder", "left_hip"),
        ("neck", "head_top"),
    )
)


def joint_side(index: int) -> str:
    """'left', 'right' or 'center' for drawing and reporting."""
    name = JOINT_NAMES[index]
    return name.split("_")[0] if name.startswith(("left_", "right_")) else "center"


# PCK normalisers: the reference length is the distance between these two ground-truth joints.
# Head size (neck to head top) gives PCKh; torso (left shoulder to right hip) the LSP literature's PCK.
NORMALISER_JOINTS: dict[str, tuple[int, int]] = {
    "head": (joint_index("neck"), joint_index("head_top")),
    "torso": (joint_index("left_shoulder"), joint_index("right_hip")),
}
