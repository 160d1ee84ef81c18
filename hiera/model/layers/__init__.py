"""Building blocks of the configurable hierarchical ViT: pooling, relative position, attention, block."""
