"""An experiment's runs: sweeps x seeds x fractions expanded to run specs, and the learning-rate search
(exhaustive or successive halving) that picks one rate per method."""
