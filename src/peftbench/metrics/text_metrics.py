"""Text-generation metrics from the standard packages, on a 0-100 scale (TER: lower is better) except
NIST and CIDEr, which keep their own scales (as the E2E challenge and the LoRA paper report them).

BLEU, chrF and TER are corpus-level (sacrebleu) and accept a different number of references per
prediction. ROUGE (rouge-score, Porter stemming) takes the best reference per prediction and is
averaged. METEOR (nltk) needs the WordNet data; without it METEOR is reported as unavailable (None),
never as 0. NIST (nltk's corpus_nist) and CIDEr (pycocoevalcap's CIDEr-D) score each prediction
against all of its references as one segment, on lowercased mteval-v13a tokens (e2e_tokens)."""

import math
import re
from collections import Counter
from collections.abc import Callable

import numpy as np
from nltk.translate.nist_score import nist_length_penalty
from pycocoevalcap.cider.cider import Cider
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
TEXT_METRICS = ("bleu", "nist", "meteor", "rougeL", "cider", "chrf", "ter", "rouge1", "rouge2", "rougeLsum")
LOWER_IS_BETTER = {"ter", "loss", "perplexity"}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; missing slots are None."""
    width = max(len(refs) for refs in references)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


def corpus_bleu() -> BLEU:
    """The one BLEU configuration, for the table and the paired test alike: sacrebleu's defaults
    (13a tokenisation, exponential smoothing, full n-gram order)."""
    return BLEU()


def bleu_on_subsets(predictions: list[str], references: list[list[str]]) -> Callable[[np.ndarray], float]:
    """Corpus BLEU of any resample of the examples (an index array), from per-example statistics taken
    once: sacrebleu's own sufficient statistics and scoring, which corpus_score and its PairedTest sum."""
    bleu = corpus_bleu()
    table = np.asarray(bleu._extract_corpus_statistics(predictions, _reference_streams(references)))

    def score(indices: np.ndarray) -> float:
        return bleu._compute_score_from_stats(table[indices].sum(axis=0)).score

    return score


NIST_ORDER = 5  # nltk's default and mteval's
_MTEVAL = Tokenizer13a()


def e2e_tokens(text: str) -> list[str]:
    """Lowercased mteval-v13a tokens (punctuation split off), for NIST and CIDEr. The official E2E scorer
    lowercases and tokenises NIST this way; its CIDEr tokeniser (PTBTokenizer) needs Java, so CIDEr takes
    these tokens too."""
    return _MTEVAL(text.lower()).split()


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(zip(*(tokens[i:] for i in range(n)), strict=False))  # zip stops at the shortest


def _nist_information(references: list[list[list[str]]]) -> dict[tuple, float]:
    """nltk's information weight of every reference n-gram, from every reference of the test set."""
    counts: Counter = Counter()
    words = 0
    for refs in references:
        for ref in refs:
            for n in range(1, NIST_ORDER + 1):
                counts.update(_ngrams(ref, n))
            words += len(ref)
    return {
        gram: math.log((counts[gram[:-1]] if len(gram) > 1 else words) / count, 2)
        for gram, count in counts.items()
    }


def _nist_row(prediction: list[str], refs: list[list[str]], information: dict) -> list[float]:
    """One segment's statistics as nltk's corpus_nist sums them: per n-gram order the information of
    the matches with the best reference (by precision) and the prediction's n-grams; then the chosen
    references' lengths and the prediction's length, once per order."""
    matched, counted, ref_length = [], [], 0
    for n in range(1, NIST_ORDER + 1):
        grams = _ngrams(prediction, n)
        total = sum(grams.values())
        per_ref = []
        for ref in refs:
            information_sum = sum(information[g] * c for g, c in (grams & _ngrams(ref, n)).items())
            per_ref.append((information_sum / total if total else 0, information_sum, total, len(ref)))
        _, information_sum, total, length = max(per_ref)
        matched.append(information_sum)
        counted.append(total)
        ref_length += length
    return [*matched, *counted, ref_length, NIST_ORDER * len(prediction)]


def _nist_score(sums: np.ndarray) -> float:
    matched, counted = sums[:NIST_ORDER], sums[NIST_ORDER : 2 * NIST_ORDER]
    precision = sum(m / c for m, c in zip(matched, counted, strict=True) if c)
    return float(precision * nist_length_penalty(sums[-2], sums[-1]))


def nist_on_subsets(predictions: list[str], references: list[list[str]]) -> Callable[[np.ndarray], float]:
    """Corpus NIST (nltk's corpus_nist, order 5) of any resample of the prompts, from per-segment
    statistics taken once; the information weights stay those of the whole test set's references."""
    hypotheses = [e2e_tokens(p) for p in predictions]
    reference_tokens = [[e2e_tokens(r) for r in refs] for refs in references]
    information = _nist_information(reference_tokens)
    table = np.asarray(
        [_nist_row(h, refs, information) for h, refs in zip(hypotheses, reference_tokens, strict=True)]
    )
    return lambda indices: _nist_score(table[indices].sum(axis=0))


def cider_segments(predictions: list[str], references: list[list[str]]) -> np.ndarray:
    """pycocoevalcap's CIDEr-D of every prediction against all of its references; the corpus score is
    their mean (document frequencies from the whole test set's references)."""
    gts = {i: [" ".join(e2e_tokens(r)) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(e2e_tokens(p))] for i, p in enumerate(predictions)}
    return np.asarray(Cider().compute_score(gts, res)[1], dtype=float)


def cider_on_subsets(predictions: list[str], references: list[list[str]]) -> Callable[[np.ndarray], float]:
    scores = cider_segments(predictions, references)
    return lambda indices: float(scores[indices].mean())


def _sentences_per_line(text: str) -> str:
    # rougeLsum scores sentence by sentence; nltk's punkt data may be missing, so split on . ! ?
    return "\n".join(SENTENCE_END.split(text.strip()))


def rouge_segments(predictions: list[str], references: list[list[str]]) -> dict[str, np.ndarray]:
    """Each ROUGE F1 (0-100) of every prediction against its best reference."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = {name: [] for name in ROUGE_TYPES}
    for prediction, refs in zip(predictions, references, strict=True):
        scores = scorer.score_multi([_sentences_per_line(r) for r in refs], _sentences_per_line(prediction))
        for name in ROUGE_TYPES:
            totals[name].append(100 * scores[name].fmeasure)
    return {name: np.asarray(values) for name, values in totals.items()}


def rouge(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    return {name: float(v.mean()) for name, v in rouge_segments(predictions, references).items()}


def meteor_unavailable() -> str | None:
    """Why METEOR cannot be computed here, or None when it can."""
    try:
        import nltk
    except ImportError:
        return "nltk is not installed (pip install nltk)"
    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            nltk.data.find(resource)
            return None
        except LookupError:
            continue
    return "nltk's WordNet data is not installed (python -m nltk.downloader wordnet)"


def meteor_segments(predictions: list[str], references: list[list[str]]) -> np.ndarray:
    from nltk.translate.meteor_score import meteor_score

    return 100 * np.asarray(
        [
            meteor_score([r.split() for r in refs], prediction.split())
            for prediction, refs in zip(predictions, references, strict=True)
        ]
    )


def meteor(predictions: list[str], references: list[list[str]]) -> float:
    return float(meteor_segments(predictions, references).mean())


def _means(segments: Callable[[list[str], list[list[str]]], np.ndarray]) -> Callable:
    """A resample scorer for a metric that averages per-prediction scores."""

    def on_subsets(predictions: list[str], references: list[list[str]]) -> Callable[[np.ndarray], float]:
        scores = segments(predictions, references)
        return lambda indices: float(scores[indices].mean())

    return on_subsets


def _sacrebleu_on_subsets(metric) -> Callable:
    """Resample scorer of a sacrebleu corpus metric from its own per-example statistics (bleu_on_subsets)."""

    def on_subsets(predictions: list[str], references: list[list[str]]) -> Callable[[np.ndarray], float]:
        table = np.asarray(metric._extract_corpus_statistics(predictions, _reference_streams(references)))
        return lambda indices: metric._compute_score_from_stats(table[indices].sum(axis=0)).score

    return on_subsets


def subset_scorers() -> dict[str, Callable]:
    """Per text metric: (predictions, references) -> the metric of any resample of the prompts, equal to
    text_metrics' value on all of them; what the report's paired bootstrap over prompts resamples."""
    scorers = {
        "bleu": bleu_on_subsets,
        "nist": nist_on_subsets,
        "cider": cider_on_subsets,
        "chrf": _sacrebleu_on_subsets(CHRF()),
        "ter": _sacrebleu_on_subsets(TER()),
        **{name: _means(lambda p, r, name=name: rouge_segments(p, r)[name]) for name in ROUGE_TYPES},
    }
    if meteor_unavailable() is None:
        scorers["meteor"] = _means(meteor_segments)
    return scorers


def text_metrics(predictions: list[str], references: list[list[str]]) -> tuple[dict, dict]:
    """Metrics, and notes: the SacreBLEU signature and why any metric is unavailable."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need one non-empty reference list per prediction")
    streams = _reference_streams(references)
    bleu = corpus_bleu()
    metrics = {
        "bleu": bleu.corpus_score(predictions, streams).score,
        "chrf": CHRF().corpus_score(predictions, streams).score,
        "ter": TER().corpus_score(predictions, streams).score,
        "nist": nist_on_subsets(predictions, references)(np.arange(len(predictions))),
        "cider": cider_on_subsets(predictions, references)(np.arange(len(predictions))),
        **rouge(predictions, references),
    }
    notes = {"bleu_signature": str(bleu.get_signature()), "unavailable": {}}
    reason = meteor_unavailable()
    if reason:
        metrics["meteor"] = None
        notes["unavailable"]["meteor"] = reason
    else:
        metrics["meteor"] = meteor(predictions, references)
    return metrics, notes
