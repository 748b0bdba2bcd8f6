"""Text-generation metrics from the standard packages, all on a 0-100 scale (TER: lower is better).

BLEU, chrF and TER are corpus-level (sacrebleu) and accept a different number of references per
prediction. ROUGE (rouge-score, Porter stemming) takes the best reference per prediction and is
averaged. METEOR (nltk) needs the WordNet data; without it METEOR is reported as unavailable (None),
never as 0."""

import re
import statistics
from collections.abc import Callable

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
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


def _sentences_per_line(text: str) -> str:
    # rougeLsum scores sentence by sentence; nltk's punkt data may be missing, so split on . ! ?
    return "\n".join(SENTENCE_END.split(text.strip()))


def rouge(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = {name: [] for name in ROUGE_TYPES}
    for prediction, refs in zip(predictions, references, strict=True):
        scores = scorer.score_multi([_sentences_per_line(r) for r in refs], _sentences_per_line(prediction))
        for name in ROUGE_TYPES:
            totals[name].append(scores[name].fmeasure)
    return {name: 100 * statistics.fmean(values) for name, values in totals.items()}


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


def meteor(predictions: list[str], references: list[list[str]]) -> float:
    from nltk.translate.meteor_score import meteor_score

    scores = [
        meteor_score([r.split() for r in refs], prediction.split())
        for prediction, refs in zip(predictions, references, strict=True)
    ]
    return 100 * statistics.fmean(scores)


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
