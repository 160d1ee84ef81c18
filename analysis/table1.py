"""Paper Table 1 (the MViTv2 -> Hiera ladder) from the records: accuracy per step over seeds with its 95% CI and
the paired difference to the previous step, beside each step's speed and the paper's numbers.

    python analysis/table1.py                                   # every Table-1 grid in results/records
    python analysis/table1.py --grid proxy_t01_images           # one grid
    python analysis/table1.py --records tests/fixtures/analysis/records --speed tests/fixtures/analysis/speed

What `hiera-study tables` writes as results/tables/table1*.md, in the three steps of the library: records ->
validated frames (`hiera.analysis.frames`, reading through `hiera.records`) -> one grid's runs -> a rendered table.
"""

import argparse

from hiera.analysis.frames import load_all
from hiera.analysis.render import render_markdown
from hiera.analysis.summaries import split_contexts
from hiera.analysis.tables import table1

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--records", nargs="+", help="run records (default results/records)")
parser.add_argument("--speed", help="speed records (default results/speed)")
parser.add_argument("--grid", default="*", help="glob over grid names")
args = parser.parse_args()

recs = load_all(args.records, args.speed, grid=args.grid, breakdown=())  # one-line error on a bad record
ladder = recs.runs[recs.runs["table"].isin(["table1", "demo"])]
# Proxy and full-size runs are never averaged together: one table per context (dataset and scale).
for context, runs in split_contexts(ladder, "table1") or [("table1", ladder)]:
    print(render_markdown(table1(recs, context, runs)))
