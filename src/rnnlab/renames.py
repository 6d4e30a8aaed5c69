"""Config options that were renamed: their old names keep working, with a one-line notice.

An old name is a config file beside the new one that only selects it (its defaults list names
the new option), so `split=seed` composes exactly what `split=tutorial` does, also where a
user's own experiment config says `override /split: seed`. Hydra records the option chosen for
each group (`hydra.runtime.choices`); `RenamedOptionsNotice`, a Hydra callback (see
conf/hydra/default.yaml), reads it when a job starts and names the new option on stderr and in
the job's log file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("rnnlab")

# config group -> {old option name: new option name}
RENAMED_OPTIONS: dict[str, dict[str, str]] = {
    "split": {"seed": "tutorial"},
    "preprocess": {"seed_tip": "tutorial"},
    "experiment": {"seed_tip": "tutorial"},
    # trainer/cpu.yaml was a copy of trainer/default.yaml
    "trainer": {"cpu": "default"},
}

# callbacks=<name> used to select a set that included the default callbacks; each name is now one
# callback, added to the defaults as a list. Old name -> the list it selected, which validate.py
# names when a run's callbacks are that one callback alone.
RENAMED_CALLBACK_SETS: dict[str, str] = {
    "early_stopping": "[default,early_stopping]",
    "ema": "[default,early_stopping,ema]",
    "gradient_flow": "[default,gradient_flow]",
}


def renamed_notices(choices: Mapping[str, Any]) -> list[str]:
    """One notice per renamed option among Hydra's runtime choices (group -> option name)."""
    notices = []
    for group, renamed in RENAMED_OPTIONS.items():
        old = choices.get(group)
        if isinstance(old, str) and old in renamed:
            notices.append(
                f"Notice: {group}={old} is now called {group}={renamed[old]} (the same "
                "settings); the old name still works."
            )
    return notices


class RenamedOptionsNotice(Callback):
    """Hydra callback: when a job starts, a one-line notice for each renamed option it uses."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the notices on stderr and write them to the job's log file."""
        choices = OmegaConf.select(config, "hydra.runtime.choices", default=None)
        if choices is None:
            return
        for notice in renamed_notices(OmegaConf.to_container(choices)):
            print(notice, file=sys.stderr, flush=True)
            record = log.makeRecord(log.name, logging.WARNING, __file__, 0, notice, None, None)
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.handle(record)
