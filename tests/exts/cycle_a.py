required_exts = ["cycle_b"]


def load_finchan_ext(env):
    pass
