"""The simulator: replay a trace of enqueued messages against a model of Celery workers on
Kubernetes, under our policy and under KEDA + HPA, and compare (`batchctl simulate`,
benchmarks/simulate_suite.py).

- `trace`: the trace model and its YAML parser;
- `world`: the discrete-time (1 s) broker lists and pods;
- `keda`: the KEDA + HPA baseline as a pure model;
- `controllers`: our policy and the baseline as controllers of the world;
- `run`: one run of a trace under a controller, and its metrics;
- `report`, `plot`: the JSON document and the PNG.
"""

from batchctl.sim.controllers import BASELINE, OURS, Controller, KedaController, PolicyController
from batchctl.sim.plot import plot
from batchctl.sim.report import report
from batchctl.sim.run import RunResult, Series, run, sim_config, simulate
from batchctl.sim.trace import Trace, TraceError, load_trace, lognormal_params, parse_trace
from batchctl.sim.world import View, World

__all__ = [
    "BASELINE",
    "OURS",
    "Controller",
    "KedaController",
    "PolicyController",
    "RunResult",
    "Series",
    "Trace",
    "TraceError",
    "View",
    "World",
    "load_trace",
    "lognormal_params",
    "parse_trace",
    "plot",
    "report",
    "run",
    "sim_config",
    "simulate",
]
