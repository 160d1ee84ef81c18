"""Every Table-1 step traces as one graph under `torch.compile(fullgraph=True)`, without recompiling across steps.

For each ladder step (sup, mae, a-f; images and video) at a proxy size (the demo's proxy, `hiera/proxy.py`, at 16
channels): inference forward, train step (forward + cross-entropy + backward) and MAE step (mask given, forward
+ backward; not for `sup`, which cannot mask). `aot_eager` traces forward and backward through AOTAutograd as
inductor sees them, without code generation; one test compiles with inductor itself. Every compiled call after the
first runs under `fail_on_recompile` on fresh data and a fresh mask, and matches the eager model.
"""

import copy
import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import hiera
from hiera.bench.throughput import BenchConfig, run
from hiera.model.ladder import LADDER, PROXY_SCALES
from hiera.model.mae import MaskedAutoencoder, build_mae
from hiera.model.masking import num_kept, random_mask

PROXY = PROXY_SCALES["tiny_48"].changes  # the proxy fields, as overrides of a full-size name
PROXY_VIDEO = PROXY_SCALES["tiny_8x64"].changes

# The demo's proxy at 16 channels and one block per stage (tracing time grows with the number of ops): every kind
# of block remains (stride-1 pooled first block, q-pooling transitions, mask-unit and global attention).
IMAGE = dict(PROXY, input_size=(64, 64), embed_dim=16, stages=(1, 1, 1, 1), num_classes=10)  # 64 px: 16 mask units
VIDEO = dict(PROXY_VIDEO, embed_dim=16, stages=(1, 1, 1, 1), num_classes=10, input_size=(4, 32, 32))  # 8 units
RATIO = 0.5
pytestmark = pytest.mark.slow  # tracing every step takes minutes: the full suite runs it, the fast loop not
CALLS = 3  # the first compiles, the others must not
TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()  # cache entries of earlier tests would count against the recompile limit
    yield
    torch._dynamo.reset()


def variant(step, video: bool) -> str:
    return f"hiera_{'base_16x224' if video else 'tiny_224'}" + (f".{step.slug}" if step.slug else "")


def compile_(model, backend="aot_eager"):
    return torch.compile(model, backend=backend, fullgraph=True)


def calls(n=CALLS):
    """Call indices; every call after the first runs where a recompile is an error."""
    for i in range(n):
        with torch.compiler.set_stance("fail_on_recompile") if i else torch.compiler.set_stance("default"):
            yield i


def grads(model):
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_close(eager, compiled):
    a, b = grads(eager), grads(compiled)
    assert a.keys() == b.keys()
    assert a
    for name in a:
        torch.testing.assert_close(b[name], a[name], **TOL, msg=lambda m, n=name: f"grad of {n}: {m}")


def check_infer(name, overrides):
    model = hiera.build_model(name, **overrides).eval()
    compiled = compile_(model)
    for _ in calls():
        x = torch.randn(2, 3, *model.config.input_size)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x), **TOL)


def check_train(name, overrides):
    model = hiera.build_model(name, **overrides).train()
    twin = copy.deepcopy(model)
    compiled = compile_(twin)
    for _ in calls():
        x = torch.randn(2, 3, *model.config.input_size)
        y = torch.randint(0, 10, (2,))
        model.zero_grad(), twin.zero_grad()
        ref = F.cross_entropy(model(x), y)
        loss = F.cross_entropy(compiled(x), y)
        ref.backward(), loss.backward()
        torch.testing.assert_close(loss, ref, **TOL)
        assert_grads_close(model, twin)


def check_mae(name, overrides):
    model = build_mae(name, decoder_dim=16, decoder_depth=1, decoder_heads=1, **overrides).train()
    twin = copy.deepcopy(model)
    compiled = compile_(twin)
    cfg = model.config
    keep = num_kept(math.prod(cfg.mask_unit_grid), RATIO)
    gen = torch.Generator().manual_seed(0)
    masks = []
    for _ in calls():
        x = torch.randn(2, 3, *cfg.input_size)
        mask = random_mask(cfg, 2, RATIO, gen)
        masks.append(mask)
        model.zero_grad(), twin.zero_grad()
        ref = model(x, mask=mask)  # eager reads K from the mask
        out = compiled(x, mask=mask, num_kept=keep)
        ref[0].backward(), out[0].backward()
        for a, b, what in zip(out[:3], ref[:3], ("loss", "pred", "label")):
            torch.testing.assert_close(a, b, **TOL, msg=lambda m, w=what: f"{w}: {m}")
        assert torch.equal(out[3], mask)
        assert_grads_close(model, twin)
    assert not torch.equal(masks[0], masks[1]), "each call must see a new mask"


MODES = {"infer": check_infer, "train": check_train, "mae": check_mae}
CASES = [
    pytest.param(step, mode, id=f"{step.id}-{mode}")
    for step in LADDER
    for mode in MODES
    if not (step.id == "sup" and mode == "mae")
]  # the supervised baseline cannot mask


@pytest.mark.parametrize(("step", "mode"), CASES)
def test_image_ladder_compiles_fullgraph_without_recompiles(step, mode):
    MODES[mode](variant(step, video=False), IMAGE)


@pytest.mark.slow
@pytest.mark.parametrize(("step", "mode"), CASES)
def test_video_ladder_compiles_fullgraph_without_recompiles(step, mode):
    MODES[mode](variant(step, video=True), VIDEO)


def test_inductor_compiles_hiera_for_real():
    """The default backend generates and runs C++ kernels on the CPU (row f, inference, fullgraph)."""
    model = hiera.build_model("hiera_tiny_224", **IMAGE).eval()
    compiled = compile_(model, backend="inductor")
    for _ in calls(2):
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_without_num_kept_the_graph_breaks_and_fullgraph_says_why():
    """K read from the mask's values cannot be traced: an error under fullgraph naming the fix, a graph break
    (same numbers) otherwise."""
    model = build_mae("hiera_tiny_224", decoder_dim=16, decoder_depth=1, decoder_heads=1, **IMAGE).eval()
    x = torch.randn(2, 3, 64, 64)
    mask = random_mask(model.config, 2, RATIO, torch.Generator().manual_seed(0))
    with pytest.raises(torch._dynamo.exc.Unsupported, match="num_kept"):
        compile_(model)(x, mask=mask)
    torch._dynamo.reset()
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model, backend="aot_eager")(x, mask=mask)[0], model(x, mask=mask)[0])


def test_num_kept_is_checked_against_the_mask_in_eager_mode():
    model = build_mae("hiera_tiny_224", decoder_dim=16, decoder_depth=1, decoder_heads=1, **IMAGE)
    x = torch.randn(2, 3, 64, 64)
    mask = random_mask(model.config, 2, RATIO, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x, mask=mask, num_kept=8)[0], model(x, mask=mask)[0])
    with pytest.raises(ValueError, match="keeps 8 units per sample, but num_kept=7"):
        model(x, mask=mask, num_kept=7)
    with pytest.raises(ValueError, match=r"num_kept=17 must be in 1\.\.16"):
        model(x, mask=mask, num_kept=17)
    with pytest.raises(ValueError, match="does not match mask_ratio"):
        model(x, mask_ratio=RATIO, num_kept=7)


class SmallMAE(MaskedAutoencoder):
    """The bench builds `MaskedAutoencoder(cfg)` with the paper's 8-block decoder; one block traces 5x faster."""

    def __init__(self, cfg):
        super().__init__(cfg, decoder_dim=16, decoder_depth=1, decoder_heads=1)


def test_bench_records_fullgraph_breaks_recompiles_and_compile_time(tmp_path, monkeypatch):
    """The MAE step (mask drawn outside the model every step) compiles as one graph and never recompiles."""
    monkeypatch.setattr(hiera.model.mae, "MaskedAutoencoder", SmallMAE)
    cfg = BenchConfig(
        mode="mae",
        compile=True,
        compile_backend="aot_eager",
        batch_sizes=(2,),
        warmup=2,
        iters=2,
        trials=2,
        device="cpu",
        precision="fp32",
        sep_pad_overhead=False,
        mask_ratio=RATIO,
    )
    path = run(["hiera_tiny_224"], cfg, dict(IMAGE), out_dir=tmp_path, progress=lambda s: None)
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert row["compile"] is True
    assert row["mode"] == "mae"
    assert row["samples_per_s"] > 0
    assert (row["compile_fullgraph"], row["graph_breaks"], row["recompiles"]) == (True, 0, 0)
    assert row["compile_s"] > 0


def test_bench_falls_back_to_graph_breaks_and_records_them(tmp_path, monkeypatch):
    real = hiera.model.network.HierarchicalViT.forward_head

    def forward_head(self, x, pre_logits=False):
        torch._dynamo.graph_break()
        return real(self, x, pre_logits)

    monkeypatch.setattr(hiera.model.network.HierarchicalViT, "forward_head", forward_head)
    cfg = BenchConfig(
        compile=True,
        compile_backend="aot_eager",
        batch_sizes=(2,),
        warmup=1,
        iters=1,
        trials=2,
        device="cpu",
        precision="fp32",
        sep_pad_overhead=False,
    )
    path = run(["hiera_tiny_224"], cfg, dict(IMAGE), out_dir=tmp_path, progress=lambda s: None)
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert (row["compile_fullgraph"], row["graph_breaks"], row["recompiles"]) == (False, 1, 0)
    uncompiled = run(
        ["hiera_tiny_224"], replace(cfg, compile=False), dict(IMAGE), out_dir=tmp_path, progress=lambda s: None
    )
    last = json.loads(uncompiled.read_text().splitlines()[-1])
    assert all(last[k] is None for k in ("compile_fullgraph", "graph_breaks", "recompiles", "compile_s"))
