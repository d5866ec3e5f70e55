"""Benchmarks, run from the project root as modules (they import ``detector`` and each other):

    python -m bench.speed --out runs/bench/speed.json   # speed against the seed architecture (minutes)
    python -m bench.load                                # the web app under concurrent good and hostile requests

``common`` holds what they share (percentiles, child processes, the app on a loopback port, the
photos); ``hostile_inputs`` is the hostile-upload matrix, shared with the tests.
"""
