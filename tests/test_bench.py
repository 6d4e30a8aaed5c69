"""scripts/bench.py's arguments and its copy of the tip's loop, on tiny inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_override_is_refused_naming_what_is_read(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["model=gru"])
    assert "data.path=PATH and trainer... are read" in capsys.readouterr().err


def test_unknown_trainer_choice_is_refused_naming_the_config_group(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["trainer=tpu"])
    err = capsys.readouterr().err
    assert "trainer=tpu" in err and "conf/trainer/" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_trainer_gpu_without_cuda_says_so(bench, synthetic_archive):
    with pytest.raises(SystemExit, match="torch sees no CUDA GPU"):
        bench.main(["trainer=gpu", f"data.path={synthetic_archive}"])


@pytest.mark.parametrize("family", ["rnn", "bilstm"])
def test_tip_loop_times_only_the_steps_after_warm_up(bench, family):
    generator = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(20)]
    tokens = [
        [words[int(j)] for j in torch.randint(0, 20, (int(n),), generator=generator)]
        for n in torch.randint(3, 12, (200,), generator=generator)
    ]
    labels = [i % 2 for i in range(200)]
    result = bench.tip_train(family, tokens, labels, steps=bench.WARMUP + 3)
    assert result["steps"] == 3 and result["reviews"] == 3 * bench.BATCH
    assert 3 * 3 * bench.BATCH <= result["tokens"] <= 3 * 11 * bench.BATCH
    assert result["seconds"] > 0


HUGEPAGES = BENCH.with_name("bench_hugepages.py")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux only")
def test_hugepage_bench_runs_both_sides_and_prints_its_summary(synthetic_archive, capsys):
    spec = importlib.util.spec_from_file_location("bench_hugepages", HUGEPAGES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(
        ["--turns", "1", "--steps", "8", "--reviews", "600", "--data", str(synthetic_archive)]
    )
    out = capsys.readouterr().out
    assert "turn 1 4 KiB pages" in out and "turn 1 huge pages" in out
    fields = dict(item.split("=") for item in out.strip().splitlines()[-1].split())
    assert set(fields) == {
        "hugepage_speedup",
        "small_pages_tokens_per_s",
        "huge_pages_tokens_per_s",
    }
    small, huge = (
        float(fields["small_pages_tokens_per_s"]),
        float(fields["huge_pages_tokens_per_s"]),
    )
    assert small > 0 and huge > 0
    assert float(fields["hugepage_speedup"]) == pytest.approx(huge / small, rel=2e-3)
