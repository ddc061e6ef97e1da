"""An actor that logs with Python's `logging` (tests/it/observe.rs)."""

import logging

LOGGER = logging.getLogger("app.worker")


class Logger:
    """Logs what it is sent, at the level the message names."""

    def receive(self, msg):
        level, text = msg
        LOGGER.log(getattr(logging, level), "handled %s", text)
        return text
