#!/usr/bin/env bash
# The ULMFiT GPU recipe in one go, sized for a 15-minute GPU loan (docs/pretraining.md):
# pretrain lm=ulmfit_gpu (AWD-LSTM, 3 x 1,150) for at most PRETRAIN_MINUTES of wall time, fine-tune
# experiment=ulmfit_gpu from its best checkpoint on seeds 1, 2 and 3, then print the comparison.
#
#   D=path/to/aclImdb_v1.tar.gz OUT=outputs/gpu bash scripts/gpu_ulmfit.sh
#
# Environment: D (the archive, required), OUT (default outputs/gpu), PRETRAIN_MINUTES (default 6),
# LM_EPOCHS (default 20: two passes at 10 epochs a pass; the time limit ends it sooner if the
# GPU is slower). Needs a CUDA GPU; the package is read from src/ (no install needed where
# torch, lightning, hydra-core, omegaconf and nltk are present).
set -euo pipefail
D=${D:?set D to the aclImdb_v1.tar.gz archive}
OUT=${OUT:-outputs/gpu}
MINUTES=${PRETRAIN_MINUTES:-6}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

python3 pretrain.py lm=ulmfit_gpu trainer=gpu data.path="$D" lm.epochs="${LM_EPOCHS:-20}" \
  hydra.run.dir="$OUT/lm" "++trainer.max_time=00:00:$(printf %02d "$MINUTES"):00" \
  ++trainer.enable_progress_bar=false
LM=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['best']['checkpoint'])" \
  "$OUT/lm/metrics.json")
python3 train.py -m experiment=ulmfit_gpu pretrained="$LM" data.path="$D" seed=1,2,3 \
  hydra.sweep.dir="$OUT/ulmfit" ++trainer.enable_progress_bar=false
python3 scripts/compare.py "$OUT/ulmfit" --markdown
