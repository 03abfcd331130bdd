"""Test extension loaded after recorder; async setup and cleanup."""

required_exts = ["recorder"]


def _note(env, text):
    env.get_ext_obj("recorder").append(text)
    if env.get_ext_options("recorder").get("echo"):
        print(text, flush=True)


def load_finchan_ext(env):
    _note(env, "load second")


async def setup(env):
    if env.get_ext_options("second").get("fail_setup"):
        raise ValueError("second cannot start")
    _note(env, "setup second")


async def cleanup(env):
    _note(env, "cleanup second")
