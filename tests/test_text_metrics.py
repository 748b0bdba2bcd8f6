import os

import numpy as np
import pytest

from peftbench.metrics import text_metrics
from peftbench.metrics.text_metrics import rouge
from peftbench.metrics.text_metrics import text_metrics as score


def test_bleu_matches_hand_computed_value():
    # precisions 4/5, 3/4, 2/3, 1/2, brevity penalty 1: BLEU = (0.8*0.75*(2/3)*0.5) ** (1/4) = 0.6687
    metrics, notes = score(["a b c d e"], [["a b c d f"]])
    assert metrics["bleu"] == pytest.approx(66.87, abs=0.01)
    assert notes["bleu_signature"].startswith("nrefs:")


def test_multi_reference_scores_against_the_best_reference():
    metrics, _ = score(["a b c d e", "x y z w"], [["a b c d f", "a b c d e"], ["x y z w"]])
    assert metrics["bleu"] == pytest.approx(100.0)
    assert metrics["rouge1"] == pytest.approx(100.0)


def test_ter_and_chrf_match_hand_computed_values():
    metrics, _ = score(["a b c d"], [["a b c e"]])
    assert metrics["ter"] == pytest.approx(25.0)  # one substitution over four reference words
    identical, _ = score(["the cat sat"], [["the cat sat"]])
    assert identical["chrf"] == pytest.approx(100.0)


def test_rouge_matches_hand_computed_values():
    scores = rouge(["the cat sat"], [["the cat ran"]])
    assert scores["rouge1"] == pytest.approx(200 / 3)  # 2 of 3 unigrams each way
    assert scores["rouge2"] == pytest.approx(50.0)  # 1 of 2 bigrams
    assert scores["rougeL"] == pytest.approx(200 / 3)


IN_CI = os.environ.get("CI", "").lower() in ("1", "true")  # CI sets CI=true: skipping there is a failure
WORDNET_MISSING = text_metrics.meteor_unavailable()


@pytest.mark.skipif(bool(WORDNET_MISSING) and not IN_CI, reason=f"{WORDNET_MISSING} (scripts/setup.sh)")
def test_meteor_is_computed_with_wordnet_synonyms():
    assert WORDNET_MISSING is None, f"CI must compute METEOR: {WORDNET_MISSING}"
    # "fast" matches "quick" only through WordNet: 3 of 3 unigrams matched in one chunk, so
    # Fmean = 1 and the fragmentation penalty is 0.5 * (1/3)^3; without synonyms it would be 33.3.
    # "a b" against itself: one chunk of two, penalty 0.5 * (1/2)^3. METEOR takes the best reference.
    metrics, notes = score(["the fast dog", "a b"], [["x y z", "the quick dog"], ["a b"]])
    best_synonym = 100 * (1 - 0.5 * (1 / 3) ** 3)
    assert metrics["meteor"] == pytest.approx((best_synonym + 100 * (1 - 0.5 * (1 / 2) ** 3)) / 2)
    assert "meteor" not in notes["unavailable"]


def test_meteor_without_wordnet_is_unavailable_not_zero(monkeypatch):
    monkeypatch.setattr(text_metrics, "meteor_unavailable", lambda: "no wordnet")
    metrics, notes = score(["a b"], [["a b"]])
    assert metrics["meteor"] is None
    assert notes["unavailable"] == {"meteor": "no wordnet"}


def test_rouge_stems_and_scores_rougelsum_sentence_by_sentence():
    assert rouge(["the cats sat"], [["the cat sat"]])["rouge1"] == pytest.approx(100.0)  # Porter stemming
    swapped = rouge(["a b. c d."], [["c d. a b."]])
    assert swapped["rougeL"] == pytest.approx(50.0)  # one LCS over the whole text: "a b" or "c d"
    assert swapped["rougeLsum"] == pytest.approx(100.0)  # union LCS per sentence finds both


def test_mismatched_lengths_are_rejected():
    for predictions, references in ((["a"], []), ([], [])):
        with pytest.raises(ValueError, match="^need one non-empty reference list per prediction$"):
            score(predictions, references)


def _corpus(seed: int = 0, prompts: int = 25) -> tuple[list[str], list[list[str]]]:
    """E2E-like texts: 1 to 8 references per prompt, mixed case and punctuation."""
    import random

    rng = random.Random(seed)
    words = "The Vaults pub near Café Adriatic has a 5 star rating , is family-friendly and cheap ."
    words = words.split(" ")

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(2, 14))).replace(" ,", ",")

    references = [[sentence() for _ in range(rng.randint(1, 8))] for _ in range(prompts)]
    return [sentence() for _ in references], references


def _nltk_nist(predictions, references) -> float:
    from nltk.translate.nist_score import corpus_nist

    tokens = text_metrics.e2e_tokens
    return corpus_nist([[tokens(r) for r in refs] for refs in references], [tokens(p) for p in predictions])


def _coco_cider(predictions, references) -> float:
    from pycocoevalcap.cider.cider import Cider

    tokens = text_metrics.e2e_tokens
    gts = {i: [" ".join(tokens(r)) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(tokens(p))] for i, p in enumerate(predictions)}
    return Cider().compute_score(gts, res)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nist_and_cider_equal_the_libraries_called_directly(seed):
    predictions, references = _corpus(seed)
    metrics, _ = score(predictions, references)
    assert metrics["nist"] == pytest.approx(_nltk_nist(predictions, references), rel=1e-12)
    assert metrics["cider"] == pytest.approx(_coco_cider(predictions, references), rel=1e-12)
    assert metrics["nist"] > 0 and metrics["cider"] > 0


def test_e2e_tokens_lowercase_and_split_punctuation_as_mteval():
    assert text_metrics.e2e_tokens("The Vaults, near Café Adriatic.") == [
        "the", "vaults", ",", "near", "café", "adriatic", ".",
    ]  # fmt: skip


def test_a_prompt_with_eight_references_is_one_segment():
    predictions, references = _corpus(3)
    references[0] = [f"The pub number {k} is near the river." for k in range(8)]
    grouped, _ = score(predictions, references)
    # the same references as one row each: eight segments, each with the prediction and one reference
    rows_predictions = [predictions[0]] * 8 + predictions[1:]
    rows_references = [[r] for r in references[0]] + references[1:]
    per_row, _ = score(rows_predictions, rows_references)
    for metric in ("nist", "cider"):
        assert grouped[metric] != pytest.approx(per_row[metric], rel=1e-3)
    assert grouped["nist"] == pytest.approx(_nltk_nist(predictions, references), rel=1e-12)
    assert per_row["nist"] == pytest.approx(_nltk_nist(rows_predictions, rows_references), rel=1e-12)


def test_subset_scorers_resample_segments_and_keep_the_test_sets_weights():
    predictions, references = _corpus(4)
    everything = np.arange(len(predictions))
    nist = text_metrics.nist_on_subsets(predictions, references)
    cider = text_metrics.cider_on_subsets(predictions, references)
    assert nist(everything) == pytest.approx(_nltk_nist(predictions, references), rel=1e-12)
    assert cider(everything) == pytest.approx(_coco_cider(predictions, references), rel=1e-12)
    # CIDEr of a resample: the mean of its segments' scores (document frequencies of the whole test set)
    segments = text_metrics.cider_segments(predictions, references)
    assert cider(np.array([0, 0, 5])) == pytest.approx((2 * segments[0] + segments[5]) / 3)
    # NIST of a resample sums its segments' statistics: a prompt drawn twice counts twice
    assert nist(np.array([2, 2])) == pytest.approx(nist(np.array([2])))  # both terms are ratios
    assert nist(np.array([1, 2, 2])) != pytest.approx(nist(np.array([1, 2])))


def test_empty_predictions_score_zero_not_an_error():
    metrics, _ = score(["", ""], [["a b c"], ["d e"]])
    assert metrics["nist"] == 0 and metrics["cider"] == 0
