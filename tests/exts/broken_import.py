"""Test extension that fails at import time."""

import this_module_does_not_exist  # noqa: F401


def load_finchan_ext(env):
    pass
