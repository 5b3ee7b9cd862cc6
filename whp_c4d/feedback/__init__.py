"""Participatory evaluation: partner reports, the feedback queue, its codebook and coding."""
