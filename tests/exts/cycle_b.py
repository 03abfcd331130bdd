required_exts = ["cycle_a"]


def load_finchan_ext(env):
    pass
