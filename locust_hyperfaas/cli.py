"""The ``locust-hyperfaas`` command: emulator, plan, report and import-k6.

Each subcommand lives with the module it drives and parses its own options;
this module only dispatches to it.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "emulator": (
        "locust_hyperfaas.emulator.__main__",
        "start a HyperFaaS leaf emulator",
    ),
    "plan": ("locust_hyperfaas.plan", "print or write a seeded workload plan"),
    "report": ("locust_hyperfaas.report", "summarise a run from its metrics.db"),
    "import-k6": ("locust_hyperfaas.import_k6", "load results of the k6 generator"),
}

USAGE = (
    "usage: locust-hyperfaas {"
    + ",".join(SUBCOMMANDS)
    + "} [options]\n\n"
    + "\n".join(
        f"  {name:<10} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()
    )
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"locust-hyperfaas: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest, prog=f"locust-hyperfaas {name}")


if __name__ == "__main__":
    sys.exit(main())
