"""Images/s of every Table-1 step and its speed-up over the MViTv2 baseline (row sup), ours beside the paper's,
from the speed records (`hiera-study bench`), one block per measurement condition.

    python analysis/speed_ladder.py                             # results/speed
    python analysis/speed_ladder.py --speed tests/fixtures/analysis/speed

The numbers of the speed-up figure (`paper_figures/speedup.png`): records -> speed frame -> a pivot a reader can
check by hand. A CPU measurement is labelled as one (its `device` column), never as the paper's GPU.
"""

import argparse

from hiera.analysis.frames import load_all
from hiera.analysis.speed_figures import speedup_data

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--records", nargs="+", help="run records (default results/records)")
parser.add_argument("--speed", help="speed records (default results/speed)")
args = parser.parse_args()

recs = load_all(args.records, args.speed, breakdown=())
frame, captions = speedup_data(recs)  # long frame: modality, step, source (ours / paper), speedup, speed
if frame.empty:
    raise SystemExit("no Table-1 speeds in these records: run `hiera-study bench 'hiera_tiny_224*'` first")
table = frame.pivot_table(index=["modality", "step"], columns="source", values=["speed", "speedup"], sort=False)
print(table.round(2).to_string())
print("\n".join(captions))
