"""Generated customTags: the API's uniqueness rule held within a process and across a fork."""

from __future__ import annotations

import os
import re

from harness.orders.validation import new_custom_tag

TAG = re.compile(r"hx-[0-9a-f]{24}")


def test_tags_are_hx_and_24_hex_digits_and_never_repeat():
    tags = [new_custom_tag() for _ in range(20_000)]
    assert all(TAG.fullmatch(t) for t in tags)
    assert len(set(tags)) == len(tags)


def test_a_forked_child_never_repeats_its_parents_tags():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next tags to the parent and leave at once
        os.close(read)
        os.write(write, " ".join(new_custom_tag() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    mine = {new_custom_tag() for _ in range(100)}
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(theirs) == 100 and not (mine & theirs)
    assert {t[:15] for t in theirs}.isdisjoint({t[:15] for t in mine})  # a new random half
