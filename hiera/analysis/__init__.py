"""Records -> the paper's tables and figures (paper Tables 1, 2, 3, 16, 17; Fig. 1 style plots).

Pure functions of the files in `results/` (see results/README.md): `frames` turns the records (read and validated by
`hiera.records`) into data frames, `stats` holds the statistics (CIs, paired differences), `tables` renders Tables
1-3 and the speed tables (Markdown, LaTeX, CSV), `plots` draws the figures for `paper_figures/`. The `tables` and
`plots` commands are `hiera.cli.analysis`.
"""
