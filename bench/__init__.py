"""`make bench`: the gateway measured against the same local Mantle simulator, in one run.

DESIGN §9 asks for ratios measured, not asserted: every figure in the printed table comes from
this run (gateway vs direct calls to the simulator, DynamoDB served by moto's server mode), each
the median of several repetitions. Timing never enters the test suite; the smoke test only
checks that every row is there with a sane value (`tests/unit/test_bench_smoke.py`).
"""
