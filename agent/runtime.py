"""Settings shared by the onnxruntime sessions: quiet, single-purpose, and nothing that leaves the machine."""

from __future__ import annotations


def quiet_session_options(threads: int = 1):
    """Session options for a model run on the CPU beside a video call: ``threads`` for its operators, no thread pool
    between operators, and nothing but fatal errors in onnxruntime's log (its warnings about the graph are for model
    authors, not for someone watching a class; its errors are raised as exceptions too, and logging them as well put
    a second, raw copy of a failed run on the terminal beside fer-agent's one line)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    return options
