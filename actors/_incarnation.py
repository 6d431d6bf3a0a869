"""One incarnation of a supervised worker, from its spawn to its reaping.

:class:`Incarnation` serves the worker (:meth:`Incarnation.serve`), watches its exit
(:meth:`Incarnation.watch_exit`), watches its heartbeat and decides it is stuck
(:meth:`Incarnation.watch_heartbeat`), and declares it dead exactly once
(:meth:`Incarnation.declare_dead`), after which none of its requests is handled.
The :class:`~actors.Supervisor` makes one per spawn and applies the restart policy
between them.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, final

import trio

from channel import ErrorReply, MessageCodec, RemoteProtocolError

from ._errors import PeerNotReading
from ._options import CREDIT_ENV, ServeConfig
from ._policy import ExitRecord, Liveness
from ._responder import Handler, _Responder
from ._spawn import WorkerProcess, is_stopped, spawn_worker
from ._supervisor_status import StatusBoard, WorkerState

if TYPE_CHECKING:
    from ._options import SupervisorConfig

__all__ = ["Incarnation"]

log = logging.getLogger("actors._supervisor")

_QUEUED = 2048  # a worker's requests the supervisor reads ahead of its handlers: twice
# a default worker's max_in_flight, so its in flight and unanswered both fit
_NOT_A_COMMAND = frozenset({errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR})
_EXIT_GRACE = 1.0  # seconds a worker that closed its channel has to exit before it is stopped


@final
class Incarnation:
    """One spawn of the worker, from its spawn to its reaping.

    Not public: the supervisor makes one per spawn. Its tasks share one nursery;
    :meth:`declare_dead` cancels them, once, with the reason the incarnation ended.
    """

    def __init__(
        self,
        number: int,
        command: Sequence[str],
        codec: MessageCodec,
        handler: Handler,
        options: SupervisorConfig,
        board: StatusBoard,
        publish: Callable[[WorkerState], None],
    ) -> None:
        self.number = number
        self._command = command
        self._codec = codec
        self._handler = handler
        self._options = options
        self._board = board
        self._publish = publish  # the supervisor's: a state, with this incarnation's load
        self.liveness = Liveness(stuck_after=self._options.stuck_after, start_timeout=self._options.start_timeout)
        self.process: WorkerProcess | None = None
        self.alive = False  # False once declared dead: its requests are refused from then on
        self.serving = False  # its channel is open
        self.running_since: float | None = None  # its first heartbeat
        self.reason = "supervisor stopped"
        self._nursery: trio.Nursery | None = None
        self._watchdog: trio.CancelScope | None = None
        self._responder: _Responder | None = None  # while serving

    async def run(self) -> ExitRecord:
        """Spawn the worker, serve and watch it until it is declared dead, stop it,
        and say how it ended. However this is left (cancelled too), the worker has
        been stopped and reaped."""
        board = self._board
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:
            return self._spawn_failed(exc)
        try:
            self.process = await spawn_worker(
                self._command, theirs.fileno(), target_fd=self._options.fd,
                own_group=self._options.own_process_group,
                env={CREDIT_ENV: str(_QUEUED + self._options.max_concurrency)},
            )
        except OSError as exc:
            ours.close()
            return self._spawn_failed(exc)
        finally:
            theirs.close()
        self.alive = self.serving = True
        self.liveness.spawned(trio.current_time())
        board.move(
            WorkerState.STARTING, heartbeat_age=None, pid=self.process.pid, incarnation=self.number,
            restarts=self.number - 1, loop_lag=None,
        )
        try:
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.watch_exit)
                nursery.start_soon(self.serve, stream)
                nursery.start_soon(self.watch_heartbeat)
        finally:
            self.alive = self.serving = False
            with trio.CancelScope(shield=True):
                if self.process.returncode is None:
                    self._publish(WorkerState.STOPPING)
                    await self._stop(self.process)
                ours.close()
        return ExitRecord(
            incarnation=self.number, exit_code=self.process.returncode, reason=self.reason, at=trio.current_time()
        )

    def _spawn_failed(self, error: OSError) -> ExitRecord:
        """No process (out of fds or processes, say): a dead incarnation, restarted
        after the backoff and counted against the restart intensity like any other.
        A first spawn of a command that cannot run at all raises instead.

        Raises:
            OSError: the first spawn failed because the command is missing, not
                executable or not a program (``ENOENT``, ``EACCES``, ``ENOEXEC``,
                ``ENOTDIR``): a mistake to report, not a fault to retry.
        """
        if self.number == 1 and error.errno in _NOT_A_COMMAND:
            raise error
        log.warning("worker incarnation %d could not be spawned: %s", self.number, error)
        self._board.move(WorkerState.STARTING, heartbeat_age=None, pid=None, incarnation=self.number,
                         restarts=self.number - 1, loop_lag=None)
        self.reason = f"spawn failed: {error.strerror or error}"
        return ExitRecord(incarnation=self.number, exit_code=None, reason=self.reason, at=trio.current_time())

    def declare_dead(self, reason: str) -> None:
        """End this incarnation: the first reason given is the one recorded; from now
        on its requests are refused and its tasks (handlers included) cancelled."""
        if self.alive:
            self.alive = False
            self.reason = reason
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()

    # ------------------------------------------------------------------ its tasks

    async def handle(self, message: Any) -> Any:
        """The handler ``serve`` calls: the user's, unless this incarnation is dead.
    (Heartbeats are noted as they are read, before any handler runs.)"""
        if not self.alive:
            # Declared dead in this very tick: its handlers are being cancelled, and
            # this one must not even start.
            raise ErrorReply("WORKER_DEAD", {"incarnation": self.number})
        return await self._handler(message)

    def heard_heartbeat(self) -> None:
        """A heartbeat was read: the worker's main loop is alive. RUNNING (the first
        time), and the watchdog's deadline moves."""
        now = trio.current_time()
        if self.liveness.heartbeat(now):
            self.running_since = now
            self._publish(WorkerState.RUNNING)
        else:
            self._publish(self._board.state)
        if self._watchdog is not None:
            self._watchdog.deadline = self.liveness.deadline()

    def answered_heartbeat(self) -> None:
        """A heartbeat's handler ended (its answer queued): the worker, which may have
        waited for that answer, has ``stuck_after`` from now for its next heartbeat."""
        self.liveness.answered(trio.current_time())
        if self._watchdog is not None:
            self._watchdog.deadline = self.liveness.deadline()

    async def serve(self, stream: trio.SocketStream) -> None:
        """Serve the worker's requests until its channel ends; then it is dead."""
        options = self._options
        config = ServeConfig(
            max_concurrency=options.max_concurrency, hello=options.hello, max_frame_size=options.max_frame_size,
            drain_timeout=0, incarnation=self.number, stall_timeout=options.stuck_after, max_queued=_QUEUED,
            priority=options.heartbeat,
        )
        self._responder = _Responder(
            stream, self._codec, self.handle, config,
            on_priority=self.heard_heartbeat, on_priority_done=self.answered_heartbeat,
        )
        try:
            await self._responder.serve()
        except RemoteProtocolError as exc:
            log.warning("worker incarnation %d sent garbage: %s", self.number, exc)
            self.declare_dead("protocol error")
            return
        except PeerNotReading as exc:
            log.warning("worker incarnation %d %s", self.number, exc)
            self.declare_dead("stopped reading")
            return
        # Its end of the channel closed: it is exiting, most likely. Not healthy from
        # now on; give the exit a moment to be the reason.
        self.serving = False
        await trio.sleep(_EXIT_GRACE)
        self.declare_dead("closed its channel")

    async def watch_exit(self) -> None:
        """The worker exited (any code, any signal): it is dead."""
        assert self.process is not None
        await self.process.wait()
        self.declare_dead("exited")

    async def watch_heartbeat(self) -> None:
        """The stuck decision: no heartbeat by the liveness deadline (``start_timeout``
        for the first, then ``stuck_after`` after each) means the main loop is not
        making progress, however busy the rest of the worker is: STUCK, then dead."""
        while True:
            # Each heartbeat moves this scope's deadline (see heard_heartbeat).
            with trio.move_on_at(self.liveness.deadline()) as watch:
                self._watchdog = watch
                await trio.sleep_forever()
            if not self.liveness.is_stuck(trio.current_time()):
                continue
            # Late, as far as we have read. Heartbeats may be waiting unread (our own
            # loop stalled, or our handlers are behind a flood): read what is waiting
            # now before deciding, so the worker is judged on what it sent.
            await self._read_what_waits()
            if self.liveness.is_stuck(trio.current_time()):
                first = self.liveness.last_heartbeat is None
                self._publish(WorkerState.STUCK)
                self.declare_dead("no first heartbeat" if first else "stuck")
                return

    async def _read_what_waits(self) -> None:
        """Read what the worker had sent by now before deciding (each heartbeat among
        it noted as it is read): ``FramePump.read_what_waits``, which waits while
        reading makes progress and gives up after ``stuck_after`` without any."""
        if self._responder is not None:
            await self._responder.pump.read_what_waits(self._options.stuck_after)

    async def _stop(self, process: WorkerProcess) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; SIGKILL at once if stopped (SIGSTOP)."""
        if is_stopped(process.pid):
            process.kill()
        else:
            process.terminate()
            with trio.move_on_after(self._options.stop_timeout):
                await process.wait()
            if process.returncode is None:
                log.warning("worker pid %d ignored SIGTERM for %g s: SIGKILL", process.pid, self._options.stop_timeout)
                process.kill()
        await process.wait()

