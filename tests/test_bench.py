"""scripts/bench.py's arguments and its copy of the tip's loop, on tiny inputs."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # where Hydra finds its StepClock callback by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench", None)


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


SUBNORMAL = BENCH.with_name("bench_subnormal.py")


def test_subnormal_bench_prints_both_lengths_with_and_without_the_flush(capsys, monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)  # restored after the test
    spec = importlib.util.spec_from_file_location("bench_subnormal", SUBNORMAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--short", "8", "--long", "24", "--turns", "1", "--repeats", "1"])
    out = capsys.readouterr().out
    # measured as train.py runs: huge pages on (on 4 KiB pages long reviews fault their buffers in)
    assert out.splitlines()[0].endswith("THP_MEM_ALLOC_ENABLE=1")
    fields = dict(item.split("=") for item in out.strip().splitlines()[-1].split())
    assert set(fields) == {"long_vs_short_flush", "long_vs_short_no_flush", "flush_speedup_long"}
    rows = {tuple(line.split()[:2]): float(line.split()[2]) for line in out.splitlines()[3:7]}
    assert set(rows) == {("off", "8"), ("off", "24"), ("on", "8"), ("on", "24")}
    assert float(fields["long_vs_short_flush"]) == pytest.approx(
        rows["on", "24"] / rows["on", "8"], rel=0.01
    )
    from rnnlab.runtime import subnormal_flush

    assert subnormal_flush() is False  # the bench leaves the process computing as before


@pytest.mark.slow
def test_bench_names_its_cpu_and_runs_the_flushed_peer(bench, synthetic_archive, capsys):
    bench.main(["--reviews", "600", "--steps", "8", "--no-prep", f"data.path={synthetic_archive}"])
    out = capsys.readouterr().out
    _, units = bench.cpu_description()
    assert f"CPU: {bench.cpu_description()[0]}; " in out
    rows = [bench.TIP, bench.TIP_FLUSH, bench.OURS]
    if bench.has_bf16_units(units):
        rows.append(bench.OURS_BF16)
    else:
        assert "no bf16-mixed row: this CPU has no bf16 units" in out
    tokens = {}
    for line in out.splitlines():
        for row in rows:
            if line.startswith(row) and "done" not in line:
                tokens[row] = float(line[len(row) :].split()[1])
    assert set(tokens) == set(rows)
    fields = dict(item.split("=") for item in out.strip().splitlines()[-1].split())
    assert float(fields["speedup"]) == pytest.approx(
        tokens[bench.OURS] / tokens[bench.TIP], rel=0.01
    )
    assert float(fields["speedup_vs_flushed_tip"]) == pytest.approx(
        tokens[bench.OURS] / tokens[bench.TIP_FLUSH], rel=0.01
    )
    if bench.OURS_BF16 in tokens:
        assert float(fields["bf16_ratio"]) == pytest.approx(
            tokens[bench.OURS_BF16] / tokens[bench.OURS], rel=0.01
        )


@pytest.mark.slow
def test_lm_task_prints_every_figure_positive():
    tiny = "--vocab 3000 --embed-dim 32 --hidden 64 --batch 8 --bptt 20 --steps 2 --repeats 1"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--task", "lm", *tiny.split()],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("CPU: ")
    fields = dict(item.split("=") for item in lines[-1].split())
    assert fields.pop("task") == "lm"
    assert set(fields) == {
        "speedup",
        "tokens_per_s",
        "plain_tokens_per_s",
        "peak_fraction",
        "plain_peak_fraction",
    }
    for key, value in fields.items():
        assert math.isfinite(float(value)) and float(value) > 0, key
