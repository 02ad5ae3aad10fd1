"""All three benchmark functions, running the seeded workload plan.

    locust -f locustfiles/mix.py --headless        # against the built-in emulator
    locust -f locustfiles/mix.py --host LEAF:50050 # against a HyperFaaS leaf

The plan comes from the settings (WORKLOAD_SEED, TOTAL_TEST_DURATION, ...;
see the README) or from a plan file given with --plan.
"""

from locust_hyperfaas import BfsUser, EchoUser, SeededWorkloadShape, ThumbnailerUser

__all__ = ["EchoUser", "BfsUser", "ThumbnailerUser", "SeededWorkloadShape"]
