"""notebooks/inspect_heatmaps.ipynb: committed without outputs, and runs headless end to end on real LSP.

The kernel is this interpreter (`sys.executable`), never whatever `python3` kernelspec Jupyter would find
first: a private kernelspec written into tmp_path by ipykernel itself, looked up by a KernelSpecManager that
searches only there. So a clean `pip install -e '.[test]'` is enough, with or without an activated venv, and a
user-level kernelspec pointing at another Python cannot hijack the run.

The execution test needs the real LSP folder and a checkpoint: the shipped one
(`pose_lab.checkpoint.DEFAULT_CHECKPOINT`), or any pose_lab checkpoint named by `POSE_LAB_NOTEBOOK_CHECKPOINT` (for
development before one is shipped).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

from pose_lab.checkpoint import DEFAULT_CHECKPOINT

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks/inspect_heatmaps.ipynb"
CHECKPOINT_ENV_VAR = "POSE_LAB_NOTEBOOK_CHECKPOINT"
MAX_IMAGES = 40
CELL_TIMEOUT_S = 300


def test_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, f"{NOTEBOOK} has no code cells"
    dirty = [i for i, cell in enumerate(code_cells) if cell.outputs or cell.execution_count is not None]
    assert not dirty, (
        f"code cells {dirty} of {NOTEBOOK.name} have outputs or execution counts; clear them before committing "
        "(jupyter nbconvert --clear-output --inplace notebooks/inspect_heatmaps.ipynb)"
    )
    assert "CHECKPOINT =" in code_cells[0].source, "the first code cell holds the parameters"


def _checkpoint() -> Path:
    override = os.environ.get(CHECKPOINT_ENV_VAR)
    if override:
        path = Path(override)
        if not path.is_file():
            pytest.fail(f"{CHECKPOINT_ENV_VAR}={override} is not a file")
        return path.resolve()
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip(f"shipped checkpoint {DEFAULT_CHECKPOINT} not found (or set {CHECKPOINT_ENV_VAR}=PATH)")
    return DEFAULT_CHECKPOINT


def _kernel_manager(kernels_dir: Path):
    """A kernel manager whose only 'python3' kernelspec runs this interpreter's ipykernel."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    write_kernel_spec(kernels_dir / "python3")  # argv: [sys.executable, "-m", "ipykernel_launcher", ...]
    specs = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)
    assert manager.kernel_spec.argv[0] == sys.executable
    return manager


@pytest.mark.data
def test_notebook_runs_headless(lsp_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    checkpoint = _checkpoint()
    # The kernel inherits this environment: the notebook reads its parameters from it.
    monkeypatch.setenv("POSE_LAB_CHECKPOINT", str(checkpoint))
    monkeypatch.setenv("POSE_LAB_CHECKPOINT_B", str(checkpoint))
    monkeypatch.setenv("POSE_LAB_LSP_ROOT", str(lsp_root))
    monkeypatch.setenv("POSE_LAB_MAX_IMAGES", str(MAX_IMAGES))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        km=_kernel_manager(tmp_path / "kernels"),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},  # cwd of the kernel: nothing lands in the repo
    )
    client.execute()  # raises CellExecutionError with the cell's traceback on failure

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    # heatmap grid, summed overlays, decoded keypoints, worst images, swap bars, (swap examples), two checkpoints
    assert len(images) >= 6, f"expected the notebook's figures, got {len(images)} images"
    text = "".join(output.get("text", "") for output in outputs)
    assert f"over {MAX_IMAGES} test images" in text
