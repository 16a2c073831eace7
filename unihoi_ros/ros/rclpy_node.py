"""The ROS 2 node ``unihoi_node`` on rclpy: a thin transport around :class:`UnihoiNode`.

Everything but the middleware lives in :mod:`unihoi_ros.ros.node`. Here:

- parameters are declared with the defaults and descriptions of ``config/egocentric.yaml``
  (read-only: the node reads them once at start-up);
- inputs: ``image`` (or ``image/compressed``) with the configured QoS; with
  ``use_camera_info`` both topics go through message_filters' ApproximateTimeSynchronizer,
  whose Subscribers get the QoS explicitly (their default is reliable, which would not
  match best-effort camera drivers);
- ``/tf`` through a plain TFMessage publisher (tf2_msgs; tf2_ros' broadcaster QoS), the
  camera -> base transform of ``base_frame`` from a tf2_ros Buffer; diagnostics through
  diagnostic_updater;
- messages cross as CDR bytes through the wire codec (:mod:`unihoi_ros.ros.wire`):
  outputs are published serialised (``Publisher.publish(bytes)``), inputs are subscribed
  in raw mode (``create_subscription(..., raw=True)``) and read by the codec; the
  message_filters synchroniser needs rclpy messages, whose bytes
  (``rclpy.serialization.serialize_message``) go through the same codec. No field of a
  message is walked here.

rclpy is imported lazily: this module is importable without it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from unihoi_ros.errors import UnihoiError, one_line
from unihoi_ros.optional import MissingDependencyError, require
from unihoi_ros.ros import messages as M
from unihoi_ros.ros import wire
from unihoi_ros.ros.names import resolve_topic_name
from unihoi_ros.ros.params import (
    BUILTIN_PARAMS,
    NODE_NAME,
    NodeParams,
    check_names,
    param_descriptions,
)
from unihoi_ros.ros.qos import QosProfile, adapt_to_offers
from unihoi_ros.ros.transport import (
    DIAGNOSTICS_QOS,
    TF_QOS,
    ApproximatePairer,
    DiagnosticReport,
    Transport,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- messages
#: Seconds a ``base_frame`` lookup waits for the camera -> base transform at a frame's
#: stamp (static transforms answer at once).
TF_LOOKUP_WAIT_S = 0.1


def ros_type_name(name: str) -> str:
    """``"std_msgs/Header"`` (rclpy's field type form) -> ``"std_msgs/msg/Header"``."""
    parts = name.split("/")
    return f"{parts[0]}/msg/{parts[-1]}" if len(parts) == 2 else name


def rclpy_message_class(msgtype: str) -> type:
    """The rclpy message class of ``msgtype`` (``"sensor_msgs/msg/Image"``).

    Raises:
        MissingDependencyError: the message package is not installed (e.g. ``tf2_msgs``).
    """
    pkg, sub, name = ros_type_name(msgtype).split("/")
    module = require(f"{pkg}.{sub}")  # what rosidl_runtime_py does, without needing it
    return getattr(module, name)


def from_rclpy(msg: Any, msgtype: str, typestore: Any | None = None) -> Any:
    """An rclpy message as the rosbags message of ``msgtype``: rclpy's own CDR bytes read
    by the wire codec (for what arrives as a message object: message_filters' pairs)."""
    from rclpy.serialization import serialize_message

    return wire.deserialize(serialize_message(msg), msgtype, typestore)


def to_rclpy_qos(profile: QosProfile) -> Any:
    """rclpy ``QoSProfile`` of one of our profiles (``SENSOR_DATA`` equals rclpy's
    ``qos_profile_sensor_data``)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy[profile.history.upper()],
        depth=max(0, int(profile.depth)),
        reliability=ReliabilityPolicy[profile.reliability.upper()],
        durability=DurabilityPolicy[profile.durability.upper()],
    )


# --------------------------------------------------------------------------- transport
class _Output:
    """rclpy publisher taking rosbags messages (or their CDR bytes)."""

    def __init__(self, publisher: Any, msgtype: str, typestore: Any) -> None:
        self._pub = publisher
        self.msgtype, self._ts = msgtype, typestore
        self.topic = publisher.topic_name

    def publish(self, msg: Any, cdr: bytes | memoryview | None = None) -> None:
        if cdr is None:
            cdr = wire.serialize(msg, self.msgtype, self._ts)
        self._pub.publish(bytes(cdr))  # rclpy publishes bytes as a serialised message

    @property
    def subscription_count(self) -> int:
        return int(self._pub.get_subscription_count())


def qos_from_rclpy(profile: Any) -> QosProfile:
    """One of our profiles (named ``OFFERED``) from an rclpy ``QoSProfile``, e.g. a
    publisher's offer read from the graph, whose history the graph does not know
    (``unknown``); policy names as rclpy's, lower case."""
    return QosProfile("OFFERED", profile.reliability.name.lower(),
                      profile.history.name.lower(), int(profile.depth),
                      profile.durability.name.lower())


def offered_reliabilities(node: Any, topic: str) -> list[str]:
    """The reliability each publisher of ``topic`` (fully qualified) offers, from the
    graph (``reliable`` | ``best_effort``; ``unknown`` where the graph cannot tell)."""
    return [qos_from_rclpy(i.qos_profile).reliability
            for i in node.get_publishers_info_by_topic(topic)]


class _AdaptiveInput:
    """The subscriptions of one input, whose QoS follows the publishers' offers
    (:func:`~unihoi_ros.ros.qos.adapt_to_offers`): checked when created and on every
    :meth:`refresh` (the transport's graph timer); when the adapted profile changes, the
    subscriptions are made again with it (a publisher that appears, or one that offers
    another reliability); when the last publisher leaves, the subscriptions stay as they
    are until one appears again.

    Args:
        transport: the transport (node, logging).
        topics: the input's topics as given (all their publishers count).
        requested: the configured profile (``match_publishers`` set).
        build: ``build(profile) -> (keep, subscriptions)``: what to keep alive, and the
            rclpy subscriptions to destroy when the profile changes.
    """

    def __init__(self, transport: RclpyTransport, topics: list[str], requested: QosProfile,
                 build: Callable[[QosProfile], tuple[list[Any], list[Any]]]) -> None:
        self._tp, self._requested, self._build = transport, requested, build
        self.topics = [transport.resolve(t) for t in topics]
        self._keep: list[Any] = []
        self._subs: list[Any] = []
        self.profile: QosProfile | None = None
        self.refresh()

    def refresh(self) -> None:
        offered = [r for t in self.topics for r in offered_reliabilities(self._tp.node, t)]
        if not offered and self.profile is not None:
            return  # the camera left: keep the reader for when it comes back
        profile = adapt_to_offers(self._requested, offered)
        if profile == self.profile:
            return
        for sub in self._subs:
            self._tp.node.destroy_subscription(sub)
        self._keep, self._subs = self._build(profile)
        if self.profile is not None or profile != self._requested:
            log.info("input %s: subscribed %s (its publishers offer %s)",
                     " + ".join(self.topics), profile.reliability.replace("_", " "),
                     ", ".join(sorted(set(offered))).replace("_", " "))
        self.profile = profile


class RclpyTransport(Transport):
    """:class:`Transport` over an rclpy node (see module docstring)."""

    name = "rclpy"
    wants_cdr = True

    def __init__(self, node: Any, typestore: Any | None = None) -> None:
        self.node = node
        self.namespace = node.get_namespace()
        self.typestore = typestore if typestore is not None else M.get_typestore()
        self._keep: list[Any] = []  # subscriptions, filters, synchronizer: keep them alive
        self._tf: _Output | None = None
        self._tf_buffer = None  # tf2_ros Buffer, with base_frame
        self._updater = None
        self._memo: tuple[Any, Any] = (None, None)
        #: Received samples the codec could not read (dropped).
        self.input_errors = 0
        self._adaptive: list[_AdaptiveInput] = []  # inputs whose QoS follows the publishers
        self._graph_timer = None

    def _convert(self, msg: Any, msgtype: str) -> Any:
        # An image reaching both the synchroniser and the unpaired callback is converted once.
        if self._memo[0] is msg:
            return self._memo[1]
        out = from_rclpy(msg, msgtype, self.typestore)
        self._memo = (msg, out)
        return out

    def resolve(self, topic: str) -> str:
        try:
            return self.node.resolve_topic_name(topic)  # expansion and remapping (Humble+)
        except AttributeError:
            return resolve_topic_name(topic, self.namespace, self.node.get_name())

    def input_publisher_count(self, topic: str) -> int | None:
        try:
            return int(self.node.count_publishers(self.resolve(topic)))
        except Exception:  # a graph query must never break diagnostics
            return None

    def create_publisher(self, topic: str, msgtype: str, qos: QosProfile) -> _Output:
        cls = rclpy_message_class(msgtype)
        return _Output(self.node.create_publisher(cls, topic, to_rclpy_qos(qos)), msgtype,
                       self.typestore)

    #: Seconds between checks of the inputs' publishers (``match_publishers`` profiles).
    GRAPH_CHECK_PERIOD_S = 0.5

    def _input(self, topics: list[str], qos: QosProfile,
               build: Callable[[QosProfile], tuple[list[Any], list[Any]]]) -> None:
        """Subscribe one input with ``build``: as configured, or following its publishers'
        offers (``qos.match_publishers``), re-checked on a timer."""
        if not qos.match_publishers:
            self._keep += build(qos)[0]
            return
        self._adaptive.append(_AdaptiveInput(self, topics, qos, build))
        if self._graph_timer is None:
            self._graph_timer = self.node.create_timer(self.GRAPH_CHECK_PERIOD_S,
                                                       self._refresh_inputs)

    def _refresh_inputs(self) -> None:
        for adaptive in self._adaptive:
            try:
                adaptive.refresh()
            except Exception:  # a graph query must never take the node down
                log.exception("checking the publishers of an input failed")

    def input_qos(self, topic: str) -> QosProfile | None:
        """The profile the adaptive input of ``topic`` is subscribed with now (None: not an
        adaptive input)."""
        resolved = self.resolve(topic)
        for adaptive in self._adaptive:
            if resolved in adaptive.topics:
                return adaptive.profile
        return None

    def subscribe(self, topic: str, msgtype: str, qos: QosProfile, callback) -> None:
        cls = rclpy_message_class(msgtype)

        def receive(data: bytes) -> None:  # raw: the CDR bytes, read by the codec
            try:
                msg = wire.deserialize(data, msgtype, self.typestore)
            except wire.CdrError as exc:  # dropped and counted, as a DDS subscriber does
                self.input_errors += 1
                log.warning("%s: sample dropped: %s", topic, one_line(exc))
                return
            callback(msg)

        def build(profile: QosProfile) -> tuple[list[Any], list[Any]]:
            sub = self.node.create_subscription(cls, topic, receive, to_rclpy_qos(profile),
                                                raw=True)
            return [sub], [sub]

        self._input([topic], qos, build)

    def subscribe_synchronized(self, topic, msgtype, info_topic, info_type, qos, callback, *,
                               slop_s, queue_size=10, unpaired_callback=None) -> None:
        """Image + camera_info pairs through message_filters' ApproximateTimeSynchronizer,
        or through :class:`ApproximatePairer` (same rule) where message_filters is missing."""
        try:
            import message_filters
        except ImportError:
            log.warning("message_filters is not installed: camera_info is paired by the "
                        "package's own approximate-time pairer (same slop and queue rule)")
            self._pair_without_message_filters(topic, msgtype, info_topic, info_type, qos,
                                               callback, slop_s, queue_size, unpaired_callback)
            return

        def build(profile: QosProfile) -> tuple[list[Any], list[Any]]:
            q = to_rclpy_qos(profile)  # explicit: message_filters' Subscriber: reliable
            image = message_filters.Subscriber(self.node, rclpy_message_class(msgtype), topic,
                                               qos_profile=q)
            info = message_filters.Subscriber(self.node, rclpy_message_class(info_type),
                                              info_topic, qos_profile=q)
            sync = message_filters.ApproximateTimeSynchronizer([image, info], queue_size,
                                                               slop_s)
            sync.registerCallback(lambda a, b: callback(
                self._convert(a, msgtype), from_rclpy(b, info_type, self.typestore)))
            if unpaired_callback is not None:
                image.registerCallback(lambda m: unpaired_callback(self._convert(m, msgtype)))
            return [image, info, sync], [image.sub, info.sub]

        self._input([topic, info_topic], qos, build)

    def _pair_without_message_filters(self, topic, msgtype, info_topic, info_type, qos,
                                      callback, slop_s, queue_size, unpaired_callback) -> None:
        pairer = ApproximatePairer(callback, slop_s, queue_size)

        def on_image(msg: Any) -> None:
            pairer.add_first(msg)
            if unpaired_callback is not None:
                unpaired_callback(msg)

        self.subscribe(topic, msgtype, qos, on_image)
        self.subscribe(info_topic, info_type, qos, pairer.add_second)
        self._keep.append(pairer)

    def start_tf(self) -> None:
        """Create the ``/tf`` publisher: a plain ``tf2_msgs/TFMessage`` publisher with
        tf2_ros' broadcaster QoS (reliable, keep last 100, volatile), so tf2_msgs alone is
        enough (tf2_ros is needed only for ``base_frame``'s Buffer). The node's CDR bytes
        are published as they are.

        Raises:
            MissingDependencyError: ``tf2_msgs`` is not installed.
        """
        if self._tf is None:
            try:
                self._tf = self.create_publisher("/tf", M.TF_MESSAGE, TF_QOS)
            except ImportError as exc:
                raise MissingDependencyError(
                    f"tf2_msgs is not importable ({exc}): install ros-<distro>-tf2-msgs "
                    "(or tf2_ros, which brings it)") from exc

    def publish_tf(self, tf_message: Any, cdr: bytes | memoryview | None = None) -> None:
        self.start_tf()
        self._tf.publish(tf_message, cdr)

    def tf_subscription_count(self) -> int | None:
        return None if self._tf is None else self._tf.subscription_count

    def start_transform_lookup(self) -> None:
        """A tf2_ros ``Buffer`` fed by a ``TransformListener`` on this node (``/tf`` and
        ``/tf_static``, spun by the node's executor).

        Raises:
            MissingDependencyError: ``tf2_ros`` is not installed.
        """
        if self._tf_buffer is None:
            try:
                from tf2_ros import Buffer, TransformListener
            except ImportError as exc:
                raise MissingDependencyError(
                    f"tf2_ros is not importable ({exc}): base_frame needs its Buffer; "
                    "install ros-<distro>-tf2-ros") from exc
            self._tf_buffer = Buffer()
            self._keep.append(TransformListener(self._tf_buffer, self.node))

    def lookup_transform(self, target_frame: str, source_frame: str, stamp_ns: int):
        from rclpy.duration import Duration
        from rclpy.time import Time

        from unihoi_ros.errors import TransformUnavailableError

        if self._tf_buffer is None:
            raise TransformUnavailableError("no tf2 Buffer (start_transform_lookup not called)")
        try:  # a short wait: a moving base's transform at this stamp may be in flight
            t = self._tf_buffer.lookup_transform(target_frame, source_frame,
                                                 Time(nanoseconds=int(stamp_ns)),
                                                 timeout=Duration(seconds=TF_LOOKUP_WAIT_S))
        except Exception as exc:  # tf2's LookupException, ExtrapolationException, ...
            raise TransformUnavailableError(f"{type(exc).__name__}: {exc}") from None
        return M.transform_matrix(t.transform)

    def start_diagnostics(self, task: str, hardware_id: str, period_s: float,
                          report: Callable[[], DiagnosticReport]) -> None:
        """/diagnostics through diagnostic_updater, or (where it is missing) a timer that
        publishes the same DiagnosticArray itself."""
        try:
            import diagnostic_updater
        except ImportError:
            log.warning("diagnostic_updater is not installed: /diagnostics is published by "
                        "the node's own timer (same status and values)")
            self._diagnostics_timer(task, hardware_id, period_s, report)
            return
        from diagnostic_msgs.msg import DiagnosticStatus

        levels = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN,
                  2: DiagnosticStatus.ERROR, 3: DiagnosticStatus.STALE}

        def fill(stat):
            rep = report()
            stat.summary(levels[int(rep.level)], rep.message)
            for key, value in rep.values.items():
                stat.add(str(key), f"{value:.6g}" if isinstance(value, float) else str(value))
            return stat

        try:
            self._updater = diagnostic_updater.Updater(self.node, period=float(period_s))
        except TypeError:  # older diagnostic_updater: period from its own parameter
            self._updater = diagnostic_updater.Updater(self.node)
        self._updater.setHardwareID(hardware_id or "none")
        self._updater.add(task, fill)

    def _diagnostics_timer(self, task: str, hardware_id: str, period_s: float,
                           report: Callable[[], DiagnosticReport]) -> None:
        pub = self.create_publisher("/diagnostics", M.DIAGNOSTIC_ARRAY, DIAGNOSTICS_QOS)
        name = f"{self.node.get_name()}: {task}"

        def tick() -> None:
            try:
                pub.publish(M.report_array_msg(name, report(), hardware_id, self.now_ns(),
                                               self.typestore))
            except Exception:  # diagnostics must never take the node down
                log.exception("diagnostics update failed")

        self._keep.append(self.node.create_timer(float(period_s), tick))

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)


# --------------------------------------------------------------------------- parameters
def declare_parameters(node: Any) -> NodeParams:
    """Declare every parameter of ``egocentric.yaml`` on ``node`` (with its description;
    overrides from ``--ros-args`` apply) and return their values."""
    from rcl_interfaces.msg import ParameterDescriptor

    defaults = NodeParams.load()
    descriptions = param_descriptions()
    values: dict[str, Any] = {}
    for name, default in defaults.as_dict().items():
        if name in BUILTIN_PARAMS:
            continue  # declared by rclpy itself
        desc = ParameterDescriptor(description=descriptions.get(name, ""), read_only=True)
        values[name] = node.declare_parameter(name, default, desc).value
    values["use_sim_time"] = bool(node.get_parameter("use_sim_time").value)
    _refuse_unknown_overrides(node)
    return NodeParams.load(overrides=values)


def _refuse_unknown_overrides(node: Any) -> None:
    """rclpy ignores ``-p`` / parameter-file values for undeclared names; a misspelt
    parameter would silently do nothing, so it is an error here."""
    overrides = set(getattr(node, "_parameter_overrides", {}) or {})
    check_names(overrides - {"start_type_description_service"}, "the node's --ros-args")


class _RosLogHandler(logging.Handler):
    """Forward Python logging (``unihoi_ros.*``) to the node's rcutils logger.

    rclpy keys each logging call site (file, line) to one severity and raises when the same
    line logs at another: each severity therefore has a call of its own below.
    """

    def __init__(self, node: Any) -> None:
        super().__init__()
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.ERROR:
                self._logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._logger.warning(text)
            elif record.levelno >= logging.INFO:
                self._logger.info(text)
            else:
                self._logger.debug(text)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


# --------------------------------------------------------------------------- entry point
def init_rclpy(argv: list[str] | None) -> None:
    """``rclpy.init`` without rclpy's own signal handlers.

    rclpy's handlers shut the context down the moment SIGINT arrives, before the
    process's shutdown code runs: its last log lines then fail ("Failed to publish log
    message to rosout: publisher's context is invalid"). Here the first SIGINT or SIGTERM
    raises KeyboardInterrupt in the main thread instead, and the caller shuts the context
    down after its own clean-up (:func:`spin_until_interrupted`). Later ones are ignored,
    so the clean-up (a bag being closed) is not cut short: Ctrl-C under ``ros2 launch``
    reaches a node twice, from the terminal and from launch; SIGKILL still ends it.
    """
    import signal

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=argv if argv is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    stopping = []

    def interrupt(signum: int, _frame: Any) -> None:
        if not stopping:
            stopping.append(signum)
            raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def spin_until_interrupted(node: Any, period_s: float = 0.1) -> None:
    """Spin ``node`` until KeyboardInterrupt (SIGINT, SIGTERM: :func:`init_rclpy`) or an
    external shutdown; waits at most ``period_s`` at a time so a signal is seen at once."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=period_s)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.remove_node(node)


@contextlib.contextmanager
def forward_logging(node: Any) -> Iterator[None]:
    """The package's Python logging (``unihoi_ros.*``) goes to ``node``'s rcutils logger
    only (console and /rosout), at the node's ``--log-level``, inside the ``with`` block.

    The package logger stops propagating meanwhile: a root handler (``unihoi run``'s
    ``logging.basicConfig``) would print every line a second time.
    """
    handler = _RosLogHandler(node)
    pkg_log = logging.getLogger("unihoi_ros")
    saved = (pkg_log.level, pkg_log.propagate)
    pkg_log.addHandler(handler)
    pkg_log.setLevel(_python_level(node))
    pkg_log.propagate = False
    try:
        yield
    finally:
        pkg_log.removeHandler(handler)
        pkg_log.setLevel(saved[0])
        pkg_log.propagate = saved[1]


def main(argv: list[str] | None = None) -> int:
    """Run ``unihoi_node`` (``ros2 run unihoi_ros unihoi_node --ros-args ...``).

    Returns 0 after a clean shutdown (SIGINT or SIGTERM: the worker's frame is published,
    one summary line logged, then the context is shut down); 2 after a start-up failure the
    user can fix (a parameter, the model, the backend, a dependency), said in one line on
    stderr (no traceback).
    """
    import rclpy
    from rclpy.exceptions import ParameterException

    from unihoi_ros.ros.node import UnihoiNode

    init_rclpy(argv)
    node = rclpy.create_node(NODE_NAME)
    unihoi = None
    try:
        with forward_logging(node):
            try:
                params = declare_parameters(node)
                backend = params.load_backend()
                unihoi = UnihoiNode(params, backend, RclpyTransport(node))
                unihoi.start()
                spin_until_interrupted(node)
            except KeyboardInterrupt:  # during start-up
                pass
            except (UnihoiError, ParameterException) as exc:
                print(f"{NODE_NAME}: error: {_explain(exc)}", file=sys.stderr, flush=True)
                return 2
            finally:
                if unihoi is not None:
                    unihoi.stop()  # logs the summary line while /rosout still works
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _python_level(node: Any) -> int:
    """The node's rcutils level (``--log-level``) as a Python logging level (same numbers)."""
    try:
        return max(logging.DEBUG, int(node.get_logger().get_effective_level()))
    except Exception:  # older rclpy
        return logging.INFO


def _explain(exc: BaseException) -> str:
    """One line for a start-up failure, with the fix where rclpy's own text lacks it."""
    from rclpy.exceptions import InvalidParameterTypeException

    text = one_line(exc)
    if isinstance(exc, InvalidParameterTypeException):
        text += (" (ROS parameters are typed: write a double with a decimal point, e.g. "
                 "-p min_confidence:=1.0; see config/egocentric.yaml)")
    return text
