"""Importing the pretrained backends must stay cheap: no torch, transformers or ONNX Runtime
until a backend is constructed."""

import subprocess
import sys


def test_importing_the_backends_imports_no_heavy_library(repo_root):
    modules = ["captioner", "grounding", "verification", "segmentation", "faces", "timeline"]
    code = (
        "import sys\n"
        + "".join(f"import curation.pretrained.{m}\n" for m in modules)
        + "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'onnx', 'cv2') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""
