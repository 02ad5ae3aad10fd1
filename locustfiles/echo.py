"""The echo function alone, running its part of the seeded workload plan.

    locust -f locustfiles/echo.py --headless

The other functions' settings are ignored; the echo scenarios are the same as
in mix.py with the same seed.
"""

from locust_hyperfaas import EchoUser, SeededWorkloadShape

__all__ = ["EchoUser", "SeededWorkloadShape"]
