"""MAE pretraining against training from scratch, per ladder step (the paper's App. B / Fig. 8 contrast): both
accuracies over seeds and their paired difference on the same test images, with its 95% CI and exact test.

    python analysis/mae_vs_scratch.py                           # Table-1 grids against App. B grids
    python analysis/mae_vs_scratch.py --mae proxy_t01_images --scratch proxy_appb_supervised

Records -> run frames of the two ladders -> `mae_vs_scratch` (per step: `paired_runs`, which pools seeds over the
same test images; `hiera.analysis.stats`) -> a rendered table.
"""

import argparse

from hiera.analysis.frames import load_runs
from hiera.analysis.render import render_markdown
from hiera.analysis.tables import mae_vs_scratch

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--records", nargs="+", help="run records (default results/records)")
parser.add_argument("--mae", default="*", help="grid(s) of the MAE -> finetune ladder (glob)")
parser.add_argument("--scratch", default="*", help="grid(s) of the from-scratch ladder (glob)")
args = parser.parse_args()

mae = load_runs(args.records, grid=args.mae)
scratch = load_runs(args.records, grid=args.scratch)
mae, scratch = mae[mae["table"] == "table1"], scratch[scratch["table"] == "appendix_b"]
if mae.empty or scratch.empty:
    raise SystemExit("these records hold no pair of ladders (a Table-1 grid and an App. B grid)")
print(render_markdown(mae_vs_scratch("mae_vs_scratch", mae, scratch)))
