"""How every test composes a config: as an entry point would, its paths under one folder.

A plain module (tests/ is on sys.path, as for packed_weights), so the reliability suite and the
test modules that test_reliability_doc loads by path import it alike. scripts/bench.py composes
its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

from rnnlab.sweeps import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# as the entry points do: the configs' run and sweep directories are named with these
register_resolvers()


def compose(
    config_name: str = "train",
    overrides: Sequence[str] = (),
    output_dir: Path | None = None,
    hydra: bool = False,
    cache_dir: Path | None = None,
) -> DictConfig:
    """conf/<config_name>.yaml with `overrides`, as `python <entry point> <overrides>` sees it.

    output_dir: every path under it, given as overrides after `overrides` (so interpolations
    follow them): paths.root_dir is output_dir, data downloads go to output_dir/data, the token
    cache to output_dir/cache (or cache_dir, to share one between runs), logs to
    output_dir/logs and the run to output_dir/run. None leaves the paths to Hydra, which
    resolves them only inside a run. hydra: keep the `hydra` node (choices, sweeper, run dir).
    """
    paths = []
    if output_dir is not None:
        out = Path(output_dir)
        paths = [
            f"paths.root_dir={out}",
            f"paths.data_dir={out / 'data'}",
            f"paths.cache_dir={cache_dir if cache_dir is not None else out / 'cache'}",
            f"paths.log_dir={out / 'logs'}",
            f"paths.output_dir={out / 'run'}",
        ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name, overrides=[*overrides, *paths], return_hydra_config=hydra)
