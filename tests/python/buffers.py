"""Actors that use arena buffers (tests/it/buffers.rs)."""

import hashlib

import subactor


def digest(data) -> str:
    return hashlib.sha256(data).hexdigest()


class Producer:
    """Writes a buffer in place and freezes it."""

    def receive(self, msg):
        op = msg[0]
        if op == "make":
            size = msg[1]
            draft = subactor.alloc(size)
            view = memoryview(draft)
            for i in range(0, size, 4096):
                view[i] = i % 251
            view.release()
            address = draft.address
            frozen = draft.freeze()
            return (frozen, address, frozen.address, digest(frozen))
        if op == "freeze_with_view":
            draft = subactor.alloc(16)
            view = memoryview(draft)
            try:
                draft.freeze()
            except BufferError as error:
                refused = str(error)
            view.release()
            frozen = draft.freeze()
            try:
                len(draft)
            except ValueError as error:
                after = str(error)
            return (refused, after, len(frozen))
        if op == "send_draft":
            return subactor.alloc(8)
        if op == "from_bytes":
            data = bytes(range(256)) * 4
            copy = subactor.Buffer.from_bytes(data)
            return (copy, bytes(copy) == data, len(copy))
        if op == "boom":
            raise RuntimeError("the producer fails on purpose")
        if op == "too_big":
            try:
                subactor.alloc(msg[1])
            except MemoryError as error:
                return str(error)
            return "allocated"
        raise ValueError(op)


class Reader:
    """Reads buffers it receives, and keeps views when asked to."""

    def __init__(self):
        self.kept = []

    def receive(self, msg):
        op, buf = msg
        if op == "read":
            return (type(buf).__name__, buf.address, len(buf), digest(buf))
        if op == "keep":
            self.kept.append(memoryview(buf)[16:])
            return len(self.kept)
        if op == "kept_digest":
            return digest(self.kept[-1])
        if op == "boom":
            raise RuntimeError("the reader fails on purpose")
        if op == "write":
            errors = []
            try:
                memoryview(buf)[0] = 1
            except TypeError as error:
                errors.append(type(error).__name__)
            try:
                buf[0] = 1
            except TypeError as error:
                errors.append(type(error).__name__)
            return errors
        if op == "slice":
            part = buf[10:20]
            view = memoryview(buf)[10:20]
            return (type(part).__name__, part.address - buf.address, bytes(part) == bytes(view), buf[5], buf[-1], bytes(buf[0:8:2]))
        raise ValueError(op)
