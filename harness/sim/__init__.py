"""The embedded ProjectX-compatible gateway simulator: a real HTTP server on loopback.

`Simulator(settings)` serves from a background thread (`with Simulator() as sim: sim.url`);
`Simulator.spawn(settings)` runs `harness sim` as a child process. Faults are `FaultRule`s.
"""

from __future__ import annotations

from harness.sim.embed import Simulator, SpawnedSimulator
from harness.sim.settings import FaultRule, SimSettings, load_profile

__all__ = ["FaultRule", "SimSettings", "Simulator", "SpawnedSimulator", "load_profile"]
