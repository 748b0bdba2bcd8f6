"""Scores from predictions: classification metrics, text metrics (BLEU, ROUGE, METEOR, NIST, CIDEr)
and the statistics that compare runs (t intervals, McNemar, paired bootstrap).
Imports nothing of peftbench."""
