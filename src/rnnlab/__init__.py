"""rnnlab: recurrent sentiment classifiers on IMDB with Lightning + Hydra."""

import os

# Large CPU tensors on transparent huge pages (torch reads this at its first CPU allocation, so
# it is set before rnnlab imports torch). A training step frees and reallocates the same
# megabyte-sized buffers (oneDNN's LSTM workspace, the embedding's dense gradient), and on 4 KiB
# pages every step faults them back in page by page: BiLSTM steps ran 6% faster on huge pages
# (scripts/bench_hugepages.py). THP_MEM_ALLOC_ENABLE=0 in the environment keeps small pages.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from rnnlab.sweeps import register_resolvers  # noqa: E402

# conf/hydra/default.yaml names run and sweep directories with these; any process that runs a
# job (joblib and submitit workers included) imports rnnlab before composing or resolving it
register_resolvers()
