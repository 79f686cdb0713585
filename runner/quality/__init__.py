"""Quality of a run's outputs on trained weights, against the reference model (eager, unquantized, unconverted):
perplexity, top-1 agreement, KL divergence and greedy continuations for causal LMs; pooled-embedding cosine and
label agreement for encoders. Used by the `quality` stage (runner/stages/quality.py)."""
