"""rnnlab: recurrent sentiment classifiers on IMDB with Lightning + Hydra.

Importing rnnlab changes nothing in the process: the entry points (`train.py`, `eval.py`,
`predict.py`, the scripts) apply the process tuning of `rnnlab.runtime` and register the config
resolvers of `rnnlab.sweeps` themselves.
"""
