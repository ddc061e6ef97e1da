"""A module that fails while it is imported."""


def _fail():
    raise RuntimeError("this module is broken on purpose")


_fail()
