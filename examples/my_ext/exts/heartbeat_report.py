"""Reads the heartbeat extension's published counter at the end of the run."""

required_exts = ["heartbeat"]


def load_finchan_ext(env):
    pass


def cleanup(env):
    counter = env.get_ext_obj("heartbeat")
    total = sum(counter.values())
    print(f"heartbeats: {total} ({', '.join(f'{day} {n}' for day, n in sorted(counter.items()))})")
