"""Scene and object context of a clip: a 445-d vector (365 Places365 places + 80 COCO objects) per clip."""
