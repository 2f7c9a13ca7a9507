"""A local Cronofy API simulator for tests, the demo and benchmarks (not part of the tap)."""

from simulator.core import Event, Fault, Simulator
from simulator.server import SimulatorServer

__all__ = ["Event", "Fault", "Simulator", "SimulatorServer"]
