"""Speed measurement (paper Table 1's im/s and clip/s, Fig. 1, App. A.3): the benchmark and what it reads.

    throughput.py  `hiera-study bench`: images (clips) per second per variant, implementation and batch size
    breakdown.py   `hiera-study bench --breakdown`: where a step's time goes, per op family (profiler)
    kernels.py     which attention kernel actually ran (SDPA backends from the profiler); imports nothing of ours
    official.py    the official package's models timed in their own interpreter (run by path)
    gpu_pass.py    `python -m hiera.bench.gpu_pass OUT`: every measurement of a GPU session in one budgeted command

The records they write are `hiera.records.speed` (`SpeedRecord`, `BreakdownRecord`).
"""
