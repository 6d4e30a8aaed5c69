"""rnnlab: recurrent sentiment classifiers on IMDB with Lightning + Hydra."""

from rnnlab.sweeps import register_resolvers

# conf/hydra/default.yaml names run and sweep directories with these; any process that runs a
# job (joblib and submitit workers included) imports rnnlab before composing or resolving it
register_resolvers()
