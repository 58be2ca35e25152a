import os
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
_SIBLING_MODEL = _REPO_ROOT.parent / "shared" / "models" / "all-MiniLM-L6-v2-onnx"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The ONNX model is never vendored: take it from LTRR_MODEL_DIR or the checkout's sibling."""
    configured = os.environ.get("LTRR_MODEL_DIR")
    path = Path(configured) if configured else _SIBLING_MODEL
    if not (path / "model.onnx").is_file() or not (path / "tokenizer.json").is_file():
        pytest.skip(f"no embedding model at {path} (set LTRR_MODEL_DIR to a MiniLM ONNX folder)")
    return path
