"""The cyclic garbage collector, tuned for a server whose heap is mostly long-lived.

A process of this project holds ~200,000 objects from its imports (Django,
Wagtail, Ninja, their schemas) before it serves anything, and an ASGI
process another ~180 per open socket. Python's full collection walks all of
them: at 2,500 sockets a process spent ~400 ms of CPU in each one, 17 times
over bench/watchers.py's run, and every socket of that process waited
meanwhile (the commit -> watcher p99's spikes); a gunicorn worker paused up
to 150 ms of CPU mid-bid the same way.

So, once the application is loaded: the objects that exist then are frozen
(never walked again: they live as long as the process anyway), and the
young generation is collected less often, so fewer short-lived objects are
caught alive and promoted to where only a full collection frees them.
Reference counting still frees everything without cycles at once; cycles
are still collected, only later. ``GC_THRESHOLDS`` (``gen0,gen1,gen2``, or
``default``) overrides the thresholds; measured in bench/README.md.
"""

import gc
import os

TUNED_THRESHOLDS = (50_000, 20, 100)


def tune_after_load() -> None:
    """Called once the application is loaded (project/asgi.py, gunicorn's post_worker_init)."""
    setting = os.environ.get("GC_THRESHOLDS", "").strip()
    if setting == "default":
        return
    from django.urls import get_resolver

    _ = get_resolver().url_patterns  # the URLconf and the views it imports, frozen with the rest
    thresholds = tuple(int(part) for part in setting.split(",")) if setting else TUNED_THRESHOLDS
    gc.collect()  # what import left as garbage goes now, not frozen with the rest
    gc.freeze()
    gc.set_threshold(*thresholds)
