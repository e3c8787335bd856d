"""The batch trainer's stages: training rows, NVTabular features, the Merlin two-tower model."""
