"""Races run for real: threads started together, each with its own database connection."""

import threading

from django.db import connection


def run_threads(count: int, target) -> list:
    """Start ``count`` threads together; each closes its own connection.

    Returns what each returned, or the exception it raised, by index.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def body(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except BaseException as error:  # noqa: BLE001  (reported by the test)
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
