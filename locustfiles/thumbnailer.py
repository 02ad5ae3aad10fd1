"""The thumbnailer function alone, running its part of the seeded workload plan.

    locust -f locustfiles/thumbnailer.py --headless

The other functions' settings are ignored; the thumbnailer scenarios are the same as
in mix.py with the same seed.
"""

from locust_hyperfaas import SeededWorkloadShape, ThumbnailerUser

__all__ = ["ThumbnailerUser", "SeededWorkloadShape"]
