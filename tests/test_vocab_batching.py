import numpy as np

from rnnlab.data.batching import BucketBatchSampler, collate
from rnnlab.data.vocab import Vocab


def test_vocab_most_frequent_first_with_alphabetical_ties():
    tokens = ["b", "a", "c", "d"]
    counts = np.array([3, 3, 5, 1])
    vocab = Vocab.from_counts(tokens, counts, min_freq=2, max_size=None)
    assert vocab.itos == ["<pad>", "<unk>", "c", "a", "b"]
    assert Vocab.from_counts(tokens, counts, min_freq=1, max_size=4).itos == [
        "<pad>",
        "<unk>",
        "c",
        "a",
    ]


def test_first_seen_order_is_the_tips():
    vocab = Vocab.first_seen(["b", "a", "c"], np.array([2, 5, 1]), min_freq=2, max_size=None)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a"]


def test_encode_maps_unknown_and_never_returns_empty():
    vocab = Vocab(["<pad>", "<unk>", "good"])
    assert vocab.encode(["good", "bad"]).tolist() == [2, 1]
    assert vocab.encode([]).tolist() == [1]


def test_collate_right_pads_with_zero():
    ids, lengths, labels = collate([(np.array([5, 6, 7]), 1), (np.array([8]), 0)])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert lengths.tolist() == [3, 1]
    assert labels.tolist() == [1.0, 0.0]


def test_bucket_sampler_covers_every_review_once_in_similar_length_batches():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.2 * np.ptp(lengths)  # buckets, not random batches


def test_bucket_sampler_reshuffles_each_epoch_reproducibly():
    lengths = np.arange(1, 301)
    a = BucketBatchSampler(lengths, 16, shuffle=True, seed=7)
    b = BucketBatchSampler(lengths, 16, shuffle=True, seed=7)
    first = list(a)
    assert first == list(b)
    a.set_epoch(1)
    assert list(a) != first
    assert list(BucketBatchSampler(lengths, 16, shuffle=True, seed=8)) != first


def test_bucket_sampler_min_samples_changes_nothing_when_the_set_is_large_enough():
    lengths = np.arange(1, 301)
    plain = BucketBatchSampler(lengths, 16, shuffle=True, seed=7)
    assert list(BucketBatchSampler(lengths, 16, shuffle=True, seed=7, min_samples=300)) == list(
        plain
    )
    evaluation = BucketBatchSampler(lengths, 16, shuffle=False, min_samples=1000)
    assert len(evaluation) == len(list(evaluation)) == 19  # evaluation reads each review once


def test_bucket_sampler_passing_over_a_few_labels_keeps_each_batch_of_distinct_reviews():
    """min_samples over 100 reviews: 20 passes in an epoch, and bucketing must not gather one
    review's 20 copies into the same batch (a pool that spanned the passes did)."""
    lengths = np.random.default_rng(0).integers(50, 600, size=100)
    sampler = BucketBatchSampler(lengths, 32, shuffle=True, seed=1, min_samples=2000)
    batches = list(sampler)
    assert np.bincount(np.concatenate(batches)).tolist() == [20] * 100
    distinct = [len(set(b)) / len(b) for b in batches]
    assert min(distinct) >= 0.75 and np.mean(distinct) > 0.95
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.6 * np.ptp(lengths)  # still bucketed within each pass (random: ~0.9)
