"""The one Trainer loop every method shares, with what it needs: label smoothing, chunked loss, the ranks
it runs on and the loss history it logs."""
