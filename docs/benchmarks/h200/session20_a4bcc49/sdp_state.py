"""pytest plugin: SDPA backend flags and priority at each GPU test's setup and teardown (call D)."""
import os
import torch

NAMES = ("cudnn", "flash", "mem_efficient", "math", "overrideable")


def _log(where, nodeid):
    flags = {n: getattr(torch._C, f"_get_{n}_sdp_enabled")() for n in NAMES}
    with open(os.environ["SDP_LOG"], "a") as f:
        f.write(f"{where} {nodeid} {flags} priority={torch._C._get_sdp_priority_order()}\n")


def pytest_runtest_setup(item):
    _log("setup", item.nodeid)


def pytest_runtest_teardown(item):
    _log("teardown", item.nodeid)
