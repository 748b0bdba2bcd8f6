"""The one Trainer loop every method shares, with what it needs: exact resume from checkpoints, label
smoothing, chunked loss, the ranks it runs on and the training log."""
