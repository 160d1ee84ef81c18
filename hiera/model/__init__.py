"""The model side of the study (paper §3, Table 1): one configurable builder for every step from MViTv2 to Hiera.

    config.py      `ModelConfig`: one field per simplification, validated
    ladder.py      Table 1 as data: the steps sup, mae, a-f and the field each one flips; g beyond the paper
    registry.py    registered names (`hiera_large_224.c_no_stride1_pool`, ...) -> `ModelConfig`
    plan.py        per-block geometry (tokens, mask units, pooling) as frozen, printable plans
    layout.py      the unit-major token order that makes pooling a reshape
    layers/        patch embedding, pooling, relative positions, attention, the block, profiler scopes
    network.py     `HierarchicalViT`, the classifier
    masking.py     MAE masks over mask units; `mae_q_pool`, `default_mask_ratio`
    mae.py         the sparse MAE (encoder on visible units, decoder, targets)
    targets.py     HOG targets
    checkpoint.py  the official Hiera/MViTv2 and timm state dicts
    flops.py       parameter and GMAC counts (fvcore), cached in results/variants/

`hiera.build_model` (the package root) is the entry point; nothing here imports the training or launch layers.
"""
