"""The node's periodic ``/diagnostics`` status: values (ros2_benchmark metric names),
level and message, from its totals and the period's rates."""

from __future__ import annotations

from collections import Counter
from typing import Any

from unihoi_ros.ros import messages as M
from unihoi_ros.ros.transport import DiagnosticReport


def build_report(node: Any, totals: dict[str, Any], period: dict[str, Any],
                 period_drops: Counter[str], new_drops: int,
                 input_problem: str | None, *, new_lost: int = 0,
                 input_period_ms: float | None = None) -> DiagnosticReport:
    """The status of ``node`` (a :class:`~unihoi_ros.ros.node.UnihoiNode`).

    Args:
        totals: ``node.stats()``.
        period: rates and latencies since the previous report (``PeriodStats.take``).
        period_drops: drops by reason since the previous report.
        new_drops: frames missed since the previous report.
        input_problem: why no input arrives (no publisher, silent topic), or None.
        new_lost: frames estimated lost before arrival since the previous report (gaps in
            the camera's stamps, :mod:`unihoi_ros.ros.input_loss`).
        input_period_ms: the camera's period (median stamp gap), or None while unknown.

    Levels: OK; WARN for missed frames, frames lost before arrival, no camera_info, an
    input problem, or frames that arrive while none is published yet (inference busy);
    ERROR when frames of the period were rejected and none published (the message lists
    the reasons).
    """
    params, backend = node.params, node.backend
    values: dict[str, Any] = {
        "Mean Input Frame Rate (fps)": period["input_fps"],
        "Mean Frame Rate (fps)": period["output_fps"],
        "# of Frames Received": totals["received"],
        "# of Frames Published": totals["published"],
        "# of Missed Frames": totals["missed"],
        "# of Frames Lost Before Arrival (est. from stamps)": totals["input_lost_estimate"],
        "Input Period From Stamps (ms)": input_period_ms or 0.0,
    }
    for reason in sorted(totals["drops"]):
        values[f"# of Missed Frames ({reason})"] = totals["drops"][reason]
    values.update({
        "Mean End-to-End Latency (ms)": period["mean_latency_ms"],
        "Max. End-to-End Latency (ms)": period["max_latency_ms"],
        "Mean Stamp Age at Publish (ms)": period["mean_age_ms"],
        "Mean Frame-to-Frame Jitter (ms)": period["mean_jitter_ms"],
        "Max. Frame-to-Frame Jitter (ms)": period["max_jitter_ms"],
        "Mean Inference Time (ms)": totals["mean_inference_ms"] or 0.0,
        "# of Stream Resets": totals["stream_resets"],
        "# of Resolution Changes": totals["resolution_changes"],
        "# of Publish Errors": totals["publish_errors"],
        "TF": ("published" if totals["tf"] else
               "off (publish_tf false)" if not params.publish_tf else
               "disabled: TF broadcaster unavailable (see start-up log)"),
        "Mode": "live" if node.live else "replay",
        "Threads": node.threads.describe(),
        "Flow": f"DIS {node._flow_name()}",
        "Model": backend.model_source,
        "Backend": backend.describe(),
    })
    # Who talks and who listens: a subscriber matched later misses what was published
    # before (volatile outputs), so a peer can wait for its own counts before sending.
    for topic, n in node.input_publishers().items():
        values[f"# of Publishers ({topic})"] = n
    for topic, n in node.output_subscribers().items():
        values[f"# of Subscribers ({topic})"] = n
    fallback = node.camera_info_fallback
    if params.use_camera_info:
        values["Camera Info"] = ("missing: using predicted K" if fallback
                                 else "paired with images")
        values["# of Camera Info Timeouts"] = totals["camera_info_timeouts"]
        values["# of Frames Without Camera Info"] = totals["frames_without_camera_info"]
    level, message = M.DIAG_OK, (
        f"{period['output_fps']:.1f} fps out of {period['input_fps']:.1f} fps in")
    if fallback:
        level, message = M.DIAG_WARN, "no camera_info: using predicted intrinsics"
    if new_drops:
        level = M.DIAG_WARN
        message = f"missed {new_drops} frame(s) since the last report; " + message
    if new_lost:
        level = M.DIAG_WARN
        message = (f"about {new_lost} input frame(s) lost before arrival since the last "
                   "report (gaps in the camera's stamps); " + message)
    if input_problem:
        level, message = M.DIAG_WARN, input_problem
    if period["input_fps"] > 0 and period["output_fps"] == 0:
        rejected = Counter({r: n for r, n in period_drops.items() if r != "busy"})
        if rejected:
            reasons = ", ".join(f"{r} x{n}" for r, n in period_drops.most_common())
            level, message = M.DIAG_ERROR, ("frames arrive but nothing is published: "
                                            f"every frame dropped ({reasons})")
        else:  # only replaced while busy: the first (or a slow) inference is running
            level, message = M.DIAG_WARN, "frames arrive but none published yet"
    return DiagnosticReport(level, message, values)
