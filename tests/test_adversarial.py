"""Adversarial training on the embedded reviews (model.adversarial_epsilon, Miyato et al. 2016)."""

from __future__ import annotations

import torch
from test_finetune import archive, finetune_cfg, language_models  # noqa: F401 - fixtures

from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.module import adversarial_perturbation
from rnnlab.train import train


def test_the_perturbation_has_norm_epsilon_per_review_along_the_gradient():
    gradient = torch.randn(3, 5, 4)
    gradient[0, 3:] = 0  # padding: no gradient
    gradient[2] *= 1e-30  # a tiny gradient still gives the full norm
    r = adversarial_perturbation(gradient, 2.5)
    assert torch.allclose(r.flatten(1).norm(dim=1), torch.full((3,), 2.5))
    assert (r[0, 3:] == 0).all()
    unscaled = gradient.flatten(1) * torch.tensor([[1.0], [1.0], [1e30]])
    cosine = torch.nn.functional.cosine_similarity(r.flatten(1), unscaled, dim=1)
    assert torch.allclose(cosine, torch.ones(3))


def test_the_perturbation_raises_the_loss_more_than_a_random_one_of_its_size():
    torch.manual_seed(0)
    net = RecurrentClassifier(40, embed_dim=8, hidden_size=8, pooling="final+max+mean").eval()
    ids = torch.randint(2, 40, (16, 12))
    lengths = torch.randint(4, 13, (16,))
    labels = torch.randint(0, 2, (16,)).float()
    loss = torch.nn.BCEWithLogitsLoss()
    embedded = net.embed_reviews(ids, lengths).detach().requires_grad_()
    clean = loss(net.classify(embedded, lengths), labels)
    (gradient,) = torch.autograd.grad(clean, embedded)
    r = adversarial_perturbation(gradient, 0.5)
    noise = adversarial_perturbation(torch.randn_like(gradient) * (gradient != 0), 0.5)
    with torch.no_grad():
        adversarial = loss(net.classify(embedded + r, lengths), labels)
        random = loss(net.classify(embedded + noise, lengths), labels)
    assert adversarial > random and adversarial > clean
    # split in two, the net computes what its forward does
    assert torch.equal(net.classify(net.embed_reviews(ids, lengths), lengths), net(ids, lengths))


def test_fine_tuning_with_adversarial_training_logs_both_losses(
    archive,  # noqa: F811 - fixtures
    language_models,  # noqa: F811
    tmp_path,
):
    # gradual unfreezing: the first epoch perturbs the output of a frozen embedding
    cfg = finetune_cfg(
        archive, language_models["forward"], tmp_path, "model.adversarial_epsilon=1.0"
    )
    metrics = train(cfg)
    assert metrics["train/adversarial_loss"] > 0
    assert 0.0 <= metrics["test/acc"] <= 1.0
