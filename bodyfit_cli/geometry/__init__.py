"""Pure, batch-first geometry: rotations, cameras, alignment."""
