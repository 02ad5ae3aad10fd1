"""The bfs function alone, running its part of the seeded workload plan.

    locust -f locustfiles/bfs.py --headless

The other functions' settings are ignored; the bfs scenarios are the same as
in mix.py with the same seed.
"""

from locust_hyperfaas import BfsUser, SeededWorkloadShape

__all__ = ["BfsUser", "SeededWorkloadShape"]
