"""What fine-tuning costs the base model: loss on general text before and after a run, the
interpolation curve between base and tuned weights, and lm-eval benchmarks before and after."""
