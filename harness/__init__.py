"""What the tests, the benchmarks and the demo share to run the tap as users do (not shipped):
project.py (Meltano projects, processes, ports), tap.py (a tap run and its output, configs,
expectations from the simulator), postgres.py (a throwaway PostgreSQL server)."""
