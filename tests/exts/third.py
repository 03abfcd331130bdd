"""Test extension loaded after second; its setup is never reached when second fails."""

required_exts = ["second"]


def load_finchan_ext(env):
    env.get_ext_obj("recorder").append("load third")


def setup(env):
    env.get_ext_obj("recorder").append("setup third")


def cleanup(env):
    env.get_ext_obj("recorder").append("cleanup third")
